"""redrive-dlq: wait for a healthy consumer, move a canary, watch that it stays out of the DLQ, move
the rest at a bounded rate; stop the move task once it moved enough or the DLQ refills."""

from __future__ import annotations

from selfheal.runbooks import redrive_dlq as rb
from tools.asl.frame import FAILED, SKIPPED, SUCCEEDED, VERIFIED, Workflow
from tools.asl.idioms import Call, Flow, State, all_of, catch, equals

PLAN = "$.guard.plan"
PRECHECK = "Precheck: does the DLQ hold messages, with a healthy consumer?"
REFILLED = "The DLQ refilled"
NOT_COMPLETED = "The move task did not complete"
MOVE_TASKS = "aws-sdk:sqs:listMessageMoveTasks"
DEPTH = "aws-sdk:sqs:getQueueAttributes"

START = Call(
    rb.START,
    intent="Record: about to start a move task",
    task={
        "to the named destination": "Start the move task to the named destination",
        "back to the source queues": "Start the move task back to the source queues",
    },
    shape_choice="Is there a named destination?",
    done="Record: the move task started",
    failed="Record: the move task did not start",
    result={"taskHandle.$": "$.TaskHandle"},
    result_path="$.task",
)
STOP = Call(
    rb.STOP,
    intent="Record: about to stop the move task",
    task="Stop the move task",
    done="Record: the move task was stopped",
    failed="Record: the move task could not be stopped",
    result={"moved.$": "$.ApproximateNumberOfMessagesMoved"},
    result_path="$.cancelled",
    call_path="$.cancel",
    error_path="$.cancelError",
)


def wait_for_the_consumer(f: Flow, precheck: str) -> str:
    """Redriving into a failing consumer only dead-letters the messages again: wait for it first."""
    f.pass_(
        "Start counting consumer checks",
        next_state=precheck,
        comment="The precheck (and its waits for the consumer) come before 'started': a run that only"
        " waited and skipped must not count for the cooldown.",
        result={"attempt": 0, "movedEarlier": 0},
        result_path="$.progress",
    )
    f.choice(
        "Should we wait for the consumer?",
        [
            (
                {"Variable": "$.progress.attempt", "NumericLessThanPath": f"{PLAN}.consumerWaitAttempts"},
                "Count the consumer check",
            )
        ],
        SKIPPED,
    )
    f.renew(
        "Count the consumer check",
        f"{PLAN}.consumerWaitSeconds",
        next_state="Wait for the consumer to recover",
        keep={"attempt.$": "States.MathAdd($.progress.attempt, 1)", "movedEarlier": 0},
        result_path="$.progress",
        on_error=FAILED,
    )
    f.wait("Wait for the consumer to recover", f"{PLAN}.consumerWaitSeconds", next_state=precheck)
    return "Start counting consumer checks"


def precheck_catches(f: Flow) -> list[State]:
    return [
        catch(rb.ConsumerUnhealthy, "Should we wait for the consumer?"),
        catch(rb.MoveTaskRunning, SKIPPED),
    ]


def _moving(index: int, phase: str, limit: str, poll: str) -> dict[str, object]:
    """What the shared move-task loop needs to know about the task it runs."""
    return {"index": index, "phase": phase, "limit.$": limit, "pollSeconds.$": poll}


def _depth(f: Flow, name: str, next_state: str) -> None:
    f.describe(
        name,
        DEPTH,
        {"QueueUrl.$": f"{PLAN}.queueUrl", "AttributeNames": ["ApproximateNumberOfMessages"]},
        {"depth.$": "States.StringToJson($.Attributes.ApproximateNumberOfMessages)"},
        next_state=next_state,
        on_error=FAILED,
        result_path="$.depth",
    )


