"""redrive-dlq end to end on the local cloud: the real template, rules, functions and ASL.

Each test builds its own DLQ and source queue (targets are per queue name), so tests never share
cooldowns, leases or move tasks. Waits are shortened through params (pollIntervalSeconds...).
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from localcloud.worlds import Aws, redrive_dlq, unique
from localcloud.worlds.redrive_dlq import Dlq, Queue
from selfheal.audit import AuditRow, AuditTrail
from selfheal.models import Actor, Phase, utcnow
from selfheal.runbooks.redrive_dlq import DLQ_TAG, DLQ_TAG_VALUE
from tests.e2e.throttling import THROTTLES_PAST_THE_CLIENT
from tests.events import load_event

FAST = {
    "pollIntervalSeconds": 0,
    "canaryObserveSeconds": 1,
    "canaryMessages": 3,
    "canaryMessagesPerSecond": 5,
    "maxMessagesPerSecond": 200,
}


def make_dlq(cloud: DeployedCloud, messages: int = 10, **variants: Any) -> Dlq:
    """A DLQ of its own holding ``messages`` messages, and its source queue (variants: redrive_dlq.queues)."""
    return redrive_dlq.queues(Aws.of(cloud), unique("orders"), messages=messages, **variants)


def make_queue(cloud: DeployedCloud, name: str, **variants: Any) -> Queue:
    """A fenced queue of its own that no queue dead-letters into (variants: redrive_dlq.queue)."""
    return redrive_dlq.queue(Aws.of(cloud), unique(name), **variants)


def manual_input(dlq: Dlq, **params: Any) -> dict[str, Any]:
    return {
        "target": {"queueName": dlq.name},
        "params": {**FAST, **params},
        "dryRun": False,
        "reason": "e2e test",
    }


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def phases(cloud: DeployedCloud, dlq: Dlq) -> list[str]:
    return [r["phase"] for r in rows_for(cloud, dlq.name)]


def alarm(cloud: DeployedCloud, name: str, state: str) -> None:
    """A consumer's alarm of its own, in ``state``."""
    redrive_dlq.consumer_alarm(Aws.of(cloud), name)
    cloud.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason="e2e")


def dlq_alarm_event(dlq: Dlq) -> dict[str, Any]:
    event = copy.deepcopy(load_event("alarm-sqs-dlq-messages"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"dlq-{dlq.name}-has-messages"
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "QueueName": dlq.name
    }
    return event


@pytest.fixture
def mode(cloud: DeployedCloud) -> Iterator[Any]:
    ssm, name = cloud.client("ssm"), cloud.stack.outputs["ModeParameterName"]

    def set_mode(value: str) -> None:
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    yield set_mode
    set_mode("enforce")


def test_redrive_dlq_alarm_redrives_canary_then_the_rest_back_to_the_source(cloud):
    # Given a fenced DLQ whose pace is set by selfheal:param:* tags (the alarm's rule sets none)
    dlq = make_dlq(cloud, messages=10, params=FAST)
    summary = cloud.send_event_and_wait(dlq_alarm_event(dlq))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert dlq.depth(cloud) == 0 and dlq.depth(cloud, dlq.source_url) == 10
    rows = rows_for(cloud, dlq.name)
    assert [r["phase"] for r in rows][:2] == ["received", "started"]
    assert [r["phase"] for r in rows][-2:] == ["verified", "succeeded"]
    starts = [r for r in rows if r.get("action") == "sqs:StartMessageMoveTask"]
    stops = [r for r in rows if r.get("action") == "sqs:CancelMessageMoveTask"]
    # canary (pending, ok), stopped at its size (pending, ok), then the rest (pending, ok)
    assert [r["outcome"] for r in starts] == ["pending", "ok", "pending", "ok"]
    assert [r["outcome"] for r in stops] == ["pending", "ok"]
    assert starts[0]["parameters"] == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 5}
    assert starts[0]["before"]["depth"] == 10
    assert starts[2]["parameters"] == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 200}
    verified = rows_for(cloud, dlq.name)[-2]
    assert verified["after"]["depth"] == 0


