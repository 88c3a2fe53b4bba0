"""Telling people and systems what happened: an SNS message and an event on the bus per outcome."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from selfheal.audit import AuditRow, calls_made
from selfheal.models import Phase

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


WIDTH = 100  # an e-mail body's lines (a line holding only a URL may be longer: a URL cannot wrap)
_VALUE_WIDTH = 90  # one key=value of a before/after line, its value cut with "..." beyond it
_TITLE = {"succeeded": "HEALED", "failed": "FAILED", "skipped": "SKIPPED"}


@dataclass(frozen=True)
class Report:
    """One run's end, as the people told of it read it: the evidence (why it ran), the decision,
    each call with its before and after, the result and the time to heal, and what to do next."""

    row: AuditRow  # the run's final row
    outcome: Outcome
    escalate: bool
    evidence: str = ""  # the request's reason: for a signal, its rule, the signal and the alarm's reason
    actions: tuple[AuditRow, ...] = ()  # the run's intent and outcome rows, in order
    result: str = ""  # the run output's one-line reason
    region: str = ""
    ops_item: str | None = None  # the OpsCenter OpsItem the escalation opened (EscalateToOpsCenter)

    @property
    def dry_run(self) -> bool:
        return self.row.dry_run

    def title(self) -> str:
        word = "DRY RUN" if self.dry_run and self.outcome is Outcome.SUCCEEDED else _TITLE[self.outcome.value]
        return f"{word}: {self.row.runbook} {self.row.target_key}"

    def subject(self) -> str:
        """Outcome, runbook and target, within SNS's 100 characters."""
        heal = _heal_seconds(self.row)
        tail = f" in {heal:.0f} s" if heal is not None else ""
        tail += " - ACTION NEEDED" if self.escalate else ""
        return f"[selfheal] {self.title()}{tail}"[:100]

    def next_steps(self) -> list[str]:
        steps = []
        if self.escalate:
            steps.append(
                "A human must look at it: selfheal did not finish this"
                if self.outcome is not Outcome.SUCCEEDED
                else "A human must look at it: the heal took longer than its recovery time objective"
            )
        if self.ops_item:
            steps.append(
                f"OpsItem {self.ops_item} is open in OpsCenter: {self.row.runbook} on this target is"
                " paused until it is resolved"
            )
        steps.append(f"See every row: selfheal audit --target {self.row.target_key}")
        if self.row.execution_arn:
            steps.append(f"The execution: {console_link(self.row.execution_arn, self.region)}")
        steps.append(f"To undo: {undo_hint(self)}")
        return steps


def _heal_seconds(row: AuditRow) -> float | None:
    heal = row.time_to_heal or {}
    return float(heal["seconds"]) if "seconds" in heal else None


def console_link(execution_arn: str, region: str) -> str:
    """The Step Functions console's page of one execution."""
    region = region or execution_arn.split(":")[3]
    return (
        f"https://{region}.console.aws.amazon.com/states/home?region={region}"
        f"#/v2/executions/details/{execution_arn}"
    )


def undo_hint(report: Report) -> str:
    """How to go back: the runbook's own words for this run where it has them, else its reference."""
    for row in (report.row, *report.actions):
        said = (row.before or {}).get("howToGoBack")
        if said:
            return str(said)
    changed = any(r.phase is Phase.ACTION and r.outcome in ("ok", "unknown") for r in report.actions)
    if not changed:
        return "nothing to undo: the run changed nothing"
    return f"docs/runbooks/{report.row.runbook}.md, section Undo"


def flat(values: dict[str, Any] | None) -> str:
    """``key=value, ...`` of a before/after picture or a call's parameters, nested keys dotted
    (``standby.instanceId``), each value cut to fit a line: no JSON for a person to parse."""
    parts = []
    for key, value in _leaves("", values or {}):
        room = max(12, _VALUE_WIDTH - len(key))  # one key=value always fits a line of its own
        parts.append(f"{key}={value if len(value) <= room else value[: room - 3] + '...'}")
    return ", ".join(parts) or "-"


