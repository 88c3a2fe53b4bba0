"""Time to heal, per run: from the fault (the alarm's state change: triage's received row is written
at it) to verified, recorded in the succeeded row and the run's output, emitted as the TimeToHeal
metric; a run over its policy's recovery time objective is flagged in its row and escalated. One
runbook (remap-eip): the finish step is the frame's, the same in all five."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from selfheal.models import iso
from selfheal.policy import DEFAULT_POLICY_PATH, parse_policy
from selfheal.steps import Steps
from tests.e2e import test_remap_eip as remap_world


@pytest.fixture
def objective(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shipped policy with a recovery time objective for remap-eip, as the steps function reads it."""
    import yaml

    def set_objective(seconds: int) -> None:
        document = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
        policy = parse_policy({**document, "recoveryObjectives": {"remap-eip": seconds}})
        monkeypatch.setattr(Steps, "policy", property(lambda self: policy))

    return set_objective


def _alarm_changed(instance: str, ago: timedelta) -> dict[str, Any]:
    event = remap_world.alarm_event(instance)
    changed = datetime.now(UTC) - ago
    event["detail"]["state"]["timestamp"] = changed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    event["time"] = changed.strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def _heal(cloud: Any, ago: timedelta) -> tuple[Any, list[dict[str, Any]]]:
    pair = remap_world.make_pair(cloud)
    summary = cloud.send_event_and_wait(_alarm_changed(pair.primary, ago))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.standby
    return execution, remap_world.rows_for(cloud, pair.primary)


def test_a_heal_records_its_time_from_the_fault_to_verified(cloud, objective):
    objective(300)
    execution, rows = _heal(cloud, ago=timedelta(seconds=20))
    received, verified, succeeded = (
        next(r for r in rows if r["phase"] == phase) for phase in ("received", "verified", "succeeded")
    )
    heal = succeeded["timeToHeal"]
    assert heal["from"] == "fault" and heal["since"] == received["at"]
    elapsed = datetime.fromisoformat(verified["at"]) - datetime.fromisoformat(received["at"])
    assert heal["seconds"] == pytest.approx(elapsed.total_seconds(), abs=0.1)
    assert 20 <= heal["seconds"] < 300, heal
    assert (heal["objectiveSeconds"], heal["overObjective"]) == (300, False)
    assert execution.output["timeToHealSeconds"] == heal["seconds"]
    assert execution.output["escalated"] is False


def test_a_heal_over_its_recovery_objective_is_flagged_and_escalated(cloud, objective, outcome_inbox):
    objective(300)
    execution, rows = _heal(cloud, ago=timedelta(minutes=10))
    succeeded = rows[-1]
    assert succeeded["phase"] == "succeeded" and succeeded["timeToHeal"]["overObjective"] is True
    assert succeeded["timeToHeal"]["seconds"] >= 600
    assert "over its recovery time objective of 300 s" in succeeded["reason"], succeeded
    assert execution.output["outcome"] == "healed" and execution.output["escalated"] is True
    name = execution.name
    published = [m for m in outcome_inbox() if m.get("detail", {}).get("requestId") == name]
    assert [m["detail"]["escalate"] for m in published] == [True]


def test_a_heal_by_hand_counts_from_the_request_and_without_an_objective_is_never_over(cloud):
    pair = remap_world.make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert result.output["outcome"] == "healed", result.output
    succeeded = remap_world.rows_for(cloud, pair.primary)[-1]
    heal = succeeded["timeToHeal"]
    assert heal["from"] == "request" and "objectiveSeconds" not in heal and "overObjective" not in heal
    started = next(r for r in remap_world.rows_for(cloud, pair.primary) if r["phase"] == "started")
    assert heal["since"] == started["at"] and heal["since"] <= iso(datetime.now(UTC))
