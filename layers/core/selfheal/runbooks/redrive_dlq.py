"""redrive-dlq: bring dead-lettered messages back to their queue(s), canary first, at a bounded rate.

The moves (``StartMessageMoveTask``, ``CancelMessageMoveTask``) and their polling run as direct SDK
integrations in the workflow (``tools/asl/runbooks/redrive_dlq.py``); this module resolves which
queues take part and checks it is safe to start: the DLQ holds messages, no move task runs on it,
its consumer is healthy. Errors named here are matched by class name in the ASL.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, model_validator

from selfheal.errors import NotApplicable, PreconditionFailed, TerminalError, UnknownResource
from selfheal.models import StrictModel
from selfheal.runbooks.base import Call, CallSpec, Plan, Runbook, placeholder, register
from selfheal.tags import TAG_PARAM_PREFIX, tag_params

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_RATE = 500  # SQS: MaxNumberOfMessagesPerSecond is at most 500
# When neither the request nor the policy caps the redrive: effectively "all of them".
NO_CAP = 1_000_000_000
CONSUMER_ALARM_TAG = f"{TAG_PARAM_PREFIX}consumerAlarmName"
# SQS has no condition key that tells a dead-letter queue from any other queue (only the global
# aws:ResourceTag), and a move task needs ReceiveMessage/DeleteMessage on the DLQ but only
# SendMessage on where the messages go. So the operator declares each DLQ with this tag (on top of the
# fence): IAM lets the redrive role take messages only out of queues so tagged, and send only to
# fenced queues without it; the scope guard refuses what IAM would (out_of_scope).
DLQ_TAG, DLQ_TAG_VALUE = "selfheal:dlq", "true"

IAM_ACTIONS = (
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
    "sqs:ListDeadLetterSourceQueues",
    "sqs:ListMessageMoveTasks",
    "cloudwatch:DescribeAlarms",
    "sqs:StartMessageMoveTask",
    "sqs:CancelMessageMoveTask",
    # A move task acts with the caller's permissions: ReceiveMessage, DeleteMessage and
    # GetQueueAttributes on the DLQ, SendMessage on the destination (SQS developer guide, "Amazon SQS
    # API permissions: Actions and resource reference").
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:SendMessage",
)


class UnsupportedDlqSource(TerminalError):
    """No SQS queue dead-letters into this queue: it is fed by Lambda or SNS (or is no DLQ at all),
    and StartMessageMoveTask cannot redrive it."""


class FifoMismatch(TerminalError):
    """A FIFO dead-letter queue can only be redriven to FIFO queues (and a standard one to standard)."""


class MoveTaskRunning(TerminalError):
    """A message move task is already running on this dead-letter queue (SQS allows one)."""


class ConsumerUnhealthy(TerminalError):
    """The consumer-health alarm is not OK: redriving now would dead-letter the messages again."""


class RedriveDlqTarget(StrictModel):
    """The dead-letter queue, by name, URL or ARN (exactly one)."""

    queue_name: str | None = Field(default=None, alias="queueName", pattern=r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
    queue_url: str | None = Field(default=None, alias="queueUrl", pattern=r"^https?://\S+/\d{12}/[\w.-]+$")
    queue_arn: str | None = Field(
        default=None, alias="queueArn", pattern=r"^arn:aws[\w-]*:sqs:[\w-]+:\d{12}:[\w.-]+$"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [v for v in (self.queue_name, self.queue_url, self.queue_arn) if v]
        if len(given) != 1:
            raise ValueError("target needs exactly one of queueName, queueUrl, queueArn")
        return self

    @property
    def key(self) -> str:
        """The queue name: what the DLQ alarm's QueueName dimension says, whichever form was given."""
        if self.queue_name:
            return self.queue_name
        return (self.queue_url or self.queue_arn or "").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


