"""The local cloud emits the service events AWS would: alarm state changes and EC2 state changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud import ops
from localcloud.aws_events import patch_service_events
from selfheal.signals import Signal, SignalKind, parse_event


@pytest.fixture
def bus() -> Iterator[tuple[Any, Any, str]]:
    """A rule on the default bus that copies every aws.* event into an SQS queue we can read."""
    patch_service_events()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        url = sqs.create_queue(QueueName="seen")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": [{"prefix": "aws."}]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
        yield boto3.client("cloudwatch", region_name="us-east-1"), sqs, url


def seen(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_alarm_state_change_reaches_the_bus_in_the_documented_shape(bus):
    cloudwatch, sqs, url = bus
    cloudwatch.put_metric_alarm(
        AlarmName="web-1-status",
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed",
        Dimensions=[{"Name": "InstanceId", "Value": "i-0a1b2c3d4e5f60001"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    cloudwatch.set_alarm_state(
        AlarmName="web-1-status", StateValue="ALARM", StateReason="status check failed"
    )
    (event,) = seen(sqs, url)
    assert event["detail-type"] == "CloudWatch Alarm State Change"
    assert event["detail"]["state"]["value"] == "ALARM" and event["detail"]["previousState"]["value"] == "OK"
    signal = parse_event(event)
    assert isinstance(signal, Signal) and signal.kind is SignalKind.ALARM
    assert signal.alarm is not None and signal.alarm.dimensions == {"InstanceId": "i-0a1b2c3d4e5f60001"}
    assert signal.alarm.metric_name == "StatusCheckFailed"


def test_alarm_setting_the_same_state_again_emits_nothing(bus):
    cloudwatch, sqs, url = bus
    cloudwatch.put_metric_alarm(
        AlarmName="a",
        Namespace="N",
        MetricName="M",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName="a", StateValue="OK", StateReason="still fine")
    assert seen(sqs, url) == []


def test_instance_stop_emits_stopping_then_stopped(bus):
    _, sqs, url = bus
    ec2 = boto3.client("ec2", region_name="us-east-1")
    image = ops.any_image_id(ec2)
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])
    states = [e["detail"]["state"] for e in seen(sqs, url)]
    assert states == ["stopping", "stopped"]
    ec2.stop_instances(InstanceIds=[instance])
    assert seen(sqs, url) == []