def test_redrive_dlq_message_cap_stops_the_move_task(cloud):
    dlq = make_dlq(cloud, messages=40)
    result = cloud.start_and_wait(
        "redrive-dlq",
        manual_input(dlq, maxMessages=10, maxMessagesPerSecond=5, canaryMessagesPerSecond=5),
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    moved = dlq.depth(cloud, dlq.source_url)
    assert 10 <= moved < 40 and dlq.depth(cloud) == 40 - moved
    cancels = [r for r in rows_for(cloud, dlq.name) if r.get("action") == "sqs:CancelMessageMoveTask"]
    assert [r["outcome"] for r in cancels][-2:] == ["pending", "ok"]


def test_redrive_dlq_to_a_named_destination(cloud):
    dlq = make_dlq(cloud, messages=4)
    other = make_queue(cloud, "replay")
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, destinationArn=other.arn))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dlq.depth(cloud, other.url) == 4 and dlq.depth(cloud, dlq.source_url) == 0


def test_redrive_dlq_dry_run_records_would_do_and_moves_nothing(cloud):
    dlq = make_dlq(cloud, messages=5)
    result = cloud.start_and_wait("redrive-dlq", {**manual_input(dlq), "dryRun": True})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dlq.depth(cloud) == 5 and dlq.depth(cloud, dlq.source_url) == 0
    rows = rows_for(cloud, dlq.name)
    assert [r["phase"] for r in rows] == ["started", "would-do", "would-do", "succeeded"]
    canary, rest = rows[1], rows[2]
    assert canary["dryRun"] is True and canary["action"] == "sqs:StartMessageMoveTask"
    assert canary["before"]["depth"] == 5 and canary["before"]["sourceQueueArns"] == [dlq.source_arn]
    assert canary["parameters"] == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 5}
    assert rest["parameters"] == {"SourceArn": dlq.arn, "MaxNumberOfMessagesPerSecond": 200}


def test_redrive_dlq_dry_run_mode_moves_nothing(cloud, mode):
    dlq = make_dlq(cloud, messages=2)
    mode("dry-run")
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED"
    assert dlq.depth(cloud) == 2 and "would-do" in phases(cloud, dlq)


def test_redrive_dlq_unhealthy_consumer_waits_then_skips(cloud):
    name = f"consumer-{uuid.uuid4().hex[:8]}"
    alarm(cloud, name, "ALARM")
    dlq = make_dlq(cloud, messages=3, params={"consumerAlarmName": name})
    result = cloud.start_and_wait(
        "redrive-dlq", manual_input(dlq, consumerWaitAttempts=2, consumerWaitSeconds=0)
    )
    assert result.status == "SUCCEEDED"
    assert dlq.depth(cloud) == 3 and dlq.depth(cloud, dlq.source_url) == 0
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert name in skipped["reason"] and "ALARM" in skipped["reason"]


def test_redrive_dlq_waits_for_the_consumer_to_recover_then_redrives(cloud):
    name = f"consumer-{uuid.uuid4().hex[:8]}"
    alarm(cloud, name, "ALARM")
    dlq = make_dlq(cloud, messages=3)
    timer = threading.Timer(
        1.0,
        lambda: cloud.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue="OK", StateReason="consumer fixed"
        ),
    )
    timer.start()
    result = cloud.start_and_wait(
        "redrive-dlq",
        manual_input(dlq, consumerAlarmName=name, consumerWaitAttempts=10, consumerWaitSeconds=1),
    )
    timer.join()
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dlq.depth(cloud, dlq.source_url) == 3
    started = next(r for r in rows_for(cloud, dlq.name) if r["phase"] == "action")
    assert started["before"]["consumer"] == {"alarm": name, "state": "OK"}


