"""The EventBridge rules in template.yaml select exactly the sample events they should.

Patterns are read from template.yaml (Resources.TriageFunction.Properties.Events.<Name>, SAM
``EventBridgeRule``) and evaluated with moto's EventPattern, which implements $or, prefix,
anything-but, numeric, exists... like EventBridge does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from moto.events.models import EventPattern

from tests.events import event_names, load_event
from tools.lint_iam import Resolver

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

# The patterns the template is meant to carry; used only while template.yaml does not exist yet.
# Every rule takes the stack's own account and AcceptedAccountIds ("none" by default, which no
# account id equals).
ACCOUNTS = ["123456789012", "none"]
FALLBACK_PATTERNS: dict[str, dict[str, Any]] = {
    "AlarmStateChange": {
        "source": ["aws.cloudwatch"],
        "account": ACCOUNTS,
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {
            "$or": [
                {"state": {"value": ["ALARM"]}},
                {"state": {"value": ["OK"]}, "previousState": {"value": ["ALARM"]}},
            ]
        },
    },
    "HealthEvent": {
        "source": ["aws.health"],
        "account": ACCOUNTS,
        "detail-type": ["AWS Health Event"],
        "detail": {
            "service": ["EC2", "RDS", "SQS", "ROUTE53", "ELASTICLOADBALANCING", "AUTOSCALING"],
            "eventTypeCategory": ["issue", "scheduledChange"],
        },
    },
    "Ec2StateChange": {
        "source": ["aws.ec2"],
        "account": ACCOUNTS,
        "detail-type": ["EC2 Instance State-change Notification"],
        "detail": {"state": ["stopped", "terminated"]},
    },
    "RdsEvent": {
        "source": ["aws.rds"],
        "account": ACCOUNTS,
        "detail-type": ["RDS DB Instance Event", "RDS DB Cluster Event"],
        "detail": {"EventCategories": ["failure", "failover", "availability", "low storage"]},
    },
    "ManualRequest": {
        "source": ["selfheal.manual"],
        "account": ACCOUNTS,
        "detail-type": ["Remediation Requested", "Approval Answered"],
    },
}
RULES = set(FALLBACK_PATTERNS)

# Every EventBridge sample in events/ and the rules that must select it (all others must not).
EXPECTED: dict[str, set[str]] = {
    "alarm-status-check-failed": {"AlarmStateChange"},
    "alarm-metric-math": {"AlarmStateChange"},
    "alarm-anomaly-detection": {"AlarmStateChange"},
    "alarm-composite": {"AlarmStateChange"},
    "alarm-ok": {"AlarmStateChange"},  # OK after ALARM: failback / "healed" records
    "alarm-ok-from-insufficient-data": set(),
    "alarm-insufficient-data": set(),
    "alarm-config-change": set(),
    "health-ec2-retirement": {"HealthEvent"},
    "health-ec2-retirement-old-schema": {"HealthEvent"},
    "health-public-no-entities": {"HealthEvent"},
    "ec2-state-stopped": {"Ec2StateChange"},
    "ec2-state-running": set(),
    "rds-instance-failure": {"RdsEvent"},
    "rds-cluster-failover": {"RdsEvent"},
    "manual-remap-eip": {"ManualRequest"},
    "alarm-sqs-dlq-messages": {"AlarmStateChange"},
    "manual-redrive-dlq": {"ManualRequest"},
    "alarm-route53-health-check": {"AlarmStateChange"},
    "alarm-route53-health-check-forwarded": {"AlarmStateChange"},
    "alarm-route53-health-check-ok": {"AlarmStateChange"},
    "manual-flip-dns": {"ManualRequest"},
    "health-ec2-instance-store-degraded": {"HealthEvent"},
    "health-ec2-system-maintenance": {"HealthEvent"},
    "manual-replace-instance": {"ManualRequest"},
    "rds-instance-multi-az-failover-started": {"RdsEvent"},
    "rds-cluster-failover-failed": {"RdsEvent"},
    "alarm-db-primary-connections": {"AlarmStateChange"},
    "manual-promote-replica": {"ManualRequest"},
    "health-rds-issue": {"HealthEvent"},
}
# Samples that reach a function without EventBridge (no pattern applies to them).
NOT_EVENTBRIDGE = {"alarm-lambda-action", "alarm-sns"}


def _template_patterns() -> dict[str, dict[str, Any]]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, f"template.yaml does not parse: {matches}"
    events = template["Resources"]["TriageFunction"]["Properties"]["Events"]
    # Intrinsics (the stack's account) resolved as deployed in the samples' account, 123456789012.
    resolver = Resolver(template)
    return {
        name: resolver.resolve(event["Properties"]["Pattern"])
        for name, event in events.items()
        if event.get("Type") == "EventBridgeRule"
    }


@pytest.fixture(scope="module")
def patterns() -> dict[str, dict[str, Any]]:
    return _template_patterns() if TEMPLATE.exists() else FALLBACK_PATTERNS


def matching_rules(patterns: dict[str, dict[str, Any]], event: dict[str, Any]) -> set[str]:
    message: Any = event  # moto types it as its own TypedDict; the sample has that shape
    return {
        name
        for name, pattern in patterns.items()
        if EventPattern.load(json.dumps(pattern)).matches_event(message)
    }


def test_patterns_template_has_exactly_the_rules_this_table_covers(
    patterns: dict[str, dict[str, Any]],
) -> None:
    # A new TriageFunction rule needs its expectations here (and an old one removed from the table).
    assert set(patterns) == RULES


def test_patterns_table_covers_every_eventbridge_sample() -> None:
    # Given every sample in events/ / Then each is in the table or declared as not EventBridge
    samples = set(event_names())
    eventbridge = {name for name in samples if "detail-type" in load_event(name)}

    assert eventbridge == set(EXPECTED), "add the new sample to EXPECTED with the rules it must match"
    assert samples - eventbridge == NOT_EVENTBRIDGE


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_patterns_select_each_sample_with_exactly_the_expected_rules(
    patterns: dict[str, dict[str, Any]], name: str
) -> None:
    # Given a sample event / When every rule's pattern is evaluated
    matched = matching_rules(patterns, load_event(name))

    # Then exactly the expected rules select it
    assert matched == EXPECTED[name]


def _variant(name: str, changes: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    for dotted, value in changes.items():
        node = event
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    return event


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        # Sources other than the one each rule is about.
        ("alarm-status-check-failed", {"source": "custom.monitoring"}),
        ("ec2-state-stopped", {"source": "aws.autoscaling"}),
        ("manual-remap-eip", {"source": "selfheal"}),  # our own outcome events must not loop back
        ("manual-remap-eip", {"source": "selfheal", "detail-type": "Remediation Succeeded"}),
        ("manual-remap-eip", {"detail-type": "Remediation Succeeded"}),
        # Alarm transitions that are not faults (nor recoveries from one).
        ("alarm-status-check-failed", {"detail.state.value": "INSUFFICIENT_DATA"}),
        ("alarm-ok", {"detail.previousState.value": "INSUFFICIENT_DATA"}),
        # Health categories and services we do not heal.
        ("health-ec2-retirement", {"detail.eventTypeCategory": "accountNotification"}),
        ("health-ec2-retirement", {"detail.service": "S3"}),
        ("health-ec2-retirement", {"detail-type": "AWS Health Abuse Event"}),
        # EC2 states on the way up, RDS categories that are routine.
        ("ec2-state-stopped", {"detail.state": "pending"}),
        ("ec2-state-stopped", {"detail.state": "stopping"}),
        ("rds-instance-failure", {"detail.EventCategories": ["notification"]}),
        ("rds-instance-failure", {"detail-type": "RDS DB Snapshot Event"}),
        # Another account's events (a bus that receives them, a rule target shared across accounts).
        ("alarm-status-check-failed", {"account": "210987654321"}),
        ("health-ec2-retirement", {"account": "210987654321"}),
        ("ec2-state-stopped", {"account": "210987654321"}),
        ("rds-instance-failure", {"account": "210987654321"}),
        ("manual-remap-eip", {"account": "210987654321"}),
    ],
)
def test_patterns_do_not_select_non_fault_events(
    patterns: dict[str, dict[str, Any]], name: str, changes: dict[str, Any]
) -> None:
    assert matching_rules(patterns, _variant(name, changes)) == set()


@pytest.mark.parametrize(
    ("name", "changes", "rule"),
    [
        ("ec2-state-stopped", {"detail.state": "terminated"}, "Ec2StateChange"),
        ("rds-instance-failure", {"detail.EventCategories": ["notification", "low storage"]}, "RdsEvent"),
        (
            "health-ec2-retirement",
            {"detail.service": "RDS", "detail.eventTypeCategory": "issue"},
            "HealthEvent",
        ),
        ("alarm-insufficient-data", {"detail.state.value": "ALARM"}, "AlarmStateChange"),
    ],
)
def test_patterns_select_other_fault_variants(
    patterns: dict[str, dict[str, Any]], name: str, changes: dict[str, Any], rule: str
) -> None:
    assert matching_rules(patterns, _variant(name, changes)) == {rule}


def test_patterns_template_matches_the_intended_patterns_while_both_exist(
    patterns: dict[str, dict[str, Any]],
) -> None:
    # The fallback is what this table was written against; if the template changes a pattern,
    # update FALLBACK_PATTERNS and the expectations together.
    assert patterns == FALLBACK_PATTERNS