def _add_up(f: Flow, name: str, next_state: str, polling: bool = False) -> None:
    """Left in the DLQ + moved out by this task + moved by the canary before it. While polling, the
    second sum also renews the lease past the next poll's wait."""
    f.pass_(
        name,
        next_state=f"{name} (earlier tasks)",
        parameters={"sum.$": "States.MathAdd($.depth.depth, $.poll.task.ApproximateNumberOfMessagesMoved)"},
        result_path="$.tally",
    )
    earlier = {"sum.$": "States.MathAdd($.tally.sum, $.progress.movedEarlier)"}
    if polling:
        f.renew(
            f"{name} (earlier tasks)",
            "$.moving.pollSeconds",
            next_state=next_state,
            keep=earlier,
            result_path="$.tally",
            on_error=FAILED,
        )
    else:
        f.pass_(f"{name} (earlier tasks)", next_state=next_state, parameters=earlier, result_path="$.tally")


def _list_tasks(f: Flow, name: str, next_state: str) -> None:
    f.describe(
        name,
        MOVE_TASKS,
        {"SourceArn.$": f"{PLAN}.queueArn", "MaxResults": 1},
        {"task.$": "States.ArrayGetItem($.Results, 0)"},
        next_state=next_state,
        on_error=FAILED,
        result_path="$.poll",
    )


