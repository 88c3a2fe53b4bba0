"""Guard extensions used by flip-dns: scope, hold-down; and no exemption from the cooldown."""

from selfheal.guards import hold_down_wait_seconds
from selfheal.models import Phase
from tests.unit.test_guards import NOW, decide, row


def test_guards_out_of_scope_is_refused_and_escalated():
    decision = decide(out_of_scope=["hosted zone Z9 (allowed: Z1)"])
    assert not decision.proceed and decision.guard == "scope" and decision.escalate
    assert "Z9" in (decision.skip_reason or "")


def test_guards_no_runbook_is_exempt_from_the_cooldown_or_the_loop_guard():
    assert decide(target_history=[row(Phase.STARTED, 2)]).guard == "cooldown"
    assert decide(target_history=[row(Phase.SUCCEEDED, m) for m in (15, 20, 30)]).guard == "loop"


def test_hold_down_counts_from_the_last_successful_action():
    history = [
        row(Phase.ACTION, 10, outcome="pending"),
        row(Phase.ACTION, 10, outcome="ok"),
        row(Phase.ACTION, 3, outcome="ok", request_id="dry", dry_run=True),
        row(Phase.ACTION, 1, outcome="error"),
    ]
    wait = hold_down_wait_seconds(
        target_history=history, runbook="remap-eip", request_id="me", hold_down_seconds=900, now=NOW
    )
    assert wait == 300


def test_hold_down_over_or_without_history_is_zero():
    old = [row(Phase.ACTION, 30, outcome="ok")]
    kwargs = {"runbook": "remap-eip", "request_id": "me", "hold_down_seconds": 900, "now": NOW}
    assert hold_down_wait_seconds(target_history=old, **kwargs) == 0
    assert hold_down_wait_seconds(target_history=[], **kwargs) == 0
    mine = [row(Phase.ACTION, 1, outcome="ok", request_id="me")]
    assert hold_down_wait_seconds(target_history=mine, **kwargs) == 0
