"""Alarms that reach triage without EventBridge: the alarm topic (SNS) and alarm actions (Lambda).

template.yaml subscribes triage to ``AlarmTopic`` and lets any alarm of the account name triage as
its alarm action (``TriageAlarmActionPermission``). On the local cloud an SNS publish reaches the
subscribed function for real (localcloud.compat_cfn.patch_sns_lambda_delivery), but moto runs no
alarm actions: an alarm whose AlarmActions name the topic or the function only emits its EventBridge
event (localcloud.aws_events). So the tests do what CloudWatch does for an alarm action, with exactly
the payload it sends (CloudWatch user guide; samples in events/alarm-sns.json and
events/alarm-lambda-action.json): publish the alarm notification to the topic, or invoke the function
asynchronously ("CloudWatch alarms guarantees an asynchronous invocation of the Lambda function").
The publish is signed with the test's key: the local cloud does not evaluate the topic policy that,
on AWS, lets only cloudwatch.amazonaws.com publish.

What triage decided for each delivery is read from Lambda's own record of the asynchronous
invocation (an OnSuccess destination the ``triage_invocations`` fixture adds for the test): every
path invokes triage asynchronously, so that record exists for all three, on AWS as here.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from selfheal.signals import alarm_event_id
from tests.e2e.test_remap_eip import Pair, make_pair, rows_for, sns_alarm_message
from tests.events import load_event

HEALED = ["received", "started", "action", "action", "verified", "succeeded"]
Invocations = Callable[[str], list[dict[str, Any]]]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def triage_invocations(cloud: DeployedCloud) -> Iterator[Invocations]:
    """Lambda's invocation records of triage (request, response) for this test, by alarm name.

    The stack's own OnFailure destination is kept; the OnSuccess one is the test's, removed after."""
    lam, sqs = cloud.client("lambda"), cloud.client("sqs")
    function = cloud.stack.outputs["TriageFunctionArn"]
    deployed = lam.get_function_event_invoke_config(FunctionName=function)
    settings = {
        "MaximumRetryAttempts": deployed["MaximumRetryAttempts"],
        "MaximumEventAgeInSeconds": deployed["MaximumEventAgeInSeconds"],
    }
    on_failure = {"Destination": deployed["DestinationConfig"]["OnFailure"]["Destination"]}
    url = sqs.create_queue(QueueName=f"triage-invocations-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.put_function_event_invoke_config(
        FunctionName=function,
        **settings,
        DestinationConfig={"OnFailure": on_failure, "OnSuccess": {"Destination": queue}},
    )
    records: list[dict[str, Any]] = []

    def about(alarm_name: str) -> list[dict[str, Any]]:
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            records.extend(json.loads(m["Body"]) for m in batch)
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
            )
        return [r for r in records if alarm_name in json.dumps(r["requestPayload"])]

    yield about
    lam.put_function_event_invoke_config(
        FunctionName=function, **settings, DestinationConfig={"OnFailure": on_failure}
    )
    sqs.delete_queue(QueueUrl=url)


# ------------------------------------------------------------------------------------ builders


def cw_time(at: datetime) -> str:
    """CloudWatch's timestamp format in alarm payloads: 2026-11-21T23:59:40.112+0000."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def alarm_arn(name: str) -> str:
    return f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"


def topic_message(instance: str, name: str, changed_at: str) -> str:
    """The notification CloudWatch publishes to an SNS alarm action (OK -> ALARM at ``changed_at``)."""
    message = sns_alarm_message(instance)
    message.update(AlarmName=name, AlarmArn=alarm_arn(name), StateChangeTime=changed_at)
    return json.dumps(message)


def action_payload(instance: str, name: str, changed_at: str) -> dict[str, Any]:
    """The event CloudWatch sends a Lambda alarm action (OK -> ALARM at ``changed_at``)."""
    payload = copy.deepcopy(load_event("alarm-lambda-action"))
    payload.update(alarmArn=alarm_arn(name), time=changed_at)
    payload["alarmData"]["alarmName"] = name
    payload["alarmData"]["state"]["timestamp"] = changed_at
    metric = payload["alarmData"]["configuration"]["metrics"][0]["metricStat"]["metric"]
    metric["dimensions"] = {"InstanceId": instance}
    return payload


def publish_to_alarm_topic(cloud: DeployedCloud, message: str) -> None:
    cloud.client("sns").publish(TopicArn=cloud.stack.outputs["AlarmTopicArn"], Message=message)


def invoke_as_alarm_action(cloud: DeployedCloud, function: str, payload: dict[str, Any]) -> None:
    answer = cloud.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps(payload).encode()
    )
    assert answer["StatusCode"] == 202


def put_on_the_bus(cloud: DeployedCloud, event: dict[str, Any]) -> None:
    ops.put_event(cloud.client("events"), event)


def deliver_and_wait(cloud: DeployedCloud, *deliveries: Callable[[], None]) -> list[ops.ExecutionResult]:
    """Run the deliveries (the local cloud hands each to triage before the call returns), then wait
    for every execution they started to end."""
    sfn = cloud.client("stepfunctions")
    machines = ops.stack_state_machines(cloud.client("cloudformation"), cloud.stack.name)
    before = ops.execution_arns(sfn, machines)
    for deliver in deliveries:
        deliver()
    return ops.wait_for_new_executions(sfn, machines, before)


def envelope(record: dict[str, Any]) -> str:
    payload = record["requestPayload"]
    if "Records" in payload:
        return "alarm-topic"
    return "alarm-action" if "alarmData" in payload else "eventbridge"


