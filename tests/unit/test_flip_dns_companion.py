"""companion/route53-health-alarms.yaml: its alarms are the ones the policy maps to flip-dns, and its
forwarding rule selects exactly their state change events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cfnlint.decode import decode
from moto.events.models import EventPattern

from selfheal.policy import decide, load_policy
from selfheal.signals import parse_event
from tests.events import load_event

COMPANION, _ = decode(str(Path(__file__).parents[2] / "companion/route53-health-alarms.yaml"))
RESOURCES = COMPANION["Resources"]  # type: ignore[index]


def forwarding_pattern() -> EventPattern:
    """The rule's pattern with the default AlarmNamePrefix."""
    prefix = COMPANION["Parameters"]["AlarmNamePrefix"]["Default"]  # type: ignore[index]
    text = json.dumps(RESOURCES["ForwardHealthCheckAlarms"]["Properties"]["EventPattern"])
    text = text.replace('{"Fn::Sub": "${AlarmNamePrefix}-"}', json.dumps(f"{prefix}-"))
    return EventPattern.load(text)


@pytest.mark.parametrize(
    "sample,forwarded",
    [
        ("alarm-route53-health-check", True),
        ("alarm-route53-health-check-ok", True),
        ("alarm-status-check-failed", False),
        ("ec2-state-stopped", False),
    ],
)
def test_companion_forwards_only_route53_health_check_alarm_events(sample, forwarded):
    assert forwarding_pattern().matches_event(load_event(sample)) is forwarded


def test_companion_alarm_is_what_the_policy_maps_to_flip_dns():
    (_, _, body) = RESOURCES["Fn::ForEach::HealthCheckAlarms"]
    alarm = next(iter(body.values()))["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Route53", "HealthCheckStatus")
    assert [d["Name"] for d in alarm["Dimensions"]] == ["HealthCheckId"]
    event = load_event("alarm-route53-health-check")
    (decision,) = decide(load_policy(), parse_event(event))  # type: ignore[misc]
    assert decision.runbook == "flip-dns"


def test_companion_forwarding_exists_only_outside_us_east_1():
    assert RESOURCES["ForwardHealthCheckAlarms"]["Condition"] == "Forward"
    assert COMPANION["Conditions"]["Forward"] == {  # type: ignore[index]
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SelfhealRegion"}, "us-east-1"]}]
    }
