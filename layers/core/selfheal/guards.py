"""Guards: the checks between "a fault was seen" and "we touch something".

``evaluate`` is pure (all facts passed in) so every rule is unit-tested without AWS; the adapters
that gather the facts live next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from selfheal.audit import AuditRow
from selfheal.models import Mode, Phase

# How far in the future a row may be dated and still count (clocks of the functions disagree a
# little; a row from 2099 is no evidence).
CLOCK_SKEW = timedelta(minutes=5)

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


class GuardLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    cooldown_seconds: int
    loop_window_seconds: int
    loop_threshold: int
    budget_per_hour: int
    max_failed_runs: int = 3

    def tightened(self, overrides: Mapping[str, int] | None) -> GuardLimits:
        """Per-target limits from the plan (``guardLimits``: loopThreshold, loopWindowSeconds,
        cooldownSeconds). A runbook or policy may only make the guards stricter, never looser."""
        if not overrides:
            return self
        return self.model_copy(
            update={
                "loop_threshold": min(
                    self.loop_threshold, overrides.get("loopThreshold", self.loop_threshold)
                ),
                "loop_window_seconds": max(
                    self.loop_window_seconds, overrides.get("loopWindowSeconds", self.loop_window_seconds)
                ),
                "cooldown_seconds": max(
                    self.cooldown_seconds, overrides.get("cooldownSeconds", self.cooldown_seconds)
                ),
            }
        )


class GuardDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    proceed: bool
    dry_run: bool
    mode: Mode
    skip_reason: str | None = None
    guard: str | None = None  # which guard said no: paused, mode, fence, cooldown, loop, budget...
    escalate: bool = False


def read_mode(ssm: SSMClient, parameter: str) -> tuple[Mode, str | None]:
    """The global kill switch, read on every run. Unreadable or invalid -> dry-run (fail safe, not silent)."""
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"].strip()
    except Exception as exc:  # any failure to read the switch must never lead to action
        return (
            Mode.DRY_RUN,
            f"mode parameter {parameter} unreadable ({type(exc).__name__}): acting as dry-run",
        )
    try:
        return Mode(value), None
    except ValueError:
        return Mode.DRY_RUN, f"mode parameter {parameter} has invalid value {value!r}: acting as dry-run"


def fenced(tags: Mapping[str, str], key: str, value: str) -> bool:
    """Tagged key=value, compared exactly, as IAM's StringEquals on aws:ResourceTag compares it: a
    resource the guard let through must be one IAM lets the call touch too."""
    return tags.get(key) == value


def fence_violations(resource_tags: Mapping[str, Mapping[str, str]], key: str, value: str) -> list[str]:
    """Resource ids (of those the runbook would touch) that are not tagged key=value."""
    return sorted(rid for rid, tags in resource_tags.items() if not fenced(tags, key, value))


def happened(rows: Iterable[AuditRow], now: datetime) -> list[AuditRow]:
    """The rows dated up to now. A row dated in the future is no evidence of anything (a clock far
    off, or a forged row that would keep a breaker open or a hold-down waiting for ever)."""
    latest = now + CLOCK_SKEW
    return [r for r in rows if r.at <= latest]


def evaluate(
    *,
    mode: Mode,
    requested_dry_run: bool,
    request_id: str,
    runbook: str,
    unfenced: Sequence[str],
    target_history: Iterable[AuditRow],
    runbook_history: Iterable[AuditRow],
    limits: GuardLimits,
    now: datetime,
    out_of_scope: Sequence[str] = (),
) -> GuardDecision:
    """``out_of_scope``: what the plan touches outside the stack's configured scope (refused like the
    fence). No runbook is exempt from the cooldown: a failback right after a failover is a flap."""
    dry_run = requested_dry_run or mode is Mode.DRY_RUN
    target_history, runbook_history = happened(target_history, now), happened(runbook_history, now)

    def skip(guard: str, reason: str, escalate: bool = False) -> GuardDecision:
        return GuardDecision(
            proceed=False, dry_run=dry_run, mode=mode, skip_reason=reason, guard=guard, escalate=escalate
        )

    if mode is Mode.OFF:
        return skip("mode", "selfheal is switched off (mode=off)")
    if unfenced:
        return skip("fence", f"not managed by selfheal (fence tag missing): {', '.join(unfenced)}", True)
    if out_of_scope:
        return skip("scope", f"outside the scope this stack may change: {'; '.join(out_of_scope)}", True)

    # Dry runs changed nothing, so they neither cool down nor count towards a loop.
    others = [
        r for r in target_history if r.runbook == runbook and r.request_id != request_id and not r.dry_run
    ]
    recent_starts = [
        r
        for r in others
        if r.phase is Phase.STARTED and r.at >= now - timedelta(seconds=limits.cooldown_seconds)
    ]
    if recent_starts:
        last = max(r.at for r in recent_starts)
        return skip(
            "cooldown",
            f"{runbook} already ran on this target at {last.isoformat()}"
            f" (cooldown {limits.cooldown_seconds}s): healed, but it came back",
            True,
        )
    healed = [
        r
        for r in others
        if r.phase is Phase.SUCCEEDED and r.at >= now - timedelta(seconds=limits.loop_window_seconds)
    ]
    if len(healed) >= limits.loop_threshold:
        return skip(
            "loop",
            f"{runbook} healed this target {len(healed)} times in {limits.loop_window_seconds}s:"
            " a loop, not a fault selfheal can fix",
            True,
        )
    actions = acted_runs(runbook_history, now)
    failed = failed_runs(runbook_history, now)
    if len(failed) >= limits.max_failed_runs:
        return skip(
            "breaker",
            f"{runbook} failed {len(failed)} times in the last hour (limit {limits.max_failed_runs},"
            " MaxFailedRunsPerHour): breaker open, not acting until a human looks",
            True,
        )
    if len(actions) >= limits.budget_per_hour:
        return skip(
            "budget",
            f"{runbook} budget exhausted: {len(actions)} actions in the last hour"
            f" (limit {limits.budget_per_hour}); breaker open",
            True,
        )
    return GuardDecision(proceed=True, dry_run=dry_run, mode=mode)


def paused(
    *, mode: Mode, requested_dry_run: bool, open_ops_item: str | None, problem: str | None = None
) -> GuardDecision | None:
    """The pause, checked before anything is resolved: an open OpsItem for this target and runbook
    (an escalation a human has not resolved yet) holds every run of it, dry runs too. A skip, not a
    new escalation: the OpsItem already asks the human. An unreadable OpsCenter (``problem``) holds
    the run too, as an escalation: a pause nobody can see must not be run through. None: not paused."""
    dry_run = requested_dry_run or mode is Mode.DRY_RUN
    if problem is not None:
        reason = f"pause unknown: {problem}; not acting until OpsCenter can be read"
        return GuardDecision(
            proceed=False,
            dry_run=dry_run,
            mode=mode,
            skip_reason=reason,
            guard="pause-unknown",
            escalate=True,
        )
    if open_ops_item is None:
        return None
    return GuardDecision(
        proceed=False,
        dry_run=dry_run,
        mode=mode,
        skip_reason=f"paused: OpsItem {open_ops_item} is open; resolve it to re-arm",
        guard="paused",
    )


def acted_runs(runbook_history: Iterable[AuditRow], now: datetime) -> set[str]:
    """The runs that acted in the last hour (the budget guard's count). One remediation is one action
    however many calls it makes (a redrive starts and stops several move tasks): the executions that
    acted, not their calls."""
    return {
        r.request_id
        for r in runbook_history
        if r.phase is Phase.ACTION and r.outcome == "pending" and r.at >= now - timedelta(hours=1)
    }


def failed_runs(runbook_history: Iterable[AuditRow], now: datetime) -> set[str]:
    """The runs that failed in the last hour, dry runs aside (the breaker's count)."""
    return {
        r.request_id
        for r in runbook_history
        if r.phase is Phase.FAILED and not r.dry_run and r.at >= now - timedelta(hours=1)
    }


def hold_down_wait_seconds(
    *,
    target_history: Iterable[AuditRow],
    runbook: str,
    request_id: str,
    hold_down_seconds: int,
    now: datetime,
) -> int:
    """Seconds until ``hold_down_seconds`` have passed since the last successful mutating action of
    ``runbook`` on this target (0: none in the window). Dry runs changed nothing and do not count."""
    done = [
        r.at
        for r in happened(target_history, now)
        if r.runbook == runbook
        and r.request_id != request_id
        and not r.dry_run
        and r.phase is Phase.ACTION
        and r.outcome == "ok"
    ]
    if not done:
        return 0
    until = max(done) + timedelta(seconds=hold_down_seconds)
    return max(0, int((until - now).total_seconds() + 0.999))
