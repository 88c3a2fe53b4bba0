"""Escalations as OpsCenter OpsItems and the pause they hold: what is pure, without AWS."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cfnlint.decode import decode

from selfheal import opscenter
from selfheal.audit import AuditRow
from selfheal.config import Settings
from selfheal.guards import paused
from selfheal.models import Mode, Phase
from selfheal.notify import Outcome, report_of
from tests.unit.test_template_iam import RESOURCES, ROOT

NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:123456789012:execution:selfheal-remap-eip:req-1"


def final_row(**fields: object) -> AuditRow:
    values = {
        "requestId": "req-1",
        "phase": Phase.FAILED,
        "targetKey": "i-0123456789abcdef0",
        "runbook": "remap-eip",
        "executionArn": ARN,
        "reason": "the standby is stopped",
        "error": {"error": "PreconditionFailed", "message": "i-0fedcba9876543210 is stopped"},
        "at": NOW,
    }
    return AuditRow.model_validate(values | fields)


def test_paused_an_open_ops_item_skips_naming_it_without_escalating_again():
    decision = paused(mode=Mode.ENFORCE, requested_dry_run=False, open_ops_item="oi-0123456789ab")
    assert decision is not None and not decision.proceed and not decision.escalate
    assert decision.guard == "paused"
    assert decision.skip_reason == "paused: OpsItem oi-0123456789ab is open; resolve it to re-arm"


def test_paused_no_open_ops_item_lets_the_run_on():
    assert paused(mode=Mode.ENFORCE, requested_dry_run=False, open_ops_item=None) is None


def test_paused_holds_dry_runs_too_and_keeps_the_mode():
    decision = paused(mode=Mode.DRY_RUN, requested_dry_run=False, open_ops_item="oi-0123456789ab")
    assert decision is not None and decision.dry_run and decision.mode is Mode.DRY_RUN


def test_paused_an_unreadable_opscenter_holds_the_run_and_escalates():
    decision = paused(mode=Mode.ENFORCE, requested_dry_run=False, open_ops_item=None, problem="AccessDenied")
    assert decision is not None and not decision.proceed and decision.escalate
    assert decision.guard == "pause-unknown" and "AccessDenied" in (decision.skip_reason or "")


def test_item_request_deduplicates_per_target_and_runbook_and_is_found_by_them():
    report = report_of(row=final_row(), outcome=Outcome.FAILED, escalate=True, evidence="INC-7: api down")
    params = opscenter.item_request(report, stack_name="selfheal-prod")
    data = params["OperationalData"]
    assert json.loads(data["/aws/dedup"]["Value"]) == {
        "dedupString": "selfheal#remap-eip#i-0123456789abcdef0"
    }
    assert data["selfheal:target"] == {"Type": "SearchableString", "Value": "remap-eip#i-0123456789abcdef0"}
    assert data["selfheal:requestId"]["Value"] == "req-1"
    assert data["selfheal:execution"]["Value"] == ARN
    assert data["selfheal:audit"]["Value"] == "selfheal audit --target i-0123456789abcdef0"
    assert json.loads(data["/aws/resources"]["Value"]) == [{"arn": ARN}]
    assert params["Source"] == "selfheal" and params["Category"] == "Availability"
    assert params["Severity"] == "2"  # failed: the target may be half-way
    assert params["Title"] == "selfheal FAILED: remap-eip i-0123456789abcdef0"
    assert params["Tags"] == [{"Key": "selfheal:stack", "Value": "selfheal-prod"}]
    # the e-mail's evidence
    assert "INC-7: api down" in params["Description"] and "PreconditionFailed" in params["Description"]
    assert "selfheal audit --target i-0123456789abcdef0" in params["Description"]


def test_item_request_keeps_within_opsitem_limits_whatever_the_report():
    calls = [
        AuditRow.model_validate(
            {
                "requestId": "req-1",
                "phase": Phase.ACTION,
                "targetKey": "i-0123456789abcdef0",
                "runbook": "remap-eip",
                "action": f"ec2:Call{n}",
                "outcome": "ok",
                "after": {"value": "x" * 80, "more": "y" * 80},
                "at": NOW,
            }
        )
        for n in range(400)
    ]
    report = report_of(row=final_row(), outcome=Outcome.FAILED, escalate=True, rows=calls)
    params = opscenter.item_request(report, stack_name="selfheal")
    assert len(params["Description"]) <= opscenter.MAX_DESCRIPTION
    assert params["Description"].endswith("selfheal:report)\n```")
    for key, value in params["OperationalData"].items():
        assert len(key) <= 128 and len(value["Value"].encode()) <= 20 * 1024, key


def test_item_request_a_skip_that_escalates_is_less_severe_than_a_failure():
    row = final_row(phase=Phase.SKIPPED, error=None, reason="healed, but it came back")
    report = report_of(row=row, outcome=Outcome.SKIPPED, escalate=True)
    assert opscenter.item_request(report, stack_name="s")["Severity"] == "3"


def test_settings_escalate_to_opscenter_is_off_unless_the_stack_says_true():
    assert Settings.from_env({"AUDIT_TABLE": "t"}).escalate_to_opscenter is False
    assert Settings.from_env({"AUDIT_TABLE": "t", "ESCALATE_TO_OPSCENTER": "true"}).escalate_to_opscenter
    assert not Settings.from_env({"AUDIT_TABLE": "t", "ESCALATE_TO_OPSCENTER": "false"}).escalate_to_opscenter


def test_template_opscenter_permissions_exist_only_when_the_parameter_says_true():
    template, _ = decode(str(ROOT / "template.yaml"))
    assert template["Parameters"]["EscalateToOpsCenter"]["Default"] == "false"
    assert template["Conditions"]["EscalatesToOpsCenter"] == {
        "Fn::Equals": [{"Ref": "EscalateToOpsCenter"}, "true"]
    }
    steps = RESOURCES["RunbookStepsFunction"]["Properties"]
    assert steps["Environment"]["Variables"]["ESCALATE_TO_OPSCENTER"] == {"Ref": "EscalateToOpsCenter"}
    wanted = {"ssm:CreateOpsItem", "ssm:AddTagsToResource", "ssm:DescribeOpsItems"}
    found = {}
    for statement in steps["Policies"][0]["Statement"]:
        if "Fn::If" in statement:
            condition, granted, otherwise = statement["Fn::If"]
            if set(granted["Action"]) & wanted:
                assert condition == "EscalatesToOpsCenter" and otherwise == {"Ref": "AWS::NoValue"}
                found |= {action: granted for action in granted["Action"]}
        else:
            assert not set(statement["Action"]) & wanted, statement
    assert set(found) == wanted
    # CreateOpsItem has no resource type: the stack's tag, and only it, is what IAM can require
    for action in ("ssm:CreateOpsItem", "ssm:AddTagsToResource"):
        condition = found[action]["Condition"]
        assert condition["StringEquals"] == {
            f"aws:RequestTag/{opscenter.STACK_TAG}": {"Ref": "AWS::StackName"}
        }
        assert condition["ForAllValues:StringEquals"] == {"aws:TagKeys": [opscenter.STACK_TAG]}
    assert found["ssm:AddTagsToResource"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:opsitem/*"
    }
