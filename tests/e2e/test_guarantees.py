"""The safety guarantees the README states, proven end to end on the local cloud (issue #13, item 5).

Each test was checked to fail with the mechanism it guards weakened: its docstring says how. The order of events is read from the local cloud's record of every request it served
(``cloud.recorded_requests()``): requests are recorded as they arrive, so "before" there is "before"
at the service, not just an earlier timestamp inside a row.

- the hourly budget, through EventBridge -> triage -> state machine, one fault after another and in
  a burst;
- an invalid or unreadable kill switch means no mutation, in all five runbooks, whether it is so at
  the start or becomes so between the plan and the mutating call;
- every mutating call of every runbook's heal is preceded by its intent row's write and followed by
  its outcome row's write;
- an audit row written by a real run cannot be rewritten through the steps function's own path;
- two executions started at once for one target: one acts, the other is stopped by the lease.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from localcloud import compat, ops
from localcloud.faults import Fault
from localcloud.harness import DeployedCloud
from localcloud.recording import RecordedRequest
from localcloud.storm import IAM_PREFIX, _mutating_actions, _same_values
from localcloud.worlds import Aws, flip_dns
from selfheal.approvals import Approvals
from selfheal.audit import AuditRow, AuditTrail
from selfheal.chain import verify
from tests.e2e import test_promote_replica as promote_world
from tests.e2e import test_redrive_dlq as redrive_world
from tests.e2e import test_remap_eip as remap_world
from tests.e2e import test_replace_instance as replace_world

RUNBOOKS = ("remap-eip", "replace-instance", "promote-replica", "redrive-dlq", "flip-dns")
MUTATING = _mutating_actions()


# ------------------------------------------------------------------------------------ the worlds


@dataclass(frozen=True)
class Case:
    """One fenced target of a runbook, ready to heal, built with that runbook's own world builder."""

    runbook: str
    target_key: str
    run_input: dict[str, Any]
    healed: Callable[[], bool]
    untouched: Callable[[], bool]
    calls: tuple[str, ...]  # the mutating calls its heal makes, in order