class RedriveDlqParams(StrictModel):
    destination_arn: str | None = Field(
        default=None,
        alias="destinationArn",
        pattern=r"^arn:aws[\w-]*:sqs:[\w-]+:\d{12}:[\w.-]+$",
        description="Where the messages go; default: back to the queue each came from",
    )
    max_messages_per_second: int = Field(
        default=50,
        alias="maxMessagesPerSecond",
        ge=1,
        le=MAX_RATE,
        description="Rate of the main move task (after the canary)",
    )
    max_messages: int | None = Field(
        default=None, alias="maxMessages", ge=1, description="Stop after about this many messages"
    )
    canary_messages: int = Field(
        default=10, alias="canaryMessages", ge=1, le=1000, description="Messages moved first, as a canary"
    )
    canary_messages_per_second: int = Field(
        default=1,
        alias="canaryMessagesPerSecond",
        ge=1,
        le=MAX_RATE,
        description="Rate of the canary's move task",
    )
    canary_observe_seconds: int = Field(
        default=120,
        alias="canaryObserveSeconds",
        ge=0,
        le=3600,
        description="Watch the DLQ this long after the canary (longer than a consumer takes to dead-letter)",
    )
    poll_interval_seconds: int = Field(
        default=5,
        alias="pollIntervalSeconds",
        ge=0,
        le=300,
        description="Seconds between polls of the move task",
    )
    consumer_alarm_name: str | None = Field(
        default=None,
        alias="consumerAlarmName",
        min_length=1,
        max_length=255,
        description=f"Must be OK before the redrive; default: the DLQ's {CONSUMER_ALARM_TAG} tag",
    )
    consumer_wait_attempts: int = Field(
        default=3,
        alias="consumerWaitAttempts",
        ge=0,
        le=60,
        description="While the consumer alarm is not OK: re-checks before the run skips",
    )
    consumer_wait_seconds: int = Field(
        default=60, alias="consumerWaitSeconds", ge=0, le=900, description="Seconds between those re-checks"
    )
    # The loop guard for this DLQ: may only be stricter than the deployment's (guards.GuardLimits).
    loop_threshold: int | None = Field(
        default=None,
        alias="loopThreshold",
        ge=1,
        le=100,
        description="Loop guard: redrives of this DLQ in the window (default: the stack's; only stricter)",
    )
    loop_window_seconds: int | None = Field(
        default=None,
        alias="loopWindowSeconds",
        ge=60,
        le=7 * 86400,
        description="Loop guard's window (default: the stack's; only stricter)",
    )


class DlqRedrive(Plan):
    """The plan: which DLQ, where its messages go, and the two move tasks (canary, then the rest)."""

    queue_name: str = Field(alias="queueName")
    queue_url: str = Field(alias="queueUrl")
    queue_arn: str = Field(alias="queueArn")
    fifo: bool
    source_queue_arns: list[str] = Field(alias="sourceQueueArns")
    destination_arn: str | None = Field(default=None, alias="destinationArn")
    named_destination: bool = Field(alias="namedDestination")
    start_canary: dict[str, Any] = Field(alias="startCanary")
    start_rest: dict[str, Any] = Field(alias="startRest")
    canary_messages: int = Field(alias="canaryMessages")
    rest_limit: int = Field(alias="restLimit")
    canary_observe_seconds: int = Field(alias="canaryObserveSeconds")
    poll_interval_seconds: int = Field(alias="pollIntervalSeconds")
    # The canary is stopped by cancelling its task once enough moved: poll it at least every second
    # so it overshoots by at most its rate (a move task cannot be told to stop at N messages).
    canary_poll_interval_seconds: int = Field(alias="canaryPollIntervalSeconds")
    consumer_alarm_name: str | None = Field(default=None, alias="consumerAlarmName")
    consumer_wait_attempts: int = Field(alias="consumerWaitAttempts")
    consumer_wait_seconds: int = Field(alias="consumerWaitSeconds")
    guard_limits: dict[str, int] = Field(default_factory=dict, alias="guardLimits")


