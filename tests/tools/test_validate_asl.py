"""tools/validate_asl.py: every failure kind is caught, a good definition passes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tools import validate_asl

GOOD: dict[str, Any] = {
    "Comment": "A small runbook",
    "StartAt": "Validate input",
    "States": {
        "Validate input": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${ValidateFunctionArn}", "Payload.$": "$"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record failure"}],
            "Next": "Is it healthy?",
        },
        "Is it healthy?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.healthy", "BooleanEquals": True, "Next": "Done"}],
            "Default": "Fan out",
        },
        "Fan out": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Audit",
                    "States": {
                        "Audit": {
                            "Type": "Task",
                            "Resource": "arn:aws:states:::dynamodb:putItem",
                            "Parameters": {"TableName": "${AuditTable}", "Item": {}},
                            "End": True,
                        }
                    },
                }
            ],
            "Next": "Each item",
        },
        "Each item": {
            "Type": "Map",
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "Notify",
                "States": {
                    "Notify": {
                        "Type": "Task",
                        "Resource": "arn:aws:states:::sns:publish",
                        "Parameters": {"TopicArn": "${TopicArn}", "Message.$": "$"},
                        "End": True,
                    }
                },
            },
            "Next": "Done",
        },
        "Record failure": {"Type": "Fail", "Error": "Runbook.Failed", "Cause": "see audit"},
        "Done": {"Type": "Succeed"},
    },
}
SUBSTITUTIONS = ["ValidateFunctionArn", "AuditTable", "TopicArn"]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Runbook:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: statemachines/runbook.asl.json
      DefinitionSubstitutions:
{subs}
"""


def write_project(tmp_path: Path, definition: Any, substitutions: list[str] | None = None) -> Path:
    (tmp_path / "statemachines").mkdir()
    (tmp_path / "statemachines" / "runbook.asl.json").write_text(json.dumps(definition, indent=2))
    names = SUBSTITUTIONS if substitutions is None else substitutions
    subs = "\n".join(f"        {n}: !Sub arn:${{AWS::Partition}}:x:::{n}" for n in names) or "        {}"
    (tmp_path / "template.yaml").write_text(TEMPLATE.format(subs=subs))
    return tmp_path