def _remap(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Case:
    pair = remap_world.make_pair(cloud)
    return Case(
        "remap-eip",
        pair.primary,
        remap_world.manual_input(pair),
        healed=lambda: pair.holder(cloud) == pair.standby,
        untouched=lambda: pair.holder(cloud) == pair.primary,
        calls=("ec2:AssociateAddress",),
    )


def _replace(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Case:
    group = replace_world.make_group(cloud)
    sick = group.instances[0]

    def members() -> dict[str, str]:
        return {m["InstanceId"]: m["HealthStatus"] for m in group.members(cloud)}

    return Case(
        "replace-instance",
        sick,
        replace_world.manual_input(sick),
        healed=lambda: sick not in members(),
        untouched=lambda: members().get(sick) == "Healthy",
        calls=("autoscaling:SetInstanceHealth",),
    )


def _promote(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Case:
    # make_database points the stack's database scope at its zone; steps_env puts it back.
    db = promote_world.make_database(cloud)
    return Case(
        "promote-replica",
        db.primary,
        promote_world.manual_input(db),
        healed=lambda: (
            db.replica_state(cloud)[1] is None and db.record_value(cloud).rstrip(".") == db.replica_endpoint
        ),
        untouched=lambda: (
            db.replica_state(cloud) == ("available", db.primary)
            and db.record_value(cloud) == db.primary_endpoint
        ),
        calls=("route53:ChangeResourceRecordSets", "rds:PromoteReadReplica"),
    )


def _redrive(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Case:
    dlq = redrive_world.make_dlq(cloud, messages=10)
    return Case(
        "redrive-dlq",
        dlq.name,
        redrive_world.manual_input(dlq),
        healed=lambda: dlq.depth(cloud) == 0 and dlq.depth(cloud, dlq.source_url) == 10,
        untouched=lambda: dlq.depth(cloud) == 10 and dlq.depth(cloud, dlq.source_url) == 0,
        # the canary, stopped at its size, then the rest
        calls=("sqs:StartMessageMoveTask", "sqs:CancelMessageMoveTask", "sqs:StartMessageMoveTask"),
    )


def _flip(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Case:
    dns = flip_dns.unique_zone(Aws.of(cloud))
    primary = dns.weighted().primary
    steps_env(FLIP_DNS_HOSTED_ZONE_IDS=dns.id, FLIP_DNS_RECORD_NAMES="*")
    return Case(
        "flip-dns",
        primary,
        {"target": {"healthCheckId": primary}, "params": {"verifyIntervalSeconds": 0}, "reason": "e2e"},
        healed=lambda: dns.weights() == {"blue": 0, "green": 100},
        untouched=lambda: dns.weights() == {"blue": 100, "green": 0},
        calls=("route53:ChangeResourceRecordSets",),
    )


BUILDERS: dict[str, Callable[[DeployedCloud, Callable[..., None]], Case]] = {
    "remap-eip": _remap,
    "replace-instance": _replace,
    "promote-replica": _promote,
    "redrive-dlq": _redrive,
    "flip-dns": _flip,
}


def test_every_runbook_has_a_world_here() -> None:
    from selfheal.runbooks import RUNBOOKS as REGISTERED

    assert set(BUILDERS) == set(RUNBOOKS) == set(REGISTERED)


# ------------------------------------------------------------------------------- what was served


def action_of(request: RecordedRequest) -> str:
    return f"{IAM_PREFIX.get(request.service, request.service)}:{request.operation}"


def mutating_calls(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """The requests that are calls some runbook declares as mutating (its CallSpecs)."""
    return [r for r in requests if action_of(r) in MUTATING]


def audit_writes(request: RecordedRequest, table: str) -> list[dict[str, Any]]:
    """The audit rows a recorded DynamoDB request writes (plain JSON), whatever the write API."""
    if request.service != "dynamodb":
        return []
    p = request.parameters
    items: list[dict[str, Any]] = []
    if request.operation == "PutItem" and p.get("TableName") == table:
        items.append(p["Item"])
    elif request.operation == "TransactWriteItems":
        items += [
            t["Put"]["Item"] for t in p.get("TransactItems", []) if t.get("Put", {}).get("TableName") == table
        ]
    elif request.operation == "BatchWriteItem":
        items += [
            w["PutRequest"]["Item"] for w in p.get("RequestItems", {}).get(table, []) if "PutRequest" in w
        ]
    return [ops.plain_item(i) for i in items]


def unbracketed(requests: list[RecordedRequest], table: str, request_id: str) -> list[str]:
    """Each mutating call that is not bracketed, in the order requests reached the local cloud, by
    its run's audit writes: the last write of an action row for that call's action before it is an
    intent (``pending``, the same parameter values) and the first after it is an outcome."""
    rows = [(n, row) for n, r in enumerate(requests) for row in audit_writes(r, table)]
    ours = [(n, row) for n, row in rows if row.get("requestId") == request_id and row.get("action")]
    problems = []
    for n, call in enumerate(requests):
        action = action_of(call)
        if action not in MUTATING:
            continue
        before = [row for m, row in ours if m < n and row["action"] == action]
        after = [row for m, row in ours if m > n and row["action"] == action]
        what = f"{action} (request #{n})"
        if not before or before[-1].get("outcome") != "pending":
            problems.append(f"{what}: no intent row written before it")
        elif not _same_values(before[-1].get("parameters") or {}, call.parameters):
            problems.append(
                f"{what}: the intent before it is for other values: {before[-1].get('parameters')}"
            )
        if not after or after[0].get("outcome") == "pending":
            problems.append(f"{what}: no outcome row written after it")
    return problems


def rows_of(cloud: DeployedCloud, request_id: str) -> list[dict[str, Any]]:
    return ops.audit_for_request(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], request_id)


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def lease_item(cloud: DeployedCloud, target_key: str) -> dict[str, Any] | None:
    item = cloud.client("dynamodb").get_item(
        TableName=cloud.stack.outputs["LeaseTableName"],
        Key={"targetKey": {"S": target_key}},
        ConsistentRead=True,
    )
    found: dict[str, Any] | None = item.get("Item")
    return found


@pytest.fixture
def before_step(
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[[str | Callable[[dict[str, Any]], bool], Callable[[dict[str, Any]], None]], None]:
    """Run ``action(payload)`` once, right before the steps function first handles ``step`` (as the
    local cloud invokes it for a state machine; or the first payload ``step(payload)`` is true of): a
    moment inside a run, reached for certain, without polling for it. The action runs on the
    invocation's thread: the run waits for it."""

    def install(
        step: str | Callable[[dict[str, Any]], bool], action: Callable[[dict[str, Any]], None]
    ) -> None:
        wanted = step if callable(step) else lambda payload: payload.get("step") == step
        original = compat.invoke_in_process
        fired = threading.Event()
        lock = threading.Lock()

        def invoke_in_process(backend: Any, function_name: str, qualifier: str | None, body: Any) -> Any:
            raw = body.decode() if isinstance(body, bytes) else body
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {}
            if isinstance(payload, dict) and wanted(payload):
                with lock:
                    first = not fired.is_set()
                    fired.set()
                if first:
                    action(payload)
            return original(backend, function_name, qualifier, body)

        monkeypatch.setattr(compat, "invoke_in_process", invoke_in_process)

    return install


# ------------------------------------------------------------------------ 1. the hourly budget


def _machines(cloud: DeployedCloud) -> list[str]:
    return ops.stack_state_machines(cloud.client("cloudformation"), cloud.stack.name)


def test_budget_sequential_faults_through_eventbridge_act_budget_times_then_the_guard_stops_them(
    cloud, steps_env
):
    """Fails when the guards' count of this hour's actions (AuditTrail.for_runbook, the byRunbook
    index) reads nothing: the third run then gets as far as its intent step."""
    # Given room for exactly 2 more remap-eip runs this hour, and 4 instances that will fail
    room = 2
    steps_env(BUDGET_PER_HOUR=str(replace_world._budget_left_at(cloud, "remap-eip", room)))
    pairs = [remap_world.make_pair(cloud) for _ in range(room + 2)]
    cloud.reset_recording()
    # When each one's status-check alarm goes to ALARM, one after another (EventBridge -> triage)
    for pair in pairs:
        summary = cloud.send_event_and_wait(remap_world.alarm_event(pair.primary))
        assert [e.status for e in summary.executions] == ["SUCCEEDED"], summary.as_dict()["executions"]
    # Then the first 2 moved their EIPs, and the AWS record shows exactly 2 moves
    assert [pair.holder(cloud) == pair.standby for pair in pairs] == [True, True, False, False]
    moves = [r for r in mutating_calls(cloud.recorded_requests()) if r.operation == "AssociateAddress"]
    assert len(moves) == room
    # And the others were stopped by the guard that reads this hour's actions (the byRunbook
    # index): before their "started" row, so they spent nothing and took no budget
    for pair in pairs[room:]:
        rows = rows_for(cloud, pair.primary)
        assert [r["phase"] for r in rows] == ["received", "skipped"], [
            (r["phase"], r.get("reason")) for r in rows
        ]
        assert "budget exhausted" in rows[-1]["reason"] and not rows[-1].get("error")


def test_budget_a_burst_of_faults_started_at_once_stays_within_the_budget(cloud, steps_env):
    """Fails when the intent step's atomic budget (Budgets.take_hourly) takes nothing: all 5 act."""
    # Given room for exactly 2 more remap-eip runs this hour, and 5 instances that will fail
    room = 2
    steps_env(BUDGET_PER_HOUR=str(replace_world._budget_left_at(cloud, "remap-eip", room)))
    pairs = [remap_world.make_pair(cloud) for _ in range(room + 3)]
    sfn, machines = cloud.client("stepfunctions"), _machines(cloud)
    before = ops.execution_arns(sfn, machines)
    cloud.reset_recording()
    # When all 5 alarms arrive in one PutEvents: 5 executions run side by side, their guards all
    # reading the same (empty) hour, so only the atomic budget of the intent step can stop them
    events = [remap_world.alarm_event(p.primary) for p in pairs]
    answer = cloud.client("events").put_events(
        Entries=[
            {
                "Source": e["source"],
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "Resources": e["resources"],
            }
            for e in events
        ]
    )
    assert answer["FailedEntryCount"] == 0
    executions = ops.wait_for_new_executions(sfn, machines, before, timeout=120)
    assert len(executions) == len(pairs) and {e.status for e in executions} == {"SUCCEEDED"}
    # Then exactly 2 acted, as the record of AWS calls shows; the others changed nothing and say why
    moved = [p for p in pairs if p.holder(cloud) == p.standby]
    assert len(moved) == room, [[r["phase"] for r in rows_for(cloud, p.primary)] for p in pairs]
    moves = [r for r in mutating_calls(cloud.recorded_requests()) if r.operation == "AssociateAddress"]
    assert len(moves) == room
    for pair in pairs:
        if pair in moved:
            continue
        rows = rows_for(cloud, pair.primary)
        assert pair.holder(cloud) == pair.primary
        assert not [r for r in rows if r["phase"] == "action"]
        assert rows[-1]["phase"] == "skipped" and "budget exhausted" in rows[-1]["reason"], rows[-1]


# -------------------------------------------------------------------- 2. the kill switch fails safe


def _refuse_mode_reads(cloud: DeployedCloud) -> None:
    name = cloud.stack.outputs["ModeParameterName"]
    cloud.cloud.faults.add(
        Fault(
            "ssm",
            "GetParameter",
            code="AccessDeniedException",
            times=1000,
            where=lambda r: r.parameters.get("Name") == name,
        )
    )


SWITCHES: dict[str, tuple[Callable[[DeployedCloud, Callable[[str], None]], None], str]] = {
    "invalid": (lambda cloud, mode: mode("maybe"), "invalid value 'maybe'"),
    "unreadable": (lambda cloud, mode: _refuse_mode_reads(cloud), "unreadable"),
}


@pytest.fixture
def case(request, cloud, steps_env) -> Case:
    return BUILDERS[request.param](cloud, steps_env)


@pytest.mark.parametrize("switch", sorted(SWITCHES))
@pytest.mark.parametrize("case", RUNBOOKS, indirect=True)
def test_kill_switch_invalid_or_unreadable_at_the_start_means_a_dry_run(cloud, mode, faults, case, switch):
    """Fails when read_mode answers enforce for an unreadable or invalid value: every runbook acts;
    or when the started row does not say why the run only dry-ran."""
    # Given a target ready to heal, and a kill switch that says nonsense or cannot be read
    set_switch, needle = SWITCHES[switch]
    set_switch(cloud, mode)
    cloud.reset_recording()
    # When the runbook is started
    result = cloud.start_and_wait(case.runbook, case.run_input, timeout=90)
    # Then it runs as a dry run: what it would do is recorded, nothing is changed
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert not mutating_calls(cloud.recorded_requests())
    assert case.untouched()
    rows = rows_of(cloud, result.name)
    assert [r["phase"] for r in rows if r["phase"] != "would-do"] == ["started", "succeeded"]
    would = [r for r in rows if r["phase"] == "would-do"]
    assert would and all(r["dryRun"] for r in rows)
    assert not [r for r in rows if r["phase"] == "action"]
    # And its started row says why a run asked to act only dry-ran: the kill switch, and what is wrong
    (started,) = [r for r in rows if r["phase"] == "started"]
    assert "dry run: mode parameter" in started["reason"] and needle in started["reason"], started


@pytest.mark.parametrize("switch", sorted(SWITCHES))
@pytest.mark.parametrize("case", RUNBOOKS, indirect=True)
def test_kill_switch_going_bad_between_the_plan_and_the_call_stops_the_call(
    cloud, mode, faults, before_step, case, switch
):
    """Fails when the intent step does not stop on a mode other than enforce: every runbook acts."""
    # Given a run whose guards read "enforce" and planned its calls
    set_switch, needle = SWITCHES[switch]
    # When the kill switch is set to nonsense or becomes unreadable right before its first
    # mutating call (as the intent step is invoked)
    before_step("intent", lambda payload: set_switch(cloud, mode))
    cloud.reset_recording()
    result = cloud.start_and_wait(case.runbook, case.run_input, timeout=90)
    # Then no mutating call reaches AWS, and the run ends skipped with the kill switch named
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert not mutating_calls(cloud.recorded_requests())
    assert case.untouched()
    rows = rows_of(cloud, result.name)
    assert "started" in [r["phase"] for r in rows]  # it did get past its guards
    assert not [r for r in rows if r["phase"] in ("action", "would-do")]
    skipped = rows[-1]
    assert skipped["phase"] == "skipped" and skipped["error"]["error"] == "ModeChanged", skipped
    assert "kill switch" in skipped["reason"] and needle in skipped["reason"]


# ------------------------------------------------------------- 3. audited before and after, in order


@pytest.mark.parametrize("case", RUNBOOKS, indirect=True)
def test_every_mutating_call_is_written_down_before_it_is_made_and_its_outcome_after(cloud, case):
    """Fails when the intent row is written with the outcome row, after the call (both rows still
    exist, so a check of existence passes): "no intent row written before it"."""
    # Given a target ready to heal
    cloud.reset_recording()
    # When the runbook heals it
    result = cloud.start_and_wait(case.runbook, case.run_input, timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert case.healed()
    requests = cloud.recorded_requests()
    # Then the calls it made are the ones its heal makes, and each one, in the order the local cloud
    # received them, comes after the write of its intent row and before the write of its outcome
    assert tuple(action_of(r) for r in mutating_calls(requests)) == case.calls
    assert unbracketed(requests, cloud.stack.outputs["AuditTableName"], result.name) == []
    rows = rows_of(cloud, result.name)
    assert [r["outcome"] for r in rows if r["phase"] == "action"] == ["pending", "ok"] * len(case.calls)


# ------------------------------------------------------------------------ 4. write-once, end to end


def test_an_audit_row_of_a_real_run_cannot_be_rewritten_through_the_steps_function(cloud, steps_env):
    """Fails when AuditTrail.write neither skips a key it finds nor puts conditionally: the replayed
    invocation rewrites the started row."""
    # Given a promotion waiting for a human (its replica lag unknown): a running execution, whose
    # "started" row the state machine wrote through the steps function
    db = promote_world.make_database(cloud, lag=None)
    cloud.reset_recording()
    arn = cloud.start(promote_world.RUNBOOK, promote_world.manual_input(db))
    name = arn.rsplit(":", 1)[-1]
    # The question stored is the ask step's last write (after its row): the run is idle from here on.
    questions = Approvals(cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"])
    deadline = time.monotonic() + 60
    while questions.get(name) is None:
        assert time.monotonic() < deadline, f"{name} never asked for approval"
        time.sleep(0.1)
    (invocation,) = [
        r.parameters["Payload"]
        for r in cloud.recorded_requests()
        if r.operation == "Invoke"
        and isinstance(r.parameters.get("Payload"), dict)
        and r.parameters["Payload"].get("step") == "audit"
        and r.parameters["Payload"].get("phase") == "started"
        and r.parameters["Payload"]["execution"]["name"] == name
    ]
    original = rows_of(cloud, name)
    (started,) = [r for r in original if r["phase"] == "started"]
    lam, steps = cloud.client("lambda"), cloud.stack.outputs["RunbookStepsFunctionArn"]

    def invoke(payload: dict[str, Any]) -> dict[str, Any]:
        answer = lam.invoke(FunctionName=steps, Payload=json.dumps(payload).encode())
        assert not answer.get("FunctionError"), answer["Payload"].read()
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        return result

    # When the same invocation is replayed, as is and with other content for the same row
    invoke(invocation)
    invoke({**invocation, "reason": "forged: nothing happened here", "before": {"forged": True}})
    # Then the trail is as the run wrote it: no row changed, none added
    assert rows_of(cloud, name) == original
    # And so when the row is written again with the library the functions use; the chain is whole
    trail = AuditTrail(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])
    forged = AuditRow.model_validate({**started, "reason": "forged again"})
    assert trail.write(forged) is False
    assert rows_of(cloud, name) == original
    assert verify(rows_for(cloud, db.primary)) == []
    # (The run, stopped, is closed by the stack; its rows still verify.)
    cloud.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="e2e: done")
    cloud.wait(arn)
    rows = rows_for(cloud, db.primary)
    assert [r for r in rows if r["sk"] == started["sk"]] == [started]
    assert verify(rows) == []


# ----------------------------------------------------------------------- 5. one lease, two runs


def test_two_executions_started_at_once_for_one_target_one_acts_the_other_meets_the_lease(cloud, before_step):
    """Fails when LeaseStore.acquire takes nothing: the second run gets past the lease (and is
    skipped later, NotApplicable, instead of LeaseHeld)."""
    # Given a target, and two executions of remap-eip for it started at the same moment
    pair = remap_world.make_pair(cloud)
    names = [f"race-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    arns = {
        n: cloud.state_machine_arn("remap-eip").replace(":stateMachine:", ":execution:") + f":{n}"
        for n in names
    }
    sfn = cloud.client("stepfunctions")

    def other_ended(payload: dict[str, Any]) -> None:
        # The run that took the lease waits (at its guards) until the other run has ended: the other
        # one surely asked for the lease while it was held, whatever the two threads' timing.
        other = next(a for n, a in arns.items() if n != payload["execution"]["name"])
        ops.wait_for_execution(sfn, other, timeout=60, with_history=False)

    before_step("guards", other_ended)
    cloud.reset_recording()
    barrier = threading.Barrier(len(names))

    def start(name: str) -> None:
        barrier.wait()
        cloud.start("remap-eip", remap_world.manual_input(pair), name=name)

    threads = [threading.Thread(target=start, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = {n: cloud.wait(a) for n, a in arns.items()}
    # Then both end well, exactly one acted (one move in the AWS record), the other was skipped
    # because the lease was held, and the lease is released
    assert {r.status for r in results.values()} == {"SUCCEEDED"}, [
        (r.error, r.cause) for r in results.values()
    ]
    moves = [r for r in mutating_calls(cloud.recorded_requests()) if r.operation == "AssociateAddress"]
    assert len(moves) == 1 and pair.holder(cloud) == pair.standby
    ends = {n: rows_of(cloud, n)[-1] for n in names}
    assert sorted(e["phase"] for e in ends.values()) == ["skipped", "succeeded"], ends
    (loser,) = [e for e in ends.values() if e["phase"] == "skipped"]
    assert loser["error"]["error"] == "LeaseHeld", loser
    assert [r["phase"] for r in rows_of(cloud, loser["requestId"])] == ["skipped"]
    assert lease_item(cloud, pair.primary) is None


def test_kill_switch_after_a_change_is_no_skip_the_run_fails_stopped_part_way(cloud, mode, before_step):
    """Fails when a run the kill switch stops after it changed its target ends as a skip (succeeded,
    nothing escalated), as if nothing had been done. promote-replica repoints the name, then the
    switch goes off right before the promotion's intent step."""
    db = promote_world.make_database(cloud)
    before_step(lambda p: p.get("step") == "intent" and p.get("call") == "promote", lambda _: mode("off"))
    result = cloud.start_and_wait(promote_world.RUNBOOK, promote_world.manual_input(db), timeout=90)
    # Then the promotion was not made, and the run says it stopped part-way, a failure
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.replica_endpoint  # the repoint it had made (not undone: off)
    assert result.status == "FAILED" and result.error == "StoppedPartWay", (result.error, result.cause)
    assert "route53:ChangeResourceRecordSets (ok)" in (result.cause or "")
    last = rows_of(cloud, result.name)[-1]
    assert last["phase"] == "failed" and last["error"]["error"] == "StoppedPartWay"
