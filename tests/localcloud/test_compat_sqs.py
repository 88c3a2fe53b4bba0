"""The local cloud's SQS message move tasks against the documented behaviour (SQS API reference:
StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask; SQS developer guide: DLQ redrive)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from localcloud.harness import DeployedCloud


def _queue(sqs: Any, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _dlq_pair(local: DeployedCloud, messages: int, fifo: bool = False) -> tuple[Any, str, str, str]:
    sqs = local.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    extra = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
    tail = ".fifo" if fifo else ""
    dlq_url, dlq_arn = _queue(sqs, f"dlq-{suffix}{tail}", **extra)
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    src_url, _ = _queue(sqs, f"src-{suffix}{tail}", RedrivePolicy=policy, **extra)
    for i in range(messages):
        kwargs = {"MessageGroupId": "g"} if fifo else {}
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{i}", **kwargs)
    return sqs, dlq_arn, dlq_url, src_url


def _depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _wait_status(sqs: Any, arn: str, wanted: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    task: dict[str, Any] = {}
    while time.monotonic() < deadline:
        task = sqs.list_message_move_tasks(SourceArn=arn)["Results"][0]
        if task["Status"] == wanted:
            return task
        time.sleep(0.02)
    raise AssertionError(f"task never reached {wanted}: {task}")


def test_move_task_rate_is_honoured_over_time(local: DeployedCloud) -> None:
    # Given 30 dead-lettered messages and a task limited to 10 per second
    sqs, dlq_arn, dlq_url, src_url = _dlq_pair(local, 30)
    sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=10)
    # When we look after about one second
    time.sleep(1.0)
    running = sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]
    # Then it is still RUNNING, has moved roughly 10, and reports its rate and the count to move
    assert running["Status"] == "RUNNING" and running["TaskHandle"]
    assert 5 <= running["ApproximateNumberOfMessagesMoved"] <= 16
    assert running["ApproximateNumberOfMessagesToMove"] == 30
    assert running["MaxNumberOfMessagesPerSecond"] == 10
    assert "DestinationArn" not in running
    sqs.cancel_message_move_task(TaskHandle=running["TaskHandle"])
    cancelled = _wait_status(sqs, dlq_arn, "CANCELLED")
    # And messages moved + messages left = messages there were (nothing lost or duplicated)
    assert cancelled["ApproximateNumberOfMessagesMoved"] + _depth(sqs, dlq_url) == 30
    assert _depth(sqs, src_url) == cancelled["ApproximateNumberOfMessagesMoved"]


def test_move_task_cancel_goes_through_cancelling_and_refuses_a_finished_task(local: DeployedCloud) -> None:
    sqs, dlq_arn, _, _ = _dlq_pair(local, 10)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    moved = sqs.cancel_message_move_task(TaskHandle=handle)["ApproximateNumberOfMessagesMoved"]
    assert moved <= 2
    assert sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]["Status"] in {
        "CANCELLING",
        "CANCELLED",
    }
    _wait_status(sqs, dlq_arn, "CANCELLED")
    with pytest.raises(sqs.exceptions.ClientError, match="ResourceNotFoundException"):
        sqs.cancel_message_move_task(TaskHandle=handle)
    # After it ended, a new task may start on the same queue
    assert sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"] != handle
    _wait_status(sqs, dlq_arn, "COMPLETED")


def test_move_task_moves_only_what_was_there_at_the_start(local: DeployedCloud) -> None:
    # Given a slow task over 5 messages, and a DLQ that keeps receiving new ones while it runs
    sqs, dlq_arn, dlq_url, _ = _dlq_pair(local, 5)
    sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=20)
    for i in range(5):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"late{i}")
    task = _wait_status(sqs, dlq_arn, "COMPLETED")
    # Then it moved the 5 it counted at the start and left the late ones
    assert task["ApproximateNumberOfMessagesToMove"] == 5
    assert task["ApproximateNumberOfMessagesMoved"] == 5
    assert _depth(sqs, dlq_url) == 5


def test_move_task_gives_new_message_ids_and_skips_messages_in_flight(local: DeployedCloud) -> None:
    sqs, dlq_arn, dlq_url, src_url = _dlq_pair(local, 3)
    held = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=1, VisibilityTimeout=60)["Messages"]
    ids_before = {held[0]["MessageId"]}
    sqs.start_message_move_task(SourceArn=dlq_arn)
    task = _wait_status(sqs, dlq_arn, "COMPLETED")
    assert task["ApproximateNumberOfMessagesToMove"] == 2 and task["ApproximateNumberOfMessagesMoved"] == 2
    moved = sqs.receive_message(
        QueueUrl=src_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
    )["Messages"]
    assert len(moved) == 2 and held[0]["Body"] not in {m["Body"] for m in moved}
    assert not ids_before & {m["MessageId"] for m in moved}
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in moved} == {"1"}


def test_move_task_to_a_named_destination(local: DeployedCloud) -> None:
    sqs, dlq_arn, _, src_url = _dlq_pair(local, 2)
    other_url, other_arn = _queue(sqs, f"other-{uuid.uuid4().hex[:8]}")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn)
    task = _wait_status(sqs, dlq_arn, "COMPLETED")
    assert task["DestinationArn"] == other_arn
    assert _depth(sqs, other_url) == 2 and _depth(sqs, src_url) == 0


def test_move_task_fifo_to_fifo_only(local: DeployedCloud) -> None:
    # Given a FIFO DLQ with a FIFO source
    sqs, dlq_arn, _, src_url = _dlq_pair(local, 2, fifo=True)
    _, standard_arn = _queue(sqs, f"standard-{uuid.uuid4().hex[:8]}")
    # Then a standard destination is refused, and the FIFO source is fine
    with pytest.raises(sqs.exceptions.ClientError, match="same type"):
        sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=standard_arn)
    sqs.start_message_move_task(SourceArn=dlq_arn)
    assert _wait_status(sqs, dlq_arn, "COMPLETED")["ApproximateNumberOfMessagesMoved"] == 2
    assert _depth(sqs, src_url) == 2


def test_move_task_refuses_a_queue_no_sqs_queue_dead_letters_into(local: DeployedCloud) -> None:
    # Given a queue used as a Lambda or SNS dead-letter queue: no SQS redrive policy points at it
    sqs = local.client("sqs")
    _, arn = _queue(sqs, f"lambda-dlq-{uuid.uuid4().hex[:8]}")
    with pytest.raises(sqs.exceptions.ClientError, match="Dead Letter Queue"):
        sqs.start_message_move_task(SourceArn=arn)


def test_move_task_fails_when_the_destination_disappears(local: DeployedCloud) -> None:
    sqs, dlq_arn, dlq_url, _ = _dlq_pair(local, 20)
    other_url, other_arn = _queue(sqs, f"gone-{uuid.uuid4().hex[:8]}")
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=other_arn, MaxNumberOfMessagesPerSecond=20)
    time.sleep(0.2)
    sqs.delete_queue(QueueUrl=other_url)
    task = _wait_status(sqs, dlq_arn, "FAILED")
    assert task["FailureReason"]
    assert task["ApproximateNumberOfMessagesMoved"] + _depth(sqs, dlq_url) == 20


def test_list_move_tasks_most_recent_first_up_to_ten(local: DeployedCloud) -> None:
    sqs, dlq_arn, _, _ = _dlq_pair(local, 0)
    for _ in range(12):
        sqs.start_message_move_task(SourceArn=dlq_arn)
        _wait_status(sqs, dlq_arn, "COMPLETED")
    assert len(sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"]) == 1
    results = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert len(results) == 10
    stamps = [r["StartedTimestamp"] for r in results]
    assert stamps == sorted(stamps, reverse=True)


def test_move_task_sends_each_message_back_to_the_queue_it_came_from(local: DeployedCloud) -> None:
    # Given one DLQ shared by two source queues, each dead-lettering its own message (2 receives)
    sqs = local.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dlq_url, dlq_arn = _queue(sqs, f"shared-dlq-{suffix}")
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    sources = [_queue(sqs, f"src{i}-{suffix}", RedrivePolicy=policy)[0] for i in (1, 2)]
    for i, url in enumerate(sources, start=1):
        sqs.send_message(QueueUrl=url, MessageBody=f"from-{i}")
        for _ in range(2):
            sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert _depth(sqs, dlq_url) == 2
    # When a move task without a destination runs
    sqs.start_message_move_task(SourceArn=dlq_arn)
    _wait_status(sqs, dlq_arn, "COMPLETED")
    # Then each message is back in its own source queue
    for i, url in enumerate(sources, start=1):
        (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
        assert message["Body"] == f"from-{i}"
