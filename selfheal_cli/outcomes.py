"""What became of a run, in one line and one exit code (`selfheal trigger`, `selfheal local send`).

A run's output (the frame's finish step) says healed | dry-run | skipped | rejected with a one-line
reason; a failed execution says it in its error and cause. Exit codes, documented in the README:
0 healed (or a dry run, as asked; or a state machine that is no runbook succeeded), 1 failed,
2 invalid input or usage, 3 skipped (nothing was changed), 4 rejected by a human, 5 waiting for a
human (the run asks for approval: the wait ends there, with how to answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from selfheal_cli.ops import ExecutionResult

EXIT_CODES = {
    "healed": 0,
    "dry-run": 0,
    "succeeded": 0,
    "failed": 1,
    "invalid": 2,
    "skipped": 3,
    "rejected": 4,
    "waiting": 5,
}
# The frame's state for an input the validate step refused (tools/asl/frame.py REJECTED; a test
# keeps the two the same).
INPUT_REJECTED_STATE = "Input rejected"
WIDTH = 160


@dataclass(frozen=True)
class RunSummary:
    outcome: str
    reason: str
    runbook: str
    target: str
    execution_arn: str
    # What to do next, one command per line (a run waiting for approval: how to answer it).
    next_steps: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.outcome, 1)

    def line(self) -> str:
        """One line within 160 columns: outcome, runbook, target, reason, where the audit is."""
        audit = f"  (selfheal audit --target {self.target})" if self.target != "-" else ""
        head = f"{self.outcome:<8} {self.runbook} {self.target}: "
        room = max(20, WIDTH - len(head) - len(audit))
        reason = self.reason if len(self.reason) <= room else self.reason[: room - 3] + "..."
        return f"{head}{reason}{audit}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "runbook": self.runbook,
            "target": self.target,
            "executionArn": self.execution_arn,
            **({"nextSteps": list(self.next_steps)} if self.next_steps else {}),
        }


def _target_of(execution_input: Any) -> str:
    target = execution_input.get("target") if isinstance(execution_input, Mapping) else None
    if isinstance(target, Mapping):
        return next((str(v) for v in target.values() if isinstance(v, str | int)), "-")
    return "-"


def summarize(result: ExecutionResult, runbook: str, execution_input: Any = None) -> RunSummary:
    """A finished execution, as an operator reads it."""
    output = result.output if isinstance(result.output, dict) else {}
    target = str(output.get("target") or _target_of(execution_input))
    if result.asks_approval is not None:
        return _waiting(result, runbook, target)
    if result.status == "SUCCEEDED" and output.get("outcome"):
        return RunSummary(str(output["outcome"]), str(output.get("reason", "")), runbook, target, result.arn)
    if result.status == "SUCCEEDED":  # no runbook's frame (no outcome to tell): only that it succeeded
        return RunSummary("succeeded", "the execution succeeded", runbook, target, result.arn)
    if result.status == "RUNNING":
        return RunSummary("failed", "still running when the wait ended", runbook, target, result.arn)
    entered = {
        e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e
    }
    outcome = "invalid" if INPUT_REJECTED_STATE in entered else "failed"
    if result.status in ("ABORTED", "TIMED_OUT"):
        why = f"the execution was {'stopped from outside' if result.status == 'ABORTED' else 'timed out'}"
        return RunSummary("failed", f"{why} ({result.status})", runbook, target, result.arn)
    return RunSummary(outcome, f"{result.error}: {result.cause or ''}".strip(), runbook, target, result.arn)


def _waiting(result: ExecutionResult, runbook: str, target: str) -> RunSummary:
    """A run that asks a human: the question, and the two answers (by someone who did not ask for
    the run: triage refuses a requester's own answer)."""
    question: Any = result.asks_approval
    arn = result.arn
    return RunSummary(
        "waiting",
        f"asks for approval by {question.expires_at:%H:%M:%S} UTC: {question.why}",
        runbook,
        str(question.target_key or target),
        arn,
        next_steps=(
            f"selfheal approve {arn} --comment WHY",
            f"selfheal reject {arn} --reason WHY",
        ),
    )


def exit_code(summaries: Iterable[RunSummary]) -> int:
    """One code for several runs: the worst of them (a failure first); none at all: 3."""
    codes = {s.exit_code for s in summaries}
    for code in (1, 2, 4, 5, 3):
        if code in codes:
            return code
    return 0 if codes else 3
