"""Operations against a deployed selfheal stack: its outputs, executions, events, audit rows, signed
requests and approval answers (the operator CLI's, and those the local cloud's tests build on).

Everything takes boto3 clients as arguments, so it works against a real account and the local cloud
alike. Nothing here needs more than boto3 and the core package.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer

STATE_MACHINE_OUTPUT_SUFFIX = "StateMachineArn"
AUDIT_TABLE_OUTPUT = "AuditTableName"
AUDIT_TARGET_INDEX = "byTarget"


class OpsError(RuntimeError):
    """A stack, runbook or execution the command needs is missing or did not finish."""


class InvalidEvent(OpsError):
    """An event EventBridge would refuse as written (a detail that is no object, a placeholder time)."""


# --- stack outputs -----------------------------------------------------------------------------


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cloudformation.exceptions.ClientError as exc:
        raise OpsError(f"stack {stack_name!r} not found: {exc}") from exc
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def runbook_output_key(runbook: str) -> str:
    """``remap-eip`` -> ``RemapEipStateMachineArn`` (the template's naming convention)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_\s]+", runbook) if part) + (
        STATE_MACHINE_OUTPUT_SUFFIX
    )


def runbook_name(output_key: str) -> str:
    """``RemapEipStateMachineArn`` -> ``remap-eip``."""
    stem = output_key.removesuffix(STATE_MACHINE_OUTPUT_SUFFIX)
    return re.sub(r"(?<!^)(?=[A-Z])", "-", stem).lower()


def runbook_state_machines(outputs: Mapping[str, str]) -> dict[str, str]:
    """runbook name -> state machine ARN, for every ``<Runbook>StateMachineArn`` output."""
    return {
        runbook_name(key): value
        for key, value in outputs.items()
        if key.endswith(STATE_MACHINE_OUTPUT_SUFFIX)
    }


def state_machine_arn(outputs: Mapping[str, str], runbook: str) -> str:
    key = runbook_output_key(runbook)
    if key not in outputs:
        known = ", ".join(sorted(runbook_state_machines(outputs))) or "none"
        raise OpsError(f"no stack output {key} for runbook {runbook!r} (runbooks: {known})")
    return outputs[key]


# --- executions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionResult:
    """A finished (or timed-out) execution: DescribeExecution plus its full history."""

    description: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    # Set when the wait ended because the run waits for a human (selfheal.approvals.PendingApproval).
    asks_approval: Any | None = None

    @property
    def arn(self) -> str:
        return str(self.description["executionArn"])

    @property
    def name(self) -> str:
        return str(self.description.get("name", self.arn.rsplit(":", 1)[-1]))

    @property
    def state_machine_arn(self) -> str:
        return str(self.description.get("stateMachineArn", ""))

    @property
    def status(self) -> str:
        return str(self.description["status"])

    @property
    def output(self) -> Any:
        raw = self.description.get("output")
        return json.loads(raw) if raw else None

    @property
    def error(self) -> str | None:
        return self.description.get("error")

    @property
    def cause(self) -> str | None:
        return self.description.get("cause")

    @property
    def failed_attempts(self) -> list[tuple[str, str]]:
        """(state, error) of every task attempt that failed, in order: a task its Retry took again
        shows once per failed attempt, a run that still succeeded included."""
        failures: list[tuple[str, str]] = []
        state = ""
        for event in self.history:
            entered = event.get("stateEnteredEventDetails")
            if entered:
                state = entered["name"]
            for key in ("taskFailedEventDetails", "lambdaFunctionFailedEventDetails"):
                if key in event:
                    failures.append((state, str(event[key].get("error", ""))))
        return failures


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


Progress = Callable[[float], None]  # told the seconds waited so far, at every poll
# The question a running execution waits on a human for, if any (given the execution's ARN).
ApprovalAsked = Callable[[str], Any | None]
_APPROVAL_POLL_SECONDS = 1.0  # one GetItem a second: a question is asked once per run, not raced


def wait_for_execution(
    sfn: Any,
    execution_arn: str,
    timeout: float = 60.0,
    poll: float = 0.1,
    with_history: bool = True,
    progress: Progress | None = None,
    approval_asked: ApprovalAsked | None = None,
) -> ExecutionResult:
    """Poll until the execution leaves RUNNING; raises OpsError after ``timeout`` seconds. With
    ``approval_asked``, the wait also ends as soon as the run waits for a human: nobody answers by
    waiting longer (the approver must be someone else), so the caller can say how to answer."""
    began = time.monotonic()
    deadline = began + timeout
    asked_next = began
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            break
        if approval_asked is not None and time.monotonic() >= asked_next:
            asked_next = time.monotonic() + _APPROVAL_POLL_SECONDS
            question = approval_asked(execution_arn)
            if question is not None:
                return ExecutionResult(description, [], asks_approval=question)
        if time.monotonic() > deadline:
            raise OpsError(f"execution {execution_arn} still RUNNING after {timeout}s")
        if progress is not None:
            progress(time.monotonic() - began)
        time.sleep(poll)
    history = execution_history(sfn, execution_arn) if with_history else []
    return ExecutionResult(description, history)