def decisions(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(envelope, triage's decision) per invocation, in delivery order."""
    return [(envelope(r), o["decision"]) for r in records for o in r["responsePayload"]["outcomes"]]


def assert_healed_by_one_run(cloud: DeployedCloud, pair: Pair, execution: ops.ExecutionResult) -> None:
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.standby
    rows = rows_for(cloud, pair.primary)
    assert [r["phase"] for r in rows] == HEALED
    assert {r["requestId"] for r in rows} == {execution.name}


# --------------------------------------------------------------------------------------- tests


def test_alarm_topic_notification_for_a_fenced_instance_starts_remap_eip_and_heals(cloud, triage_invocations):
    # Given a managed EIP on a fenced primary with a standby
    pair = make_pair(cloud)
    name, changed_at = f"{pair.primary}-status-check", cw_time(datetime.now(UTC))
    # When its status-check alarm's notification is published to the stack's alarm topic
    (execution,) = deliver_and_wait(
        cloud, lambda: publish_to_alarm_topic(cloud, topic_message(pair.primary, name, changed_at))
    )
    # Then triage, invoked by SNS, started remap-eip, which moved the EIP and says so row by row
    assert decisions(triage_invocations(name)) == [("alarm-topic", "started")]
    assert_healed_by_one_run(cloud, pair, execution)
    received = rows_for(cloud, pair.primary)[0]
    assert received["actor"]["kind"] == "automatic" and received["actor"]["rule"] == "ec2-status-check-failed"
    # the signal's id is the one SNS and alarm actions share: alarm, new state, time of the change
    changed = datetime.fromisoformat(changed_at)
    assert received["actor"]["eventId"] == alarm_event_id(alarm_arn(name), "ALARM", changed)


def test_alarm_action_invocation_for_a_fenced_instance_starts_remap_eip_and_heals(cloud, triage_invocations):
    # Given a managed EIP on a fenced primary with a standby
    pair = make_pair(cloud)
    name, changed_at = f"{pair.primary}-status-check", cw_time(datetime.now(UTC))
    function = cloud.stack.outputs["TriageFunctionArn"]
    # When its status-check alarm invokes triage as its alarm action
    (execution,) = deliver_and_wait(
        cloud, lambda: invoke_as_alarm_action(cloud, function, action_payload(pair.primary, name, changed_at))
    )
    # Then remap-eip started from that invocation, moved the EIP, and the rows say so
    assert decisions(triage_invocations(name)) == [("alarm-action", "started")]
    assert_healed_by_one_run(cloud, pair, execution)
    received = rows_for(cloud, pair.primary)[0]
    changed = datetime.fromisoformat(changed_at)
    assert received["actor"]["eventId"] == alarm_event_id(alarm_arn(name), "ALARM", changed)


def test_alarm_transition_by_eventbridge_topic_and_action_acts_once(cloud, triage_invocations):
    # Given a managed EIP, and a real alarm on its primary whose actions are the topic and triage
    pair = make_pair(cloud)
    cloudwatch, name = cloud.client("cloudwatch"), f"{pair.primary}-status-check"
    outputs = cloud.stack.outputs
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed_System",
        Dimensions=[{"Name": "InstanceId", "Value": pair.primary}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[outputs["AlarmTopicArn"], outputs["TriageFunctionArn"]],
    )

    def alarm_fires() -> None:
        # CloudWatch emits the EventBridge event itself (the local cloud too), then runs the alarm's
        # actions for the same transition, which the local cloud does not: run them as CloudWatch would.
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="system check failed")
        (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
        changed_at = cw_time(alarm["StateUpdatedTimestamp"])
        for action in alarm["AlarmActions"]:
            if action.startswith("arn:aws:sns:"):
                publish_to_alarm_topic(cloud, topic_message(pair.primary, name, changed_at))
            else:
                invoke_as_alarm_action(cloud, action, action_payload(pair.primary, name, changed_at))

    # When it goes to ALARM
    (execution,) = deliver_and_wait(cloud, alarm_fires)
    # Then one run heals it: the first delivery started it, the other two were duplicates of it
    assert decisions(triage_invocations(name)) == [
        ("eventbridge", "started"),
        ("alarm-topic", "duplicate"),
        ("alarm-action", "duplicate"),
    ]
    outcomes = [o for r in triage_invocations(name) for o in r["responsePayload"]["outcomes"]]
    assert {o["request_id"] for o in outcomes} == {execution.name}
    assert_healed_by_one_run(cloud, pair, execution)


@pytest.mark.parametrize(
    "order",
    [["alarm-topic", "alarm-action", "eventbridge"], ["alarm-action", "eventbridge", "alarm-topic"]],
    ids=["topic-first", "action-first"],
)
def test_alarm_transition_whichever_envelope_comes_first_acts_once(cloud, triage_invocations, order):
    # Given a managed EIP and one OK -> ALARM transition of its alarm, in its three envelopes
    pair = make_pair(cloud)
    name, at = f"{pair.primary}-status-check", datetime.now(UTC)
    changed_at = cw_time(at)
    function = cloud.stack.outputs["TriageFunctionArn"]
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "resources": [alarm_arn(name)],
        "detail": action_payload(pair.primary, name, changed_at)["alarmData"],
    }
    send: dict[str, Callable[[], None]] = {
        "alarm-topic": lambda: publish_to_alarm_topic(cloud, topic_message(pair.primary, name, changed_at)),
        "alarm-action": lambda: invoke_as_alarm_action(
            cloud, function, action_payload(pair.primary, name, changed_at)
        ),
        "eventbridge": lambda: put_on_the_bus(cloud, event),
    }
    # When they arrive in this order
    (execution,) = deliver_and_wait(cloud, *(send[how] for how in order))
    # Then the first started the one run, the others were its duplicates, and it healed
    expected = [(order[0], "started"), *((how, "duplicate") for how in order[1:])]
    assert decisions(triage_invocations(name)) == expected
    assert_healed_by_one_run(cloud, pair, execution)
