"""`selfheal drill` end to end on the local cloud: the command an operator runs, on drill resources.

Each test builds its own drill resources (localcloud.worlds.drills: the worlds' parts, marked
``selfheal:drill=true``) and runs ``selfheal drill`` through the CLI's own ``main``, as an operator
would against a deployed stack (``--endpoint`` is the only difference).
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from localcloud import ops
from localcloud.faults import Fault
from localcloud.harness import DeployedCloud
from localcloud.worlds import Aws, alarm, set_alarm
from localcloud.worlds import drills as drill_worlds
from localcloud.worlds.flip_dns import Zone, forced
from localcloud.worlds.redrive_dlq import messages_in
from selfheal_cli.main import main

RUNBOOKS = sorted(drill_worlds.BUILDERS)


@pytest.fixture
def drill(cloud: DeployedCloud, steps_env: Callable[..., None]) -> Callable[[str], drill_worlds.DrillWorld]:
    """Build a runbook's drill resources and put them in the stack's scope (as an operator's
    parameters would); the steps function's variables go back after the test."""

    def build(runbook: str) -> drill_worlds.DrillWorld:
        world = drill_worlds.BUILDERS[runbook](Aws.of(cloud))
        steps_env(BUDGET_PER_HOUR="1000", **world.scope)
        return world

    return build


def run_drill(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, dict[str, Any]]:
    """``selfheal drill ... --output json`` against the local cloud: the exit code and the report."""
    capsys.readouterr()
    code = main(
        ["drill", *argv, "--endpoint", cloud.endpoint, "--stack-name", cloud.stack.name, "--output", "json"]
    )
    out = capsys.readouterr().out
    # The local cloud runs the stack's functions in this process: their log lines share stdout.
    start = out.rfind("\n{\n") + 1 if not out.startswith("{\n") else 0
    return code, json.loads(out[start:]) if out.strip() else {}


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def alarm_state(cloud: DeployedCloud, name: str) -> str:
    return str(alarm(Aws.of(cloud), name)["StateValue"])


def eip_holder(cloud: DeployedCloud, allocation: str) -> str | None:
    return (
        cloud.client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0].get("InstanceId")
    )


def plain_alarm(cloud: DeployedCloud, name: str, state: str = "OK") -> str:
    """An alarm an operator declares to guard a drill (blocking or outcome), in ``state``."""
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="Shop",
        MetricName="Errors",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    set_alarm(Aws.of(cloud), name, state, "set by the test")
    return name


# ------------------------------------------------------------------------------------- dry runs


@pytest.mark.parametrize("runbook", RUNBOOKS)
def test_drill_dry_run_passes_for_every_runbook_and_changes_nothing(cloud, drill, capsys, runbook):
    """Fails when a dry-run drill does not plan its runbook's heal, changes something, or leaves a
    fault (or redrive-dlq's test message) behind."""
    # Given a runbook's drill resources, whole
    world = drill(runbook)
    # When the drill runs without --enforce
    code, report = run_drill(cloud, capsys, runbook, "--target", world.trigger)
    # Then it passes on the would-do rows, and nothing was changed
    assert code == 0, report
    assert report["verdict"] == "pass" and report["mode"] == "dry-run", report
    assert "would do" in report["reason"] and "chain holds" in report["reason"]
    assert report["timeToHealSeconds"] is not None
    rows = rows_for(cloud, world.target)
    assert rows and all(r["dryRun"] for r in rows if r["phase"] in ("started", "would-do", "succeeded"))
    assert not [r for r in rows if r["phase"] == "action"]
    if runbook == "flip-dns":
        assert forced(Aws.of(cloud), world.trigger) == (False, False)
    else:
        assert alarm_state(cloud, world.trigger) != "ALARM"
    if runbook == "redrive-dlq":
        dlq = cloud.client("sqs").get_queue_url(QueueName=world.parts["dlq"])["QueueUrl"]
        assert messages_in(cloud, dlq) == 0, "the drill's test message was left in the DLQ"
    if runbook == "remap-eip":
        assert eip_holder(cloud, world.parts["allocationId"]) == world.parts["primary"]


# ------------------------------------------------------------------------------------- enforced


def test_drill_enforce_remap_eip_heals_and_restores_the_alarm(cloud, drill, capsys):
    """Fails when an enforced drill does not make the fault real, or reports pass without the heal,
    or leaves its alarm in ALARM."""
    # Given remap-eip's drill resources
    world = drill("remap-eip")
    # When the drill runs with --enforce
    code, report = run_drill(cloud, capsys, "remap-eip", "--target", world.trigger, "--enforce")
    # Then the Elastic IP moved to the standby through the policy's own path, and the alarm is OK again
    assert code == 0 and report["verdict"] == "pass", report
    assert eip_holder(cloud, world.parts["allocationId"]) == world.parts["standby"]
    assert alarm_state(cloud, world.trigger) == "OK"
    assert "alarm" in report["restored"]
    phases = [r["phase"] for r in rows_for(cloud, world.target)]
    assert "action" in phases and "succeeded" in phases
    assert report["timeToHealSeconds"] > 0


def test_drill_enforce_flip_dns_inverts_the_health_check_and_restores_it(cloud, drill, capsys):
    """Fails when the flip-dns drill's fault (an inverted health check) does not move the traffic, or
    is left inverted."""
    # Given flip-dns's drill resources: traffic on blue
    world = drill("flip-dns")
    zone = Zone(Aws.of(cloud), world.parts["zone"], world.parts["record"].split(".", 1)[1])
    # When the drill runs with --enforce
    code, report = run_drill(cloud, capsys, "flip-dns", "--target", world.trigger, "--enforce")
    # Then the traffic moved to green, and the health check is no longer inverted
    assert code == 0 and report["verdict"] == "pass", report
    assert zone.weights() == {"blue": 0, "green": 100}
    assert forced(Aws.of(cloud), world.trigger) == (False, False)


