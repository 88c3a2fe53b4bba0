"""redrive-dlq: the orders queue, its dead-letter queue, and the alarms on both.

orders-dlq is fenced and declared a DLQ (``selfheal:dlq=true``: the redrive role takes messages out
of such queues only), its pace set with ``selfheal:param:*`` tags, and the consumer's health alarm
named in ``selfheal:param:consumerAlarmName``: the redrive waits until the consumer is healthy.
"""

from __future__ import annotations

import json
from typing import Any

from localcloud.worlds import FENCE, Aws, Fault, UnknownWorld, World, param_tags, set_alarm

SOURCE, DLQ = "orders", "orders-dlq"
CONSUMER_ALARM = "orders-consumer-errors"
DLQ_ALARM = "dlq-orders-dlq-has-messages"
ORDERS = 20
# Local-sized pace; an operator tags their DLQ the same way (defaults in the runbook reference).
PACE = {
    "consumerAlarmName": CONSUMER_ALARM,
    "canaryMessages": "3",
    "canaryMessagesPerSecond": "5",
    "canaryObserveSeconds": "2",
    "maxMessagesPerSecond": "100",
    "pollIntervalSeconds": "1",
}


def build(aws: Aws) -> str:
    sqs, cw = aws.client("sqs"), aws.client("cloudwatch")
    fence = {FENCE["Key"]: FENCE["Value"]}
    dlq = sqs.create_queue(QueueName=DLQ, tags={**fence, "selfheal:dlq": "true", **dict(param_tags(PACE))})
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    sqs.create_queue(QueueName=SOURCE, Attributes={"RedrivePolicy": redrive}, tags=fence)
    common: dict[str, Any] = {
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cw.put_metric_alarm(
        AlarmName=CONSUMER_ALARM,
        AlarmDescription="the orders consumer (a Lambda function) is failing",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "orders-consumer"}],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName=DLQ_ALARM,
        AlarmDescription=f"{DLQ} holds dead-lettered orders",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": DLQ}],
        **common,
    )
    return f"{SOURCE} -> {DLQ} after 2 receives; alarms {CONSUMER_ALARM} and {DLQ_ALARM}"


def urls(aws: Aws) -> tuple[str, str]:
    sqs = aws.client("sqs")
    try:
        return tuple(sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in (SOURCE, DLQ))
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise UnknownWorld(f"no queue {SOURCE} or {DLQ}: was the redrive-dlq world built?") from exc


def depth(aws: Aws, url: str) -> int:
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _dead_letter_then_consumer_recovers(aws: Aws) -> None:
    """The consumer fails and its alarm fires; it receives each order twice without deleting it, so
    SQS moves the orders to the DLQ; then it is fixed (alarm OK) and the DLQ's alarm fires."""
    sqs = aws.client("sqs")
    orders, _ = urls(aws)
    set_alarm(aws, CONSUMER_ALARM, "ALARM", "Errors > 0")
    for i in range(ORDERS):
        sqs.send_message(QueueUrl=orders, MessageBody=json.dumps({"order": i}))
    for _ in range(3):
        while sqs.receive_message(QueueUrl=orders, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages"
        ):
            pass
    set_alarm(aws, CONSUMER_ALARM, "OK", "Errors = 0")
    set_alarm(aws, DLQ_ALARM, "ALARM", f"Threshold Crossed: 1 datapoint [{ORDERS}.0] > the threshold (0.0)")


def _orders_back_in_their_queue(aws: Aws) -> tuple[bool, str]:
    orders, dlq = urls(aws)
    in_orders, in_dlq = depth(aws, orders), depth(aws, dlq)
    return (
        in_dlq == 0 and in_orders == ORDERS,
        f"{SOURCE} holds {in_orders} orders again (new message ids), {DLQ} holds {in_dlq}",
    )


WORLD = World(
    runbook="redrive-dlq",
    describe=f"the queue {SOURCE}, its dead-letter queue {DLQ} and their alarms",
    build=build,
    parameters=lambda aws: {},
    faults=(
        Fault(
            name="orders-dead-lettered",
            runbook="redrive-dlq",
            title=f"the orders consumer fails, {ORDERS} orders dead-letter; the consumer recovers",
            injected=f"{ORDERS} orders land in {DLQ}; {CONSUMER_ALARM} ALARM, then OK; {DLQ_ALARM} ALARM",
            inject=_dead_letter_then_consumer_recovers,
            target_key=lambda aws: DLQ,
            healed=_orders_back_in_their_queue,
        ),
    ),
)
