"""Undo runs, without a cloud: where each workflow's undo begins, which call a stopped run was in,
and the undo run's name and state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from selfheal import undo
from selfheal.audit import AuditRow
from selfheal.models import Actor, Phase, Request
from tools.asl import idioms
from tools.asl.runbooks import promote_replica, replace_instance

ROOT = Path(__file__).parents[2]
DEFINITIONS = {
    p.name.removesuffix(".asl.json"): json.loads(p.read_text())
    for p in (ROOT / "statemachines").glob("*.asl.json")
}


def test_only_the_workflows_with_a_half_way_stop_have_undo_runs() -> None:
    with_undo = sorted(name for name, d in DEFINITIONS.items() if undo.undo_entries(d))
    assert with_undo == ["promote-replica", "replace-instance"]


@pytest.mark.parametrize("name", ["promote-replica", "replace-instance"])
def test_every_undo_entry_is_an_intent_state_of_the_workflow_and_leads_to_a_state_of_it(name: str) -> None:
    """The steps function routes by the intent row's step: each key must be the state that writes
    it, each entry a state that exists (a typo would send an undo run nowhere)."""
    definition = DEFINITIONS[name]
    module = promote_replica if name == "promote-replica" else replace_instance
    intents = {c.intent for c in vars(module).values() if isinstance(c, idioms.Call)}
    entries = undo.undo_entries(definition)
    assert set(entries) <= intents, set(entries) - intents
    assert all(entry in definition["States"] for entry in entries.values()), entries


def _row(step: str, outcome: str, seconds: int, phase: Phase = Phase.ACTION) -> AuditRow:
    at = datetime(2026, 12, 2, tzinfo=UTC) + timedelta(seconds=seconds)
    return AuditRow(
        request_id="r",
        phase=phase,
        target_key="t",
        runbook="promote-replica",
        step=step,
        outcome=outcome,
        at=at,
    )


def test_the_call_a_run_was_stopped_in_is_the_last_one_it_began() -> None:
    rows = [
        _row("Record: about to repoint the DNS name", "pending", 1),
        _row("Record: the DNS name was repointed", "ok", 2),
        _row("Record: about to promote the replica", "pending", 3),
        _row("Step Functions: ABORTED (Record: about to promote the replica)", "unknown", 4),
        _row("Record: failed", "", 5, Phase.FAILED),
    ]
    found = undo.last_intent(rows)
    assert found is not None and found.step == "Record: about to promote the replica"
    assert undo.last_intent(rows[-1:]) is None


def test_an_undo_runs_name_is_one_per_stopped_run_and_a_valid_execution_name() -> None:
    assert undo.undo_name("e5825b2a") == "undo-e5825b2a"
    long = "x" * 80
    assert len(undo.undo_name(long)) <= 80 and undo.undo_name(long) == undo.undo_name(long)
    assert undo.undo_name(long) != undo.undo_name("y" * 80)


def test_the_undo_runs_state_is_the_stopped_runs_with_its_own_request_and_the_stop_as_its_error() -> None:
    request = Request(
        request_id="run-1",
        runbook="promote-replica",
        target={"dbInstanceIdentifier": "orders"},
        target_key="orders",
        params={},
        dry_run=False,
        reason="alarm",
        actor=Actor(kind="automatic"),
    )
    state = {
        "request": request.model_dump(mode="json", by_alias=True),
        "guard": {"plan": {"a": 1}, "decision": {}},
    }
    arn = "arn:aws:states:us-east-1:1:execution:s-promote-replica:run-1"
    stopped = undo.StoppedRun(arn, "run-1", "ABORTED", "Record: about to promote the replica", state, request)
    taken = undo.undo_state(stopped, f"{arn[:-5]}undo-run-1", "undo-run-1", "")
    assert taken["request"]["requestId"] == "undo-run-1" and taken["request"]["undoOf"] == "run-1"
    assert taken["guard"]["plan"] == {"a": 1} and taken["guard"]["decision"]["escalate"] is True
    assert taken["error"]["Error"] == "ExecutionAborted" and "run-1" in taken["error"]["Cause"]
    assert taken["undo"] == {"of": arn, "stoppedIn": "Record: about to promote the replica"}
    # An undo of an undo spends the first run's budget share still.
    again = undo.StoppedRun(
        arn, "undo-run-1", "ABORTED", "x", taken, Request.model_validate(taken["request"])
    )
    assert undo.undo_state(again, arn, "undo-undo-run-1", "")["request"]["undoOf"] == "run-1"
