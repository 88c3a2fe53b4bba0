"""Break a world and watch what selfheal makes of it: `selfheal local break`, `make demo`.

The fault is injected; then the audit trail of the fault's target is read until the run the fault
caused has ended (every new request about the target has its final row), and the world is asked
whether it is whole again. The verdict needs both: a run that says healed while the world is still
broken is reported as failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud import ops
from localcloud.worlds import Aws, Fault
from selfheal_cli.outcomes import RunSummary, summarize

FINAL_PHASES = {"succeeded", "failed", "skipped", "rejected"}
# A run's outcome from its final audit row, for a request that started no execution (triage said no).
OUTCOME_OF_PHASE = {"succeeded": "healed", "failed": "failed", "skipped": "skipped", "rejected": "rejected"}

RowSeen = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Verdict:
    fault: Fault
    run: RunSummary
    world_whole: bool
    evidence: str

    @property
    def healed(self) -> bool:
        return self.run.outcome == "healed" and self.world_whole

    @property
    def exit_code(self) -> int:
        if self.run.outcome == "healed" and not self.world_whole:
            return 1  # the run says healed; the world says otherwise
        return self.run.exit_code

    def lines(self) -> list[str]:
        world = "whole again" if self.world_whole else "STILL BROKEN"
        return [self.run.line(), f"{'':8} world {world}: {self.evidence}"]


class NoRunEnded(RuntimeError):
    """The fault was injected but no run about its target ended in time."""


def _requests(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_request.setdefault(str(row.get("requestId")), []).append(row)
    return by_request


def break_and_watch(
    aws: Aws,
    fault: Fault,
    outputs: Mapping[str, str],
    timeout: float = 120.0,
    on_row: RowSeen | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> Verdict:
    """Inject ``fault``; wait for the run it causes; the run's outcome and the world's state."""
    dynamodb, table = aws.client("dynamodb"), outputs["AuditTableName"]
    target = fault.target_key(aws)
    before = set(_requests(ops.audit_for_target(dynamodb, table, target)))
    seen: set[tuple[str, str]] = set()
    fault.inject(aws)
    began = time.monotonic()
    while True:
        new = {
            request: rows
            for request, rows in _requests(ops.audit_for_target(dynamodb, table, target)).items()
            if request not in before
        }
        for rows in new.values():
            for row in rows:
                if (str(row["requestId"]), str(row["sk"])) not in seen and on_row is not None:
                    on_row(row)
                seen.add((str(row["requestId"]), str(row["sk"])))
        ended = {r: rows for r, rows in new.items() if any(row.get("phase") in FINAL_PHASES for row in rows)}
        if new and len(ended) == len(new):
            break
        waited = time.monotonic() - began
        if waited > timeout:
            raise NoRunEnded(
                f"{fault.name} was injected but no run about {target} ended within {timeout:.0f} s"
                f" (selfheal audit --target {target})"
            )
        if on_wait is not None:
            on_wait(waited)
        time.sleep(0.2)
    run = _the_run(aws, fault, outputs, target, ended)
    whole, evidence = fault.healed(aws)
    return Verdict(fault, run, whole, evidence)


def _the_run(
    aws: Aws, fault: Fault, outputs: Mapping[str, str], target: str, ended: dict[str, list[dict[str, Any]]]
) -> RunSummary:
    """The execution the fault started (its output tells the outcome), else triage's final row."""
    for request, rows in ended.items():
        started = next((row for row in rows if row.get("phase") == "started"), None)
        if started is not None:
            runbook = str(started.get("runbook") or fault.runbook)  # triage may pick another runbook
            machine = ops.state_machine_arn(outputs, runbook)
            arn = f"{machine.replace(':stateMachine:', ':execution:')}:{request}"
            result = ops.wait_for_execution(aws.client("stepfunctions"), arn, timeout=30)
            return summarize(result, runbook)
    request, rows = next(iter(ended.items()))
    final = next(row for row in rows if row.get("phase") in FINAL_PHASES)
    reason = str(final.get("reason") or final.get("error") or final.get("phase"))
    return RunSummary(OUTCOME_OF_PHASE[str(final["phase"])], reason, fault.runbook, target, request)