def body(f: Flow) -> str:
    refilling = {"Variable": "$.tally.sum", "NumericGreaterThanPath": "$.precheck.before.depth"}
    status = "$.poll.task.Status"
    f.pass_(
        "Plan the canary move task",
        next_state=START.intent,
        comment="A few messages at a low rate first: if they come back, the rest stay put.",
        parameters=_moving(0, "canary", f"{PLAN}.canaryMessages", f"{PLAN}.canaryPollIntervalSeconds"),
        result_path="$.moving",
    )
    f.call(START, next_state="Wait before polling the move task", on_error=FAILED, index="$.moving.index")
    f.wait("Wait before polling the move task", "$.moving.pollSeconds", next_state="List the move tasks")
    _list_tasks(f, "List the move tasks", "Read the DLQ depth while moving")
    _depth(f, "Read the DLQ depth while moving", "Add up where the messages are")
    _add_up(f, "Add up where the messages are", "Is the DLQ refilling?", polling=True)
    f.choice(
        "Is the DLQ refilling?",
        [
            (all_of(refilling, equals(status, "RUNNING")), "Plan stopping the move task: the DLQ refills"),
            (refilling, REFILLED),
        ],
        "How is the move task doing?",
        comment="Left in the DLQ + moved out > what it held before: messages are coming back (poison).",
    )
    f.choice(
        "How is the move task doing?",
        [
            (
                all_of(equals(status, "COMPLETED"), equals("$.moving.phase", "canary")),
                "Remember what the canary moved",
            ),
            # The depth was read after this poll, and left + moved is not more than the DLQ held: verified.
            (equals(status, "COMPLETED"), VERIFIED),
            (
                all_of(
                    equals(status, "RUNNING"),
                    {
                        "Variable": "$.poll.task.ApproximateNumberOfMessagesMoved",
                        "NumericGreaterThanEqualsPath": "$.moving.limit",
                    },
                ),
                "Plan stopping the move task: it moved enough",
            ),
            (equals(status, "RUNNING"), "Wait before polling the move task"),
            (equals(status, "CANCELLING"), "Wait before polling the move task"),
        ],
        NOT_COMPLETED,
    )
    for why, reason in (("it moved enough", "limit"), ("the DLQ refills", "refill")):
        f.pass_(
            f"Plan stopping the move task: {why}",
            next_state=STOP.intent,
            result={"why": reason},
            result_path="$.stopping",
        )
    f.call(
        STOP,
        next_state="Why did we stop the move task?",
        on_error=FAILED,
        on_failed="Why did we stop the move task?",
        runtime={"move task": "$.task.taskHandle"},
        reason="States.Format('stop the move task: {}', $.stopping.why)",
        before=None,
    )
    f.choice(
        "Why did we stop the move task?",
        [(equals("$.stopping.why", "refill"), REFILLED)],
        "Wait for the move task to stop",
    )
    f.wait(
        "Wait for the move task to stop",
        "$.moving.pollSeconds",
        next_state="List the move tasks while it stops",
    )
    _list_tasks(f, "List the move tasks while it stops", "Has the move task stopped?")
    f.choice(
        "Has the move task stopped?",
        [
            (equals(status, "CANCELLED"), "Which move task finished?"),
            (equals(status, "COMPLETED"), "Which move task finished?"),
            (equals(status, "FAILED"), NOT_COMPLETED),
        ],
        "Wait for the move task to stop",
    )
    f.choice(
        "Which move task finished?",
        [(equals("$.moving.phase", "canary"), "Remember what the canary moved")],
        "Read the DLQ depth at the end",
    )
    f.renew(
        "Remember what the canary moved",
        f"{PLAN}.canaryObserveSeconds",
        next_state="Watch the DLQ after the canary",
        keep={
            "attempt.$": "$.progress.attempt",
            "movedEarlier.$": "$.poll.task.ApproximateNumberOfMessagesMoved",
            "canary.$": "$.poll.task",
        },
        result_path="$.progress",
        on_error=FAILED,
    )
    f.wait(
        "Watch the DLQ after the canary",
        f"{PLAN}.canaryObserveSeconds",
        next_state="Read the DLQ depth after the canary",
        comment="Long enough for the consumer to fail the canary messages maxReceiveCount times, if it will.",
    )
    _depth(f, "Read the DLQ depth after the canary", "Add up where the messages are after the canary")
    f.pass_(
        "Add up where the messages are after the canary",
        next_state="Did the canary messages come back?",
        parameters={"sum.$": "States.MathAdd($.depth.depth, $.progress.movedEarlier)"},
        result_path="$.tally",
    )
    f.choice(
        "Did the canary messages come back?",
        [
            (refilling, REFILLED),
            ({"Variable": f"{PLAN}.restLimit", "NumericEquals": 0}, VERIFIED),
            ({"Variable": "$.depth.depth", "NumericEquals": 0}, VERIFIED),
        ],
        "Plan the move task for the rest",
    )
    f.pass_(
        "Plan the move task for the rest",
        next_state=START.intent,
        comment="The canary stayed out of the DLQ: the rest at the policy's rate.",
        parameters=_moving(1, "rest", f"{PLAN}.restLimit", f"{PLAN}.pollIntervalSeconds"),
        result_path="$.moving",
    )
    _depth(f, "Read the DLQ depth at the end", "Add up where the messages are at the end")
    _add_up(f, "Add up where the messages are at the end", "Did the DLQ drop by what was moved?")
    f.choice("Did the DLQ drop by what was moved?", [(refilling, REFILLED)], VERIFIED)
    f.error(
        REFILLED,
        rb.DlqRefilled,
        "{} refilled while being redriven (held {}, now holds {} after moving some out): poison messages or a"
        " consumer that still fails. Redrive stopped; look at the messages before redriving again.",
        f"{PLAN}.queueName",
        "$.precheck.before.depth",
        "$.depth.depth",
        next_state=FAILED,
    )
    f.error(
        NOT_COMPLETED,
        rb.MoveTaskFailed,
        "the message move task on {} ended {}: {}",
        f"{PLAN}.queueName",
        status,
        "States.JsonToString($.poll.task)",
        next_state=FAILED,
    )
    f.record(
        VERIFIED,
        "verified",
        next_state=SUCCEEDED,
        on_error=FAILED,
        after={"depth.$": "$.depth.depth", "lastTask.$": "$.poll.task", "canary.$": "$.progress.canary"},
    )
    return "Plan the canary move task"


WORKFLOW = Workflow(
    runbook=rb.RedriveDlq.name,
    comment=(
        "redrive-dlq: redrive a fenced SQS dead-letter queue with StartMessageMoveTask, canary first, at a"
        " bounded rate; stop and escalate if the DLQ refills. Input: {target: {queueName|queueUrl|queueArn},"
        " params: {maxMessagesPerSecond?, maxMessages?, destinationArn?, ...}, dryRun, reason}."
    ),
    precheck=PRECHECK,
    body=body,
    precheck_first=True,
    before_precheck=wait_for_the_consumer,
    precheck_catches=precheck_catches,
)
