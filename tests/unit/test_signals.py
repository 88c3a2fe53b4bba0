"""Signals: every sample in events/ parses to the expected Signal; nothing ever raises."""

from __future__ import annotations

import copy
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from selfheal.errors import InvalidInput
from selfheal.signals import (
    AlarmState,
    AlarmType,
    Envelope,
    Signal,
    SignalKind,
    Unrecognised,
    parse_event,
    parse_records,
    resource_id,
)
from selfheal.steps import parse_request
from tests.events import event_names, load_event

ACCOUNT = "123456789012"
REGION = "us-east-1"
WEB_1 = "i-0a1b2c3d4e5f60001"
WEB_2 = "i-0a1b2c3d4e5f60002"
STATUS_ALARM = "web-1-status-check-failed"


def parse_signal(name: str) -> Signal:
    result = parse_event(load_event(name))
    assert isinstance(result, Signal), result
    return result


# ------------------------------------------------------------------------------------------ alarms


def test_parse_event_single_metric_alarm_gives_metric_and_dimensions() -> None:
    # Given an EventBridge alarm state change for an EC2 status check
    # When it is parsed
    signal = parse_signal("alarm-status-check-failed")

    # Then the signal names the alarm, the transition and the metric it is about
    assert signal.kind == SignalKind.ALARM
    assert signal.envelope == Envelope.EVENTBRIDGE
    assert signal.event_id == "5f3c2a8e-7d41-4e0b-9a7c-1b2d3e4f5a61"
    assert signal.detail_type == "CloudWatch Alarm State Change"
    assert (signal.account, signal.region) == (ACCOUNT, REGION)
    assert signal.time == datetime(2026, 11, 21, 23, 59, 40, tzinfo=UTC)
    assert signal.resources == (f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{STATUS_ALARM}",)
    alarm = signal.alarm
    assert alarm is not None
    assert alarm.name == STATUS_ALARM
    assert (alarm.state, alarm.previous_state) == (AlarmState.ALARM, AlarmState.OK)
    assert alarm.alarm_type == AlarmType.METRIC
    assert (alarm.namespace, alarm.metric_name) == ("AWS/EC2", "StatusCheckFailed_System")
    assert alarm.dimensions == {"InstanceId": WEB_1}
    assert alarm.reason.startswith("Threshold Crossed")
    assert (signal.health, signal.ec2_state, signal.rds, signal.manual) == (None, None, None, None)


@pytest.mark.parametrize(
    ("name", "state", "previous"),
    [
        ("alarm-ok", AlarmState.OK, AlarmState.ALARM),
        ("alarm-ok-from-insufficient-data", AlarmState.OK, AlarmState.INSUFFICIENT_DATA),
        ("alarm-insufficient-data", AlarmState.INSUFFICIENT_DATA, AlarmState.ALARM),
    ],
)
def test_parse_event_alarm_transitions_keep_state_and_previous_state(
    name: str, state: AlarmState, previous: AlarmState
) -> None:
    # Given an alarm transition other than to ALARM / When parsed
    alarm = parse_signal(name).alarm

    # Then both ends of the transition are kept (policy decides what to do with them)
    assert alarm is not None
    assert (alarm.state, alarm.previous_state) == (state, previous)


def test_parse_event_metric_math_alarm_shares_namespace_and_dimensions() -> None:
    # Given a metric math alarm summing two metrics of one instance
    alarm = parse_signal("alarm-metric-math").alarm

    # Then it is typed metric-math; the common namespace and dimension are kept, not a metric name
    assert alarm is not None
    assert alarm.alarm_type == AlarmType.METRIC_MATH
    assert alarm.namespace == "AWS/EC2"
    assert alarm.metric_name is None
    assert alarm.dimensions == {"InstanceId": WEB_1}
    assert [m.id for m in alarm.metrics] == ["e1", "m1", "m2"]
    assert alarm.metrics[0].expression == "SUM(METRICS())"
    assert {m.metric_name for m in alarm.metrics[1:]} == {"NetworkIn", "NetworkOut"}
    assert alarm.previous_state == AlarmState.INSUFFICIENT_DATA


def test_parse_event_anomaly_detection_alarm_is_about_the_banded_metric() -> None:
    alarm = parse_signal("alarm-anomaly-detection").alarm

    assert alarm is not None
    assert alarm.alarm_type == AlarmType.ANOMALY_DETECTION
    assert (alarm.namespace, alarm.metric_name) == ("AWS/EC2", "CPUUtilization")
    assert alarm.dimensions == {"InstanceId": WEB_1}
    assert alarm.metrics[1].expression == "ANOMALY_DETECTION_BAND(m1, 0.8)"


def test_parse_event_composite_alarm_keeps_rule_and_no_metric() -> None:
    alarm = parse_signal("alarm-composite").alarm

    assert alarm is not None
    assert alarm.alarm_type == AlarmType.COMPOSITE
    assert alarm.alarm_rule == "ALARM(web-1-status-check-failed) OR ALARM(web-1-network-traffic-too-high)"
    assert (alarm.namespace, alarm.metric_name, alarm.dimensions, alarm.metrics) == (None, None, {}, ())


def test_parse_event_alarm_configuration_change_is_unrecognised_with_reason() -> None:
    # Given an alarm configuration change (same source, another detail-type)
    result = parse_event(load_event("alarm-config-change"))

    # Then it is not a fault: Unrecognised, with the envelope ids for the audit row
    assert isinstance(result, Unrecognised)
    assert "configuration change" in result.reason
    assert result.event_id == "c0ad915f-e4b8-4f72-a1e3-8c9eafb0c1d8"
    assert result.source == "aws.cloudwatch"
    assert result.detail_type == "CloudWatch Alarm Configuration Change"


def test_parse_event_lambda_alarm_action_gives_alarm_signal_with_derived_id() -> None:
    # Given the payload CloudWatch sends when an alarm action invokes Lambda directly
    signal = parse_signal("alarm-lambda-action")

    # Then it is the same alarm as the EventBridge shape, with an id derived from its content
    assert signal.envelope == Envelope.LAMBDA_ALARM_ACTION
    assert signal.source == "aws.cloudwatch"
    assert signal.event_id.startswith("alarm-")
    assert (signal.account, signal.region) == (ACCOUNT, REGION)
    assert signal.time == datetime(2026, 11, 21, 23, 59, 40, 112000, tzinfo=UTC)
    alarm = signal.alarm
    assert alarm is not None
    assert alarm.arn == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{STATUS_ALARM}"
    assert (alarm.state, alarm.previous_state, alarm.alarm_type) == (
        AlarmState.ALARM,
        AlarmState.OK,
        AlarmType.METRIC,
    )
    assert (alarm.namespace, alarm.metric_name, alarm.dimensions) == (
        "AWS/EC2",
        "StatusCheckFailed_System",
        {"InstanceId": WEB_1},
    )


def test_parse_event_sns_alarm_reads_classic_alarm_json() -> None:
    # Given a Lambda SNS event whose message is the classic alarm notification
    signal = parse_signal("alarm-sns")

    # Then the Trigger's metric and [{name, value}] dimensions become the alarm's metric
    assert signal.envelope == Envelope.SNS
    assert signal.region == REGION  # from the ARN, not the display name "US East (N. Virginia)"
    assert signal.account == ACCOUNT
    alarm = signal.alarm
    assert alarm is not None
    assert alarm.name == STATUS_ALARM
    assert (alarm.state, alarm.previous_state) == (AlarmState.ALARM, AlarmState.OK)
    assert (alarm.namespace, alarm.metric_name) == ("AWS/EC2", "StatusCheckFailed_System")
    assert alarm.dimensions == {"InstanceId": WEB_1}
    assert alarm.metrics[0].stat == "MAXIMUM"


def test_parse_event_sns_metric_math_trigger_reads_metrics_list() -> None:
    # Given an SNS alarm whose Trigger has Metrics (metric math) instead of MetricName
    event = load_event("alarm-sns")
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    message["Trigger"] = {
        "Metrics": [
            {"Expression": "m1+m2", "Id": "e1", "Label": "total", "ReturnData": True},
            {
                "Id": "m1",
                "MetricStat": {
                    "Metric": {
                        "Dimensions": [{"value": WEB_1, "name": "InstanceId"}],
                        "MetricName": "NetworkIn",
                        "Namespace": "AWS/EC2",
                    },
                    "Period": 300,
                    "Stat": "Maximum",
                },
                "ReturnData": False,
            },
        ]
    }
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)

    # When parsed
    result = parse_event(event)

    # Then it is a metric-math alarm about the instance
    assert isinstance(result, Signal) and result.alarm is not None
    assert result.alarm.alarm_type == AlarmType.METRIC_MATH
    assert result.alarm.dimensions == {"InstanceId": WEB_1}


