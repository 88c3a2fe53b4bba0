"""The frame every runbook shares, seen from the console: the same rejection and the same failure,
with a named error and a cause a person can read, in all five runbooks."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from selfheal.audit import AuditRow, AuditTrail
from selfheal.models import Phase, utcnow
from selfheal.runbooks import RUNBOOKS
from tests.events import load_event

# A target of the right form that does not exist, per runbook.
MISSING_TARGETS = {
    "remap-eip": {"allocationId": "eipalloc-0000000000000dead"},
    "replace-instance": {"instanceId": "i-0000000000000dead"},
    "promote-replica": {"dbClusterIdentifier": "no-such-cluster"},
    "redrive-dlq": {"queueName": "no-such-queue"},
    "flip-dns": {"healthCheckId": "00000000-0000-0000-0000-00000000dead"},
}


def readable(cause: str | None) -> bool:
    """A sentence, not a Lambda error's JSON (errorMessage, errorType, stackTrace)."""
    return bool(cause) and not cause.lstrip().startswith("{") and "stackTrace" not in cause  # type: ignore[union-attr]


def rows_of(cloud: DeployedCloud, request_id: str) -> list[dict[str, Any]]:
    return ops.audit_for_request(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], request_id)


def test_every_runbook_has_a_missing_target_here() -> None:
    assert set(MISSING_TARGETS) == set(RUNBOOKS)


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_invalid_console_input_is_rejected_the_same_way_in_every_runbook(cloud, runbook):
    # Given the runbook's own console example, without its reason
    body = copy.deepcopy(load_event(f"runbooks/{runbook}"))
    del body["reason"]
    # When started from the console
    result = cloud.start_and_wait(runbook, body)
    # Then it fails at once with InvalidInput, a cause naming the field, and a rejected row
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert readable(result.cause) and "reason" in (result.cause or ""), result.cause
    assert [r["phase"] for r in rows_of(cloud, result.name)] == ["rejected"]


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_a_failed_run_shows_its_named_error_and_a_readable_cause_in_every_runbook(cloud, runbook):
    # Given a target that does not exist
    body = {"target": MISSING_TARGETS[runbook], "reason": "e2e: a target that does not exist"}
    # When started
    result = cloud.start_and_wait(runbook, body)
    # Then it fails with UnknownResource and the message, audited as failed, the lease released
    assert (result.status, result.error) == ("FAILED", "UnknownResource"), (result.error, result.cause)
    assert readable(result.cause), result.cause
    rows = rows_of(cloud, result.name)
    assert [r["phase"] for r in rows] == ["failed"]
    assert rows[0]["error"]["error"] == "UnknownResource" and rows[0]["reason"] == result.cause
    leases = cloud.client("dynamodb").scan(TableName=cloud.stack.outputs["LeaseTableName"])["Items"]
    assert not [item for item in leases if item.get("owner", {}).get("S") == result.name]


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_a_console_input_that_is_no_json_object_is_rejected_in_every_runbook(cloud, runbook):
    result = cloud.start_and_wait(runbook, [{"target": {}, "reason": "a list, not an object"}])
    assert (result.status, result.error) == ("FAILED", "InvalidInput"), (result.error, result.cause)
    assert readable(result.cause), result.cause
    assert [r["phase"] for r in rows_of(cloud, result.name)] == ["rejected"]


