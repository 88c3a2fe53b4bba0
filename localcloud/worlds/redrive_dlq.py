"""redrive-dlq: the orders queue, its dead-letter queue, and the alarms on both.

orders-dlq is fenced and declared a DLQ (``selfheal:dlq=true``: the redrive role takes messages out
of such queues only), its pace set with ``selfheal:param:*`` tags, and the consumer's health alarm
named in ``selfheal:param:consumerAlarmName``: the redrive waits until the consumer is healthy.

The parts are builders (``queue``, ``queues``, ``consumer_alarm``, ``dlq_alarm``) that the e2e tests,
the integration tier and the benchmarks call with unique names and the variants they need (an
unfenced queue, a DLQ not declared one, FIFO queues, N messages waiting).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

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
# What IAM lets the redrive role take messages out of (and the scope guard checks): a declared DLQ.
DECLARED = {"selfheal:dlq": "true"}


class HasClients(Protocol):
    """An Aws, a local cloud or a deployed stack: what a record's read-back helpers ask."""

    def client(self, service: str, /) -> Any: ...


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    arn: str


@dataclass(frozen=True)
class Dlq:
    """A dead-letter queue and the one source queue whose redrive policy sends messages to it."""

    name: str
    url: str
    arn: str
    source_url: str
    source_arn: str

    def depth(self, aws: HasClients, url: str | None = None) -> int:
        """The messages waiting in the DLQ, or in the queue at ``url`` (its source, a destination)."""
        return messages_in(aws, url or self.url)


def queue(
    aws: Aws,
    name: str,
    *,
    fenced: bool = True,
    declared_dlq: bool = False,
    fifo: bool = False,
    tags: Mapping[str, str] | None = None,
    attributes: Mapping[str, str] | None = None,
    messages: int = 0,
) -> Queue:
    """The queue ``name`` (``.fifo`` added for a FIFO one), holding ``messages`` messages. ``tags``
    are added to (and win over) the fence tag and ``selfheal:dlq=true`` of a declared DLQ."""
    sqs = aws.client("sqs")
    name += ".fifo" if fifo else ""
    every_tag = {
        **({FENCE["Key"]: FENCE["Value"]} if fenced else {}),
        **(DECLARED if declared_dlq else {}),
        **(tags or {}),
    }
    fifo_attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    url = sqs.create_queue(
        QueueName=name, Attributes={**fifo_attributes, **(attributes or {})}, tags=every_tag
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    group = {"MessageGroupId": "orders"} if fifo else {}
    for i in range(messages):
        sqs.send_message(QueueUrl=url, MessageBody=f"order-{i}", **group)
    return Queue(name, url, arn)


def queues(
    aws: Aws,
    name: str,
    *,
    messages: int = 0,
    fifo: bool = False,
    fence_dlq: bool = True,
    fence_source: bool = True,
    declare_dlq: bool = True,
    params: Mapping[str, object] | None = None,
    dlq_tags: Mapping[str, str] | None = None,
    max_receive_count: int = 3,
) -> Dlq:
    """The source queue ``name`` and its DLQ ``<name>-dlq``, which holds ``messages`` messages; a
    message goes to the DLQ after ``max_receive_count`` receives. ``params`` are the DLQ's
    ``selfheal:param:*`` tags (its pace, its consumer's alarm); ``dlq_tags`` any others."""
    extra = {**dict(param_tags({k: str(v) for k, v in (params or {}).items()})), **(dlq_tags or {})}
    dlq = queue(
        aws,
        f"{name}-dlq",
        fenced=fence_dlq,
        declared_dlq=declare_dlq,
        fifo=fifo,
        tags=extra,
        messages=messages,
    )
    redrive = json.dumps({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max_receive_count})
    source = queue(aws, name, fenced=fence_source, fifo=fifo, attributes={"RedrivePolicy": redrive})
    return Dlq(dlq.name, dlq.url, dlq.arn, source.url, source.arn)


_ALARM_ON_ANY: dict[str, Any] = {
    "Statistic": "Maximum",
    "Period": 60,
    "EvaluationPeriods": 1,
    "Threshold": 0,
    "ComparisonOperator": "GreaterThanThreshold",
}


def consumer_alarm(aws: Aws, name: str) -> str:
    """The alarm on the orders consumer failing: a redrive waits until it is OK."""
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        AlarmDescription="the orders consumer (a Lambda function) is failing",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "orders-consumer"}],
        **_ALARM_ON_ANY,
    )
    return name


def dlq_alarm(aws: Aws, dlq: str) -> str:
    """The alarm on messages waiting in the DLQ ``dlq``: dlq-<queue>-has-messages."""
    name = f"dlq-{dlq}-has-messages"
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        AlarmDescription=f"{dlq} holds dead-lettered orders",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": dlq}],
        **_ALARM_ON_ANY,
    )
    return name


def build(aws: Aws) -> str:
    # maxReceiveCount 2: the fault's consumer receives each order twice before SQS dead-letters it.
    queues(aws, SOURCE, params=PACE, max_receive_count=2)
    consumer_alarm(aws, CONSUMER_ALARM)
    dlq_alarm(aws, DLQ)
    return f"{SOURCE} -> {DLQ} after 2 receives; alarms {CONSUMER_ALARM} and {DLQ_ALARM}"


def urls(aws: Aws) -> tuple[str, str]:
    sqs = aws.client("sqs")
    try:
        return tuple(sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in (SOURCE, DLQ))
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise UnknownWorld(f"no queue {SOURCE} or {DLQ}: was the redrive-dlq world built?") from exc


def messages_in(aws: HasClients, url: str) -> int:
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
    in_orders, in_dlq = messages_in(aws, orders), messages_in(aws, dlq)
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
