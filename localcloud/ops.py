"""Operations of the local cloud: what its tests, the demo, the benchmarks and ``selfheal local send``
do beyond an operator's (images to launch from, stopping a run at a state, every execution an event
caused, the rules it matched: moto's EventPattern).

The operator's operations live in ``selfheal_cli.ops`` (boto3 and the core package only) and are
re-exported here, so that one ``from localcloud import ops`` serves a test.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from selfheal_cli.ops import (
    AUDIT_TABLE_OUTPUT,
    AUDIT_TARGET_INDEX,
    LEASE_TABLE_OUTPUT,
    MANUAL_SOURCE,
    STATE_MACHINE_OUTPUT_SUFFIX,
    ApprovalAsked,
    ExecutionResult,
    InvalidEvent,
    OpsError,
    Progress,
    answer_approval,
    approval_asked,
    audit_for_request,
    audit_for_target,
    execution_history,
    pending_approvals,
    plain_item,
    put_event,
    request_and_wait,
    runbook_name,
    runbook_output_key,
    runbook_state_machines,
    scan_audit,
    signed_request_event,
    stack_outputs,
    start,
    start_and_wait,
    state_machine_arn,
    wait_for_execution,
)

__all__ = [
    "AUDIT_TABLE_OUTPUT",
    "AUDIT_TARGET_INDEX",
    "LEASE_TABLE_OUTPUT",
    "MANUAL_SOURCE",
    "STATE_MACHINE_OUTPUT_SUFFIX",
    "ApprovalAsked",
    "ExecutionResult",
    "InvalidEvent",
    "OpsError",
    "Progress",
    "SendSummary",
    "answer_approval",
    "any_image_id",
    "approval_asked",
    "audit_for_request",
    "audit_for_target",
    "event_as_delivered",
    "execution_arns",
    "execution_history",
    "matching_rules",
    "pending_approvals",
    "plain_item",
    "put_event",
    "request_and_wait",
    "runbook_name",
    "runbook_output_key",
    "runbook_state_machines",
    "scan_audit",
    "send_event_and_wait",
    "signed_request_event",
    "stack_outputs",
    "stack_state_machines",
    "start",
    "start_and_wait",
    "state_machine_arn",
    "stop_at",
    "wait_for_execution",
    "wait_for_new_executions",
    "wait_for_state",
]


_IMAGES: dict[str, str] = {}


def any_image_id(ec2: Any) -> str:
    """A machine image to launch test instances from. moto's region ships 1,300 images and an
    unfiltered DescribeImages of them costs two seconds of CPU; they are the same in every moto
    cloud of a region, so the first answer is kept for the process."""
    region = ec2.meta.region_name
    if region not in _IMAGES:
        _IMAGES[region] = str(ec2.describe_images()["Images"][0]["ImageId"])
    return _IMAGES[region]


# --- executions --------------------------------------------------------------------------------


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


def execution_arns(sfn: Any, state_machine_arns: Iterable[str]) -> set[str]:
    arns: set[str] = set()
    for machine in state_machine_arns:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
            arns.update(e["executionArn"] for e in page["executions"])
    return arns


def wait_for_new_executions(
    sfn: Any,
    state_machine_arns: Iterable[str],
    before: set[str],
    timeout: float = 60.0,
    approval_asked: ApprovalAsked | None = None,
) -> list[ExecutionResult]:
    """Wait for every execution started since ``before`` (including ones those executions start);
    with ``approval_asked``, one that waits for a human counts as ended (see wait_for_execution)."""
    machines = list(state_machine_arns)
    deadline = time.monotonic() + timeout
    finished: dict[str, ExecutionResult] = {}
    while True:
        new = execution_arns(sfn, machines) - before
        pending = [arn for arn in new if arn not in finished]
        if not pending:
            return sorted(finished.values(), key=lambda r: str(r.description.get("startDate", "")))
        for arn in pending:
            finished[arn] = wait_for_execution(
                sfn, arn, timeout=max(0.1, deadline - time.monotonic()), approval_asked=approval_asked
            )


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
    clients: Any,
    stack_name: str,
    event: Mapping[str, Any],
    timeout: float = 60.0,
    stop_at_approval: bool = False,
) -> SendSummary:
    """Put ``event`` on the bus, wait for every execution it caused, report rules, executions, audit rows.
    With ``stop_at_approval``, an execution that waits for a human ends the wait for it.

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
    asked = approval_asked(dynamodb, outputs) if stop_at_approval else None
    executions = wait_for_new_executions(
        sfn, machines, executions_before, timeout=timeout, approval_asked=asked
    )
    audit = (
        [r for r in scan_audit(dynamodb, audit_table) if _row_key(r) not in audit_before]
        if audit_table
        else []
    )
    runbooks = {arn: name for name, arn in runbook_state_machines(outputs).items()}
    return SendSummary(event_id, rules, executions, audit, runbooks)