def start(sfn: Any, state_machine_arn: str, execution_input: Any, name: str | None = None) -> str:
    """StartExecution exactly as the console does (input as JSON text); the execution's ARN."""
    text = execution_input if isinstance(execution_input, str) else json.dumps(execution_input)
    started = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name or str(uuid.uuid4()), input=text
    )
    return str(started["executionArn"])


def start_and_wait(
    sfn: Any,
    state_machine_arn: str,
    execution_input: Any,
    name: str | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
    approval_asked: ApprovalAsked | None = None,
) -> ExecutionResult:
    """StartExecution exactly as the console does (input as JSON text), then wait for the end."""
    arn = start(sfn, state_machine_arn, execution_input, name)
    return wait_for_execution(sfn, arn, timeout=timeout, progress=progress, approval_asked=approval_asked)


# --- events ------------------------------------------------------------------------------------


def put_event(events: Any, event: Mapping[str, Any], bus: str = "default") -> str:
    """PutEvents for one event as a sender writes it (source, detail-type, detail, time?); OpsError
    naming what is wrong with it, as EventBridge would refuse it."""
    detail = event.get("detail", {})
    if not isinstance(detail, dict):
        raise InvalidEvent(f"the event's detail must be a JSON object, not {type(detail).__name__}")
    entry: dict[str, Any] = {
        "Source": event["source"],
        "DetailType": event["detail-type"],
        "Detail": json.dumps(event.get("detail", {})),
        "Resources": list(event.get("resources", [])),
        "EventBusName": bus,
    }
    if event.get("time"):
        try:
            entry["Time"] = datetime.datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
        except ValueError:
            # AWS's own samples carry placeholders such as "yyyy-mm-ddThh:mm:ssZ".
            raise InvalidEvent(
                f"the event's time {event['time']!r} is not an ISO 8601 time: set one, or leave it out"
                " (EventBridge then stamps the time it received the event)"
            ) from None
    response = events.put_events(Entries=[entry])
    result = response["Entries"][0]
    if response.get("FailedEntryCount"):
        raise OpsError(f"put_events rejected the event: {result}")
    return str(result["EventId"])


# --- audit -------------------------------------------------------------------------------------

_DESERIALIZER = TypeDeserializer()


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        raw: Any = value  # boto3's stubs omit Binary.value
        return base64.b64encode(raw.value).decode()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item ({"S": ...} attribute values) as plain JSON-ready Python."""
    return {key: _plain(_DESERIALIZER.deserialize(value)) for key, value in item.items()}


def _newest_last(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: str(row.get("at", "")))


def scan_audit(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        rows.extend(plain_item(item) for item in page["Items"])
    return _newest_last(rows)


def _audit_query(dynamodb: Any, **query: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("query").paginate(**query):
        rows.extend(plain_item(item) for item in page["Items"])
    return _newest_last(rows)


def audit_for_target(dynamodb: Any, table: str, target: str) -> list[dict[str, Any]]:
    return _audit_query(
        dynamodb,
        TableName=table,
        IndexName=AUDIT_TARGET_INDEX,
        KeyConditionExpression="targetKey = :t",
        ExpressionAttributeValues={":t": {"S": target}},
    )


def audit_for_request(dynamodb: Any, table: str, request_id: str) -> list[dict[str, Any]]:
    """One remediation's rows (the table's own key: no index, no scan)."""
    return _audit_query(
        dynamodb,
        TableName=table,
        KeyConditionExpression="requestId = :r",
        ExpressionAttributeValues={":r": {"S": request_id}},
    )


# --- authenticated requests and approval answers (selfheal.identity) -------------------------------

LEASE_TABLE_OUTPUT = "LeaseTableName"
MANUAL_SOURCE = "selfheal.manual"


def signed_request_event(sts: Any, runbook: str, runbook_input: Mapping[str, Any]) -> dict[str, Any]:
    """A "Remediation Requested" event carrying a proof of its sender: triage records who sent it as
    STS says, and the stack's BusRequestsMode (for self-declared requests) does not hold it back."""
    from selfheal.identity import MANUAL_REQUEST, binding, prove

    body = {"runbook": runbook, **runbook_input}
    proof = prove(sts, binding(MANUAL_REQUEST, body))
    return {
        "source": MANUAL_SOURCE,
        "detail-type": "Remediation Requested",
        "detail": {**body, "proof": proof},
    }


def _refused(dynamodb: Any, table: str | None, request_id: str) -> str | None:
    """Triage's reason, when it refused a request (its rejected row), else None."""
    if not table:
        return None
    rows = [r for r in audit_for_request(dynamodb, table, request_id) if r.get("phase") == "rejected"]
    return str(rows[-1].get("reason")) if rows else None


