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


def test_triage_handler_sns_wrapped_alarm_is_triaged_too(env, clients):
    module = load_handler_module("triage")
    result = module.lambda_handler(load_event("alarm-sns"), FakeContext())
    assert result["outcomes"] and all(o["decision"] in {"started", "ignored"} for o in result["outcomes"])


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
