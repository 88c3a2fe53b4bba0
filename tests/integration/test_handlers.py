"""The Lambda handlers, loaded as Lambda loads them, with the environment the template gives them."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from types import ModuleType

import pytest

from tests.events import load_event
from tests.integration.conftest import ROOT, running_execution


@dataclass
class FakeContext:
    function_name: str = "fn"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    aws_request_id: str = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_handler_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"handler_{name}", ROOT / "functions" / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env(monkeypatch, settings, clients):
    machine = clients.stepfunctions.create_state_machine(
        name="remap-eip",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    values = {
        "AUDIT_TABLE": settings.audit_table,
        "LEASE_TABLE": settings.lease_table,
        "MODE_PARAMETER": settings.mode_parameter,
        "TOPIC_ARN": settings.topic_arn,
        "STATE_MACHINE_REMAP_EIP": machine,
        "POWERTOOLS_METRICS_NAMESPACE": "SelfhealTest",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_triage_handler_starts_the_runbook_for_an_alarm(env, clients):
    module = load_handler_module("triage")
    result = module.lambda_handler(load_event("alarm-status-check-failed"), FakeContext())
    assert [o["decision"] for o in result["outcomes"]] == ["started"]


def _executions(clients, machine: str) -> list[str]:
    return [e["name"] for e in clients.stepfunctions.list_executions(stateMachineArn=machine)["executions"]]


@pytest.mark.parametrize("sample", ["alarm-sns", "alarm-lambda-action"])
def test_triage_handler_sns_wrapped_and_alarm_action_alarms_start_the_runbook(env, clients, sample):
    # Given the status-check alarm as the alarm topic (SNS) or an alarm action (Lambda) delivers it
    module = load_handler_module("triage")
    # When triage is invoked with it
    result = module.lambda_handler(load_event(sample), FakeContext())
    # Then it is unwrapped and acted on as the EventBridge shape is: remap-eip started, not ignored
    (outcome,) = result["outcomes"]
    assert (outcome["decision"], outcome["runbook"]) == ("started", "remap-eip"), outcome
    assert _executions(clients, env["STATE_MACHINE_REMAP_EIP"]) == [outcome["request_id"]]


def test_triage_handler_one_alarm_transition_in_three_envelopes_starts_one_execution(env, clients):
    # Given one transition of one alarm, as EventBridge, the alarm topic and an alarm action send it
    module = load_handler_module("triage")
    samples = ["alarm-status-check-failed", "alarm-sns", "alarm-lambda-action"]
    # When all three reach triage
    outcomes = [o for s in samples for o in module.lambda_handler(load_event(s), FakeContext())["outcomes"]]
    # Then the first starts remap-eip and the other two are the same request, seen as duplicates
    assert [o["decision"] for o in outcomes] == ["started", "duplicate", "duplicate"], outcomes
    assert len({o["request_id"] for o in outcomes}) == 1
    assert _executions(clients, env["STATE_MACHINE_REMAP_EIP"]) == [outcomes[0]["request_id"]]


def test_steps_handler_validate_rejects_bad_console_input_with_a_named_error(env, clients, settings):
    module = load_handler_module("runbook_steps")
    event = {
        "step": "validate",
        "runbook": "remap-eip",
        "execution": running_execution(clients, "remap-eip"),
        "state": {"name": "Validate the input", "enteredTime": "2026-11-22T03:00:00.000Z"},
        "input": {"target": {"instanceId": "i-0123456789abcdef0"}, "dryRun": "yes"},
    }
    from selfheal.errors import InvalidInput

    with pytest.raises(InvalidInput, match="reason"):
        module.lambda_handler(event, FakeContext())
    items = clients.dynamodb.scan(TableName=settings.audit_table)["Items"]
    assert [i["phase"]["S"] for i in items] == ["rejected"]


def test_every_outcome_a_run_can_end_with_has_a_valid_metric_name(env) -> None:
    """Each outcome of a run's output is counted under a CloudWatch metric name (no hyphen), and
    none is missed (a KeyError would fail the finish step that emits it)."""
    import re

    from selfheal.steps import RUN_OUTCOMES

    module = load_handler_module("runbook_steps")
    assert set(module.METRIC_OF_OUTCOME) == set(RUN_OUTCOMES)
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in module.METRIC_OF_OUTCOME.values())
