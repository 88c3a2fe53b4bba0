"""The CLI's reading of a run: exit codes, one line within 160 columns, and the frame's names it
relies on."""

from __future__ import annotations

from selfheal_cli import outcomes
from selfheal_cli.ops import ExecutionResult
from tools.asl import frame


def test_the_cli_knows_the_frames_rejection_state_by_its_name() -> None:
    assert outcomes.INPUT_REJECTED_STATE == frame.REJECTED


def _run(outcome: str, reason: str = "why") -> outcomes.RunSummary:
    return outcomes.RunSummary(outcome, reason, "remap-eip", "i-0abc", "arn")


def test_exit_codes_are_distinct_and_the_worst_run_decides() -> None:
    named = ("healed", "dry-run", "failed", "invalid", "skipped", "rejected", "waiting")
    codes = {o: _run(o).exit_code for o in named}
    assert codes == {
        "healed": 0,
        "dry-run": 0,
        "failed": 1,
        "invalid": 2,
        "skipped": 3,
        "rejected": 4,
        "waiting": 5,
    }
    assert outcomes.exit_code([_run("healed"), _run("skipped")]) == 3
    # A run still waiting for a human outranks a skip (it may yet act) but not a refusal or failure.
    assert outcomes.exit_code([_run("skipped"), _run("waiting")]) == 5
    assert outcomes.exit_code([_run("waiting"), _run("rejected")]) == 4
    assert outcomes.exit_code([_run("skipped"), _run("failed"), _run("invalid")]) == 1
    assert outcomes.exit_code([]) == 3  # nothing ran: nothing was healed


def test_the_readme_documents_every_exit_code() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in set(outcomes.EXIT_CODES.values()):
        assert f"\n| {code} | " in readme, f"exit code {code} is not in the README's table"


def test_a_long_reason_is_cut_to_fit_160_columns() -> None:
    line = _run("failed", "x" * 500).line()
    assert len(line) <= 160 and line.endswith("(selfheal audit --target i-0abc)") and "..." in line


def test_a_stopped_execution_is_a_failure_that_says_so() -> None:
    stopped = ExecutionResult({"executionArn": "arn:a:b:c:d:e:f:n", "status": "ABORTED"})
    summary = outcomes.summarize(stopped, "remap-eip", {"target": {"instanceId": "i-1"}})
    assert (summary.outcome, summary.target) == ("failed", "i-1")
    assert "stopped from outside" in summary.reason
