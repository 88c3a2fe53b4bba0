"""The Lambda handlers, loaded as Lambda loads them, with the environment the template gives them."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

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


def _finish_event(clients, guard: dict[str, Any]) -> dict[str, Any]:
    execution = running_execution(clients, "remap-eip")
    request = {
        "requestId": execution["name"],
        "runbook": "remap-eip",
        "target": {"instanceId": "i-0123456789abcdef0"},
        "targetKey": "i-0123456789abcdef0",
        "params": {},
        "dryRun": False,
        "reason": "test",
        "actor": {"kind": "manual"},
    }
    return {
        "step": "finish",
        "runbook": "remap-eip",
        "execution": execution,
        "state": {"name": "Record: skipped", "enteredTime": "2026-11-22T03:00:00.000Z"},
        "request": request,
        "outcome": "skipped",
        "guard": guard,
    }


def _emitted(out: str) -> dict[str, dict[str, str]]:
    """The EMF lines printed: metric name -> its dimensions (name -> value)."""
    metrics = {}
    for line in out.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        record = json.loads(line)
        (directive,) = record["_aws"]["CloudWatchMetrics"]
        (dimensions,) = directive["Dimensions"]
        for metric in directive["Metrics"]:
            metrics[metric["Name"]] = {d: record[d] for d in dimensions}
    return metrics


def test_steps_handler_a_run_the_breaker_refused_counts_as_skipped_by_reason_and_breaker_open(
    env, clients, capsys, monkeypatch
) -> None:
    # Given the finish step of a run the breaker guard refused, and the service name the template sets
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "selfheal")
    module = load_handler_module("runbook_steps")
    guard = {"proceed": False, "guard": "breaker", "skip_reason": "breaker open", "escalate": True}
    # When the steps handler records its end
    result = module.lambda_handler(_finish_event(clients, guard), FakeContext())
    # Then the output names the guard, and the metrics the dashboard graphs are printed with the
    # dimensions it graphs them by (tests/unit/test_dashboard.py reads those from the source)
    assert (result["outcome"], result["skipReason"]) == ("skipped", "breaker"), result
    emitted = _emitted(capsys.readouterr().out)
    assert emitted["RemediationSkipped"] == {"runbook": "remap-eip", "service": "selfheal"}
    assert emitted["RemediationSkippedByReason"] == {"reason": "breaker", "service": "selfheal"}
    assert emitted["BreakerOpen"] == {"runbook": "remap-eip", "service": "selfheal"}
    assert "BudgetExhausted" not in emitted


def test_steps_handler_prints_no_metric_when_metrics_are_disabled(env, clients, capsys, monkeypatch) -> None:
    # Given POWERTOOLS_METRICS_DISABLED (single_metric itself ignores it in Powertools 3)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    module = load_handler_module("runbook_steps")
    # When a skipped run finishes
    module.lambda_handler(_finish_event(clients, {"proceed": False, "guard": "budget"}), FakeContext())
    # Then no metric line is printed
    assert _emitted(capsys.readouterr().out) == {}
