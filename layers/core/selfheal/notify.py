"""Telling people and systems what happened: an SNS message and an event on the bus per outcome."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from selfheal.audit import AuditRow

if TYPE_CHECKING:
    from selfheal.clients import Clients
    from selfheal.config import Settings

EVENT_SOURCE = "selfheal"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def detail_type(self) -> str:
        return f"Remediation {self.value.capitalize()}"


def summary_line(row: AuditRow, outcome: Outcome) -> str:
    mode = " (dry run: nothing was changed)" if row.dry_run else ""
    return f"[selfheal] {row.runbook} {outcome.value} on {row.target_key}{mode}"


def message_text(row: AuditRow, outcome: Outcome, escalate: bool, plan: dict[str, Any] | None) -> str:
    """What an on-call engineer reads at 3 a.m.: evidence, decision, outcome, and what to do."""
    lines = [
        summary_line(row, outcome),
        "",
        f"Why it ran:   {row.reason or '-'}"
        if outcome is Outcome.SUCCEEDED
        else f"Reason:       {row.reason or '-'}",
        f"Requested by: {_actor(row)}",
        f"Target:       {json.dumps(row.target, sort_keys=True)}",
    ]
    if plan:
        shown = {k: v for k, v in plan.items() if k not in ("resourceTags", "calls")}
        lines.append(f"Plan:         {json.dumps(shown)}")
    if row.before:
        lines.append(f"Before:       {json.dumps(row.before, sort_keys=True)}")
    if row.after:
        lines.append(f"After:        {json.dumps(row.after, sort_keys=True)}")
    if row.error:
        lines.append(f"Error:        {row.error.get('error')}: {row.error.get('message')}")
    if escalate:
        lines += ["", "ACTION NEEDED: selfheal did not fix this; a human must look at it."]
    lines += ["", f"Execution:    {row.execution_arn or '-'}", f"Audit:        requestId={row.request_id}"]
    return "\n".join(lines)


def _actor(row: AuditRow) -> str:
    actor = row.actor
    if actor is None:
        return "-"
    if actor.kind == "automatic":
        return f"automatic (rule {actor.rule}, event {actor.event_id})"
    if actor.kind == "manual" and actor.principal:
        return f"manual request signed by {actor.principal} (verified by STS)"
    if actor.kind == "manual":
        return f"manual request on the bus (requestedBy {actor.requested_by or '-'}, self-declared)"
    claim = f"; its input claims {json.dumps(actor.claimed, sort_keys=True)}" if actor.claimed else ""
    return f"started directly (who: CloudTrail StartExecution){claim}"


def publish_outcome(
    clients: Clients,
    settings: Settings,
    *,
    row: AuditRow,
    outcome: Outcome,
    escalate: bool,
    plan: dict[str, Any] | None,
) -> None:
    detail = {
        "requestId": row.request_id,
        "runbook": row.runbook,
        "outcome": outcome.value,
        "target": row.target,
        "targetKey": row.target_key,
        "dryRun": row.dry_run,
        "escalate": escalate,
        "reason": row.reason,
        "error": row.error,
        "executionArn": row.execution_arn,
    }
    # People hear about what changed something or needs them; a skip that needs no one (mode off,
    # nothing to do for this target) is only on the bus and in the audit trail.
    if settings.topic_arn and (outcome is not Outcome.SKIPPED or escalate):
        clients.sns.publish(
            TopicArn=settings.topic_arn,
            Subject=summary_line(row, outcome)[:100],
            Message=message_text(row, outcome, escalate, plan),
            MessageAttributes={
                "outcome": {"DataType": "String", "StringValue": outcome.value},
                "severity": {"DataType": "String", "StringValue": "escalation" if escalate else "info"},
                "runbook": {"DataType": "String", "StringValue": row.runbook},
            },
        )
    clients.events.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": outcome.detail_type,
                "Detail": json.dumps(detail, default=str),
                "EventBusName": settings.event_bus,
                "Resources": [row.execution_arn] if row.execution_arn else [],
            }
        ]
    )


def approval_request_text(
    row: AuditRow, *, why: str, plan_hash: str, answer_before: str, calls: list[str], undo: str | None
) -> tuple[str, str]:
    """(subject, message) asking a human. No task token: the answer goes through `selfheal approve`,
    which proves who the approver is; the token stays in the stack's own table."""
    subject = f"[selfheal] APPROVAL NEEDED: {row.runbook} {row.target_key}"[:100]
    lines = [
        f"[selfheal] {row.runbook} asks for approval before it acts on {row.target_key}",
        "",
        f"Why ask:      {why}",
        f"Reason:       {row.reason or '-'}",
        f"Requested by: {_actor(row)}",
        f"Plan:         {plan_hash}",
        "Calls:",
        *(f"  {call}" for call in calls),
    ]
    if undo:
        lines += [f"Go back:      {undo}"]
    lines += [
        "",
        f"Approve:      selfheal approve {row.execution_arn}",
        f'Reject:       selfheal reject {row.execution_arn} --reason "why not"',
        "Pending:      selfheal approvals",
        f"Nothing changes unless someone other than the requester approves by {answer_before}.",
        "",
        f"Execution:    {row.execution_arn or '-'}",
        f"Audit:        requestId={row.request_id}",
    ]
    return subject, "\n".join(lines)