def test_redrive_dlq_task_already_running_skips(cloud):
    dlq = make_dlq(cloud, messages=50)
    sqs = cloud.client("sqs")
    handle = sqs.start_message_move_task(SourceArn=dlq.arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    try:
        result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    finally:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert "already RUNNING" in skipped["reason"]
    assert not [r for r in rows_for(cloud, dlq.name) if r["phase"] == "action"]


def test_redrive_dlq_refilling_dlq_stops_after_the_canary_and_escalates(cloud):
    """Poison messages: every message the consumer gets goes straight back to the DLQ."""
    dlq = make_dlq(cloud, messages=20)
    stop = threading.Event()
    consumer = _poison_consumer(cloud, dlq, stop)
    try:
        result = cloud.start_and_wait(
            "redrive-dlq", manual_input(dlq, canaryMessagesPerSecond=5, canaryObserveSeconds=2)
        )
    finally:
        stop.set()
        consumer.join()
    assert result.status == "FAILED" and result.error == "DlqRefilled", (result.error, result.cause)
    assert "poison" in (result.cause or "")
    starts = [
        r
        for r in rows_for(cloud, dlq.name)
        if r.get("action") == "sqs:StartMessageMoveTask" and r["outcome"] == "pending"
    ]
    assert len(starts) == 1, "only the canary may have started"
    assert dlq.depth(cloud) == 20
    failed = rows_for(cloud, dlq.name)[-1]
    assert failed["phase"] == "failed" and failed["error"]["error"] == "DlqRefilled"


def test_redrive_dlq_loop_guard_stops_a_dlq_redriven_too_often(cloud):
    dlq = make_dlq(cloud, messages=3)
    trail = AuditTrail(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])
    for i, minutes in enumerate((50, 40)):  # two earlier redrives, both outside the cooldown
        trail.write(
            AuditRow(
                request_id=f"earlier-{i}-{dlq.name}",
                phase=Phase.SUCCEEDED,
                target_key=dlq.name,
                runbook="redrive-dlq",
                target={"queueName": dlq.name},
                step="Record: succeeded",
                actor=Actor(kind="automatic", rule="sqs-dlq-has-messages"),
                at=utcnow() - timedelta(minutes=minutes),
            )
        )
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, loopThreshold=2))
    assert result.status == "SUCCEEDED"
    assert dlq.depth(cloud) == 3
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert "2 times" in skipped["reason"] and "loop" in skipped["reason"]


def test_redrive_dlq_second_alarm_soon_after_a_redrive_is_skipped_and_escalated(cloud):
    dlq = make_dlq(cloud, messages=3)
    first = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert first.status == "SUCCEEDED"
    cloud.client("sqs").send_message(QueueUrl=dlq.url, MessageBody="again")
    again = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert again.status == "SUCCEEDED" and dlq.depth(cloud) == 1
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert "came back" in skipped["reason"]


def test_redrive_dlq_fifo_to_standard_is_refused_with_a_named_error(cloud):
    dlq = make_dlq(cloud, messages=2, fifo=True)
    standard = make_queue(cloud, "std")
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, destinationArn=standard.arn))
    assert result.status == "FAILED" and result.error == "FifoMismatch"
    assert "FIFO to FIFO" in (result.cause or "")
    assert dlq.depth(cloud) == 2


def test_redrive_dlq_fifo_to_its_fifo_source_works(cloud):
    dlq = make_dlq(cloud, messages=4, fifo=True)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dlq.depth(cloud, dlq.source_url) == 4


def test_redrive_dlq_lambda_or_sns_dlq_fails_with_a_named_error(cloud):
    # A Lambda function's or SNS topic's DLQ: a queue no queue's redrive policy names
    name = make_queue(cloud, "fn-dlq", messages=1).name
    result = cloud.start_and_wait("redrive-dlq", {"target": {"queueName": name}, "reason": "e2e: lambda dlq"})
    assert result.status == "FAILED" and result.error == "UnsupportedDlqSource"
    assert "Lambda" in (result.cause or "") and "SNS" in (result.cause or "")


