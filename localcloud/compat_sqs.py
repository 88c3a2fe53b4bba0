"""SQS dead-letter-queue redrive (StartMessageMoveTask / ListMessageMoveTasks / CancelMessageMoveTask).

moto 5.2.5 does not implement them. Semantics follow the SQS API reference: the source must be a
dead-letter queue; one active task per source queue; MaxNumberOfMessagesPerSecond at most 500; without a
DestinationArn messages go back to the queue they came from; FIFO only to FIFO; statuses RUNNING,
COMPLETED, CANCELLING, CANCELLED, FAILED. Moves run on a thread at the requested rate so a task can be
observed RUNNING and cancelled. Pinned to moto 5.2.5 with every patch (localcloud.patches).

Details kept faithful because runbooks depend on them:
- ApproximateNumberOfMessagesToMove is "obtained at the time of starting the task": the task moves at
  most that many messages, so a DLQ that refills while it runs does not keep a task alive forever.
- Only available messages move (not in flight, not delayed), each sent as a new message: new
  MessageId, fresh receive count and retention.
- At most 100 active tasks per account; a task still RUNNING after 36 hours FAILs (not reachable in
  tests, kept for fidelity of the counts).
- A DLQ no SQS queue points at (fed by Lambda or SNS, or not a DLQ at all) is refused.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from localcloud.patches import patch

MAX_RATE = 500
DEFAULT_RATE = MAX_RATE  # AWS: "system optimized"; locally, as fast as allowed
_LIST_DEFAULT, _LIST_MAX = 1, 10
MAX_ACTIVE_PER_ACCOUNT = 100
MAX_TASK_SECONDS = 36 * 3600


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    to_move: int
    started_ms: int
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            result["TaskHandle"] = self.handle  # AWS returns the handle only while the task runs
        if self.destination_arn:
            result["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            result["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure_reason:
            result["FailureReason"] = self.failure_reason
        return result


_tasks: dict[str, list[MoveTask]] = {}  # source ARN -> tasks, oldest first
_lock = threading.Lock()


def _error(code: str, message: str) -> Exception:
    from moto.sqs.exceptions import SQSException

    return SQSException(code, message)


def _queue_by_arn(backend: Any, arn: str) -> Any:
    from moto.sqs.exceptions import QueueDoesNotExist

    try:
        return backend.get_queue(arn.rsplit(":", 1)[-1])
    except QueueDoesNotExist as exc:
        raise _error("ResourceNotFoundException", f"The queue {arn} does not exist.") from exc


def start_move_task(backend: Any, source_arn: str, destination_arn: str | None, rate: int | None) -> str:
    source = _queue_by_arn(backend, source_arn)
    origins = backend.list_dead_letter_source_queues(source.name)
    if not origins:
        raise _error("InvalidParameterValue", "Source queue must be configured as a Dead Letter Queue.")
    destination = _queue_by_arn(backend, destination_arn) if destination_arn else None
    if destination is not None and destination.fifo_queue != source.fifo_queue:
        raise _error("InvalidParameterValue", "Messages can only be moved between queues of the same type.")
    if rate is not None and not 1 <= rate <= MAX_RATE:
        raise _error(
            "InvalidParameterValue", f"MaxNumberOfMessagesPerSecond must be between 1 and {MAX_RATE}."
        )
    with _lock:
        if any(_active(t) for t in _tasks.get(source_arn, [])):
            raise _error("UnsupportedOperation", "There is already a task running on this source queue.")
        account = source_arn.split(":")[4]
        active = sum(
            1 for arn, ts in _tasks.items() if arn.split(":")[4] == account for t in ts if _active(t)
        )
        if active >= MAX_ACTIVE_PER_ACCOUNT:
            raise _error(
                "UnsupportedOperation", f"At most {MAX_ACTIVE_PER_ACCOUNT} active tasks per account."
            )
        with source._messages_lock:
            available = sum(1 for m in source._messages if m.visible and not m.delayed)
        task = MoveTask(
            handle=uuid.uuid4().hex,
            source_arn=source_arn,
            destination_arn=destination_arn,
            rate=rate,
            to_move=available,
            started_ms=int(time.time() * 1000),
        )
        _tasks.setdefault(source_arn, []).append(task)
    threading.Thread(target=_run, args=(task, backend, source, destination, origins), daemon=True).start()
    return task.handle


def _active(task: MoveTask) -> bool:
    return task.status in ("RUNNING", "CANCELLING")


def _take_available(source: Any) -> Any:
    with source._messages_lock:
        for index, message in enumerate(source._messages):
            if message.visible and not message.delayed:
                return source._messages.pop(index)
    return None


def _run(task: MoveTask, backend: Any, source: Any, destination: Any, origins: list[Any]) -> None:
    interval = 1.0 / (task.rate or DEFAULT_RATE)
    deadline = time.monotonic() + MAX_TASK_SECONDS
    while not task.cancel.is_set():
        if time.monotonic() > deadline:
            task.status, task.failure_reason = "FAILED", "TaskTimedOut"
            return
        message = _take_available(source) if task.moved < task.to_move else None
        if message is None:
            task.status = "COMPLETED"
            return
        target = destination or _origin(message, origins)
        if target is None:
            with source._messages_lock:
                source._messages.insert(0, message)
            task.status, task.failure_reason = "FAILED", "CouldNotDetermineMessageSource"
            return
        try:
            backend.send_message(
                queue_name=target.name,
                message_body=message.body,
                message_attributes=message.message_attributes or None,
                deduplication_id=message.deduplication_id,
                group_id=message.group_id,
            )
        except Exception as exc:  # e.g. the destination was deleted: the task fails, the message stays
            with source._messages_lock:
                source._messages.insert(0, message)
            task.status, task.failure_reason = "FAILED", type(exc).__name__
            return
        task.moved += 1
        # Paced against the start time, so the rate holds over the task's life, not per message.
        ahead = task.started_ms / 1000 + task.moved * interval - time.time()
        if ahead > 0:
            task.cancel.wait(ahead)
    task.status = "CANCELLED"


def _origin(message: Any, origins: list[Any]) -> Any:
    """The queue a dead-lettered message came from (SQS records it; moto does not, so with several
    source queues and no record the task fails, as AWS does when it cannot tell)."""
    source_arn = message.system_attributes.get("DeadLetterQueueSourceArn")
    for queue in origins:
        if queue.queue_arn == source_arn:
            return queue
    return origins[0] if len(origins) == 1 else None


def list_move_tasks(source_arn: str, max_results: int | None) -> list[dict[str, Any]]:
    limit = max(1, min(max_results or _LIST_DEFAULT, _LIST_MAX))
    with _lock:
        tasks = list(reversed(_tasks.get(source_arn, [])))[:limit]  # most recent first
    return [task.describe() for task in tasks]


def cancel_move_task(handle: str) -> int:
    with _lock:
        task = next((t for tasks in _tasks.values() for t in tasks if t.handle == handle), None)
    if task is None or task.status != "RUNNING":
        raise _error("ResourceNotFoundException", "Task does not exist or is not running.")
    task.status = "CANCELLING"
    task.cancel.set()
    return task.moved


def _record_dead_letter_source() -> None:
    """SQS remembers which queue a message was dead-lettered from (the DeadLetterQueueSourceArn
    system attribute) and a move task without a destination sends it back there; moto does not,
    so with several source queues the task could not tell. Record it when moto moves a message."""
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message

    def receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        dlq = queue.dead_letter_queue
        before = {id(m) for m in queue._messages} if dlq is not None else set()
        result = original(self, queue_name, *args, **kwargs)
        if dlq is not None:
            with dlq._messages_lock:
                for message in dlq._messages:
                    if id(message) in before:
                        message.system_attributes.setdefault("DeadLetterQueueSourceArn", queue.queue_arn)
        return result

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


@patch("sqs-message-move-tasks")
def patch_sqs_message_move_tasks() -> None:
    """moto has no DLQ redrive: StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask
    as the SQS API reference describes them (this module's docstring)."""
    from moto.core.responses import ActionResult
    from moto.sqs.responses import SQSResponse

    cls: Any = SQSResponse
    _record_dead_letter_source()

    def start_message_move_task(self: Any) -> ActionResult:
        rate = self._get_param("MaxNumberOfMessagesPerSecond")
        handle = start_move_task(
            self.sqs_backend,
            self._get_param("SourceArn"),
            self._get_param("DestinationArn"),
            int(rate) if rate is not None else None,
        )
        return ActionResult({"TaskHandle": handle})

    def list_message_move_tasks(self: Any) -> ActionResult:
        max_results = self._get_param("MaxResults")
        results = list_move_tasks(self._get_param("SourceArn"), int(max_results) if max_results else None)
        return ActionResult({"Results": results})

    def cancel_message_move_task(self: Any) -> ActionResult:
        return ActionResult(
            {"ApproximateNumberOfMessagesMoved": cancel_move_task(self._get_param("TaskHandle"))}
        )

    cls.start_message_move_task = start_message_move_task
    cls.list_message_move_tasks = list_message_move_tasks
    cls.cancel_message_move_task = cancel_message_move_task