def validate(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    rc = validate_asl.main(
        ["--template", str(tmp_path / "template.yaml"), str(tmp_path / "statemachines"), *extra]
    )
    return rc, capsys.readouterr().out


def broken(mutate: Any) -> dict[str, Any]:
    definition = copy.deepcopy(GOOD)
    mutate(definition)
    return definition


def test_validate_asl_accepts_a_good_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a definition whose placeholders match the template's substitutions
    write_project(tmp_path, GOOD)
    # When it is validated
    rc, out = validate(tmp_path, capsys)
    # Then it passes
    assert rc == 0, out
    assert "runbook.asl.json: OK" in out


def _del(d: dict[str, Any], *path: str) -> None:
    for key in path[:-1]:
        d = d[key]
    del d[path[-1]]


def _set(d: dict[str, Any], *path: Any) -> None:
    *keys, last, value = path
    for key in keys:
        d = d[key]
    d[last] = value


S = "States"
BAD_CASES = {
    "schema: unknown state type": (lambda d: _set(d, S, "Done", "Type", "Finish"), "schema:"),
    "schema: unknown field": (lambda d: _set(d, S, "Done", "Nxt", "Done"), "schema:"),
    "StartAt missing": (lambda d: _set(d, "StartAt", "Nope"), "StartAt 'Nope' is not a state"),
    "Next missing": (lambda d: _set(d, S, "Validate input", "Next", "Nope"), "Next -> unknown state 'Nope'"),
    "Default missing": (
        lambda d: _set(d, S, "Is it healthy?", "Default", "Nope"),
        "Default -> unknown state",
    ),
    "Choice Next missing": (
        lambda d: _set(d, S, "Is it healthy?", "Choices", 0, "Next", "Nope"),
        "Choices[0].Next -> unknown state",
    ),
    "Catch Next missing": (
        lambda d: _set(d, S, "Validate input", "Catch", 0, "Next", "Nope"),
        "Catch[0].Next -> unknown state",
    ),
    "neither Next nor End": (lambda d: _del(d, S, "Each item", "Next"), "exactly one of Next or End"),
    "both Next and End": (lambda d: _set(d, S, "Each item", "End", True), "exactly one of Next or End"),
    "Next on a terminal state": (lambda d: _set(d, S, "Done", "Next", "Done"), "neither Next nor End"),
    "unreachable state": (
        lambda d: _set(d, S, "Orphan", {"Type": "Pass", "End": True}),
        "'Orphan']: unreachable",
    ),
    "Parallel branch target missing": (
        lambda d: _set(d, S, "Fan out", "Branches", 0, "StartAt", "Nope"),
        "Branches[0]: StartAt 'Nope'",
    ),
    "Map ItemProcessor without End": (
        lambda d: _del(d, S, "Each item", "ItemProcessor", S, "Notify", "End"),
        "ItemProcessor.States['Notify']: exactly one of Next or End",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_validate_asl_catches_each_failure_kind(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mutate, expected = BAD_CASES[case]
    # Given a definition with one defect
    write_project(tmp_path, broken(mutate))
    # When it is validated
    rc, out = validate(tmp_path, capsys)
    # Then it fails and names the defect
    assert rc == 1, out
    assert expected in out
    assert "error(s)" in out


def test_validate_asl_catches_a_placeholder_without_substitution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, GOOD, substitutions=["ValidateFunctionArn", "AuditTable"])
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "${TopicArn} has no entry in Runbook.DefinitionSubstitutions" in out


def test_validate_asl_catches_an_unused_substitution(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, GOOD, substitutions=[*SUBSTITUTIONS, "Leftover"])
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "Runbook.DefinitionSubstitutions.Leftover is never used" in out


def test_validate_asl_flags_pseudo_parameters_that_sam_does_not_substitute(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = broken(
        lambda d: _set(d, S, "Validate input", "Resource", "arn:${AWS::Partition}:states:::lambda:invoke")
    )
    write_project(tmp_path, definition)
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "${AWS::Partition} has no entry" in out


def test_validate_asl_catches_a_file_no_state_machine_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, GOOD)
    (tmp_path / "statemachines" / "stray.asl.json").write_text(json.dumps(GOOD))
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "stray.asl.json: 1 error(s)" in out
    assert "not the DefinitionUri of any state machine" in out


def test_validate_asl_catches_a_definition_uri_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(tmp_path, GOOD)
    template = tmp_path / "template.yaml"
    template.write_text(template.read_text().replace("runbook.asl.json", "missing.asl.json"))
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "DefinitionUri 'statemachines/missing.asl.json' does not exist" in out


def test_validate_asl_catches_invalid_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_project(tmp_path, GOOD)
    (tmp_path / "statemachines" / "runbook.asl.json").write_text('{"StartAt": "A",')
    rc, out = validate(tmp_path, capsys)
    assert rc == 1
    assert "invalid JSON" in out


def test_validate_asl_checks_inline_definitions_in_the_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "statemachines").mkdir()
    (tmp_path / "statemachines" / "x.asl.json").write_text(json.dumps(GOOD))
    inline = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\nResources:\n  Inline:\n    Type: AWS::Serverless::StateMachine\n"
        f"    Properties:\n      Definition: {json.dumps(inline)}\n"
    )
    rc, out = validate(tmp_path, capsys, "--no-template")
    assert "x.asl.json: OK" in out
    rc = validate_asl.main(["--template", str(tmp_path / "template.yaml"), str(tmp_path / "statemachines")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "Inline.Definition: 1 error(s)" in out
    assert "Next -> unknown state 'B'" in out


def test_validate_asl_reports_missing_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_asl.main(["--template", str(tmp_path / "nope.yaml"), str(tmp_path)]) == 2


def test_validate_asl_reports_no_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert validate_asl.main(["--no-template", str(tmp_path)]) == 2


def test_validate_asl_prints_a_substituted_definition_for_asl_validator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a definition with placeholders in Resource ARNs
    path = tmp_path / "x.asl.json"
    path.write_text(json.dumps({"Resource": "arn:${Partition}:states:::lambda:invoke", "F": "${StepsArn}"}))
    # When it is printed substituted
    assert validate_asl.main(["--print-substituted", str(path)]) == 0
    printed = json.loads(capsys.readouterr().out)
    # Then the placeholders are plausible values
    assert printed == {
        "Resource": "arn:aws:states:::lambda:invoke",
        "F": "arn:aws:lambda:us-east-1:123456789012:function:StepsArn",
    }