def _name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def _queue_url(sqs: SQSClient, target: RedriveDlqTarget) -> str:
    if target.queue_url:
        return target.queue_url
    query: dict[str, Any] = {"QueueName": target.key}
    if target.queue_arn:
        query["QueueOwnerAWSAccountId"] = target.queue_arn.split(":")[4]
    try:
        return sqs.get_queue_url(**query)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise UnknownResource(f"no SQS queue {target.key}", queue=target.key) from exc


def _attributes(sqs: SQSClient, url: str, names: list[str]) -> dict[str, str]:
    try:
        # Attributes a queue does not have (FifoQueue on a standard queue) are simply absent.
        response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)  # type: ignore[arg-type]
        return {str(k): v for k, v in response.get("Attributes", {}).items()}
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise UnknownResource(f"no SQS queue {url}", queue=url) from exc


def _tags(sqs: SQSClient, url: str) -> dict[str, str]:
    return dict(sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))


def _url_for_arn(sqs: SQSClient, arn: str) -> str:
    try:
        return sqs.get_queue_url(QueueName=_name_of(arn), QueueOwnerAWSAccountId=arn.split(":")[4])[
            "QueueUrl"
        ]
    except sqs.exceptions.QueueDoesNotExist as exc:
        raise UnknownResource(f"no SQS queue {arn}", queue=arn) from exc


def _start_parameters(queue_arn: str, destination: str | None, rate: int) -> dict[str, Any]:
    call: dict[str, Any] = {"SourceArn": queue_arn, "MaxNumberOfMessagesPerSecond": rate}
    if destination:
        call["DestinationArn"] = destination
    return call


