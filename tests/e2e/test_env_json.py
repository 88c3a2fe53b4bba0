"""`selfheal local env-json`: the env.json for `sam local invoke --env-vars`, from the deployed stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from localcloud.harness import DeployedCloud
from selfheal_cli.main import main

ROOT = Path(__file__).parents[2]
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def template_variables() -> dict[str, set[str]]:
    """What SAM CLI hands each function (read here with cfn-lint's parser, not the command's): the
    template's global variables and the function's own."""
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors and template is not None, errors
    globals_ = set(template["Globals"]["Function"]["Environment"]["Variables"])
    return {
        logical_id: globals_ | set(resource["Properties"].get("Environment", {}).get("Variables", {}))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture
def env_json(cloud: DeployedCloud, tmp_path: Path, capsys: Any) -> dict[str, dict[str, str]]:
    path = tmp_path / "env.json"
    code = main(["local", "env-json", "--endpoint", cloud.endpoint, "--output", str(path)])
    assert code == 0, capsys.readouterr()
    assert f"wrote {path}" in capsys.readouterr().out
    content: dict[str, dict[str, str]] = json.loads(path.read_text())
    return content


def test_env_json_has_every_function_with_the_variables_its_template_declares(env_json):
    declared = template_variables()
    assert declared, "no function in the template"
    assert {f: set(v) - {"AWS_ENDPOINT_URL"} for f, v in env_json.items()} == declared


def test_env_json_values_are_the_local_cloud_stacks(env_json, cloud):
    outputs = cloud.stack.outputs
    triage, steps = env_json["TriageFunction"], env_json["RunbookStepsFunction"]
    assert triage["AUDIT_TABLE"] == steps["AUDIT_TABLE"] == outputs["AuditTableName"]
    assert triage["LEASE_TABLE"] == outputs["LeaseTableName"]
    assert triage["STATE_MACHINE_REMAP_EIP"] == outputs["RemapEipStateMachineArn"]
    assert triage["STACK_NAME"] == cloud.stack.name
    assert steps["EVENT_BUS"] == "default"
    # Every value a string, none left an intrinsic; and the local cloud's endpoint for each function
    assert all(isinstance(v, str) and "Ref" not in v for f in env_json.values() for v in f.values())
    assert {f["AWS_ENDPOINT_URL"] for f in env_json.values()} == {cloud.endpoint}


def test_env_json_holds_no_credentials(env_json):
    text = json.dumps(env_json)
    assert not [name for name in CREDENTIALS if name in text]
    assert "testing" not in text  # the local cloud's secret key


def test_env_json_without_a_stack_is_one_line(cloud, capsys):
    code = main(["local", "env-json", "--endpoint", cloud.endpoint, "--stack-name", "no-such-stack"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "no-such-stack" in err, err
