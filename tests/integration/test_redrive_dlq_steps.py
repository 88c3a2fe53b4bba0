"""redrive-dlq resolve and precheck against moto SQS/CloudWatch: which queues, and when not to act."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud import compat_sqs
from localcloud.worlds import Aws, redrive_dlq, unique
from localcloud.worlds.redrive_dlq import Dlq
from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.errors import NotApplicable, PreconditionFailed, UnknownResource
from selfheal.runbooks.redrive_dlq import (
    DLQ_TAG,
    NO_CAP,
    ConsumerUnhealthy,
    FifoMismatch,
    MoveTaskRunning,
    RedriveDlq,
    RedriveDlqParams,
    RedriveDlqTarget,
    UnsupportedDlqSource,
    out_of_scope,
    precheck,
    resolve,
)

KEY, VALUE = "selfheal:managed", "true"


@pytest.fixture
def sqs(clients: Any) -> Any:
    compat_sqs.patch_sqs_message_move_tasks()  # moto has no message move tasks
    return clients.sqs


@pytest.fixture
def world(sqs: Any, clients: Clients) -> Aws:
    """What this tier builds its queues with: the worlds' builders, on in-process moto."""
    return Aws(client=clients.client)


def dlq_with_source(world: Aws, messages: int = 3, **variants: Any) -> Dlq:
    return redrive_dlq.queues(world, unique("orders"), messages=messages, **variants)


def target(**kw: str) -> RedriveDlqTarget:
    return RedriveDlqTarget.model_validate(kw)


def test_resolve_finds_the_source_queues_and_builds_both_move_tasks(sqs, world):
    dlq = dlq_with_source(world)
    plan = resolve(sqs, target(queueArn=dlq.arn), RedriveDlqParams(maxMessagesPerSecond=20), KEY, VALUE)
    assert (plan.queue_url, plan.source_queue_arns, plan.fifo) == (dlq.url, [dlq.source_arn], False)
    assert set(plan.resource_tags) == {dlq.arn, dlq.source_arn}
    assert plan.start_canary == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 1}
    assert plan.start_rest == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 20}
    assert (plan.canary_messages, plan.rest_limit, plan.named_destination) == (10, NO_CAP, False)
    assert (plan.poll_interval_seconds, plan.canary_poll_interval_seconds) == (5, 1)
    canary, rest, stop = RedriveDlq(Clients(), Settings(AUDIT_TABLE="audit")).exact_calls(plan)
    assert (canary.parameters, rest.parameters) == (plan.start_canary, plan.start_rest)
    assert stop.parameters == {"TaskHandle": "(the move task)"}


def test_resolve_message_cap_splits_between_canary_and_rest(sqs, world):
    name = dlq_with_source(world).name
    assert resolve(sqs, target(queueName=name), RedriveDlqParams(maxMessages=25), KEY, VALUE).rest_limit == 15
    small = resolve(sqs, target(queueName=name), RedriveDlqParams(maxMessages=4), KEY, VALUE)
    assert (small.canary_messages, small.rest_limit) == (4, 0)


def test_resolve_params_come_from_dlq_tags_unless_given(sqs, world):
    arn = dlq_with_source(
        world, params={"maxMessagesPerSecond": "7", "consumerAlarmName": "orders-errors"}
    ).arn
    by_tag = resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)
    assert by_tag.start_rest["MaxNumberOfMessagesPerSecond"] == 7
    assert by_tag.consumer_alarm_name == "orders-errors"
    explicit = resolve(sqs, target(queueArn=arn), RedriveDlqParams(maxMessagesPerSecond=9), KEY, VALUE)
    assert explicit.start_rest["MaxNumberOfMessagesPerSecond"] == 9


def test_resolve_bad_tag_value_is_a_precondition_failure(sqs, world):
    arn = dlq_with_source(world, params={"maxMessagesPerSecond": "9000"}).arn
    with pytest.raises(PreconditionFailed, match="tag on the DLQ has a bad value"):
        resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)


def test_resolve_queue_nobody_dead_letters_into_is_unsupported(sqs, world):
    arn = redrive_dlq.queue(world, "lambda-dlq").arn
    with pytest.raises(UnsupportedDlqSource, match="Lambda"):
        resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)


def test_resolve_unknown_queue(sqs):
    with pytest.raises(UnknownResource):
        resolve(sqs, target(queueName="nope"), RedriveDlqParams(), KEY, VALUE)