def resolve(
    sqs: SQSClient, target: RedriveDlqTarget, params: RedriveDlqParams, fence_key: str, fence_value: str
) -> DlqRedrive:
    """Which DLQ, which source queues, where the messages go. Raises the named errors of the issue."""
    url = _queue_url(sqs, target)
    attrs = _attributes(sqs, url, ["QueueArn", "FifoQueue"])
    arn = attrs["QueueArn"]
    fifo = attrs.get("FifoQueue", "false").lower() == "true"
    sources = sorted(sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", []))
    if not sources:
        raise UnsupportedDlqSource(
            f"no SQS queue uses {_name_of(arn)} as its dead-letter queue: StartMessageMoveTask only"
            " redrives DLQs of SQS queues; DLQs fed by Lambda (async invocation or event source) or by"
            " SNS subscriptions are not supported by the API and must be replayed by their owner",
            queue=arn,
        )
    tags = {arn: _tags(sqs, url)}
    params = with_tag_params(params, tags[arn])
    source_arns = []
    for source_url in sources:
        source_arn = _attributes(sqs, source_url, ["QueueArn"])["QueueArn"]
        source_arns.append(source_arn)
        tags[source_arn] = _tags(sqs, source_url)
    destination = params.destination_arn
    if destination:
        destination_url = _url_for_arn(sqs, destination)
        destination_fifo = (
            _attributes(sqs, destination_url, ["FifoQueue"]).get("FifoQueue", "false").lower() == "true"
        )
        if destination_fifo != fifo:
            kind = "FIFO" if fifo else "standard"
            raise FifoMismatch(
                f"{_name_of(arn)} is a {kind} queue and {_name_of(destination)} is not: SQS moves"
                " messages FIFO to FIFO and standard to standard only; name a destination of the same type"
                " or leave destinationArn out to send them back to their source queue",
                queue=arn,
                destination=destination,
            )
        tags[destination] = _tags(sqs, destination_url)
    canary = params.canary_messages
    rest_limit = NO_CAP if params.max_messages is None else max(params.max_messages - canary, 0)
    if params.max_messages is not None and params.max_messages < canary:
        canary, rest_limit = params.max_messages, 0
    guard_limits = {
        k: v
        for k, v in {
            "loopThreshold": params.loop_threshold,
            "loopWindowSeconds": params.loop_window_seconds,
        }.items()
        if v is not None
    }
    return DlqRedrive(
        queue_name=_name_of(arn),
        queue_url=url,
        queue_arn=arn,
        fifo=fifo,
        source_queue_arns=source_arns,
        destination_arn=destination,
        named_destination=bool(destination),
        start_canary=_start_parameters(arn, destination, params.canary_messages_per_second),
        start_rest=_start_parameters(arn, destination, params.max_messages_per_second),
        canary_messages=canary,
        rest_limit=rest_limit,
        canary_observe_seconds=params.canary_observe_seconds,
        poll_interval_seconds=params.poll_interval_seconds,
        canary_poll_interval_seconds=min(params.poll_interval_seconds, 1),
        consumer_alarm_name=params.consumer_alarm_name or tags[arn].get(CONSUMER_ALARM_TAG),
        consumer_wait_attempts=params.consumer_wait_attempts,
        consumer_wait_seconds=params.consumer_wait_seconds,
        guard_limits=guard_limits,
        resource_tags=tags,
    )


def with_tag_params(params: RedriveDlqParams, tags: dict[str, str]) -> RedriveDlqParams:
    """Per-DLQ params from its ``selfheal:param:<name>`` tags, for params the request left at their
    default (an explicit param wins over a tag; the request reaches us with defaults filled in, so a
    param explicitly set to its default value counts as unset). A bad tag value is an error."""
    fields = RedriveDlqParams.model_fields
    by_alias = {f.alias: name for name, f in fields.items() if f.alias}
    from_tags = {
        alias: value
        for alias, value in tag_params(tags).items()
        if alias in by_alias and getattr(params, by_alias[alias]) == fields[by_alias[alias]].default
    }
    if not from_tags:
        return params
    try:
        return RedriveDlqParams.model_validate(
            {**params.model_dump(by_alias=True, exclude_none=True), **from_tags}
        )
    except ValueError as exc:
        raise PreconditionFailed(f"a {TAG_PARAM_PREFIX}* tag on the DLQ has a bad value: {exc}") from exc


def out_of_scope(plan: DlqRedrive) -> list[str]:
    """What IAM would refuse the redrive role: taking messages from a queue not declared a DLQ
    (``selfheal:dlq=true``), or sending them to a queue that is one (pure)."""
    refused = []
    if plan.resource_tags.get(plan.queue_arn, {}).get(DLQ_TAG) != DLQ_TAG_VALUE:
        refused.append(
            f"{plan.queue_name} is not declared a dead-letter queue (tag it {DLQ_TAG}={DLQ_TAG_VALUE}):"
            " the redrive may take messages only out of queues so tagged"
        )
    destinations = [plan.destination_arn] if plan.destination_arn else plan.source_queue_arns
    refused += [
        f"{_name_of(arn)} is tagged {DLQ_TAG}={DLQ_TAG_VALUE}: the redrive may send messages only to"
        " queues that are not declared dead-letter queues"
        for arn in destinations
        if plan.resource_tags.get(arn, {}).get(DLQ_TAG) == DLQ_TAG_VALUE
    ]
    return refused


def consumer_state(cloudwatch: Any, alarm_name: str) -> str:
    alarms = cloudwatch.describe_alarms(AlarmNames=[alarm_name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    found = alarms.get("MetricAlarms", []) + alarms.get("CompositeAlarms", [])
    if not found:
        raise PreconditionFailed(
            f"the consumer-health alarm {alarm_name!r} does not exist: fix the policy, the"
            f" consumerAlarmName param or the {CONSUMER_ALARM_TAG} tag",
            alarm=alarm_name,
        )
    return str(found[0]["StateValue"])


def precheck(sqs: SQSClient, cloudwatch: Any, plan: DlqRedrive) -> dict[str, Any]:
    """Holds messages, no move task running, consumer healthy. Returns `before` (the depth is the
    baseline the ASL checks refills against)."""
    attrs = _attributes(
        sqs,
        plan.queue_url,
        ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    depth = int(attrs.get("ApproximateNumberOfMessages", "0"))
    in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", "0"))
    tasks = sqs.list_message_move_tasks(SourceArn=plan.queue_arn, MaxResults=1).get("Results", [])
    latest = dict(tasks[0]) if tasks else None
    if latest and latest.get("Status") in ("RUNNING", "CANCELLING"):
        raise MoveTaskRunning(
            f"a message move task is already {latest['Status']} on {plan.queue_name}"
            f" ({latest.get('ApproximateNumberOfMessagesMoved', 0)} of"
            f" {latest.get('ApproximateNumberOfMessagesToMove', '?')} moved): not starting another",
            queue=plan.queue_arn,
        )
    if depth == 0:
        raise NotApplicable(f"{plan.queue_name} holds no messages to redrive", queue=plan.queue_arn)
    consumer: dict[str, Any] = {"alarm": plan.consumer_alarm_name, "state": None}
    if plan.consumer_alarm_name:
        state = consumer_state(cloudwatch, plan.consumer_alarm_name)
        consumer["state"] = state
        if state != "OK":
            raise ConsumerUnhealthy(
                f"the consumer-health alarm {plan.consumer_alarm_name!r} is {state}, not OK:"
                f" redriving {depth} messages now would dead-letter them again",
                alarm=plan.consumer_alarm_name,
            )
    return {
        "queueArn": plan.queue_arn,
        "depth": depth,
        "inFlight": in_flight,
        "sourceQueueArns": plan.source_queue_arns,
        "destinationArn": plan.destination_arn,
        "lastMoveTask": json.loads(json.dumps(latest, default=str)) if latest else None,
        "consumer": consumer,
    }


class DlqRefilled(TerminalError):
    """The DLQ refilled while it was being redriven: poison messages, or a consumer that still fails."""


class MoveTaskFailed(TerminalError):
    """The message move task ended FAILED (or in a state the redrive did not expect)."""


_START = {
    "back to the source queues": ("SourceArn", "MaxNumberOfMessagesPerSecond"),
    "to the named destination": ("SourceArn", "DestinationArn", "MaxNumberOfMessagesPerSecond"),
}
MOVE_TASK = placeholder("move task")
# Made twice: the canary (the plan's first "start"), then the rest. A second send would move more
# than a canary's worth: not retried on an error that may hide a start.
START = CallSpec("start", "sqs:StartMessageMoveTask", _START, idempotent=False)
# Made when a move task moved enough, or the DLQ refills.
STOP = CallSpec(
    "stop",
    "sqs:CancelMessageMoveTask",
    {"default": ("TaskHandle",)},
    runtime={"TaskHandle": "move task"},
    contingent=True,
)


@register
class RedriveDlq(Runbook):
    name = "redrive-dlq"
    target_model = RedriveDlqTarget
    params_model = RedriveDlqParams
    plan_model = DlqRedrive
    permissions = IAM_ACTIONS
    calls = (START, STOP)

    def resolve(self, target: RedriveDlqTarget, params: RedriveDlqParams) -> DlqRedrive:
        return resolve(self.clients.sqs, target, params, *self.fence)

    def precheck(self, plan: DlqRedrive) -> dict[str, Any]:
        return precheck(self.clients.sqs, self.clients.cloudwatch, plan)

    def out_of_scope(self, plan: DlqRedrive) -> list[str]:
        return out_of_scope(plan)

    def exact_calls(self, plan: DlqRedrive) -> list[Call]:
        return [
            START.call(plan.start_canary),
            START.call(plan.start_rest),
            STOP.call({"TaskHandle": MOVE_TASK}),
        ]
