"""Triage: signal -> decision -> start the runbook, with every decision in the audit trail.

Duplicate deliveries (EventBridge is at-least-once) start nothing new: the execution name is derived
from the signal, and Step Functions refuses a second execution with the same name for 90 days.
Triage's own audit rows are keyed on the signal's time, so a duplicate rewrites nothing either.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ValidationError

from selfheal.approvals import ApprovalAnswer, Approvals, PendingApproval
from selfheal.audit import AuditRow, AuditTrail
from selfheal.config import listed
from selfheal.errors import ApprovalRefused, InvalidInput, SelfhealError, Unauthenticated, UnknownRunbook
from selfheal.identity import APPROVAL_ANSWER, MANUAL_REQUEST, binding, verify
from selfheal.models import Actor, Phase, input_digest, utcnow
from selfheal.policy import Decision, NoMatch, Policy, decide, describe
from selfheal.runbooks import RUNBOOKS
from selfheal.signals import ApprovalAnswerInfo, Signal, SignalKind, Unrecognised, parse_records
from selfheal.steps import best_effort_target, parse_request

if TYPE_CHECKING:
    from selfheal.clients import Clients
    from selfheal.config import Settings


# What triage did with one signal (each is counted under its own metric, Triage<Decision>).
TriageDecision = Literal["started", "duplicate", "ignored", "rejected", "answered"]
TRIAGE_DECISIONS: tuple[str, ...] = get_args(TriageDecision)


class TriageOutcome(BaseModel):
    decision: TriageDecision
    request_id: str
    runbook: str | None = None
    execution_arn: str | None = None
    reason: str | None = None


def execution_name(runbook: str, event_id: str, target: dict[str, Any]) -> str:
    """Same signal + runbook + target -> same name (<= 80 chars, the characters SFN allows)."""
    digest = hashlib.sha256(
        json.dumps([runbook, event_id, target], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"{runbook}-{digest[:40]}"


def _fault_time(signal: Signal) -> datetime:
    """When the fault was seen. The same for every envelope one alarm transition arrives in, so the
    triage rows of duplicate deliveries get the same key and are written once."""
    if signal.alarm is not None and signal.alarm.changed_at is not None:
        return signal.alarm.changed_at
    # An AWS Health issue began at its startTime; a scheduled change (a retirement) starts in the
    # future, and the fault is seen when the event says so.
    if signal.health is not None and signal.health.start_time is not None:
        return min(signal.health.start_time, signal.time)
    return signal.time


class Triage:
    def __init__(self, settings: Settings, clients: Clients, policy: Policy) -> None:
        self.settings = settings
        self.clients = clients
        self.policy = policy
        self.audit = AuditTrail(clients.dynamodb, settings.audit_table)

    def handle(self, raw: object, rule: str | None = None) -> list[TriageOutcome]:
        outcomes: list[TriageOutcome] = []
        for item in parse_records(raw):
            if isinstance(item, Unrecognised):
                outcomes.append(self._ignore_unrecognised(item, raw))
                continue
            foreign = self._foreign(item)
            if foreign:
                outcomes.append(self._ignore(item, foreign))
                continue
            if item.approval_answer is not None:
                outcomes.append(self._answer(item, item.approval_answer))
                continue
            result = decide(self.policy, item, applies=self._applies)
            if isinstance(result, NoMatch):
                outcomes.append(self._ignore(item, result.reason))
                continue
            outcomes += [self._start(item, decision) for decision in result]
        return outcomes

    def _foreign(self, signal: Signal) -> str | None:
        """Why the signal is not this stack's to act on (another account), else None. Rules filter on
        the account too; this also covers the alarm topic, alarm actions and direct invokes."""
        accepted = [a for a in (self.settings.account_id, *listed(self.settings.accepted_account_ids)) if a]
        if not accepted:
            return None
        allowed = ", ".join(accepted)
        if signal.account not in accepted:
            return f"from account {signal.account or 'unknown'}, not one this stack accepts ({allowed})"
        # An organizational AWS Health event names the member account it is about.
        affected = signal.health.affected_account if signal.health else None
        if affected and affected not in accepted:
            return f"about account {affected}, not one this stack accepts ({allowed})"
        return None

    def _applies(self, decision: Decision) -> str | None:
        """Ask the decision's runbook whether it applies to the target (rules with whenApplicable).
        When the answer cannot be had (an AWS error, a bad target), say yes: the runbook then runs and
        records what it finds, as it did before the rule asked."""
        runbook = RUNBOOKS.get(decision.runbook)
        if runbook is None:
            return None
        try:
            target = runbook.target_model.model_validate(decision.target)
            params = runbook.params_model.model_validate(decision.params)
            return runbook(self.clients, self.settings).applies(target, params)
        except Exception:  # any doubt means "let the runbook decide", never "drop the signal"
            return None

    def _ignore_unrecognised(self, item: Unrecognised, raw: object) -> TriageOutcome:
        content = json.dumps(raw, default=str, sort_keys=True).encode()
        what = f"unrecognised event (source {item.source or '-'}, detail-type {item.detail_type or '-'})"
        return self._ignored(item.event_id or hashlib.sha256(content).hexdigest(), f"{what}: {item.reason}")

    def _ignore(self, signal: Signal, reason: str) -> TriageOutcome:
        return self._ignored(signal.dedupe_id, f"{describe(signal)}: {reason}", _fault_time(signal))

    def _ignored(self, event_id: str, reason: str, at: datetime | None = None) -> TriageOutcome:
        request_id = f"ignored-{event_id}"[:120]
        row = AuditRow(
            request_id=request_id, phase=Phase.IGNORED, target_key="-", step="triage", reason=reason
        )
        # Keyed on the fault's time when there is one, so a duplicate delivery rewrites nothing.
        self.audit.write(row.model_copy(update={"at": at}) if at else row)
        return TriageOutcome(decision="ignored", request_id=request_id, reason=reason)

    def _runbook_input(
        self, signal: Signal, decision: Decision
    ) -> tuple[dict[str, Any], SelfhealError | None]:
        """The runbook input, and why the request must be refused (a proof that does not hold)."""
        if signal.kind is SignalKind.MANUAL and signal.manual is not None:
            # The operator's input goes to the runbook as they wrote it: validation names their mistakes.
            body = dict(signal.manual.input)
            # requestedBy is the request's word about itself (EventBridge does not say who put it);
            # a signed request also says who sent it, as STS verifies it.
            manual = Actor(kind="manual", requested_by=signal.manual.requested_by, event_id=signal.event_id)
            problem: SelfhealError | None = None
            if signal.manual.proof is not None:
                try:
                    principal = self._verify(signal.manual.proof, MANUAL_REQUEST, signal.manual.bound_body())
                    manual = manual.model_copy(update={"principal": principal})
                except Unauthenticated as exc:
                    problem = exc
            body["actor"] = manual.model_dump(mode="json", by_alias=True, exclude_none=True)
            return body, problem
        actor = Actor(kind="automatic", rule=decision.rule, event_id=signal.event_id)
        return decision.runbook_input(actor).model_dump(mode="json", by_alias=True, exclude_none=True), None

    def _verify(self, proof: Any, purpose: str, body: Any) -> str:
        return verify(proof, binding(purpose, body), self.clients.sts_endpoint, utcnow())

    def _answer(self, signal: Signal, info: ApprovalAnswerInfo) -> TriageOutcome:
        """An answer to a runbook waiting for a human: taken only from a verified approver who is not
        the requester, for the plan asked about, in time; then the task token goes back to Step
        Functions. A refused answer leaves a rejected row and the run waiting."""
        request_id = f"answer-{signal.event_id}"[:120]
        approvals = Approvals(self.clients.dynamodb, self.settings.lease_table)
        approver: str | None = None
        pending = None
        try:
            try:
                answer = ApprovalAnswer.model_validate(info.answer)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise InvalidInput(f"invalid approval answer: {problems}") from exc
            pending = approvals.get(answer.request_id)
            approver = self._verify(info.proof, APPROVAL_ANSWER, answer.bound_body())
            taken = approvals.answer(answer, approver, utcnow())
        except SelfhealError as exc:
            return self._answer_refused(request_id, signal, pending, approver, exc)
        sfn = self.clients.stepfunctions
        try:
            if taken.decision == "approve":
                output = {"decision": "approve", "approvedBy": approver, "planHash": taken.plan_hash}
                sfn.send_task_success(taskToken=taken.task_token, output=json.dumps(output))
            else:
                cause = f"rejected by {approver}: {taken.answer_reason}"
                sfn.send_task_failure(
                    taskToken=taken.task_token, error="ApprovalRejected", cause=cause[:32768]
                )
        except (sfn.exceptions.TaskTimedOut, sfn.exceptions.InvalidToken, sfn.exceptions.TaskDoesNotExist):
            late = ApprovalRefused(f"{taken.execution_arn} stopped waiting before the answer reached it")
            return self._answer_refused(request_id, signal, taken, approver, late)
        return TriageOutcome(
            decision="answered",
            request_id=taken.request_id,
            runbook=taken.runbook,
            execution_arn=taken.execution_arn,
            reason=f"{taken.decision} by {approver}",
        )

    def _answer_refused(
        self,
        request_id: str,
        signal: Signal,
        pending: PendingApproval | None,
        approver: str | None,
        exc: SelfhealError,
    ) -> TriageOutcome:
        self.audit.write(
            AuditRow(
                request_id=request_id,
                phase=Phase.REJECTED,
                runbook=pending.runbook if pending else "-",
                target_key=pending.target_key if pending else "-",
                step="triage: approval answer",
                actor=Actor(kind="manual", principal=approver, event_id=signal.event_id),
                execution_arn=pending.execution_arn if pending else None,
                error=exc.as_dict(),
                reason=f"answer not taken: {exc.message}",
            )
        )
        return TriageOutcome(decision="rejected", request_id=request_id, reason=exc.message)

    def _start(self, signal: Signal, decision: Decision) -> TriageOutcome:
        body, refused = self._runbook_input(signal, decision)
        name = execution_name(decision.runbook, signal.dedupe_id, body.get("target") or {})
        actor = Actor.model_validate(body["actor"])
        try:
            if refused is not None:
                raise refused
            arn = self.settings.state_machines.get(decision.runbook)
            if arn is None:
                raise UnknownRunbook(f"no state machine for runbook {decision.runbook!r}")
            request = parse_request(body, decision.runbook, name, None)
        except SelfhealError as exc:
            target, key = best_effort_target(body)
            self.audit.write(
                AuditRow(
                    request_id=name,
                    phase=Phase.REJECTED,
                    runbook=decision.runbook,
                    target_key=key,
                    target=target,
                    step="triage",
                    actor=actor,
                    error=exc.as_dict(),
                    reason=exc.message,
                    at=_fault_time(signal),
                )
            )
            return TriageOutcome(
                decision="rejected", request_id=name, runbook=decision.runbook, reason=exc.message
            )
        execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
        first_delivery = self.audit.write(
            AuditRow(
                request_id=name,
                phase=Phase.RECEIVED,
                runbook=decision.runbook,
                target_key=request.target_key,
                target=request.target,
                step="triage",
                actor=actor,
                execution_arn=execution_arn,
                input_digest=input_digest(body),
                dry_run=request.dry_run,
                reason=request.reason,
                at=_fault_time(signal),
            )
        )
        sfn = self.clients.stepfunctions
        # Started even on a repeat delivery: if the first attempt died between the audit row and
        # StartExecution, this is the retry that starts it. Same name + same input is idempotent.
        try:
            started = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(body))
            execution_arn = started["executionArn"]
        except sfn.exceptions.ExecutionAlreadyExists:
            first_delivery = False  # the execution already ended, or was started with other input
        if not first_delivery:
            return TriageOutcome(
                decision="duplicate",
                request_id=name,
                runbook=decision.runbook,
                execution_arn=execution_arn,
                reason="this signal already started this runbook (duplicate delivery)",
            )
        return TriageOutcome(
            decision="started", request_id=name, runbook=decision.runbook, execution_arn=execution_arn
        )
