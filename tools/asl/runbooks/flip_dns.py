"""flip-dns: change the record sets (or force the primary's health check), wait for INSYNC, verify,
put it back if it does not show; a failback waits out the hold-down and a healthy period first."""

from __future__ import annotations

from selfheal.errors import VerificationFailed
from selfheal.runbooks import flip_dns as rb
from tools.asl.frame import FAILED, SUCCEEDED, VERIFIED, Workflow
from tools.asl.idioms import Call, Flow, all_of, catch, equals, is_true

FAILOVER_RECORDS = equals("$.guard.plan.kind", "failover")
A_FAILBACK = all_of(
    equals("$.guard.plan.direction", "failback"), {"Variable": "$.guard.dryRun", "BooleanEquals": False}
)
PRECHECK = "Precheck: is the side we move to healthy?"

CHANGE = Call(
    rb.CHANGE,
    intent="Record: about to change the record sets",
    task="Change the record sets",
    done="Record: the record sets were changed",
    failed="Record: the record change failed",
    result={"changeId.$": "$.ChangeInfo.Id", "status.$": "$.ChangeInfo.Status"},
)
FORCE = Call(
    rb.FORCE_HEALTH_CHECK,
    intent="Record: about to update the primary's health check",
    task="Update the primary's health check",
    done="Record: the health check was updated",
    failed="Record: the health check update failed",
    result={"healthCheckVersion.$": "$.HealthCheck.HealthCheckVersion"},
)
UNDO_CHANGE = Call(
    rb.UNDO_CHANGE,
    intent="Record: about to undo the record change",
    task="Undo the record change",
    done="Record: the record change was undone",
    failed="Record: undoing the record change failed",
    result={"changeId.$": "$.ChangeInfo.Id"},
    result_path="$.compensated",
)
UNDO_FORCE = Call(
    rb.UNDO_HEALTH_CHECK,
    intent="Record: about to undo the health check update",
    task="Undo the health check update",
    done="Record: the health check update was undone",
    failed="Record: undoing the health check update failed",
    result={"healthCheckVersion.$": "$.HealthCheck.HealthCheckVersion"},
    result_path="$.compensated",
)


def hold_down(f: Flow, precheck: str) -> str:
    """A failback first waits out the hold-down (time since the last flip, from the audit trail)."""
    f.pass_(
        "Start the failback clock",
        next_state="Is this a failback that must wait?",
        result={"waited": False},
        result_path="$.healthyFor",
    )
    f.choice(
        "Is this a failback that must wait?",
        [(A_FAILBACK, "Renew the lease for the hold-down")],
        precheck,
        comment="Dry runs do not wait.",
    )
    hold = "$.guard.decision.holdDownWaitSeconds"
    f.renew("Renew the lease for the hold-down", hold, next_state="Wait out the hold-down", on_error=FAILED)
    f.wait("Wait out the hold-down", hold, next_state=precheck)
    return "Start the failback clock"


def healthy_for_a_while(f: Flow, next_state: str) -> str:
    """Failback: the primary must be healthy now, and again after primaryHealthySeconds."""
    f.choice(
        "Must the primary stay healthy for a while?",
        [
            (
                all_of(*A_FAILBACK["And"], {"Variable": "$.healthyFor.waited", "BooleanEquals": False}),
                "Note that the primary was healthy",
            )
        ],
        next_state,
    )
    f.renew(
        "Note that the primary was healthy",
        "$.guard.plan.primaryHealthySeconds",
        next_state="Wait while the primary stays healthy",
        keep={"waited": True, "healthySince.$": "$$.State.EnteredTime"},
        result_path="$.healthyFor",
        on_error=FAILED,
    )
    f.wait("Wait while the primary stays healthy", "$.guard.plan.primaryHealthySeconds", next_state=PRECHECK)
    return "Must the primary stay healthy for a while?"


def body(f: Flow) -> str:
    f.choice("Which record kind?", [(FAILOVER_RECORDS, FORCE.intent)], CHANGE.intent)
    f.call(CHANGE, next_state="Is there a change to wait for?", on_error=FAILED)
    f.call(FORCE, next_state="Is there a change to wait for?", on_error=FAILED)
    # Failover records change a health check, not a record: there is no change to wait for.
    f.choice(
        "Is there a change to wait for?",
        [(FAILOVER_RECORDS, "Start counting verify attempts")],
        "Start counting polls",
    )
    f.poll(
        start="Start counting polls",
        describe="Get the change status",
        check="Is the change INSYNC?",
        done=[(equals("$.change.status", "INSYNC"), "Start counting verify attempts")],
        give_up="The change did not sync",
        wait="Wait for the change to propagate",
        count="Count the poll",
        attempts="$.guard.plan.changeAttempts",
        on_error=FAILED,
    )
    f.describe(
        "Get the change status",
        "aws-sdk:route53:getChange",
        {"Id.$": "$.act.changeId"},
        {"status.$": "$.ChangeInfo.Status"},
        next_state="Is the change INSYNC?",
        on_error=FAILED,
        result_path="$.change",
    )
    f.error(
        "The change did not sync",
        VerificationFailed,
        "change {} for {} is still {} after {} polls",
        "$.act.changeId",
        "$.guard.plan.recordName",
        "$.change.status",
        "$.verifyState.attempt",
        next_state=FAILED,
    )
    f.poll(
        start="Start counting verify attempts",
        describe="Verify: does DNS now point at the target?",
        check="Does it?",
        done=[(is_true("$.verify.done"), VERIFIED)],
        give_up="Verification failed",
        wait="Wait before verifying again",
        count="Count the verify attempt",
        on_error=FAILED,
    )
    f.step(
        "Verify: does DNS now point at the target?",
        "verify",
        next_state="Does it?",
        payload={"plan.$": "$.guard.plan"},
        result={
            "done.$": "$.Payload.done",
            "observed.$": "$.Payload.observed",
            "expected.$": "$.Payload.expected",
        },
        result_path="$.verify",
        catches=[catch("States.ALL", FAILED)],
    )
    f.error(
        "Verification failed",
        VerificationFailed,
        "{} does not show the change after {} checks",
        "$.guard.plan.recordName",
        "$.verifyState.attempt",
        next_state="Which undo?",
    )
    f.choice(
        "Which undo?",
        [(FAILOVER_RECORDS, UNDO_FORCE.intent)],
        UNDO_CHANGE.intent,
        comment="Put it back as it was before this execution.",
    )
    for undo in (UNDO_CHANGE, UNDO_FORCE):
        f.call(
            undo,
            next_state="Restore the verification error",
            on_error=FAILED,
            reason="$.error.Cause",
            before=None,
        )
    f.error(
        "Restore the verification error",
        VerificationFailed,
        "{} did not show the change; it was put back as it was",
        "$.guard.plan.recordName",
        next_state=FAILED,
    )
    f.record(VERIFIED, "verified", next_state=SUCCEEDED, on_error=FAILED, **{"after.$": "$.verify"})
    return "Which record kind?"


WORKFLOW = Workflow(
    runbook=rb.FlipDns.name,
    comment=(
        "flip-dns: move traffic to the healthy side of a Route 53 record (weighted, simple or failover"
        " records), wait for INSYNC, verify; failback after the hold-down. Input: {target: {healthCheckId}"
        " | {hostedZoneId, recordName, recordType?}, params: {direction?, ...}, dryRun, reason}."
    ),
    precheck=PRECHECK,
    body=body,
    before_precheck=hold_down,
    after_precheck=healthy_for_a_while,
)
