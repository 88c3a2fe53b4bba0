"""Triage against moto: decisions start executions once, and every decision is an audit row."""

import json

import pytest

from selfheal.audit import AuditTrail, item_to_json
from selfheal.policy import load_policy
from selfheal.steps import StepEvent, Steps
from selfheal.triage import Triage, execution_name
from tests.events import load_event
from tests.integration.conftest import running_execution

PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


@pytest.fixture
def triage(clients, settings):
    arn = clients.stepfunctions.create_state_machine(
        name="selfheal-remap-eip", definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    return Triage(settings.model_copy(update={"state_machines": {"remap-eip": arn}}), clients, load_policy())


def audit_rows(clients, settings):
    items = clients.dynamodb.scan(TableName=settings.audit_table)["Items"]
    return [item_to_json(i) for i in items]


def executions(clients):
    (machine,) = clients.stepfunctions.list_state_machines()["stateMachines"]
    return clients.stepfunctions.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]


def test_triage_status_check_alarm_starts_remap_eip_once_for_three_deliveries(triage, clients, settings):
    event = load_event("alarm-status-check-failed")
    outcomes = [o for _ in range(3) for o in triage.handle(event)]
    assert [o.decision for o in outcomes] == ["started", "duplicate", "duplicate"]
    assert len(executions(clients)) == 1
    received = [r for r in audit_rows(clients, settings) if r["phase"] == "received"]
    assert len(received) == 1 and received[0]["runbook"] == "remap-eip"
    assert received[0]["actor"]["kind"] == "automatic" and received[0]["actor"]["eventId"] == event["id"]


def test_triage_execution_name_is_deterministic_and_valid():
    a = execution_name("remap-eip", "event-1", {"instanceId": "i-1"})
    assert a == execution_name("remap-eip", "event-1", {"instanceId": "i-1"})
    assert a != execution_name("remap-eip", "event-2", {"instanceId": "i-1"})
    assert len(a) <= 80 and all(c.isalnum() or c in "-_" for c in a)


@pytest.mark.parametrize("sample", ["alarm-ok", "ec2-state-running", "health-public-no-entities"])
def test_triage_signals_no_rule_acts_on_are_ignored_with_a_reason(triage, clients, settings, sample):
    (outcome,) = triage.handle(load_event(sample))
    assert outcome.decision == "ignored" and outcome.reason
    assert executions(clients) == []
    (row,) = audit_rows(clients, settings)
    assert row["phase"] == "ignored" and row["reason"]


@pytest.mark.parametrize("raw", [None, {"hello": "world"}, {"source": "aws.ec2", "detail-type": 3}, "junk"])
def test_triage_malformed_events_are_ignored_never_raised(triage, clients, settings, raw):
    (outcome,) = triage.handle(raw)
    assert outcome.decision == "ignored"
    assert executions(clients) == []
    assert [r["phase"] for r in audit_rows(clients, settings)] == ["ignored"]


def test_triage_manual_request_with_a_bad_field_is_rejected_and_changes_nothing(triage, clients, settings):
    event = load_event("manual-remap-eip")
    event["detail"]["target"] = {"instanceId": "not-an-instance"}
    (outcome,) = triage.handle(event)
    assert outcome.decision == "rejected" and "target.instanceId" in (outcome.reason or "")
    assert executions(clients) == []
    (row,) = audit_rows(clients, settings)
    assert row["phase"] == "rejected" and row["error"]["error"] == "InvalidInput"


def test_triage_manual_request_starts_the_runbook_as_the_operator_wrote_it(triage, clients, settings):
    event = load_event("manual-remap-eip")
    (outcome,) = triage.handle(event)
    assert outcome.decision == "started"
    (execution,) = executions(clients)
    body = json.loads(
        clients.stepfunctions.describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert body["target"] == event["detail"]["target"] and body["actor"]["kind"] == "manual"
    trail = AuditTrail(clients.dynamodb, settings.audit_table)
    assert [r.phase.value for r in trail.for_request(outcome.request_id)] == ["received"]


@pytest.mark.parametrize(
    ("accepted", "account", "decision"),
    [
        ("none", "123456789012", "started"),  # the stack's own account
        ("none", "210987654321", "ignored"),  # another account
        ("111111111111,210987654321", "210987654321", "started"),  # one the stack was told to accept
    ],
)
def test_triage_acts_only_on_signals_of_accepted_accounts(
    triage, clients, settings, accepted, account, decision
):
    triage.settings = triage.settings.model_copy(
        update={"account_id": "123456789012", "accepted_account_ids": accepted}
    )
    event = load_event("alarm-status-check-failed")
    event["account"] = account
    (outcome,) = triage.handle(event)
    assert outcome.decision == decision
    assert len(executions(clients)) == (decision == "started")
    if decision == "ignored":
        assert account in outcome.reason and "123456789012" in outcome.reason


def _validate(clients, settings, execution_arn, execution_input):
    event = StepEvent.model_validate(
        {
            "step": "validate",
            "runbook": "remap-eip",
            "execution": {"arn": execution_arn, "name": execution_arn.rsplit(":", 1)[-1]},
            "state": {"name": "Validate the input", "enteredTime": "2026-11-22T03:00:00.000Z"},
            "input": execution_input,
        }
    )
    return Steps(settings, clients).run(event)["actor"]


def test_triage_actor_is_taken_only_for_the_execution_and_input_triage_started(triage, clients, settings):
    # Given a run triage started for an alarm
    (outcome,) = triage.handle(load_event("alarm-status-check-failed"))
    (execution,) = executions(clients)
    sent = json.loads(clients.stepfunctions.describe_execution(executionArn=outcome.execution_arn)["input"])
    # Then its own input is vouched for by triage's received row: triage's actor, verified
    assert _validate(clients, settings, execution["executionArn"], sent)["kind"] == "automatic"
    # But the same name with another input (a start that beat triage to the name), or another
    # execution claiming the same actor, is a direct start that merely claims it
    changed = {**sent, "params": {"standbyInstanceId": "i-0fffffffffffffff0"}}
    actor = _validate(clients, settings, execution["executionArn"], changed)
    assert (actor["kind"], actor["claimed"], actor["rule"]) == ("direct", sent["actor"], None)
    other = running_execution(clients, "remap-eip", "someone-elses")["arn"]
    assert _validate(clients, settings, other, sent)["kind"] == "direct"