def request_and_wait(
    clients: Any,
    outputs: Mapping[str, str],
    runbook: str,
    runbook_input: Mapping[str, Any],
    timeout: float,
    progress: Progress | None = None,
    approval_asked: ApprovalAsked | None = None,
) -> ExecutionResult:
    """Put a signed request on the bus, wait for the execution triage starts for it, then its end.
    OpsError with triage's reason when it refused the request."""
    from selfheal.triage import execution_name

    sfn, dynamodb = clients("stepfunctions"), clients("dynamodb")
    machine = state_machine_arn(outputs, runbook)
    event_id = put_event(clients("events"), signed_request_event(clients("sts"), runbook, runbook_input))
    target = runbook_input.get("target") or {}
    name = execution_name(runbook, event_id, target)
    arn = machine.replace(":stateMachine:", ":execution:") + f":{name}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            sfn.describe_execution(executionArn=arn)
            break
        except sfn.exceptions.ExecutionDoesNotExist:
            refused = _refused(dynamodb, outputs.get(AUDIT_TABLE_OUTPUT), name)
            if refused:
                raise OpsError(f"the request was refused: {refused}") from None
            if time.monotonic() > deadline:
                raise OpsError(f"no execution {name} started within {timeout:g}s") from None
            time.sleep(0.2)
    return wait_for_execution(
        sfn,
        arn,
        timeout=max(1.0, deadline - time.monotonic()),
        progress=progress,
        approval_asked=approval_asked,
    )


def pending_approvals(dynamodb: Any, outputs: Mapping[str, str]) -> list[Any]:
    """The questions runbooks are waiting on (selfheal.approvals.PendingApproval), oldest first."""
    from selfheal.approvals import Approvals
    from selfheal.models import utcnow

    return Approvals(dynamodb, outputs[LEASE_TABLE_OUTPUT]).pending(utcnow())


def approval_asked(dynamodb: Any, outputs: Mapping[str, str]) -> ApprovalAsked | None:
    """For wait_for_execution: the unanswered question an execution waits on, read by its request id
    (None for a stack without a lease table: nothing there asks a human)."""
    from selfheal.approvals import Approvals

    if LEASE_TABLE_OUTPUT not in outputs:
        return None
    approvals = Approvals(dynamodb, outputs[LEASE_TABLE_OUTPUT])

    def asked(execution_arn: str) -> Any | None:
        pending = approvals.get(execution_arn.rsplit(":", 1)[-1])
        unanswered = (
            pending is not None and pending.execution_arn == execution_arn and pending.decision is None
        )
        return pending if unanswered else None

    return asked


def answer_approval(
    clients: Any,
    outputs: Mapping[str, str],
    execution_arn: str,  # or its request id: the execution's name
    decision: str,
    reason: str | None,
    timeout: float = 30.0,
) -> Any:
    """Answer a waiting run on the authenticated path: read its question (for the plan's hash), sign
    the answer, put it on the bus, and wait until triage took it (the question's record says so) or
    refused it (its rejected row). Returns the answered PendingApproval; OpsError with the reason."""
    from selfheal.approvals import ApprovalAnswer, Approvals
    from selfheal.identity import APPROVAL_ANSWER, binding, prove

    dynamodb = clients("dynamodb")
    approvals = Approvals(dynamodb, outputs[LEASE_TABLE_OUTPUT])
    request_id = execution_arn.rsplit(":", 1)[-1]
    pending = approvals.get(request_id)
    if pending is not None and not execution_arn.startswith("arn:"):
        execution_arn = pending.execution_arn  # named by its request id (the execution's name)
    if pending is None or pending.execution_arn != execution_arn:
        raise OpsError(f"no approval is pending for {execution_arn} (see selfheal approvals)")
    answer = ApprovalAnswer.model_validate(
        {
            "executionArn": execution_arn,
            "decision": decision,
            "planHash": pending.plan_hash,
            **({"reason": reason} if reason else {}),
        }
    )
    body = answer.bound_body()
    proof = prove(clients("sts"), binding(APPROVAL_ANSWER, body))
    event = {"source": MANUAL_SOURCE, "detail-type": "Approval Answered", "detail": {**body, "proof": proof}}
    event_id = put_event(clients("events"), event)
    deadline = time.monotonic() + timeout
    while True:
        now = approvals.get(request_id)
        if now is not None and now.decision is not None:
            return now
        refused = _refused(dynamodb, outputs.get(AUDIT_TABLE_OUTPUT), f"answer-{event_id}"[:120])
        if refused:
            raise OpsError(refused)
        if time.monotonic() > deadline:
            raise OpsError(f"the answer was not taken within {timeout:g}s (is triage subscribed to the bus?)")
        time.sleep(0.2)