def test_redrive_dlq_fenced_queue_not_declared_a_dlq_is_refused_before_any_move(cloud):
    """Given a fenced DLQ without selfheal:dlq=true (IAM would not let the redrive role receive or
    delete its messages), When a redrive is asked for, Then the scope guard skips it and escalates,
    with a row naming the tag, and no move task is started."""
    dlq = make_dlq(cloud, messages=3, declare_dlq=False)
    cloud.reset_recording()
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED" and dlq.depth(cloud) == 3
    (skipped,) = rows_for(cloud, dlq.name)
    assert skipped["phase"] == "skipped" and f"{DLQ_TAG}={DLQ_TAG_VALUE}" in skipped["reason"]
    assert "not declared a dead-letter queue" in skipped["reason"]
    assert not [r for r in cloud.recorded_requests() if r.operation == "StartMessageMoveTask"]


def test_redrive_dlq_to_a_destination_that_is_a_declared_dlq_is_refused(cloud):
    """The redrive role may send only to queues that are not declared DLQs: a destinationArn that is
    one is refused by the scope guard, as IAM would refuse the move task's SendMessage."""
    dlq, other = make_dlq(cloud, messages=2), make_dlq(cloud, messages=0)
    cloud.reset_recording()
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, destinationArn=other.arn))
    assert result.status == "SUCCEEDED" and dlq.depth(cloud) == 2 and other.depth(cloud) == 0
    (skipped,) = rows_for(cloud, dlq.name)
    assert skipped["phase"] == "skipped" and other.name in skipped["reason"]
    assert not [r for r in cloud.recorded_requests() if r.operation == "StartMessageMoveTask"]


def test_redrive_dlq_unfenced_queue_is_refused(cloud):
    dlq = make_dlq(cloud, messages=2, fence_dlq=False)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED" and dlq.depth(cloud) == 2
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert dlq.arn in skipped["reason"] and "fence" in skipped["reason"]


def test_redrive_dlq_unfenced_source_queue_is_refused(cloud):
    dlq = make_dlq(cloud, messages=2, fence_source=False)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED" and dlq.depth(cloud) == 2
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert dlq.source_arn in skipped["reason"]


def test_redrive_dlq_empty_dlq_is_skipped(cloud):
    dlq = make_dlq(cloud, messages=0)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in rows_for(cloud, dlq.name) if r["phase"] == "skipped"]
    assert "no messages" in skipped["reason"]


def test_redrive_dlq_bad_rate_is_rejected(cloud):
    dlq = make_dlq(cloud, messages=1)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, maxMessagesPerSecond=501))
    assert result.status == "FAILED" and result.error == "InvalidInput"
    assert "maxMessagesPerSecond" in (result.cause or "")


def test_redrive_dlq_every_mutating_call_has_audit_rows_before_and_after(cloud):
    dlq = make_dlq(cloud, messages=30)
    cloud.reset_recording()
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq, maxMessages=12, maxMessagesPerSecond=5))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service == "sqs" and r.operation in ("StartMessageMoveTask", "CancelMessageMoveTask")
    ]
    assert [m.operation for m in mutating][:2] == ["StartMessageMoveTask", "CancelMessageMoveTask"]
    rows = rows_for(cloud, dlq.name)
    for call in mutating:
        matching = [
            r
            for r in rows
            if r.get("action") == f"sqs:{call.operation}"
            and all(r["parameters"].get(k) == v for k, v in call.parameters.items())
        ]
        assert [r["outcome"] for r in matching][:2] == ["pending", "ok"], json.dumps(rows, default=str)


def test_redrive_dlq_skip_for_an_unhealthy_consumer_does_not_start_the_cooldown(cloud):
    # Given a run that waited for the consumer and skipped
    name = f"consumer-{uuid.uuid4().hex[:8]}"
    alarm(cloud, name, "ALARM")
    dlq = make_dlq(cloud, messages=3)
    skipped = cloud.start_and_wait(
        "redrive-dlq", manual_input(dlq, consumerAlarmName=name, consumerWaitAttempts=0)
    )
    assert skipped.status == "SUCCEEDED" and "started" not in phases(cloud, dlq)
    # When the consumer recovers and the redrive is asked again at once
    cloud.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue="OK", StateReason="fixed")
    again = cloud.start_and_wait("redrive-dlq", manual_input(dlq, consumerAlarmName=name))
    # Then it redrives: the first run changed nothing, so it is no reason to cool down
    assert again.status == "SUCCEEDED", (again.error, again.cause)
    assert dlq.depth(cloud, dlq.source_url) == 3