def test_parse_event_duplicate_deliveries_get_the_same_event_id() -> None:
    # Given the same transition delivered twice by SNS (new MessageId) and once as a Lambda action
    first = load_event("alarm-sns")
    second = copy.deepcopy(first)
    second["Records"][0]["Sns"]["MessageId"] = "another-delivery"
    second["Records"][0]["Sns"]["Timestamp"] = "2026-11-21T23:59:41.000Z"

    # When parsed
    ids = {
        result.event_id
        for result in (
            parse_event(first),
            parse_event(second),
            parse_event(load_event("alarm-lambda-action")),
        )
        if isinstance(result, Signal)
    }

    # Then they share one id (one execution name), and a later transition gets another
    assert len(ids) == 1
    later = load_event("alarm-lambda-action")
    later["alarmData"]["state"]["timestamp"] = "2026-11-22T01:00:00.000+0000"
    result = parse_event(later)
    assert isinstance(result, Signal)
    assert result.event_id not in ids


def test_signal_dedupe_id_is_the_same_for_one_transition_on_every_envelope() -> None:
    # Given one alarm transition delivered by EventBridge, SNS and a Lambda alarm action
    signals = [
        parse_signal(name) for name in ("alarm-status-check-failed", "alarm-sns", "alarm-lambda-action")
    ]

    # Then their event ids differ by envelope but the dedupe id (the execution name key) is shared
    assert len({s.event_id for s in signals}) == 2  # EventBridge's own id; one derived for the others
    assert len({s.dedupe_id for s in signals}) == 1
    assert signals[0].alarm is not None and signals[0].alarm.arn == signals[1].resources[0]


