"""Operations shared by the CLI, the e2e fixture and the demo: outputs, executions, events, audit rows.

Everything takes boto3 clients as arguments, so it works against the local cloud and a real account.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
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


_IMAGES: dict[str, str] = {}


def any_image_id(ec2: Any) -> str:
    """A machine image to launch test instances from. moto's region ships 1,300 images and an
    unfiltered DescribeImages of them costs two seconds of CPU; they are the same in every moto
    cloud of a region, so the first answer is kept for the process."""
    region = ec2.meta.region_name
    if region not in _IMAGES:
        _IMAGES[region] = str(ec2.describe_images()["Images"][0]["ImageId"])
    return _IMAGES[region]


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


Progress = Callable[[float], None]  # told the seconds waited so far, at every poll


def wait_for_execution(
    sfn: Any,
    execution_arn: str,
    timeout: float = 60.0,
    poll: float = 0.1,
    with_history: bool = True,
    progress: Progress | None = None,
) -> ExecutionResult:
    """Poll until the execution leaves RUNNING; raises OpsError after ``timeout`` seconds."""
    began = time.monotonic()
    deadline = began + timeout
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            break
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


def wait_for_state(
    sfn: Any, execution_arn: str, state: str, timeout: float = 60.0, poll: float = 0.1
) -> None:
    """Until the execution has entered ``state`` (or ended without it: OpsError)."""
    deadline = time.monotonic() + timeout
    while True:
        history = execution_history(sfn, execution_arn)
        if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in history):
            return
        if sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING":
            raise OpsError(f"execution {execution_arn} ended without entering {state!r}")
        if time.monotonic() > deadline:
            raise OpsError(f"execution {execution_arn} did not enter {state!r} within {timeout}s")
        time.sleep(poll)


def stop_at(sfn: Any, execution_arn: str, state: str, timeout: float = 60.0) -> None:
    """StopExecution once the execution has entered ``state``, as an operator stops a run half-way
    (the console's "Stop execution"). To stop it *in* that state, make the state wait first (a call
    held by ``localcloud.faults.hang``): a state that ends sooner than the poll may be left already."""
    wait_for_state(sfn, execution_arn, state, timeout=timeout)
    sfn.stop_execution(
        executionArn=execution_arn, error="Stopped", cause=f"stopped by an operator in {state!r}"
    )


def start_and_wait(
    sfn: Any,
    state_machine_arn: str,
    execution_input: Any,
    name: str | None = None,
    timeout: float = 60.0,
    progress: Progress | None = None,
) -> ExecutionResult:
    """StartExecution exactly as the console does (input as JSON text), then wait for the end."""
    arn = start(sfn, state_machine_arn, execution_input, name)
    return wait_for_execution(sfn, arn, timeout=timeout, progress=progress)


def execution_arns(sfn: Any, state_machine_arns: Iterable[str]) -> set[str]:
    arns: set[str] = set()
    for machine in state_machine_arns:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
            arns.update(e["executionArn"] for e in page["executions"])
    return arns


def wait_for_new_executions(
    sfn: Any, state_machine_arns: Iterable[str], before: set[str], timeout: float = 60.0
) -> list[ExecutionResult]:
    """Wait for every execution started since ``before`` (including ones those executions start)."""
    machines = list(state_machine_arns)
    deadline = time.monotonic() + timeout
    finished: dict[str, ExecutionResult] = {}
    while True:
        new = execution_arns(sfn, machines) - before
        pending = [arn for arn in new if arn not in finished]
        if not pending:
            return sorted(finished.values(), key=lambda r: str(r.description.get("startDate", "")))
        for arn in pending:
            finished[arn] = wait_for_execution(sfn, arn, timeout=max(0.1, deadline - time.monotonic()))


# --- events ------------------------------------------------------------------------------------


def _iso(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_as_delivered(event: Mapping[str, Any], account: str, region: str, event_id: str) -> dict[str, Any]:
    """The full event EventBridge matches rules against (fields the sender does not set filled in)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": event["detail-type"],
        "source": event["source"],
        "account": event.get("account", account),
        "time": event.get("time") or _iso(datetime.datetime.now(datetime.UTC)),
        "region": event.get("region", region),
        "resources": list(event.get("resources", [])),
        "detail": event.get("detail", {}),
    }