def _poison_consumer(cloud: DeployedCloud, dlq: Dlq, stop: threading.Event) -> threading.Thread:
    """Every message the source queue gets goes straight back to the DLQ (a poison message's fate)."""
    sqs = cloud.client("sqs")

    def consume() -> None:
        while not stop.is_set():
            got = sqs.receive_message(QueueUrl=dlq.source_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for m in got.get("Messages", []):
                sqs.send_message(QueueUrl=dlq.url, MessageBody=m["Body"])
                sqs.delete_message(QueueUrl=dlq.source_url, ReceiptHandle=m["ReceiptHandle"])
            stop.wait(0.05)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    return thread


def test_redrive_dlq_refill_while_a_task_runs_cancels_it_and_escalates(cloud):
    # Given a large, slow canary and a consumer that sends every message back to the DLQ
    dlq = make_dlq(cloud, messages=40)
    stop = threading.Event()
    consumer = _poison_consumer(cloud, dlq, stop)
    try:
        result = cloud.start_and_wait(
            "redrive-dlq", manual_input(dlq, canaryMessages=30, canaryMessagesPerSecond=5)
        )
    finally:
        stop.set()
        consumer.join()
    # Then the running task is cancelled (audited before and after) and the run fails, escalated
    assert result.status == "FAILED" and result.error == "DlqRefilled", (result.error, result.cause)
    rows = rows_for(cloud, dlq.name)
    stops = [r for r in rows if r.get("action") == "sqs:CancelMessageMoveTask"]
    assert [r["outcome"] for r in stops] == ["pending", "ok"]
    assert "refill" in stops[0]["reason"]
    (task,) = cloud.client("sqs").list_message_move_tasks(SourceArn=dlq.arn)["Results"]
    assert task["Status"] in {"CANCELLING", "CANCELLED"} and task["ApproximateNumberOfMessagesMoved"] < 30
    assert rows[-1]["phase"] == "failed"


def test_redrive_dlq_task_cancelled_by_someone_else_fails_with_a_named_error(cloud):
    # Given a slow main task, and an operator who cancels it from the console
    dlq = make_dlq(cloud, messages=30)
    sqs = cloud.client("sqs")
    stop = threading.Event()

    def operator() -> None:
        while not stop.is_set():
            for task in sqs.list_message_move_tasks(SourceArn=dlq.arn, MaxResults=1)["Results"]:
                if task["Status"] == "RUNNING" and task.get("MaxNumberOfMessagesPerSecond") == 2:
                    sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])
                    return
            stop.wait(0.05)

    thread = threading.Thread(target=operator, daemon=True)
    thread.start()
    try:
        result = cloud.start_and_wait(
            "redrive-dlq", manual_input(dlq, maxMessagesPerSecond=2, pollIntervalSeconds=1)
        )
    finally:
        stop.set()
        thread.join()
    assert result.status == "FAILED" and result.error == "MoveTaskFailed", (result.error, result.cause)
    assert "CANCELLED" in (result.cause or "")


def test_redrive_dlq_sqs_throttling_a_step_is_retried_and_the_run_heals(cloud, faults):
    dlq = make_dlq(cloud, messages=3)
    throttle = faults.throttle("sqs", "ListDeadLetterSourceQueues", times=THROTTLES_PAST_THE_CLIENT)
    result = cloud.start_and_wait("redrive-dlq", manual_input(dlq))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ("Check the guards", "AwsCallFailed") in result.failed_attempts
    assert len(throttle.hits) == THROTTLES_PAST_THE_CLIENT
    assert dlq.depth(cloud) == 0