def test_signal_dedupe_id_is_the_event_id_for_non_alarm_signals() -> None:
    signal = parse_signal("ec2-state-stopped")

    assert signal.dedupe_id == signal.event_id


def test_parse_records_sns_batch_gives_one_result_per_record() -> None:
    # Given an SNS event with two records, the second not an alarm
    event = load_event("alarm-sns")
    other = copy.deepcopy(event["Records"][0])
    other["Sns"]["Message"] = "hello"
    event["Records"].append(other)

    # When parsed as records / as one event
    results = parse_records(event)
    single = parse_event(event)

    # Then each record has its own result; parse_event refuses the batch and says why
    assert [type(r) for r in results] == [Signal, Unrecognised]
    assert isinstance(single, Unrecognised) and "parse_records" in single.reason


def _sns_with(message: dict[str, object]) -> dict[str, object]:
    event = load_event("alarm-sns")
    event["Records"][0]["Sns"]["Message"] = json.dumps(message)
    return event


def test_parse_event_sns_message_shaped_like_an_eventbridge_event_is_not_read_as_one() -> None:
    # Given an AWS Health event published to the alarm topic (EventBridge would refuse its source)
    result = parse_event(_sns_with(load_event("health-ec2-retirement")))

    # Then it is no signal at all
    assert isinstance(result, Unrecognised) and "no AlarmName" in result.reason


