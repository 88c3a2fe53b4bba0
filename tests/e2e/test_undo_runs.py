"""Undo runs (selfheal.undo): a run stopped from outside half-way is settled by a run of the same
state machine, started by RunEnded, that takes up the stopped run's state from Step Functions'
history. Every case of the fault table that stops a run checks the undo's result on the target;
these check what only an undo run has: its input is hostile until checked, and the kill switch
stops it like any other run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud import ops
from localcloud.faults import hang
from localcloud.harness import DeployedCloud
from tests.e2e import test_promote_replica as promote_world
from tests.e2e import test_replace_instance as replace_world


def _rows(cloud: DeployedCloud, request_id: str) -> list[dict[str, Any]]:
    return ops.audit_for_request(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], request_id)


def _execution(cloud: DeployedCloud, runbook: str, name: str) -> str:
    return f"{cloud.state_machine_arn(runbook).replace(':stateMachine:', ':execution:')}:{name}"


def _ended(cloud: DeployedCloud, request_id: str) -> None:
    """RunEnded has recorded the end of a stopped run (and started its undo run, if any)."""
    deadline = time.monotonic() + 30
    while not any(r["phase"] == "failed" for r in _rows(cloud, request_id)):
        assert time.monotonic() < deadline, f"RunEnded never recorded the end of {request_id}"
        time.sleep(0.1)


def _mutations_since(cloud: DeployedCloud, seen: int) -> list[str]:
    reads = ("Describe", "List", "Get", "Receive", "Query", "Scan")
    return [
        f"{r.service}:{r.operation}"
        for r in cloud.recorded_requests()[seen:]
        if r.service in ("ec2", "rds", "route53", "elasticloadbalancing")
        and not r.operation.startswith(reads)
    ]


def test_an_undo_run_the_kill_switch_stops_changes_nothing_and_escalates(
    cloud, faults, mode, steps_env, outcome_inbox
):
    """Fails if an undo run acts with the kill switch off: stop = undo; freeze = kill switch first."""
    # Given a promotion in flight (the call never answers), the name already on the replica
    db = promote_world.make_database(cloud)
    steps_env(AWS_CALL_TIMEOUT_SECONDS="60")
    promotion = faults.add(hang("rds", "PromoteReadReplica", 60.0))
    arn = cloud.start("promote-replica", promote_world.manual_input(db))
    deadline = time.monotonic() + 60
    while not promotion.hits:
        assert time.monotonic() < deadline, "the promotion was never called"
        time.sleep(0.1)
    # When an operator freezes everything, then stops the run
    mode("off")
    seen = len(cloud.recorded_requests())
    ops.stop_at(cloud.client("stepfunctions"), arn, "Promote the replica")
    faults.clear()
    request_id = arn.rsplit(":", 1)[-1]
    _ended(cloud, request_id)
    undo = cloud.wait(_execution(cloud, "promote-replica", f"undo-{request_id}"), timeout=60)
    # Then the undo run stopped before its first change, said why, and told a human
    assert undo.status == "SUCCEEDED", (undo.error, undo.cause)  # a skip
    rows = _rows(cloud, undo.name)
    assert [r["phase"] for r in rows][-1] == "skipped", rows
    assert "kill switch is off" in rows[-1]["reason"], rows[-1]
    assert not [r for r in rows if r["phase"] in ("action", "compensated")], rows
    assert not _mutations_since(cloud, seen)
    assert db.record_value(cloud).rstrip(".") == db.replica_endpoint  # frozen as the stop left it
    escalated = [m for m in outcome_inbox() if (m.get("detail") or {}).get("requestId") == undo.name]
    assert [m["detail"]["escalate"] for m in escalated] == [True], escalated


def _held_in_the_guards(cloud: DeployedCloud, faults: Any) -> list[str]:
    """Two replace-instance runs (on two instances) held in their guards: no call begun."""
    held = faults.add(hang("ec2", "DescribeInstances", 60.0, times=2))
    arns = [
        cloud.start("replace-instance", replace_world.manual_input(replace_world.make_standalone(cloud)))
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    while len(held.hits) < 2:
        assert time.monotonic() < deadline, "the guards never read the instances"
        time.sleep(0.1)
    return arns


HOSTILE = {
    "not an ARN": (lambda arns: 42, "InvalidInput", "undo"),
    "another stack's run": (
        lambda arns: arns["stopped"].replace(":selfheal-local-", ":other-stack-"),
        "InvalidInput",
        "not an execution of this stack's replace-instance state machine",
    ),
    "another runbook's run": (
        lambda arns: arns["stopped"].replace("-replace-instance:", "-remap-eip:"),
        "InvalidInput",
        "not an execution of this stack's replace-instance state machine",
    ),
    "no such run": (lambda arns: arns["stopped"][:-4] + "0000", "InvalidInput", "does not exist"),
    "a run still running": (lambda arns: arns["running"], "NothingToUndo", "is RUNNING"),
    "a run that began no call": (lambda arns: arns["stopped"], "NothingToUndo", "began no call"),
}


@pytest.fixture(scope="module")
def hostile_targets(cloud: DeployedCloud) -> Iterator[dict[str, str]]:
    """A run stopped before any call, and one still running (stopped once the module is done)."""
    faults, sfn = cloud.cloud.faults, cloud.client("stepfunctions")
    stopped, running = _held_in_the_guards(cloud, faults)
    try:
        ops.stop_at(sfn, stopped, "Check the guards")
        _ended(cloud, stopped.rsplit(":", 1)[-1])
        yield {"stopped": stopped, "running": running}
    finally:
        sfn.stop_execution(executionArn=running)
        faults.clear()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_an_undo_input_that_names_no_stopped_run_is_rejected_with_a_row_and_changes_nothing(
    cloud, hostile_targets, case
):
    """Fails if an undo run takes up a state it should not (another stack's, another runbook's, a run
    still running, a run that changed nothing) or crashes on a malformed input."""
    named, error, needle = HOSTILE[case]
    extra = {"target": {"instanceId": "i-0123456789abcdef0"}} if case == "not an ARN" else {}
    seen = len(cloud.recorded_requests())
    result = cloud.wait(cloud.start("replace-instance", {"undo": named(hostile_targets), **extra}))
    assert result.status == "FAILED" and result.error == error, (result.error, result.cause)
    rows = _rows(cloud, result.name)
    assert [r["phase"] for r in rows] == ["rejected"], rows
    assert needle in rows[0]["reason"], rows[0]
    assert not _mutations_since(cloud, seen)