def _leaves(prefix: str, value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(f"{prefix}.{key}" if prefix else str(key), value[key])
    elif isinstance(value, list) and any(isinstance(item, dict | list) for item in value):
        for index, item in enumerate(value):
            yield from _leaves(f"{prefix}.{index}", item)
    elif isinstance(value, list):
        yield prefix, "[" + ", ".join(str(item) for item in value) + "]"
    else:
        yield prefix, str(value)


def _wrapped(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,  # an id or a key=value stays whole (flat() keeps each within a line)
        break_on_hyphens=False,
    ) or [indent.rstrip()]


def _action_lines(actions: tuple[AuditRow, ...]) -> list[str]:
    """Each call once: its outcome, the before its intent row recorded and the after of its outcome."""
    lines: list[str] = []
    made, waiting = calls_made(actions)
    for number, (intent, row) in enumerate(made, start=1):
        undo = " (an undo)" if row.phase is Phase.COMPENSATED else ""
        status = row.outcome or ("would do" if row.phase is Phase.WOULD_DO else "-")
        lines += _wrapped(f"{number}. {row.action}: {status}{undo}")
        before = (intent or row).before or (intent or row).parameters
        lines += _wrapped(f"before: {flat(before)}", "     ")
        if row.phase is not Phase.WOULD_DO:
            lines += _wrapped(f"after:  {flat(row.after)}", "     ")
        if row.error:
            lines += _wrapped(f"error:  {row.error.get('error')}: {row.error.get('message')}", "     ")
    for intent in waiting:  # an intent no outcome followed: the call's fate is unknown
        lines += _wrapped(f"{intent.action}: begun, no outcome recorded (check the target)")
    return lines or ["  none: nothing was changed"]


def email_body(report: Report) -> str:
    """Plain text for e-mail, lines within 100 columns, no JSON dump: what an on-call engineer reads
    at 3 a.m., in the order they need it."""
    row = report.row
    lines = [f"[selfheal] {report.title()}", ""]
    if report.escalate:
        lines += ["ACTION NEEDED", *_wrapped(report.next_steps()[0]), ""]
    lines += ["What happened", *_wrapped(report.evidence or row.reason or "-")]
    lines += _wrapped(f"Resource: {row.target_key} ({flat(row.target)})")
    lines += ["", "Decision", *_wrapped(_actor(row))]
    lines += ["", "What it did" if not report.dry_run else "What it would do (dry run)"]
    lines += _action_lines(report.actions)
    lines += ["", "Result", *_wrapped(f"{row.phase.value}: {report.result or row.reason or '-'}")]
    if row.error:
        lines += _wrapped(f"Error: {row.error.get('error')}: {row.error.get('message')}")
    heal = row.time_to_heal
    if heal:
        objective = heal.get("objectiveSeconds")
        over = " - OVER its objective" if heal.get("overObjective") else ""
        goal = f" (objective {objective} s{over})" if objective else ""
        lines += _wrapped(f"Time to heal: {heal['seconds']:.0f} s from the {heal['from']}{goal}")
    lines += ["", "Next steps"]
    for step in report.next_steps()[1 if report.escalate else 0 :]:
        lines += [f"  {step}"] if "https://" in step else _wrapped(step)
    lines += ["", f"Request: {row.request_id}"]
    return "\n".join(_url_on_its_own(lines))


def _url_on_its_own(lines: list[str]) -> list[str]:
    """A line too long only because of its URL: the URL on a line of its own."""
    out: list[str] = []
    for line in lines:
        if len(line) > WIDTH and "https://" in line:
            head, url = line.split("https://", 1)
            out += [head.rstrip(), "    https://" + url]
        else:
            out.append(line)
    return out


def chat_message(report: Report) -> dict[str, Any]:
    """The custom notification Amazon Q Developer in chat applications (formerly AWS Chatbot)
    accepts on its SNS topic: version 1.0, source custom, content with title, description and next
    steps; one thread per target and runbook."""
    row = report.row
    heal = _heal_seconds(row)
    description = [
        f"*What happened:* {report.evidence or row.reason or '-'}",
        f"*Decision:* {_actor(row)}",
        f"*Result:* {report.result or row.reason or row.phase.value}",
    ]
    if row.error:
        description.append(f"*Error:* {row.error.get('error')}: {row.error.get('message')}")
    if heal is not None:
        description.append(f"*Time to heal:* {heal:.0f} s")
    return {
        "version": "1.0",
        "source": "custom",
        "id": f"{row.request_id}#{row.phase.value}",
        "content": {
            "textType": "client-markdown",
            "title": f"{':rotating_light: ' if report.escalate else ''}selfheal {report.title()}",
            "description": "\n".join(description),
            "nextSteps": report.next_steps(),
            "keywords": [row.runbook, report.outcome.value, *(["escalated"] if report.escalate else [])],
        },
        "metadata": {
            "threadId": f"selfheal#{row.runbook}#{row.target_key}",
            "summary": report.subject(),
            "eventType": report.outcome.detail_type,
            "relatedResources": [row.target_key, *([row.execution_arn] if row.execution_arn else [])],
            "additionalContext": {"requestId": row.request_id, "runbook": row.runbook},
        },
    }


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


def report_of(
    *,
    row: AuditRow,
    outcome: Outcome,
    escalate: bool,
    rows: list[AuditRow] | None = None,
    evidence: str = "",
    result: str = "",
    region: str = "",
    ops_item: str | None = None,
) -> Report:
    """The report of a run's end from its final row and its rows (its calls' before and after)."""
    return Report(
        row=row,
        outcome=outcome,
        escalate=escalate,
        evidence=evidence,
        actions=tuple(r for r in rows or [] if r.phase in (Phase.ACTION, Phase.COMPENSATED, Phase.WOULD_DO)),
        result=result,
        region=region,
        ops_item=ops_item,
    )


def publish_outcome(
    clients: Clients,
    settings: Settings,
    *,
    row: AuditRow,
    outcome: Outcome,
    escalate: bool,
    plan: dict[str, Any] | None,
    rows: list[AuditRow] | None = None,
    evidence: str = "",
    result: str = "",
    ops_item: str | None = None,
) -> None:
    """The outcome on the bus, and for people: the e-mail topic, and the chat topic if the stack
    names one. ``rows``: the run's audit rows (for its calls' before and after); ``ops_item``: the
    OpsItem the escalation opened, named in the next steps and the event."""
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
    if ops_item:
        detail["opsItemId"] = ops_item
    report = report_of(
        row=row,
        outcome=outcome,
        escalate=escalate,
        rows=rows,
        evidence=evidence,
        result=result,
        region=settings.region,
        ops_item=ops_item,
    )
    attributes: dict[str, Any] = {
        "outcome": {"DataType": "String", "StringValue": outcome.value},
        "severity": {"DataType": "String", "StringValue": "escalation" if escalate else "info"},
        "runbook": {"DataType": "String", "StringValue": row.runbook},
    }
    # People hear about what changed something or needs them; a skip that needs no one (mode off,
    # nothing to do for this target) is only on the bus and in the audit trail.
    if outcome is not Outcome.SKIPPED or escalate:
        if settings.topic_arn:
            clients.sns.publish(
                TopicArn=settings.topic_arn,
                Subject=report.subject(),
                Message=email_body(report),
                MessageAttributes=attributes,
            )
        if settings.chat_topic_arn:
            clients.sns.publish(
                TopicArn=settings.chat_topic_arn,
                Message=json.dumps(chat_message(report)),
                MessageAttributes=attributes,
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
    row: AuditRow,
    *,
    why: str,
    evidence: str,
    plan_hash: str,
    answer_before: str,
    calls: list[str],
    undo: str | None,
) -> tuple[str, str]:
    """(subject, message) asking a human, lines within 100 columns. No task token: the answer goes
    through `selfheal approve`, which proves who the approver is; the token stays in the stack's
    own table. The commands name the run by its request id (the execution's name), which fits a
    line where its ARN does not."""
    subject = f"[selfheal] APPROVAL NEEDED: {row.runbook} {row.target_key}"[:100]
    lines = [
        f"[selfheal] {row.runbook} asks for approval before it acts on {row.target_key}",
        "",
        "Why it asks",
        *_wrapped(why),
        "",
        "What happened",
        *_wrapped(evidence or "-"),
        "",
        "Decision",
        *_wrapped(_actor(row)),
        "",
        "What it would do",
        *(line for call in calls for line in _wrapped(call)),
        *_wrapped(f"Plan: {plan_hash}"),
    ]
    if undo:
        lines += ["", "How to go back", *_wrapped(undo)]
    lines += [
        "",
        "Next steps",
        *_wrapped(f"Nothing changes unless someone other than the requester approves by {answer_before}."),
        f"  selfheal approve {row.request_id} --comment WHY",
        f"  selfheal reject {row.request_id} --reason WHY",
        "  selfheal approvals    (what waits, and why)",
    ]
    if row.execution_arn:
        lines += [f"  The execution: {console_link(row.execution_arn, '')}"]
    lines += ["", f"Request: {row.request_id}"]
    return subject, "\n".join(_url_on_its_own(lines))