def test_parse_event_sns_alarm_account_is_its_arns_and_a_contradiction_is_refused() -> None:
    message = json.loads(load_event("alarm-sns")["Records"][0]["Sns"]["Message"])
    foreign = {**message, "AlarmArn": message["AlarmArn"].replace(ACCOUNT, "210987654321")}

    # Claiming this account with another's alarm ARN: refused, and the reason names both
    forged = parse_event(_sns_with(foreign))
    assert isinstance(forged, Unrecognised) and ACCOUNT in forged.reason and "210987654321" in forged.reason
    # Without the claim, the ARN's account is the signal's
    bare = parse_event(_sns_with({k: v for k, v in foreign.items() if k != "AWSAccountId"}))
    assert isinstance(bare, Signal) and bare.account == "210987654321"


def test_parse_records_non_sns_event_gives_one_result() -> None:
    results = parse_records(load_event("alarm-status-check-failed"))

    assert len(results) == 1 and isinstance(results[0], Signal)


# ------------------------------------------------------------------------------------------ health


def test_parse_event_health_current_schema_reads_scope_status_pages_and_entities() -> None:
    signal = parse_signal("health-ec2-retirement")

    health = signal.health
    assert signal.kind == SignalKind.HEALTH
    assert health is not None
    assert health.service == "EC2"
    assert health.event_type_code == "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    assert (health.category, health.scope, health.status) == (
        "scheduledChange",
        "ACCOUNT_SPECIFIC",
        "upcoming",
    )
    assert (health.page, health.total_pages) == (1, 1)  # "1" strings in the event
    assert health.affected_account == ACCOUNT
    assert health.communication_id == "1234abc01232a4012345678-1"
    assert health.start_time == datetime(2026, 12, 5, 13, 19, 3, tzinfo=UTC)
    assert health.description.startswith("EC2 has detected degradation")
    assert [(e.value, e.status) for e in health.affected_entities] == [
        (WEB_1, "PENDING"),
        (f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0a1b2c3d4e5f60003", "IMPAIRED"),
        ("i-0a1b2c3d4e5f60004", "RESOLVED"),
    ]
    assert [e.resource_id for e in health.affected_entities] == [
        WEB_1,
        "i-0a1b2c3d4e5f60003",
        "i-0a1b2c3d4e5f60004",
    ]


def test_parse_event_health_old_schema_has_no_scope_status_and_keeps_tags() -> None:
    health = parse_signal("health-ec2-retirement-old-schema").health

    assert health is not None
    assert (health.scope, health.status, health.page, health.total_pages) == (None, None, 1, 1)
    assert len(health.affected_entities) == 1
    entity = health.affected_entities[0]
    assert (entity.value, entity.status) == (WEB_1, None)
    assert entity.tags == {"Name": "web-1", "selfheal:managed": "true"}


def test_parse_event_health_public_event_has_no_entities() -> None:
    signal = parse_signal("health-public-no-entities")

    assert signal.health is not None
    assert signal.health.scope == "PUBLIC"
    assert signal.health.affected_entities == ()
    assert signal.resources == ()


def test_parse_event_health_without_resources_field_parses() -> None:
    # Given a Health event without the optional top-level "resources" (as in the AWS sample)
    event = load_event("health-ec2-retirement")
    del event["resources"]

    result = parse_event(event)

    assert isinstance(result, Signal) and result.resources == ()


# --------------------------------------------------------------------------------------- ec2 / rds


@pytest.mark.parametrize(
    ("name", "state"), [("ec2-state-stopped", "stopped"), ("ec2-state-running", "running")]
)
def test_parse_event_ec2_state_change_gives_instance_and_state(name: str, state: str) -> None:
    signal = parse_signal(name)

    assert signal.kind == SignalKind.EC2_STATE
    assert signal.ec2_state is not None
    assert (signal.ec2_state.instance_id, signal.ec2_state.state) == (WEB_1, state)


def test_parse_event_rds_instance_event_reads_event_id_and_categories() -> None:
    signal = parse_signal("rds-instance-failure")

    rds = signal.rds
    assert signal.kind == SignalKind.RDS_EVENT
    assert rds is not None
    assert (rds.source_type, rds.source_id, rds.rds_event_id) == (
        "DB_INSTANCE",
        "orders-db",
        "RDS-EVENT-0031",
    )
    assert rds.source_arn == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-db"
    assert rds.categories == ("failure",)
    assert rds.message.startswith("The DB instance has failed")


def test_parse_event_rds_cluster_event_is_an_rds_signal() -> None:
    signal = parse_signal("rds-cluster-failover")

    assert signal.detail_type == "RDS DB Cluster Event"
    assert signal.rds is not None
    assert (signal.rds.source_type, signal.rds.source_id, signal.rds.categories) == (
        "CLUSTER",
        "orders-aurora",
        ("failover",),
    )


# ------------------------------------------------------------------------------------------ manual


def test_parse_event_manual_request_keeps_runbook_input_and_requester() -> None:
    signal = parse_signal("manual-remap-eip")

    manual = signal.manual
    assert signal.kind == SignalKind.MANUAL
    assert manual is not None
    assert manual.runbook == "remap-eip"
    assert manual.requested_by == "alice"
    assert manual.input == {
        "target": {"instanceId": WEB_1},
        "params": {"standbyInstanceId": WEB_2},
        "dryRun": False,
        "reason": "web-1 unreachable since 23:58 (INC-4711); move its Elastic IP to web-2",
    }


def test_parse_event_manual_request_is_passed_on_as_written_for_the_runbook_to_check() -> None:
    """No default reason, no field dropped: the runbook refuses what the console would refuse."""
    event = load_event("manual-remap-eip")
    del event["detail"]["reason"]
    del event["detail"]["params"]
    event["detail"]["force"] = True

    result = parse_event(event)

    assert isinstance(result, Signal) and result.manual is not None
    assert result.manual.input == {"target": event["detail"]["target"], "dryRun": False, "force": True}
    assert result.manual.requested_by == "alice"


@pytest.mark.parametrize(
    "field,value,needle",
    [("target", "i-123", "target"), ("dryRun", "no", "dryRun"), ("reason", "", "reason")],
)
def test_a_malformed_manual_request_is_refused_by_the_runbook_input_check(field, value, needle) -> None:
    """A manual request's input is the runbook's to check, as a console input is."""
    event = load_event("manual-remap-eip")
    event["detail"][field] = value
    result = parse_event(event)
    assert isinstance(result, Signal) and result.manual is not None
    with pytest.raises(InvalidInput, match=needle):
        parse_request(result.manual.input, "remap-eip", "r-1", None)


def test_parse_event_every_sample_parses_or_is_knowingly_unrecognised() -> None:
    # Given every top-level sample in events/
    unrecognised = {name for name in event_names() if isinstance(parse_event(load_event(name)), Unrecognised)}

    # Then only the alarm configuration change is not a signal
    assert unrecognised == {"alarm-config-change"}


# --------------------------------------------------------------------------------------- malformed


def _without(name: str, *path: str | int) -> dict[str, Any]:
    event = load_event(name)
    node: Any = event
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return event


def _with(name: str, value: Any, *path: str | int) -> dict[str, Any]:
    event = load_event(name)
    node: Any = event
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (None, "null, not a JSON object"),
        ([], "list, not a JSON object"),
        ("not json", "not valid JSON"),
        ('["a list"]', "JSON list, not an object"),
        (42, "int, not a JSON object"),
        ({}, "unknown event shape"),
        ({"hello": "world"}, "unknown event shape"),
        (_without("alarm-status-check-failed", "detail"), "event.detail is missing"),
        (_with("alarm-status-check-failed", "text", "detail"), "event.detail is str"),
        (_without("alarm-status-check-failed", "id"), "event.id is missing"),
        (_with("alarm-status-check-failed", "yesterday", "time"), "event.time is not a timestamp"),
        (_with("alarm-status-check-failed", 1700000000, "time"), "event.time is int"),
        (_with("alarm-status-check-failed", "BROKEN", "detail", "state", "value"), "not one of OK, ALARM"),
        (_without("alarm-status-check-failed", "detail", "alarmName"), "detail.alarmName is missing"),
        (_with("alarm-status-check-failed", "oops", "detail", "configuration", "metrics"), "not a list"),
        (_with("alarm-status-check-failed", "x", "resources"), "event.resources is str"),
        (_with("health-ec2-retirement", "two", "detail", "page"), "detail.page is not a number"),
        (_with("health-ec2-retirement", [1], "detail", "affectedEntities"), "affectedEntities[0] is int"),
        (_without("health-ec2-retirement", "detail", "eventTypeCode"), "detail.eventTypeCode is missing"),
        (
            _with("health-ec2-retirement", "someday", "detail", "startTime"),
            "detail.startTime is not a timestamp",
        ),
        (_without("ec2-state-stopped", "detail", "instance-id"), "detail.instance-id is missing"),
        (_with("rds-instance-failure", "failure", "detail", "EventCategories"), "EventCategories is str"),
        (_without("manual-remap-eip", "detail", "runbook"), "detail.runbook is missing"),
        (_with("alarm-status-check-failed", "aws.s3", "source"), "no parser for source 'aws.s3'"),
        (_with("alarm-lambda-action", None, "alarmData"), "event.alarmData is missing"),
        (_with("alarm-lambda-action", "soon", "alarmData", "state", "timestamp"), "not a timestamp"),
        (
            _with("alarm-sns", "not json", "Records", 0, "Sns", "Message"),
            "Sns.Message is a string that is not valid JSON",
        ),
        (_with("alarm-sns", "{}", "Records", 0, "Sns", "Message"), "not a CloudWatch alarm notification"),
        (_with("alarm-sns", "nope", "Records"), "event.Records is str"),
        (_with("alarm-sns", ["nope"], "Records"), "SNS record is a string that is not valid JSON"),
        (_with("alarm-sns", [7], "Records"), "SNS record is int"),
        ({"Records": []}, "SNS event with 0 records"),
    ],
)
def test_parse_event_malformed_input_is_unrecognised_with_reason(raw: object, says: str) -> None:
    # Given malformed input / When parsed
    result = parse_event(raw)

    # Then no exception: an Unrecognised whose reason says what is wrong
    assert isinstance(result, Unrecognised), result
    assert says in result.reason, result.reason