@pytest.mark.parametrize("runbook", ["replace-instance", "redrive-dlq", "promote-replica"])
def test_drill_enforce_heals_the_other_runbooks_and_restores_the_alarm(cloud, drill, capsys, runbook):
    """Fails when an enforced drill of replace-instance, redrive-dlq or promote-replica does not
    pass (healed, the resource whole, the chain holds), or leaves its alarm in ALARM."""
    world = drill(runbook)
    code, report = run_drill(cloud, capsys, runbook, "--target", world.trigger, "--enforce")
    assert code == 0 and report["verdict"] == "pass", report
    assert alarm_state(cloud, world.trigger) == "OK"
    assert "action" in [r["phase"] for r in rows_for(cloud, world.target)]


# ------------------------------------------------------------------------- not started, stopped


def test_drill_does_not_start_inside_a_blocked_window(cloud, drill, capsys):
    """Fails when a drill starts inside a declared blocked window."""
    world = drill("remap-eip")
    now = datetime.datetime.now(datetime.UTC)
    window = f"{now:%a} {now:%H}:00-{(now + datetime.timedelta(hours=1)):%H}:59"
    code, report = run_drill(
        cloud, capsys, "remap-eip", "--target", world.trigger, "--enforce", "--blocked-window", window
    )
    assert code == 3 and report["verdict"] == "blocked", report
    assert "blocked window" in report["reason"]
    assert not rows_for(cloud, world.target)
    assert alarm_state(cloud, world.trigger) != "ALARM"


def test_drill_does_not_start_while_a_blocking_alarm_is_in_alarm(cloud, drill, capsys):
    """Fails when a drill starts while a declared blocking alarm is in ALARM."""
    world = drill("remap-eip")
    blocking = plain_alarm(cloud, f"{world.trigger}-checkout-errors", "ALARM")
    drill_file = json.dumps({"targets": {"remap-eip": world.trigger}, "blockingAlarms": [blocking]})
    code, report = run_drill(cloud, capsys, "remap-eip", "--file", drill_file, "--enforce")
    assert code == 3 and report["verdict"] == "blocked", report
    assert blocking in report["reason"]
    assert not rows_for(cloud, world.target)
    assert eip_holder(cloud, world.parts["allocationId"]) == world.parts["primary"]


def test_drill_stops_and_restores_its_fault_when_an_outcome_alarm_fires(cloud, drill, capsys, faults):
    """Fails when a drill goes on (or leaves its fault in place) after a declared outcome alarm went
    to ALARM."""
    # Given remap-eip's drill resources, a run held back a few seconds at its call (throttled after
    # a hold), and an outcome alarm that fires as soon as the drill's fault is real
    world = drill("remap-eip")
    outcome = plain_alarm(cloud, f"{world.trigger}-orders-per-minute")
    faults.add(Fault("ec2", "AssociateAddress", hold=4.0))
    stop = threading.Event()

    def fire_when_the_fault_is_real() -> None:
        while not stop.is_set():
            if alarm_state(cloud, world.trigger) == "ALARM":
                set_alarm(Aws.of(cloud), outcome, "ALARM", "orders dropped (the test)")
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=fire_when_the_fault_is_real, daemon=True)
    watcher.start()
    try:
        # When the drill runs with --enforce and that outcome alarm
        code, report = run_drill(
            cloud, capsys, "remap-eip", "--target", world.trigger, "--enforce", "--outcome-alarm", outcome
        )
    finally:
        stop.set()
        watcher.join(5)
    # Then it stops, says why, and its fault is restored
    assert code == 1 and report["verdict"] == "stopped", report
    assert outcome in report["reason"]
    assert alarm_state(cloud, world.trigger) == "OK"


def test_drill_refuses_a_resource_without_the_drill_tag(cloud, capsys):
    """Fails when a drill touches a resource its operator did not mark for drills."""
    # Given a fenced primary, standby and alarm, none marked selfheal:drill=true
    world = drill_worlds.remap_eip(Aws.of(cloud), drill_tag=False)
    # When the drill is asked to use it, even with --enforce
    code, report = run_drill(cloud, capsys, "remap-eip", "--target", world.trigger, "--enforce")
    # Then it refuses (a usage error), and nothing happened
    assert code == 2 and report["verdict"] == "refused", report
    assert "selfheal:drill=true" in report["reason"]
    assert alarm_state(cloud, world.trigger) != "ALARM"
    assert not rows_for(cloud, world.target)


@pytest.fixture(autouse=True)
def _no_fault_left(cloud: DeployedCloud) -> Iterator[None]:
    yield
    cloud.cloud.faults.clear()


def test_drill_does_not_start_over_a_live_fault_and_leaves_it_alone(cloud, drill, capsys):
    """Fails when a drill starts (or "restores") a health check someone else inverted: a real fault,
    or another operator's, is not the drill's to make or undo."""
    world = drill("flip-dns")
    cloud.client("route53").update_health_check(HealthCheckId=world.trigger, Inverted=True)
    code, report = run_drill(cloud, capsys, "flip-dns", "--target", world.trigger, "--enforce")
    assert code == 3 and report["verdict"] == "blocked", report
    assert "already inverted" in report["reason"]
    assert forced(Aws.of(cloud), world.trigger) == (False, True)
