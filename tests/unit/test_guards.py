"""Guards decide whether a runbook may act; every rule, without AWS."""

from datetime import UTC, datetime, timedelta

import pytest

from selfheal.audit import AuditRow
from selfheal.guards import GuardLimits, evaluate, fence_violations
from selfheal.models import Mode, Phase

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
LIMITS = GuardLimits(cooldown_seconds=600, loop_window_seconds=3600, loop_threshold=3, budget_per_hour=2)


def row(phase: Phase, minutes_ago: int, request_id: str = "other", dry_run: bool = False, **kw) -> AuditRow:
    return AuditRow(
        requestId=request_id,
        phase=phase,
        targetKey="i-0123456789abcdef0",
        runbook="remap-eip",
        at=NOW - timedelta(minutes=minutes_ago),
        dryRun=dry_run,
        **kw,
    )


def decide(**overrides):
    args = dict(
        mode=Mode.ENFORCE,
        requested_dry_run=False,
        request_id="me",
        runbook="remap-eip",
        unfenced=[],
        target_history=[],
        runbook_history=[],
        limits=LIMITS,
        now=NOW,
    )
    args.update(overrides)
    return evaluate(**args)


def test_guards_allow_a_clean_request():
    decision = decide()
    assert decision.proceed and not decision.dry_run and decision.mode is Mode.ENFORCE


def test_guards_mode_off_skips_without_escalating():
    decision = decide(mode=Mode.OFF)
    assert not decision.proceed and decision.guard == "mode" and not decision.escalate


@pytest.mark.parametrize("mode,requested,expected", [(Mode.DRY_RUN, False, True), (Mode.ENFORCE, True, True)])
def test_guards_dry_run_comes_from_mode_or_request(mode, requested, expected):
    decision = decide(mode=mode, requested_dry_run=requested)
    assert decision.proceed and decision.dry_run is expected


def test_guards_unfenced_resource_is_refused_and_escalated():
    decision = decide(unfenced=["i-0standby"])
    assert not decision.proceed and decision.guard == "fence" and decision.escalate
    assert "i-0standby" in (decision.skip_reason or "")


def test_guards_cooldown_skips_a_second_run_soon_after_the_first():
    decision = decide(target_history=[row(Phase.STARTED, minutes_ago=5)])
    assert not decision.proceed and decision.guard == "cooldown" and decision.escalate


def test_guards_cooldown_ignores_own_rows_old_rows_and_dry_runs():
    history = [
        row(Phase.STARTED, 1, request_id="me"),
        row(Phase.STARTED, 30),
        row(Phase.STARTED, 2, dry_run=True),
    ]
    assert decide(target_history=history).proceed


def test_guards_loop_detection_stops_repeated_heals():
    history = [row(Phase.SUCCEEDED, m, request_id=f"r{m}") for m in (20, 40, 50)]
    decision = decide(target_history=history)
    assert not decision.proceed and decision.guard == "loop" and decision.escalate


def test_guards_budget_opens_the_breaker():
    actions = [row(Phase.ACTION, m, request_id=f"r{m}", outcome="pending") for m in (10, 50)]
    decision = decide(runbook_history=actions)
    assert not decision.proceed and decision.guard == "budget" and decision.escalate


def test_guards_budget_counts_only_intents_in_the_last_hour():
    actions = [
        row(Phase.ACTION, 10, request_id="a", outcome="ok"),
        row(Phase.ACTION, 90, request_id="b", outcome="pending"),
        row(Phase.ACTION, 5, request_id="c", outcome="pending"),
    ]
    assert decide(runbook_history=actions).proceed


def test_fence_violations_lists_what_is_not_tagged_exactly_so():
    """Compared as IAM's StringEquals compares: "TRUE" is not "true"."""
    tags = {
        "eipalloc-1": {"selfheal:managed": "true"},
        "i-1": {"selfheal:managed": "TRUE"},
        "i-2": {"selfheal:managed": "false"},
        "i-3": {},
    }
    assert fence_violations(tags, "selfheal:managed", "true") == ["i-1", "i-2", "i-3"]


def test_guard_limits_tightened_only_makes_guards_stricter():
    # Given per-target overrides that try to loosen some limits and tighten others
    tight = LIMITS.tightened({"loopThreshold": 2, "loopWindowSeconds": 60, "cooldownSeconds": 1200})
    loose = LIMITS.tightened({"loopThreshold": 10, "loopWindowSeconds": 7200, "cooldownSeconds": 0})
    # Then only the stricter values are taken
    assert (tight.loop_threshold, tight.loop_window_seconds, tight.cooldown_seconds) == (2, 3600, 1200)
    assert (loose.loop_threshold, loose.loop_window_seconds, loose.cooldown_seconds) == (3, 7200, 600)
    assert LIMITS.tightened(None) is LIMITS and LIMITS.tightened({}) is LIMITS


def test_guards_tightened_loop_threshold_stops_the_second_redrive():
    limits = LIMITS.tightened({"loopThreshold": 1})
    decision = decide(target_history=[row(Phase.SUCCEEDED, 30)], limits=limits)
    assert not decision.proceed and decision.guard == "loop" and decision.escalate


def test_guards_budget_counts_remediations_not_their_calls():
    # Given one earlier remediation that made three mutating calls (budget is 2)
    calls = [row(Phase.ACTION, m, request_id="one-redrive", outcome="pending") for m in (10, 11, 12)]
    # Then it used one unit of the budget, not three
    assert decide(runbook_history=calls).proceed


def test_guards_breaker_opens_after_max_failed_runs_in_the_hour():
    failed = [row(Phase.FAILED, minutes_ago=m, request_id=f"r{m}") for m in (5, 20, 40)]
    decision = decide(runbook_history=failed)
    assert not decision.proceed and decision.guard == "breaker" and decision.escalate
    assert "failed 3 times" in (decision.skip_reason or "")
    # Older failures, dry runs and fewer of them do not open it
    assert decide(runbook_history=failed[:2]).proceed
    assert decide(runbook_history=[row(Phase.FAILED, 61, request_id=f"o{n}") for n in range(5)]).proceed


def test_guards_ignore_rows_dated_in_the_future():
    # Given ten action rows dated 2099 (a forged or far-off clock): no evidence of anything
    future = [
        row(Phase.ACTION, minutes_ago=-(60 * 24 * 365 * 73), request_id=f"r{n}", outcome="pending")
        for n in range(10)
    ]
    future += [row(Phase.STARTED, minutes_ago=-60, request_id="soon")]
    decision = decide(runbook_history=future, target_history=future)
    assert decision.proceed, decision.skip_reason
    # A little skew still counts (functions' clocks differ by seconds)
    skewed = [row(Phase.STARTED, minutes_ago=-1, request_id="skew")]
    assert decide(target_history=skewed).guard == "cooldown"
