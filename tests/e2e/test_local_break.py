"""`selfheal local break`'s output (JSON and text: the outcome, the reason, and the world's state) and
a fault that causes no run, on the deployed local stack. The faults here belong to no world: what
they inject is up to the test (a row as triage writes it for a signal it turns down, or nothing)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from localcloud import worlds
from localcloud.harness import LOCAL_STACK_NAME, DeployedCloud
from localcloud.worlds import breaking
from selfheal.audit import AuditRow, AuditTrail
from selfheal.models import Actor, Phase
from selfheal_cli.main import main


def _fault(inject: Callable[[worlds.Aws], None], target: str) -> worlds.Fault:
    """A fault of no world: its world is whole."""
    return worlds.Fault(
        name="test-fault",
        runbook="remap-eip",
        title="a test fault",
        injected="nothing AWS would see",
        inject=inject,
        target_key=lambda aws: target,
        healed=lambda aws: (True, "nothing was broken"),
    )


def _triage_skips(cloud: DeployedCloud, target: str) -> Callable[[worlds.Aws], None]:
    """What triage writes for a signal it turns down: one final row, no execution."""

    def skip(aws: worlds.Aws) -> None:
        AuditTrail(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"]).write(
            AuditRow(
                request_id=f"req-{target}",
                phase=Phase.SKIPPED,
                target_key=target,
                runbook="remap-eip",
                target={"instanceId": target},
                step="triage",
                reason="the kill switch says off",
                actor=Actor(kind="automatic", rule="ec2-status-check-failed"),
            )
        )

    return skip


def test_a_fault_that_causes_no_run_is_named_with_where_to_look(cloud):
    with pytest.raises(
        breaking.NoRunEnded, match=r"no run about i-quiet ended within 1 s .*--target i-quiet"
    ):
        breaking.break_and_watch(
            worlds.Aws.of(cloud), _fault(lambda aws: None, "i-quiet"), cloud.stack.outputs, timeout=1
        )


def test_local_break_json_and_text_say_the_outcome_the_reason_and_the_world(cloud, monkeypatch, capsys):
    remote = ["--endpoint", cloud.endpoint, "--stack-name", LOCAL_STACK_NAME]
    monkeypatch.setattr(worlds, "fault", lambda name: _fault(_triage_skips(cloud, "i-json"), "i-json"))
    capsys.readouterr()
    assert main(["local", "break", "test-fault", "--output", "json", *remote]) == 3
    record = json.loads(capsys.readouterr().out)
    assert record == {
        "outcome": "skipped",
        "reason": "the kill switch says off",
        "runbook": "remap-eip",
        "target": "i-json",
        "executionArn": "req-i-json",
        "fault": "test-fault",
        "worldWhole": True,
        "evidence": "nothing was broken",
    }
    monkeypatch.setattr(worlds, "fault", lambda name: _fault(_triage_skips(cloud, "i-text"), "i-text"))
    assert main(["local", "break", "test-fault", *remote]) == 3
    run, world = capsys.readouterr().out.splitlines()
    assert run.startswith("skipped  remap-eip i-text: the kill switch says off"), run
    assert world.split() == ["world", "whole", "again:", "nothing", "was", "broken"]
    # A fault that causes no run: one line saying where to look, exit 1, no traceback
    monkeypatch.setattr(worlds, "fault", lambda name: _fault(lambda aws: None, "i-none"))
    assert main(["local", "break", "test-fault", "--timeout", "1", *remote]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "i-none" in err, err
