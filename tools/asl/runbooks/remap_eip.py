"""remap-eip: move the Elastic IP to the standby, check it arrived, move it back if it did not."""

from __future__ import annotations

from selfheal.errors import VerificationFailed
from selfheal.runbooks import remap_eip as rb
from tools.asl.frame import FAILED, SUCCEEDED, VERIFIED, Workflow
from tools.asl.idioms import Call, Flow, all_of

ASSOCIATE = Call(
    rb.ASSOCIATE,
    intent="Record: about to associate the EIP",
    task="Associate the EIP with the standby",
    done="Record: the EIP was associated",
    failed="Record: the association failed",
    result={"associationId.$": "$.AssociationId"},
)
MOVE_BACK = Call(
    rb.MOVE_BACK,
    intent="Record: about to move the EIP back",
    task="Move the EIP back to the previous instance",
    done="Record: compensated",
    failed="Record: compensation failed",
    result={"associationId.$": "$.AssociationId"},
    result_path="$.compensated",
)


def body(f: Flow) -> str:
    f.call(ASSOCIATE, next_state="Start counting verify attempts", on_error=FAILED)
    f.poll(
        start="Start counting verify attempts",
        describe="Describe the EIP",
        check="Is the EIP on the standby?",
        done=[
            (
                all_of(
                    {"Variable": "$.verify.address.InstanceId", "IsPresent": True},
                    {
                        "Variable": "$.verify.address.InstanceId",
                        "StringEqualsPath": "$.guard.plan.standbyInstanceId",
                    },
                ),
                VERIFIED,
            )
        ],
        give_up="Verification failed",
        wait="Wait before verifying again",
        count="Count the verify attempt",
        on_error=FAILED,
    )
    f.describe(
        "Describe the EIP",
        "aws-sdk:ec2:describeAddresses",
        {"AllocationIds.$": "States.Array($.guard.plan.allocationId)"},
        {"address.$": "States.ArrayGetItem($.Addresses, 0)"},
        next_state="Is the EIP on the standby?",
        on_error=FAILED,
    )
    f.error(
        "Verification failed",
        VerificationFailed,
        "{} is not associated with the standby {} after {} checks",
        "$.guard.plan.publicIp",
        "$.guard.plan.standbyInstanceId",
        "$.verifyState.attempt",
        next_state="Was the EIP on an instance before?",
    )
    f.choice(
        "Was the EIP on an instance before?",
        [
            (
                all_of(
                    {"Variable": "$.guard.plan.fromInstanceId", "IsPresent": True},
                    {"Variable": "$.guard.plan.fromInstanceId", "IsNull": False},
                ),
                MOVE_BACK.intent,
            )
        ],
        FAILED,
        comment="Put the address back where it was: the old instance may still serve some traffic.",
    )
    f.call(
        MOVE_BACK,
        next_state="Restore the verification error",
        on_error=FAILED,
        reason="$.error.Cause",
        before=None,
    )
    f.error(
        "Restore the verification error",
        VerificationFailed,
        "{} did not reach the standby {}; it was moved back to {}",
        "$.guard.plan.publicIp",
        "$.guard.plan.standbyInstanceId",
        "$.guard.plan.fromInstanceId",
        next_state=FAILED,
    )
    f.record(VERIFIED, "verified", next_state=SUCCEEDED, on_error=FAILED, **{"after.$": "$.verify"})
    return ASSOCIATE.intent


WORKFLOW = Workflow(
    runbook=rb.RemapEip.name,
    comment=(
        "remap-eip: move an Elastic IP from a failed instance to a healthy, fenced standby. Input: {target:"
        " {instanceId|allocationId|publicIp}, params: {standbyInstanceId?}, dryRun, reason}."
    ),
    precheck="Precheck: is the standby healthy?",
    body=body,
)
