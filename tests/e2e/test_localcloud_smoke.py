"""Smoke test of the local cloud: the real template deploys and its resources work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

from localcloud.harness import DeployedCloud

ROOT = Path(__file__).parents[2]


def _template_resources(kind: str) -> list[str]:
    template: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return [lid for lid, r in template["Resources"].items() if r["Type"] == kind and "Condition" not in r]


def test_stack_deploys_complete(cloud: DeployedCloud) -> None:
    stack = cloud.client("cloudformation").describe_stacks(StackName=cloud.stack.name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert cloud.stack.outputs["AuditTableName"]


def test_every_function_of_the_template_exists(cloud: DeployedCloud) -> None:
    lambda_client = cloud.client("lambda")
    functions = _template_resources("AWS::Serverless::Function")
    assert functions
    for logical_id in functions:
        config = lambda_client.get_function(FunctionName=cloud.stack.physical_id(logical_id))["Configuration"]
        assert config["Handler"] == "app.lambda_handler"
        assert config["Layers"], f"{logical_id} lost its layer"


def test_every_state_machine_of_the_template_exists_with_substitutions(cloud: DeployedCloud) -> None:
    sfn = cloud.client("stepfunctions")
    machines = _template_resources("AWS::Serverless::StateMachine")
    assert machines
    for logical_id in machines:
        definition = sfn.describe_state_machine(stateMachineArn=cloud.stack.physical_id(logical_id))[
            "definition"
        ]
        assert "${" not in definition, f"{logical_id} has unsubstituted placeholders"
        json.loads(definition)


def test_a_state_machine_of_the_stack_really_executes(cloud: DeployedCloud) -> None:
    # Given the remap-eip runbook started the way the console does, for a target that holds no address
    runbook_input = json.loads((ROOT / "events" / "runbooks" / "remap-eip.json").read_text())
    # When it runs
    result = cloud.start_and_wait("RemapEipStateMachine", runbook_input, timeout=60)
    # Then the interpreter walked real states (Lambda tasks ran the handlers) to an end state
    assert result.status in {"SUCCEEDED", "FAILED"}, result.description
    types = [event["type"] for event in result.history]
    assert "LambdaFunctionSucceeded" in types or "TaskSucceeded" in types
    assert types[-1] in {"ExecutionSucceeded", "ExecutionFailed"}


def test_an_event_reaches_triage_and_its_runbook(cloud: DeployedCloud) -> None:
    # Given the manual remediation request sample
    event = json.loads((ROOT / "events" / "manual-remap-eip.json").read_text())
    # When it is put on the bus
    summary = cloud.send_event_and_wait(event)
    # Then the manual rule matched, the runbook ran to its end and rows were audited
    assert any("ManualRequest" in r["rule"] for r in summary.rules)
    assert [e.status for e in summary.executions] and all(e.status != "RUNNING" for e in summary.executions)
    assert summary.audit
    # And the recording saw the triage function's and the runbook's calls
    operations = {(r.service, r.operation) for r in cloud.recorded_requests()}
    assert ("events", "PutEvents") in operations and ("stepfunctions", "StartExecution") in operations