@pytest.mark.parametrize(
    "target,needle",
    [
        ({"instanceId": "i-" + "a" * 20_000}, "bytes"),
        (
            {"instanceId": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": "deep"}}}}}}}}}}},
            "nested",
        ),
    ],
    ids=["oversized", "deeply-nested"],
)
def test_an_oversized_or_deeply_nested_input_is_rejected_with_its_row(cloud, target, needle):
    result = cloud.start_and_wait("replace-instance", {"target": target, "reason": "hostile input"})
    assert (result.status, result.error) == ("FAILED", "InvalidInput"), (result.error, result.cause)
    assert needle in (result.cause or "")
    (rejected,) = rows_of(cloud, result.name)
    assert rejected["phase"] == "rejected" and needle in rejected["reason"] and rejected["target"] == {}


# ------------------------------------------------------------------ who may write the audit trail


def _invoke_steps(cloud: DeployedCloud, payload: dict[str, Any]) -> dict[str, Any]:
    response = cloud.client("lambda").invoke(
        FunctionName=cloud.stack.outputs["RunbookStepsFunctionArn"], Payload=json.dumps(payload).encode()
    )
    return {"error": response.get("FunctionError"), **json.loads(response["Payload"].read())}


def _forged_rows(execution: dict[str, str], runbook: str = "remap-eip") -> dict[str, Any]:
    """An audit step's payload writing an action row "for" ``execution``, dated 2099."""
    request = {
        "requestId": execution["name"],
        "runbook": runbook,
        "target": {"instanceId": "i-0000000000000f00d"},
        "targetKey": "i-0000000000000f00d",
        "params": {},
        "dryRun": False,
        "reason": "forged",
        "actor": {"kind": "automatic", "rule": "ec2-status-check-failed"},
    }
    return {
        "step": "audit",
        "runbook": runbook,
        "execution": execution,
        "state": {"name": "Record: about to associate the EIP", "enteredTime": "2099-01-01T00:00:00Z"},
        "request": request,
        "phase": "action",
        "outcome": "pending",
    }


def test_the_steps_function_writes_only_for_running_executions_of_this_stacks_state_machines(cloud):
    # Given executions the payload may name: one that never was, one that ended, and a real
    # running one of another runbook's state machine passed off as remap-eip's
    finished = cloud.start_and_wait("remap-eip", {"target": {}, "reason": "ends at once"})
    machine = cloud.state_machine_arn("remap-eip").split(":")[-1]
    cases = {
        "never was": {
            "arn": f"arn:aws:states:us-east-1:123456789012:execution:{machine}:ghost",
            "name": "ghost",
        },
        "ended": {"arn": finished.arn, "name": finished.name},
    }
    waiting = cloud.start(
        "flip-dns", {"target": {"healthCheckId": "00000000-0000-0000-0000-00000000dead"}, "reason": "x"}
    )
    cases["another runbook's"] = {"arn": waiting, "name": waiting.rsplit(":", 1)[-1]}
    dynamodb, table = cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"]
    for why, execution in cases.items():
        # When the steps function is invoked to write a row for it
        answer = _invoke_steps(cloud, _forged_rows(execution))
        # Then it refuses with a named error, writes nothing for that request, and says so in a row
        assert answer["error"] and answer["errorType"] == "NotThisStacksExecution", (why, answer)
        before = [
            r for r in ops.audit_for_request(dynamodb, table, execution["name"]) if r["phase"] == "action"
        ]
        assert before == [], why
    refusals = [
        r["reason"]
        for r in ops.audit_for_target(dynamodb, table, "-")
        if r["phase"] == "rejected" and r["reason"].startswith("steps function invoked for")
    ]
    assert all(any(e["arn"] in reason for reason in refusals) for e in cases.values()), refusals
    cloud.wait(waiting)


def test_rows_dated_in_the_future_do_not_open_a_breaker(cloud, steps_env):
    # Given remap-eip's breaker set just above its real failures of this hour, and failed rows dated
    # 2099 enough to open it (written straight to the table, as a stack role could)
    from tests.e2e.test_remap_eip import make_pair, manual_input

    dynamodb, table = cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"]
    trail = AuditTrail(dynamodb, table)
    failed = {
        r.request_id
        for r in trail.for_runbook("remap-eip", utcnow() - timedelta(hours=1))
        if r.phase is Phase.FAILED and not r.dry_run and r.at <= utcnow()
    }
    steps_env(MAX_FAILED_RUNS_PER_HOUR=str(len(failed) + 1))
    for n in range(3):
        trail.write(
            AuditRow(
                request_id=f"from-2099-{uuid.uuid4().hex}-{n}",
                phase=Phase.FAILED,
                target_key="i-0000000000000f00d",
                runbook="remap-eip",
                at=datetime(2099, 1, 1, tzinfo=UTC),
            )
        )
    # When a remap-eip run comes
    pair = make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", manual_input(pair, params={"standbyInstanceId": pair.standby}))
    # Then it acts: the future is no evidence
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert pair.holder(cloud) == pair.standby
