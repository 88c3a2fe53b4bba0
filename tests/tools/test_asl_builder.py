"""The workflow builder (tools/asl): its output is what is checked in, a hand edit is caught, every
workflow has the one frame, and every declared call is audited before and after."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from selfheal.runbooks import RUNBOOKS
from tools.asl import build, frame
from tools.asl.idioms import LAMBDA_RETRY, ROW_RETRY, WAIT_FOR_A_PLACE
from tools.asl.runbooks import WORKFLOWS

ROOT = Path(__file__).parents[2]
DEFINITIONS = {w.runbook: frame.build(w) for w in WORKFLOWS}
# The builder replaced 10,921 lines of hand-written JSON; the workflows have grown since (undo runs,
# audited undo chains), so its whole source is held to a quarter of the JSON it writes now: a
# builder that stops paying for itself (repeating what it generates) fails this.


def states_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, those inside Map iterations included."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        if "ItemProcessor" in state:
            found |= states_of(state["ItemProcessor"])
    return found


def test_checked_in_state_machines_are_the_builders_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert build.main(["--check"]) == 0, capsys.readouterr().err


def test_a_hand_edit_to_a_state_machine_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the checked-in files, one of them edited by hand
    out = tmp_path / "statemachines"
    shutil.copytree(ROOT / "statemachines", out)
    edited = out / "flip-dns.asl.json"
    definition = json.loads(edited.read_text())
    definition["States"]["Record: started"]["Retry"] = []
    edited.write_text(json.dumps(definition, indent=2) + "\n")
    # When checked, Then the check fails and names the file
    assert build.main(["--check", "--out", str(out)]) == 1
    assert "flip-dns.asl.json differs" in capsys.readouterr().err
    # And regenerating puts it back
    assert build.main(["--out", str(out)]) == 0
    assert build.main(["--check", "--out", str(out)]) == 0


def test_a_file_no_workflow_builds_fails_the_check(tmp_path: Path) -> None:
    out = tmp_path / "statemachines"
    shutil.copytree(ROOT / "statemachines", out)
    (out / "orphan.asl.json").write_text("{}\n")
    assert build.main(["--check", "--out", str(out)]) == 1


def test_the_builder_is_deterministic() -> None:
    assert build.outputs() == build.outputs()


def test_every_runbook_has_a_workflow_and_every_workflow_a_runbook() -> None:
    assert sorted(DEFINITIONS) == sorted(RUNBOOKS)


def test_the_builders_source_is_at_most_a_quarter_of_the_json_it_writes() -> None:
    source = sorted((ROOT / "tools" / "asl").rglob("*.py"))
    lines = sum(len(path.read_text().splitlines()) for path in source)
    written = sum(len(path.read_text().splitlines()) for path in (ROOT / "statemachines").glob("*.asl.json"))
    assert lines <= written // 4, f"{lines} lines of builder source for {written} lines of JSON"


FRAME_STATES = (
    frame.VALIDATE,
    frame.EXPLAIN_REJECTION,
    frame.REJECTED,
    frame.LEASE,
    frame.GUARDS,
    frame.WOULD_DO,
    frame.SUCCEEDED,
    frame.SKIPPED,
    frame.FAILED,
    "Release the lease",
    "Release the lease after skipping",
    "Release the lease after failure",
    "Remediation failed",
)


def _without_runbook(state: dict[str, Any]) -> str:
    return json.dumps(state, sort_keys=True).replace(
        json.dumps(state.get("Parameters", {}).get("Payload", {}).get("runbook", "")), '"-"'
    )


@pytest.mark.parametrize("name", FRAME_STATES)
def test_the_frame_states_are_the_same_in_every_workflow(name: str) -> None:
    """No drift: the rejection, skip and failure paths are one code path in five workflows."""
    shapes = {runbook: _without_runbook(d["States"][name]) for runbook, d in DEFINITIONS.items()}
    assert len(set(shapes.values())) == 1, shapes


@pytest.mark.parametrize("runbook", sorted(DEFINITIONS))
def test_a_console_user_only_meets_fail_states_with_a_readable_error(runbook: str) -> None:
    """The only Fail states of a run: the rejection (the validate step's message, not its JSON) and
    the failure (the error and reason the finish step wrote)."""
    top = DEFINITIONS[runbook]["States"]
    fails = {name for name, state in top.items() if state["Type"] == "Fail"}
    assert fails == {frame.REJECTED, "Remediation failed"}
    assert top[frame.REJECTED]["CausePath"] == "$.error.Details.errorMessage"
    assert top[frame.FAILED]["ResultSelector"] == {
        "Error.$": "$.Payload.error",
        "Cause.$": "$.Payload.reason",
    }


def _lambda_steps(runbook: str) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for name, state in states_of(DEFINITIONS[runbook]).items()
        if state.get("Resource", "").endswith(":lambda:invoke")
    }


@pytest.mark.parametrize("runbook", sorted(DEFINITIONS))
def test_every_lambda_step_has_the_one_retry_policy_and_a_catch(runbook: str) -> None:
    for name, state in _lambda_steps(runbook).items():
        # intent steps first wait for a place among the runs acting at once; audit steps are tried
        # again on any error but the refusals that would repeat (their row is written once)
        step = _payload(state)["step"]
        own = [WAIT_FOR_A_PLACE] if step == "intent" else [*ROW_RETRY] if step == "audit" else []
        assert state["Retry"] == [*own, LAMBDA_RETRY], name
        assert state.get("Catch"), f"{runbook}: {name} has no Catch: a failure there would skip the release"


def _payload(state: dict[str, Any]) -> dict[str, Any]:
    return dict(state["Parameters"]["Payload"])


@pytest.mark.parametrize("runbook", sorted(DEFINITIONS))
def test_every_declared_call_is_made_between_its_intent_and_outcome_rows(runbook: str) -> None:
    """From the declaration: intent step -> (shape choice) -> SDK task(s) -> outcome rows on success
    and on error, all naming the call; and no mutating SDK task the declarations did not make."""
    states = states_of(DEFINITIONS[runbook])
    specs = {s.name: s for s in RUNBOOKS[runbook].calls}
    intents = {n: s for n, s in _lambda_steps(runbook).items() if _payload(s)["step"] == "intent"}
    assert sorted(_payload(s)["call"] for s in intents.values()) == sorted(specs)
    made: set[str] = set()
    for name, intent in intents.items():
        spec = specs[_payload(intent)["call"]]
        after = states[intent["Next"]]
        if after["Type"] == "Choice":  # one task per request shape
            tasks = [states[c["Next"]] for c in after["Choices"]] + [states[after["Default"]]]
        else:
            tasks = [after]
        assert len(tasks) == len(spec.shapes), name
        for task in tasks:
            assert task["Resource"] == f"arn:${{Partition}}:states:::{spec.sdk_resource}"
            made.add(json.dumps(task, sort_keys=True))
            done, failed = states[task["Next"]], states[task["Catch"][-1]["Next"]]
            assert (_payload(done)["outcome"], _payload(failed)["outcome"]) == ("ok", "error")
            for row in (done, failed):
                assert _payload(row)["phase"] == ("compensated" if spec.undo else "action")
                assert _payload(row)["call.$"] == intent["ResultPath"]
    mutating = [
        s
        for s in states.values()
        if ":aws-sdk:" in s.get("Resource", "")
        and not s["Resource"].rsplit(":", 1)[1].startswith(("describe", "get", "list"))
    ]
    assert {json.dumps(s, sort_keys=True) for s in mutating} == made