@pytest.mark.parametrize("dlq_fifo", [True, False])
def test_resolve_fifo_only_to_fifo_and_standard_only_to_standard(sqs, world, dlq_fifo):
    arn = dlq_with_source(world, fifo=dlq_fifo).arn
    other_arn = redrive_dlq.queue(world, unique("other"), fifo=not dlq_fifo).arn
    with pytest.raises(FifoMismatch, match="FIFO to FIFO"):
        resolve(sqs, target(queueArn=arn), RedriveDlqParams(destinationArn=other_arn), KEY, VALUE)


def test_resolve_named_destination_is_fenced_too(sqs, world):
    arn = dlq_with_source(world).arn
    other_arn = redrive_dlq.queue(world, unique("replay"), fenced=False).arn
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(destinationArn=other_arn), KEY, VALUE)
    assert plan.named_destination and plan.start_rest["DestinationArn"] == other_arn
    assert plan.resource_tags[other_arn] == {}


def test_scope_guard_takes_only_from_a_declared_dlq_and_sends_only_to_queues_that_are_not(sqs, world):
    """Given DLQs tagged as IAM lets the redrive role use them, When one is not declared a DLQ, or
    the messages would go to a queue that is one, Then the scope guard names the queue and the tag
    (what IAM would refuse); a declared DLQ redriven to its source queue passes."""
    dlq = dlq_with_source(world)
    arn, source_arn = dlq.arn, dlq.source_arn
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)
    assert out_of_scope(plan) == []
    undeclared = dlq_with_source(world, dlq_tags={DLQ_TAG: "yes"}).arn
    (refused,) = out_of_scope(resolve(sqs, target(queueArn=undeclared), RedriveDlqParams(), KEY, VALUE))
    assert "is not declared a dead-letter queue" in refused and f"{DLQ_TAG}=true" in refused
    other_dlq = redrive_dlq.queue(world, unique("other-dlq"), declared_dlq=True).arn
    into_a_dlq = resolve(sqs, target(queueArn=arn), RedriveDlqParams(destinationArn=other_dlq), KEY, VALUE)
    (refused,) = out_of_scope(into_a_dlq)
    assert other_dlq.rsplit(":", 1)[-1] in refused and "only to queues that are not" in refused
    sqs.tag_queue(QueueUrl=dlq.source_url, Tags={DLQ_TAG: "true"})
    (refused,) = out_of_scope(resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE))
    assert source_arn.rsplit(":", 1)[-1] in refused


def test_precheck_returns_the_depth_and_consumer_state(sqs, clients, world):
    arn = dlq_with_source(world, messages=4).arn
    redrive_dlq.consumer_alarm(world, "orders-errors")
    clients.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="OK", StateReason="t")
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(consumerAlarmName="orders-errors"), KEY, VALUE)
    before = precheck(sqs, clients.cloudwatch, plan)
    assert before["depth"] == 4 and before["consumer"] == {"alarm": "orders-errors", "state": "OK"}

    clients.cloudwatch.set_alarm_state(AlarmName="orders-errors", StateValue="ALARM", StateReason="t")
    with pytest.raises(ConsumerUnhealthy, match="ALARM"):
        precheck(sqs, clients.cloudwatch, plan)


def test_precheck_missing_consumer_alarm_is_a_precondition_failure(sqs, clients, world):
    arn = dlq_with_source(world).arn
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(consumerAlarmName="typo"), KEY, VALUE)
    with pytest.raises(PreconditionFailed, match="does not exist"):
        precheck(sqs, clients.cloudwatch, plan)


def test_precheck_empty_dlq_is_not_applicable(sqs, clients, world):
    arn = dlq_with_source(world, messages=0).arn
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)
    with pytest.raises(NotApplicable, match="no messages"):
        precheck(sqs, clients.cloudwatch, plan)


def test_precheck_refuses_while_a_move_task_runs(sqs, clients, world):
    arn = dlq_with_source(world, messages=30).arn
    plan = resolve(sqs, target(queueArn=arn), RedriveDlqParams(), KEY, VALUE)
    handle = sqs.start_message_move_task(SourceArn=arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    try:
        with pytest.raises(MoveTaskRunning, match="already RUNNING"):
            precheck(sqs, clients.cloudwatch, plan)
    finally:
        sqs.cancel_message_move_task(TaskHandle=handle)