def test_parse_event_malformed_eventbridge_event_keeps_envelope_ids() -> None:
    result = parse_event(_without("ec2-state-stopped", "detail", "state"))

    assert isinstance(result, Unrecognised)
    assert (result.event_id, result.source, result.detail_type) == (
        "0a4e15d3-28fc-43b6-a5c7-c0d2e3f4051c",
        "aws.ec2",
        "EC2 Instance State-change Notification",
    )


def test_parse_event_json_string_event_is_decoded() -> None:
    result = parse_event(json.dumps(load_event("ec2-state-stopped")))

    assert isinstance(result, Signal) and result.kind == SignalKind.EC2_STATE


@pytest.mark.parametrize("raw", [object(), {"Records": [None]}, {"detail-type": 3, "source": []}, b"\xff"])
def test_parse_records_never_raises(raw: object) -> None:
    results = parse_records(raw)

    assert all(isinstance(r, Unrecognised) for r in results)


# ---------------------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("i-0abc1234", "i-0abc1234"),
        ("arn:aws:ec2:us-east-1:123456789012:instance/i-0abc1234", "i-0abc1234"),
        ("arn:aws:rds:us-east-1:123456789012:db:orders-db", "orders-db"),
        ("arn:aws:sqs:us-east-1:123456789012:orders-dlq", "orders-dlq"),
    ],
)
def test_resource_id_reduces_arns_to_ids(value: str, expected: str) -> None:
    assert resource_id(value) == expected


def test_parse_event_is_fast_enough_for_triage() -> None:
    # Given a mix of real shapes (the triage benchmark needs >= 2,000 signals/s per core)
    events = [load_event(name) for name in event_names()] * 50

    # When they are all parsed
    started = time.perf_counter()
    for event in events:
        parse_event(event)
    per_second = len(events) / (time.perf_counter() - started)

    # Then well above the target (a generous floor, so a slow CI machine does not flake)
    assert per_second > 2_000, f"{per_second:.0f} signals/s"