def matching_rules(events: Any, event: Mapping[str, Any], bus: str = "default") -> list[dict[str, Any]]:
    """Every rule on the bus whose pattern matches (moto's EventPattern is faithful; AWS's TestEventPattern
    needs one call per rule)."""
    from moto.events.models import EventPattern

    matched = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=bus):
        for rule in page["Rules"]:
            pattern = rule.get("EventPattern")
            candidate: Any = dict(event)
            if pattern and EventPattern.load(pattern).matches_event(candidate):
                targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
                matched.append({"rule": rule["Name"], "targets": [t["Arn"] for t in targets]})
    return matched


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


def _row_key(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


# --- send an event and wait for everything it caused -----------------------------------------------


@dataclass(frozen=True)
class SendSummary:
    event_id: str
    rules: list[dict[str, Any]]
    executions: list[ExecutionResult]
    audit: list[dict[str, Any]]
    runbooks: dict[str, str] = field(default_factory=dict)  # state machine ARN -> runbook name

    def as_dict(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "rulesMatched": self.rules,
            "executions": [
                {
                    "runbook": self.runbooks.get(e.state_machine_arn, e.state_machine_arn.rsplit(":", 1)[-1]),
                    "name": e.name,
                    "status": e.status,
                    "error": e.error,
                    "cause": e.cause,
                }
                for e in self.executions
            ],
            "audit": self.audit,
        }


def stack_state_machines(cloudformation: Any, stack_name: str) -> list[str]:
    arns = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary["ResourceType"] == "AWS::StepFunctions::StateMachine":
                arns.append(summary["PhysicalResourceId"])
    return arns


def send_event_and_wait(
    clients: Any, stack_name: str, event: Mapping[str, Any], timeout: float = 60.0
) -> SendSummary:
    """Put ``event`` on the bus, wait for every execution it caused, report rules, executions, audit rows.

    ``clients`` is a callable service name -> boto3 client. The local cloud delivers Lambda targets before
    put_events returns, so executions a function starts already exist when the wait begins.
    """
    cloudformation, sfn, events = clients("cloudformation"), clients("stepfunctions"), clients("events")
    dynamodb = clients("dynamodb")
    outputs = stack_outputs(cloudformation, stack_name)
    machines = stack_state_machines(cloudformation, stack_name)
    audit_table = outputs.get(AUDIT_TABLE_OUTPUT)
    executions_before = execution_arns(sfn, machines)
    audit_before = {_row_key(r) for r in scan_audit(dynamodb, audit_table)} if audit_table else set()
    identity = clients("sts").get_caller_identity()
    event_id = put_event(events, event)
    delivered = event_as_delivered(event, identity["Account"], sfn.meta.region_name, event_id)
    rules = matching_rules(events, delivered)
    executions = wait_for_new_executions(sfn, machines, executions_before, timeout=timeout)
    audit = (
        [r for r in scan_audit(dynamodb, audit_table) if _row_key(r) not in audit_before]
        if audit_table
        else []
    )
    runbooks = {arn: name for name, arn in runbook_state_machines(outputs).items()}
    return SendSummary(event_id, rules, executions, audit, runbooks)


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
    return wait_for_execution(sfn, arn, timeout=max(1.0, deadline - time.monotonic()), progress=progress)


def pending_approvals(dynamodb: Any, outputs: Mapping[str, str]) -> list[Any]:
    """The questions runbooks are waiting on (selfheal.approvals.PendingApproval), oldest first."""
    from selfheal.approvals import Approvals
    from selfheal.models import utcnow

    return Approvals(dynamodb, outputs[LEASE_TABLE_OUTPUT]).pending(utcnow())


def answer_approval(
    clients: Any,
    outputs: Mapping[str, str],
    execution_arn: str,
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
