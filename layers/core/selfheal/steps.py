"""The Lambda-backed steps of every runbook state machine.

The state machine passes ``step`` plus the context it has (``$$.Execution``, ``$$.State``) and the
data so far; each step returns a small JSON result the ASL stores under its ``ResultPath``. Errors
are raised as named ``SelfhealError`` subclasses, which the ASL ``Catch``es by class name (the
workflow builder, ``tools/asl``, lists each base class's subclasses: Step Functions matches exactly).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal import opscenter, undo
from selfheal.approvals import VALID_FOR as APPROVAL_VALID_FOR
from selfheal.approvals import Approvals, PendingApproval, plan_hash
from selfheal.audit import AuditRow, AuditTrail, calls_made
from selfheal.aws_errors import named_aws_errors
from selfheal.budget import Budgets
from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.errors import (
    ApprovalExpired,
    InvalidInput,
    LeaseHeld,
    ModeChanged,
    NotApplicable,
    NotThisStacksExecution,
    PreconditionFailed,
    RecentlyRemediated,
    SelfhealError,
    StoppedPartWay,
    TerminalError,
    UnknownRunbook,
    UnverifiedApproval,
)
from selfheal.guards import (
    CLOCK_SKEW,
    GuardLimits,
    evaluate,
    fence_violations,
    hold_down_wait_seconds,
    paused,
    read_mode,
)
from selfheal.lease import LeaseStore
from selfheal.models import (
    Actor,
    Mode,
    Phase,
    Request,
    RunbookInput,
    input_digest,
    input_problems,
    iso,
    utcnow,
)
from selfheal.notify import Outcome, approval_request_text, flat, publish_outcome, report_of
from selfheal.runbooks import RUNBOOKS, Plan, Runbook

if TYPE_CHECKING:
    from selfheal.notify import Report
    from selfheal.policy import Policy

logger = Logger(child=True)

# Stops that page once an hour per runbook, not once a run (a guard's name, or the intent step's error):
# a burst meets them many times over (a Health event naming 500 instances nobody fenced), and every
# run still has its row and its outcome event.
ONCE_AN_HOUR = {
    "budget": "budget",
    "BudgetExhausted": "budget",
    "breaker": "breaker",
    "TooManyActionsAtOnce": "in-flight",
    "fence": "fence",
    "scope": "scope",
    "cooldown": "cooldown",
    "loop": "loop",
    "pause-unknown": "pause-unknown",
}
# ... once an hour per runbook and target: "it came back" is news about that target (one incident
# reported again by another signal must not page once per signal).
PER_TARGET = frozenset({"cooldown", "loop"})


# What a run's output says became of it (the finish step's ``outcome``).
RunOutcome = Literal["healed", "dry-run", "skipped", "rejected", "failed"]
RUN_OUTCOMES: tuple[str, ...] = get_args(RunOutcome)

# How an execution that did not record its own end is named in its failed row.
ENDED_ERRORS = {"ABORTED": "ExecutionAborted", "TIMED_OUT": "ExecutionTimedOut", "FAILED": "ExecutionFailed"}


class ExecutionRef(BaseModel):
    arn: str
    name: str


class StateRef(BaseModel):
    name: str
    entered_time: datetime = Field(alias="enteredTime")


class StepEvent(BaseModel):
    """What the ASL sends. Only the fields a step needs are set."""

    model_config = ConfigDict(populate_by_name=True)

    step: Literal[
        "validate",
        "validate-undo",
        "acquire-lease",
        "guards",
        "precheck",
        "intent",
        "renew-lease",
        "would-do",
        "audit",
        "finish",
        "verify",
        "fallback",
        "recheck",
        "ask-approval",
        "approved",
    ]
    runbook: str
    execution: ExecutionRef
    state: StateRef
    input: Any = None
    request: Request | None = None
    plan: dict[str, Any] | None = None
    phase: Phase | None = None
    # audit: the call an outcome row is about (as the intent step returned it); intent: which call of
    # the plan (its name, and its index among the calls of that name, for Map items), and the values
    # only the workflow knows (the replacement's id, a move task's handle).
    call: dict[str, Any] | str | None = None
    index: int = 0
    runtime: dict[str, Any] | None = None
    # renew-lease: how long the wait that follows lasts, and values to hand back (a poll's count)
    for_seconds: int = Field(default=0, alias="forSeconds", ge=0)
    keep: dict[str, Any] | None = None
    outcome: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    # The started row: why a run that was asked to act only dry-runs (an unreadable or invalid kill
    # switch, an unsigned bus request), so the audit says it, not only the execution's state.
    dry_run_reason: str | None = Field(default=None, alias="dryRunReason", max_length=2000)
    guard: dict[str, Any] | None = None
    # Effective dry-run after the guards (mode may force it); None before the guards ran.
    dry_run: bool | None = Field(default=None, alias="dryRun")
    # ask-approval: the task token of the waiting state; approved: what SendTaskSuccess returned.
    task_token: str | None = Field(default=None, alias="taskToken", max_length=2048)
    approval: Any = None


def runbook_class(runbook: str) -> type[Runbook]:
    try:
        return RUNBOOKS[runbook]
    except KeyError:
        raise UnknownRunbook(f"unknown runbook {runbook!r}; known: {', '.join(sorted(RUNBOOKS))}") from None


def _problems(exc: ValidationError, prefix: str = "") -> str:
    return "; ".join(f"{prefix}{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}" for e in exc.errors())


def parse_request(raw: Any, runbook: str, request_id: str, execution_arn: str | None) -> Request:
    """Check a runbook input against the runbook's models. Raises InvalidInput naming every problem."""
    spec = runbook_class(runbook)
    problem = input_problems(raw)
    if problem:
        raise InvalidInput(f"invalid {runbook} input: {problem}")
    try:
        general = RunbookInput.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(f"invalid {runbook} input: {_problems(exc)}") from exc
    problems = []
    target = params = None
    try:
        target = spec.target_model.model_validate(general.target)
    except ValidationError as exc:
        problems.append(_problems(exc, "target."))
    try:
        params = spec.params_model.model_validate(general.params)
    except ValidationError as exc:
        problems.append(_problems(exc, "params."))
    if problems or target is None or params is None:
        raise InvalidInput(f"invalid {runbook} input: {'; '.join(problems)}")
    return Request(
        request_id=request_id,
        execution_arn=execution_arn,
        runbook=runbook,
        target=target.model_dump(by_alias=True, exclude_none=True),
        target_key=target.key,  # type: ignore[attr-defined]
        params=params.model_dump(by_alias=True, exclude_none=True),
        dry_run=general.dry_run,
        reason=general.reason,
        # What the input alone proves of who asked: nothing. The validate step upgrades this to
        # triage's word when triage's received row vouches for this very execution and input.
        actor=Actor(kind="direct", claimed=general.actor),
    )


def best_effort_target(raw: Any) -> tuple[dict[str, Any], str]:
    """The target of an input that may be invalid, for its rejected row (nothing that is too big or
    too deep to record)."""
    target = raw.get("target") if isinstance(raw, dict) else None
    if not isinstance(target, dict) or input_problems(target):
        return {}, "-"
    key = next((str(v) for v in target.values() if isinstance(v, str | int)), "-")
    return target, key


class Steps:
    def __init__(self, settings: Settings, clients: Clients, policy: Policy | None = None) -> None:
        self.settings = settings
        self.clients = clients
        self._policy = policy

    @property
    def policy(self) -> Policy:
        """The policy (which request kinds ask a human first): the packaged one unless given."""
        if self._policy is None:
            # Imported on first use: only the precheck of a runbook with an approval step reads
            # it, so no other step pays for the policy's parser at cold start.
            from selfheal.policy import load_policy

            self._policy = load_policy()
        return self._policy

    @property
    def approvals(self) -> Approvals:
        return Approvals(self.clients.dynamodb, self.settings.lease_table)

    @property
    def audit(self) -> AuditTrail:
        return AuditTrail(self.clients.dynamodb, self.settings.audit_table)

    def run(self, event: StepEvent) -> dict[str, Any]:
        handler = {
            "validate": self.validate,
            "validate-undo": self.validate_undo,
            "acquire-lease": self.acquire_lease,
            "guards": self.guards,
            "precheck": self.precheck,
            "intent": self.intent,
            "renew-lease": self.renew_lease,
            "would-do": self.would_do,
            "audit": self.record,
            "finish": self.finish,
            "verify": self.verify,
            "fallback": self.fallback,
            "recheck": self.recheck,
            "ask-approval": self.ask_approval,
            "approved": self.approved,
        }[event.step]
        # Whatever AWS error a step did not handle itself leaves it with a name the ASL matches.
        with named_aws_errors():
            started = self._check_execution(event)
            return handler(self._dated_within(event, started))

    def _check_execution(self, event: StepEvent) -> datetime:
        """The execution the payload names must be a running execution of this stack's state
        machine for the runbook: anyone else invoking this function (to write rows of any phase,
        send notifications, open a breaker) is refused with a row saying so. Returns its start."""
        arn, s = event.execution.arn, self.settings
        parts = arn.split(":")
        expected = f"{s.stack_name}-{event.runbook}"
        problem = None
        if len(parts) != 8 or parts[2] != "states" or parts[5] != "execution":
            problem = "is no Step Functions execution ARN"
        elif parts[6] != expected or parts[7] != event.execution.name:
            problem = f"is not an execution of this stack's {event.runbook} state machine ({expected})"
        elif s.account_id and parts[4] != s.account_id:
            problem = f"is in account {parts[4]}, not this stack's"
        if problem is None:
            sfn = self.clients.stepfunctions
            try:
                described = sfn.describe_execution(executionArn=arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                problem = "does not exist"
            else:
                if described["status"] == "RUNNING":
                    return described["startDate"]
                problem = f"is {described['status']}, not running"
        reason = f"steps function invoked for {arn!r}, which {problem}: refused, nothing written for it"
        self.audit.write(
            AuditRow(
                request_id=f"refused-step-{input_digest([arn, event.step, event.state.name])[7:31]}",
                phase=Phase.REJECTED,
                target_key="-",
                runbook=event.runbook if event.runbook in RUNBOOKS else "-",
                step=event.step,
                reason=reason,
            )
        )
        raise NotThisStacksExecution(reason, execution=arn)

    @staticmethod
    def _dated_within(event: StepEvent, started: datetime) -> StepEvent:
        """Rows are dated by the state's entered time, which comes in the payload: within the run's
        life (its start, now) or not at all, so nobody backdates a row out of a budget's window or
        dates one in the future."""
        entered = event.state.entered_time
        now = utcnow()
        if started <= entered <= now + CLOCK_SKEW:
            return event
        clamped = min(max(entered, started), now)
        return event.model_copy(update={"state": event.state.model_copy(update={"entered_time": clamped})})

    def _runbook(self, name: str) -> Runbook:
        return runbook_class(name)(self.clients, self.settings)

    def _plan(self, runbook: Runbook, event: StepEvent) -> Plan:
        """The plan as the workflow carries it, validated again before anything acts on it."""
        if event.plan is None:
            raise InvalidInput(f"step {event.step} needs the plan")
        return runbook.plan_model.model_validate(event.plan)

    def _request(self, event: StepEvent) -> Request:
        if event.request is None:
            raise InvalidInput(f"step {event.step} needs the validated request")
        return event.request

    def _row(self, event: StepEvent, request: Request, phase: Phase, **fields: Any) -> AuditRow:
        return AuditRow(
            request_id=request.request_id,
            phase=phase,
            target_key=request.target_key,
            runbook=request.runbook,
            target=request.target,
            step=event.state.name,
            actor=request.actor,
            execution_arn=event.execution.arn,
            dry_run=request.dry_run if event.dry_run is None else event.dry_run,
            at=event.state.entered_time,
            **fields,
        )

    def validate(self, event: StepEvent) -> dict[str, Any]:
        try:
            request = parse_request(event.input, event.runbook, event.execution.name, event.execution.arn)
        except SelfhealError as exc:
            self._reject(event, exc, *best_effort_target(event.input))
            raise
        request = request.model_copy(update={"actor": self._who_asked(event, request)})
        return request.model_dump(mode="json", by_alias=True)

    def validate_undo(self, event: StepEvent) -> dict[str, Any]:
        """An undo run's first step (selfheal.undo): the run it names, checked, and its state taken
        up, the request now this run's. Refused (a rejected row, nothing changed) when the input
        names no stopped run of this state machine or the stop left nothing to undo."""
        s = self.settings
        try:
            stopped = undo.stopped_run(
                self.clients.stepfunctions,
                self.audit.for_request,
                event.input,
                runbook=event.runbook,
                stack_name=s.stack_name,
                account_id=s.account_id,
            )
        except SelfhealError as exc:
            self._reject(event, exc, {}, "-")
            raise
        reason = event.input.get("reason", "") if isinstance(event.input, dict) else ""
        return undo.undo_state(stopped, event.execution.arn, event.execution.name, reason)

    def _reject(self, event: StepEvent, exc: SelfhealError, target: dict[str, Any], key: str) -> None:
        self.audit.write(
            AuditRow(
                request_id=event.execution.name,
                phase=Phase.REJECTED,
                target_key=key,
                runbook=event.runbook,
                target=target,
                step=event.state.name,
                execution_arn=event.execution.arn,
                error=exc.as_dict(),
                reason=exc.message,
                at=event.state.entered_time,
            )
        )

    def _who_asked(self, event: StepEvent, request: Request) -> Actor:
        """Triage's actor, if triage's received row vouches for this execution and this very input;
        otherwise a direct start, whose input's actor is kept as what it claimed."""
        digest = input_digest(event.input)
        for row in self.audit.for_request(request.request_id):
            if (
                row.phase is Phase.RECEIVED
                and row.step == "triage"
                and row.execution_arn == event.execution.arn
                and row.input_digest == digest
                and row.actor is not None
            ):
                return row.actor
        return request.actor

    def acquire_lease(self, event: StepEvent) -> dict[str, Any]:
        request = self._request(event)
        LeaseStore(self.clients.dynamodb, self.settings.lease_table).acquire(
            request.target_key, request.request_id, utcnow(), self.settings.lease_seconds
        )
        return {"owner": request.request_id, "targetKey": request.target_key}

    def guards(self, event: StepEvent) -> dict[str, Any]:
        """Resolve what the runbook would touch, then mode, fence, cooldown, loop and budget."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        s = self.settings
        held = self._paused(request)
        if held is not None:
            return held
        try:
            plan = self._resolve(runbook, request)
        except NotApplicable:
            raise
        except TerminalError as exc:
            self._after_a_recent_run(request, exc)
            raise
        plan_json = plan.model_dump(mode="json", by_alias=True)
        mode, mode_problem = read_mode(self.clients.ssm, s.mode_parameter)
        now = utcnow()
        limits = self._limits(plan_json)
        window = max(limits.cooldown_seconds, limits.loop_window_seconds)
        bus_only_dry_run = self._bus_request_dry_run(request)
        decision = evaluate(
            mode=mode,
            requested_dry_run=request.dry_run or bus_only_dry_run is not None,
            request_id=request.request_id,
            runbook=request.runbook,
            unfenced=fence_violations(plan_json["resourceTags"], s.fence_tag_key, s.fence_tag_value),
            target_history=self.audit.for_target(request.target_key, now - timedelta(seconds=window)),
            runbook_history=self.audit.for_runbook(request.runbook, now - timedelta(hours=1)),
            limits=limits,
            now=now,
            out_of_scope=runbook.out_of_scope(plan),
        )
        result = decision.model_dump(mode="json", by_alias=True)
        if mode_problem:
            result["modeProblem"] = mode_problem
        # Always set (the started row reads it): a dry run nobody asked for is never a silent one.
        result["dryRunReason"] = None
        if decision.dry_run and not request.dry_run:
            result["dryRunReason"] = mode_problem or bus_only_dry_run or f"the kill switch says {mode.value}"
        if "holdDownSeconds" in plan_json:
            # A runbook with a hold-down (flip-dns failback) waits it out in the ASL: how long is left.
            hold = int(plan_json["holdDownSeconds"] or 0)
            result["holdDownWaitSeconds"] = (
                hold_down_wait_seconds(
                    target_history=self.audit.for_target(request.target_key, now - timedelta(seconds=hold)),
                    runbook=request.runbook,
                    request_id=request.request_id,
                    hold_down_seconds=hold,
                    now=now,
                )
                if hold
                else 0
            )
        return {
            "decision": result,
            "plan": plan_json,
            "dryRun": decision.dry_run,
            "callTimeoutSeconds": s.aws_call_timeout_seconds,
        }

    def _paused(self, request: Request) -> dict[str, Any] | None:
        """The guards' answer when an open OpsItem pauses this target and runbook
        (EscalateToOpsCenter), before anything is resolved; None: not paused."""
        s = self.settings
        if not s.escalate_to_opscenter:
            return None
        item, problem = None, None
        try:
            item = opscenter.open_item(self.clients.ssm, request.runbook, request.target_key)
        except Exception as exc:  # never run through a pause because it could not be read
            problem = f"ssm:DescribeOpsItems failed ({type(exc).__name__}: {str(exc)[:300]})"
        if item is None and problem is None:
            return None
        mode, _ = read_mode(self.clients.ssm, s.mode_parameter)
        decision = paused(mode=mode, requested_dry_run=request.dry_run, open_ops_item=item, problem=problem)
        if decision is None:
            return None
        result = decision.model_dump(mode="json", by_alias=True) | {"dryRunReason": None}
        if item is not None:
            result["opsItemId"] = item
        return {
            "decision": result,
            "plan": {},
            "dryRun": decision.dry_run,
            "callTimeoutSeconds": s.aws_call_timeout_seconds,
        }

    def _open_ops_item(self, event: StepEvent, request: Request, report: Report) -> str | None:
        """An escalation as an OpsCenter OpsItem (EscalateToOpsCenter), deduplicated by AWS per
        target and runbook; its id, or None (disabled, or it failed: logged and recorded, never
        failing the run's end, like any notification that could not go out). Audited as a call is,
        before and after, in ``escalated`` rows: a side effect of selfheal's own, no change to the
        target, so neither the budgets nor an undo count it."""
        if not self.settings.escalate_to_opscenter:
            return None
        params = opscenter.item_request(report, stack_name=self.settings.stack_name)
        dedup = opscenter.dedup_string(request.runbook, request.target_key)
        recorded = {"title": params["Title"], "dedupString": dedup, "severity": params["Severity"]}
        intent = self._row(
            event,
            request,
            Phase.ESCALATED,
            action="ssm:CreateOpsItem",
            parameters=recorded,
            outcome="pending",
            reason="the escalation, as an OpsCenter OpsItem",
        ).model_copy(update={"step": f"{event.state.name} (OpsCenter)"})
        try:
            self.audit.write(intent)
        except Exception:
            logger.exception("no OpsItem: its intent row could not be written", extra={"dedup": dedup})
            return None
        # After the intent (and the run's last row), at the same state's time: a millisecond later.
        done = {"sk": "", "at": max(utcnow(), event.state.entered_time + timedelta(milliseconds=1))}
        try:
            item = opscenter.create(self.clients.ssm, params)
        except Exception as exc:
            logger.warning("the OpsItem could not be created", extra={"dedup": dedup, "error": str(exc)})
            error = {"error": type(exc).__name__, "message": str(exc)[:2000]}
            why = "the OpsItem could not be created: the e-mail and chat still escalate; nothing is paused"
            failed = intent.model_copy(update={**done, "outcome": "error", "error": error, "reason": why})
            self._write_quietly(failed)
            return None
        said = f"OpsItem {item} is open: {request.runbook} on {request.target_key} is paused until resolved"
        ok = intent.model_copy(update={**done, "outcome": "ok", "after": {"opsItemId": item}, "reason": said})
        self._write_quietly(ok)
        return item

    def _write_quietly(self, row: AuditRow) -> None:
        try:
            self.audit.write(row)
        except Exception:
            logger.exception("an escalation row could not be written", extra={"row": row.to_json()})

    def _after_a_recent_run(self, request: Request, exc: TerminalError) -> None:
        """A target that no longer resolves right after this runbook ran on it was changed by that run
        (a promoted replica is no replica any more): a late or repeated signal, skipped, not a failure
        (which would page and count towards the breaker). Raises RecentlyRemediated, or returns."""
        now = utcnow()
        cooldown = self.settings.cooldown_seconds
        recent = [
            r
            for r in self.audit.for_target(request.target_key, now - timedelta(seconds=cooldown))
            if r.runbook == request.runbook
            and r.request_id != request.request_id
            and r.phase is Phase.STARTED
            and not r.dry_run
            and r.at <= now + CLOCK_SKEW
        ]
        if recent:
            last = max(r.at for r in recent)
            raise RecentlyRemediated(
                f"{exc.message}; {request.runbook} ran on {request.target_key} at {last.isoformat()}"
                f" (cooldown {cooldown}s): this signal is about what that run handled, not acting",
                **exc.details,
            ) from exc

    def _limits(self, plan_json: dict[str, Any]) -> GuardLimits:
        s = self.settings
        return GuardLimits(
            cooldown_seconds=s.cooldown_seconds,
            loop_window_seconds=s.loop_window_seconds,
            loop_threshold=s.loop_threshold,
            budget_per_hour=s.budget_per_hour,
            max_failed_runs=s.max_failed_runs_per_hour,
        ).tightened(plan_json.get("guardLimits"))

    def _bus_request_dry_run(self, request: Request) -> str | None:
        """Why this request may only dry-run though it asked to act (None: it may act)."""
        verified = request.actor.principal is not None  # signed by its sender (selfheal trigger)
        if request.actor.kind == "manual" and not verified and self.settings.bus_requests_mode == "dry-run":
            return (
                "a request from the event bus without a proof of its sender (requestedBy is"
                " self-declared) runs as a dry run: this stack's BusRequestsMode is dry-run"
            )
        return None

    def _resolve(self, runbook: Runbook, request: Request) -> Plan:
        """What the runbook would touch and the exact calls it would make (read-only)."""
        target = runbook.target_model.model_validate(request.target)
        params = runbook.params_model.model_validate(request.params)
        return runbook.plan(target, params)

    def precheck(self, event: StepEvent) -> dict[str, Any]:
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        plan = self._plan(runbook, event)
        slot = self._take_slot(runbook, plan.model_dump(mode="json", by_alias=True), request.request_id)
        before = runbook.precheck(plan)
        if slot is not None:
            before = {**before, "slot": slot}
        if runbook.asks_approval and not before.get("needsApproval"):
            before = {**before, "needsApproval": False}
            if self.policy.asks_approval(request.runbook, request.actor.kind):
                before["needsApproval"] = True
                before["approvalReason"] = (
                    f"the policy asks a human before {request.runbook} acts on a {request.actor.kind} request"
                )
        return {"before": before}

    def intent(self, event: StepEvent) -> dict[str, Any]:
        """Right before a mutating call: the kill switch must say enforce (read now: a run can wait
        long after its guards), the lease must still be ours (renewed), then the intent row. Returns
        the call with the values only the workflow knows filled in: what the SDK task sends."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        if not isinstance(event.call, str):
            raise InvalidInput("intent needs the name of the call")
        call = self._plan(runbook, event).call(event.call, event.index)
        mode, problem = read_mode(self.clients.ssm, self.settings.mode_parameter)
        if mode is not Mode.ENFORCE:
            why = f" ({problem})" if problem else ""
            raise ModeChanged(
                f"the kill switch is {mode.value}{why}: stopped before {call.action} ({call.name});"
                " nothing more is changed",
                mode=mode.value,
            )
        self._renew(request, seconds=0)
        self._take_budgets(event, request)
        spec = runbook.spec(call.name)
        parameters = spec.render(call, event.runtime or {})
        self.audit.write(
            self._row(
                event,
                request,
                Phase.ACTION,
                action=call.action,
                parameters=parameters,
                outcome="pending",
                before=event.before,
                reason=event.reason,
            ).with_key()
        )
        return {
            "name": call.name,
            "action": call.action,
            "shape": spec.shape_of(parameters),
            "parameters": parameters,
        }

    def renew_lease(self, event: StepEvent) -> dict[str, Any]:
        """Before a wait: the lease outlives it (``forSeconds``), or the run stops (LeaseLost)."""
        self._renew(self._request(event), seconds=event.for_seconds)
        return event.keep or {}

    def _take_budgets(self, event: StepEvent, request: Request) -> None:
        """A place among the runs acting now (account-wide), then this run's share of its runbook's
        hourly budget: both atomic, both kept for the rest of the run (a later call takes nothing
        more). In that order, so a run that may not act now has spent no budget."""
        now = utcnow()
        budgets = Budgets(self.clients.dynamodb, self.settings.lease_table)
        budgets.take_in_flight(event.execution.arn, self.settings.max_concurrent_actions, now, self._running)
        limit = self._limits(event.plan or {}).budget_per_hour
        # An undo run spends the share of the run it undoes: never refused for a budget that run
        # already holds, and no second share for one incident.
        budgets.take_hourly(request.runbook, request.undo_of or request.request_id, limit, now)

    def _running(self, execution_arn: str) -> bool:
        """Whether an execution still runs; when in doubt (an error other than "no such execution"),
        yes: its place is then kept, never handed to another run."""
        sfn = self.clients.stepfunctions
        try:
            return sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
        except sfn.exceptions.ExecutionDoesNotExist:
            return False
        except Exception:
            return True

    def _renew(self, request: Request, seconds: int) -> None:
        LeaseStore(self.clients.dynamodb, self.settings.lease_table).renew(
            request.target_key, request.request_id, utcnow(), seconds + self.settings.lease_seconds
        )

    def would_do(self, event: StepEvent) -> dict[str, Any]:
        """A dry run: one would-do row per call a real run would make, in its order (contingent ones,
        such as an undo, are not listed)."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        calls = [c for c in self._plan(runbook, event).calls if not runbook.spec(c.name).contingent]
        for n, call in enumerate(calls):
            row = self._row(
                event,
                request,
                Phase.WOULD_DO,
                action=call.action,
                parameters=call.parameters,
                before=event.before,
                reason=None if request.dry_run else self._bus_request_dry_run(request),
            )
            # One state writes them all: a microsecond apart, so time order is call order.
            at = event.state.entered_time + timedelta(microseconds=n)
            self.audit.write(row.model_copy(update={"at": at, "step": f"{row.step} ({n + 1}/{len(calls)})"}))
        return {"calls": len(calls)}

    def verify(self, event: StepEvent) -> dict[str, Any]:
        """The runbook's own check of the result (when it needs logic): {"done": bool, ...}."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        return runbook.verify(self._plan(runbook, event))

    def ask_approval(self, event: StepEvent) -> dict[str, Any]:
        """Ask a human (the state waits for the task token): the question, bound to the hash of the
        plan, goes to the lease table (with the token) and the awaiting-approval row; the
        notification names the plan and how to answer, never the token."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        plan = self._plan(runbook, event)
        if not event.task_token:
            raise InvalidInput("ask-approval needs the task token")
        before = event.before or {}
        plan_json = plan.model_dump(mode="json", by_alias=True)
        digest = plan_hash(plan_json)
        timeout = int(plan_json.get("approvalTimeoutSeconds") or 0)
        if timeout <= 0:
            raise InvalidInput("ask-approval needs the plan's approvalTimeoutSeconds")
        now = utcnow()
        why = str(before.get("approvalReason") or "the runbook asks a human before it acts")
        pending = PendingApproval(
            request_id=request.request_id,
            execution_arn=event.execution.arn,
            runbook=request.runbook,
            target_key=request.target_key,
            task_token=event.task_token,
            plan_hash=digest,
            why=why,
            summary=request.reason,
            asked_at=now,
            expires_at=now + timedelta(seconds=timeout),
            requester=request.actor.principal,
            requester_claim=request.actor.requested_by,
        )
        row = self._row(
            event,
            request,
            Phase.AWAITING_APPROVAL,
            before=before,
            after={"planHash": digest, "answerBefore": pending.expires_at.isoformat()},
            reason=why,
        )
        self.audit.write(row)
        self.approvals.ask(pending)
        if self.settings.topic_arn:
            calls = [
                f"{c.action}: {flat(c.parameters)}" for c in plan.calls if not runbook.spec(c.name).contingent
            ]
            subject, message = approval_request_text(
                row,
                why=why,
                evidence=request.reason,
                plan_hash=digest,
                answer_before=f"{pending.expires_at:%Y-%m-%d %H:%M:%S} UTC",
                calls=calls,
                undo=before.get("howToGoBack"),
            )
            self.clients.sns.publish(
                TopicArn=self.settings.topic_arn,
                Subject=subject,
                Message=message,
                MessageAttributes={
                    "outcome": {"DataType": "String", "StringValue": "approval-needed"},
                    "runbook": {"DataType": "String", "StringValue": request.runbook},
                },
            )
        return {"planHash": digest, "answerBefore": pending.expires_at.isoformat()}

    def approved(self, event: StepEvent) -> dict[str, Any]:
        """The wait ended with SendTaskSuccess: who approved, as far as it can be known. An answer
        triage took on the authenticated path is in the question's record (the approver as STS
        verified them); any other SendTaskSuccess only claims one, and acts only where the stack
        accepts unverified approvals (UnverifiedApproval otherwise: skipped, nothing changed)."""
        request = self._request(event)
        pending = self.approvals.get(request.request_id)
        if pending is None or pending.execution_arn != event.execution.arn:
            raise UnverifiedApproval("the run has no question on record: the approval cannot be checked")
        claimed = event.approval if isinstance(event.approval, dict) else {"output": event.approval}
        if pending.decision == "reject":
            raise UnverifiedApproval(
                f"{pending.answered_by} answered no, yet the run was resumed as approved: not acting"
            )
        if pending.decision == "approve" and pending.answered_by:
            approver: dict[str, Any] = {"principal": pending.answered_by, "verified": True}
            if pending.answer_reason:
                approver["comment"] = pending.answer_reason
        elif self.settings.accept_unverified_approvals:
            approver = {"claimed": claimed, "verified": False}
        else:
            self.audit.write(
                self._row(event, request, Phase.APPROVED, after={"claimed": claimed, "verified": False})
            )
            raise UnverifiedApproval(
                "the approval came straight to Step Functions (SendTaskSuccess), not through"
                " `selfheal approve`: its approver is only claimed and this stack does not accept"
                " unverified approvals; nothing was changed"
            )
        self.audit.write(self._row(event, request, Phase.APPROVED, after=approver))
        return {"approver": approver, "planHash": pending.plan_hash}

    def recheck(self, event: StepEvent) -> dict[str, Any]:
        """After a wait for a human (an approval can come hours later), look again before acting:
        the kill switch must still say enforce, the approval must be fresh, the plan resolved now
        must hash to the plan approved (its resources and their tags included), and the precheck
        must pass again. Returns the new ``before``."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        if event.plan is None:
            raise InvalidInput("recheck needs the approved plan")
        s = self.settings
        mode, problem = read_mode(self.clients.ssm, s.mode_parameter)
        if mode is not Mode.ENFORCE:
            raise ModeChanged(
                f"the kill switch is {mode.value} now{f' ({problem})' if problem else ''}: not acting"
            )
        pending = self.approvals.get(request.request_id)
        if pending is None:
            raise UnverifiedApproval("the run's question is not on record any more: not acting")
        # (An unverified approval, where the stack accepts those, resumed the run just now.)
        approved_at = pending.answered_at
        if approved_at is not None and utcnow() > approved_at + APPROVAL_VALID_FOR:
            raise ApprovalExpired(
                f"approved at {approved_at:%Y-%m-%dT%H:%M:%SZ}, more than"
                f" {int(APPROVAL_VALID_FOR.total_seconds())} s ago: not acting on an old yes; ask again"
            )
        try:
            plan = self._resolve(runbook, request)
        except NotApplicable:
            raise  # nothing to do any more (e.g. already promoted): a skip, as at the guards
        except TerminalError as exc:
            raise PreconditionFailed(f"changed since it was approved: {exc.message}", **exc.details) from exc
        now = plan.model_dump(mode="json", by_alias=True)
        if plan_hash(now) != pending.plan_hash:
            changed = sorted(k for k in set(now) | set(event.plan) if now.get(k) != event.plan.get(k))
            what = "; ".join(f"{k} {event.plan.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise PreconditionFailed(
                f"changed since it was approved: {what or 'not the plan the approver saw'}"
                f" (plan {pending.plan_hash} -> {plan_hash(now)})",
                changed=changed,
            )
        # No second fence check needed: the tags are part of the plan (resourceTags), in the hash.
        return {"before": runbook.precheck(plan)}

    def fallback(self, event: StepEvent) -> dict[str, Any]:
        """The first path did not heal the target (``error`` says why): plan the runbook's fallback and
        record the switch. ``{"plan": null, "refused": why}`` when the fallback may not act (its
        resources unfenced or out of scope, nothing to launch from): the execution then fails with
        the first path's error, the refusal added to its cause."""
        request = self._request(event)
        runbook = self._runbook(request.runbook)
        first = self._plan(runbook, event)
        try:
            plan = runbook.with_calls(runbook.fallback(first))
        except TerminalError as refused:
            return {"plan": None, "refused": f"{refused.name}: {refused.message}"}
        plan_json = plan.model_dump(mode="json", by_alias=True)
        failed_path = first.model_dump(mode="json", by_alias=True).get("path")
        error = _error(event.error)
        self.audit.write(
            self._row(
                event,
                request,
                Phase.STARTED,
                before={"failedPath": failed_path, "plan": plan_json},
                error=error,
                reason=(
                    f"{failed_path} did not heal it"
                    f" ({(error or {}).get('error', 'failed')}: {(error or {}).get('message', '')});"
                    f" falling back to {plan_json.get('path')}"
                ),
            ).with_key()
        )
        return {"plan": plan_json, "refused": None}

    def _take_slot(self, runbook: Runbook, plan: dict[str, Any], owner: str) -> str | None:
        """A free concurrency slot (lease) for runbooks that declare them; raises its slots_full."""
        keys = runbook.slots(plan)
        if not keys:
            return None
        leases = LeaseStore(self.clients.dynamodb, self.settings.lease_table)
        holders = []
        for key in keys:
            try:
                leases.acquire(key, owner, utcnow(), self.settings.lease_seconds)
            except LeaseHeld as held:
                holders.append(str(held.details.get("holder")))
                continue
            return key
        raise runbook.slots_full(
            f"concurrency budget {len(keys)}: every slot is taken by another execution"
            f" ({', '.join(holders)})",
            slots=keys,
            holders=holders,
        )

    def _release_slots(self, runbook: Runbook, plan: dict[str, Any] | None, owner: str) -> None:
        if not plan:
            return
        leases = LeaseStore(self.clients.dynamodb, self.settings.lease_table)
        for key in runbook.slots(plan):
            try:
                leases.release(key, owner)
            except Exception:  # the lease expires on its own; never fail the finish over it
                continue

    def record(self, event: StepEvent) -> dict[str, Any]:
        """One audit row for one phase of the ASL (started, would-do, action, verified, compensated)."""
        request = self._request(event)
        if event.phase is None:
            raise InvalidInput("audit step needs a phase")
        call = event.call if isinstance(event.call, dict) else {}
        row = self._row(
            event,
            request,
            event.phase,
            action=call.get("action"),
            parameters=call.get("parameters"),
            outcome=event.outcome,
            before=event.before,
            after=event.after,
            error=_error(event.error),
            reason="; ".join(
                r for r in (event.reason, event.dry_run_reason and f"dry run: {event.dry_run_reason}") if r
            )
            or None,
        ).with_key()
        self.audit.write(row)
        return {"sk": row.sk}

    def ended(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Step Functions says an execution of this stack ended ("Step Functions Execution Status
        Change"). One the frame did not finish itself (stopped from outside, timed out) gets its end
        here: open intents closed as unknown, a failed row saying so, the lease and its place among
        the runs acting now released, one escalation. A run that recorded its own end is left alone.
        (A replace-instance group slot it held expires on its own, after LeaseSeconds.)"""
        found = raw.get("detail")
        detail: dict[str, Any] = found if isinstance(found, dict) else {}
        arn, status = str(detail.get("executionArn") or ""), str(detail.get("status") or "")
        parts = arn.split(":")
        s = self.settings
        runbook_name = parts[6].removeprefix(f"{s.stack_name}-") if len(parts) == 8 else ""
        if (
            len(parts) != 8
            or parts[5] != "execution"
            or runbook_name not in RUNBOOKS
            or parts[6] != f"{s.stack_name}-{runbook_name}"
            or (s.account_id and parts[4] != s.account_id)
        ):
            return {"finished": False, "why": f"{arn!r} is not an execution of this stack's state machines"}
        sfn = self.clients.stepfunctions
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] == "RUNNING":  # a forged or early event: the run is not over
            return {"finished": False, "why": f"{arn} is still running"}
        name = parts[7]
        rows = self.audit.for_request(name)
        if any(r.phase in (Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED, Phase.REJECTED) for r in rows):
            return {"finished": False, "why": "the run recorded its own end"}
        try:
            request = parse_request(json.loads(described.get("input") or "null"), runbook_name, name, arn)
        except (SelfhealError, ValueError):
            # An undo run's input names a run, not a target: its started row names the target.
            started = next((r for r in rows if r.phase is Phase.STARTED), None)
            if started is None:
                return {"finished": False, "why": "its input is not a runbook input: it held nothing"}
            request = Request(
                request_id=name,
                execution_arn=arn,
                runbook=runbook_name,
                target=started.target or {},
                target_key=started.target_key,
                params={},
                dry_run=started.dry_run,
                reason=started.reason or "",
                actor=started.actor or Actor(kind="direct"),
            )
        actor = next((r.actor for r in rows if r.actor is not None), None)
        if actor is not None:
            request = request.model_copy(update={"actor": actor})
        status = str(described["status"] or status)
        event = StepEvent.model_validate(
            {
                "step": "finish",
                "runbook": runbook_name,
                "execution": {"arn": arn, "name": name},
                "state": {"name": f"Step Functions: {status}", "enteredTime": utcnow().isoformat()},
            }
        )
        message = (
            f"the execution ended {status} before it recorded its end (stopped from outside, or timed"
            " out): whatever it was doing did not finish"
        )
        # (rows as they were stay the undo's input: the closing rows say only that nothing is known)
        closed = self._close_open_intents(
            event, request, {"error": ENDED_ERRORS.get(status, "ExecutionEnded"), "message": message}
        )
        # Released before an undo run starts: that run takes the lease on the same target.
        LeaseStore(self.clients.dynamodb, s.lease_table).release(request.target_key, request.request_id)
        try:
            Budgets(self.clients.dynamodb, s.lease_table).leave_in_flight(arn)
        except Exception:  # cleared by the next run that finds the set full
            logger.warning("could not leave the runs acting now", extra={"execution": arn})
        message += f"; {self._start_undo(arn, status, rows)}"
        error = {"error": ENDED_ERRORS.get(status, "ExecutionEnded"), "message": message}
        row = self._row(event, request, Phase.FAILED, error=error, reason=message)
        self.audit.write(row)
        tell: dict[str, Any] = {"row": row, "outcome": Outcome.FAILED, "escalate": True, "rows": closed}
        tell |= {"evidence": request.reason, "result": message}
        ops_item = self._open_ops_item(event, request, report_of(**tell))
        publish_outcome(self.clients, s, plan=None, ops_item=ops_item, **tell)
        return {"finished": True, "status": status}

    def _start_undo(self, arn: str, status: str, rows: list[AuditRow]) -> str:
        """Start the undo run of a run stopped in a call its workflow undoes (selfheal.undo); what
        was done, for the failed row and the escalation."""
        intent = undo.last_intent(rows)
        if status not in undo.UNDONE_STATUSES:
            return "check the target"
        if intent is None:
            return "it began no call, so it changed nothing"
        sfn = self.clients.stepfunctions
        try:
            definition = undo.definition_of(sfn, arn)
        except Exception as exc:  # the row says so; the escalation tells a human
            return f"its workflow could not be read to undo it ({exc}); check the target"
        if intent.step not in undo.undo_entries(definition):
            return f"it was stopped after '{intent.step}', which leaves nothing half-way; check the target"
        name = undo.undo_name(arn.rsplit(":", 1)[-1])
        machine = arn.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")
        body = {"undo": arn, "reason": f"started by selfheal: the run ended {status} in '{intent.step}'"}
        try:
            sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(body))
        except sfn.exceptions.ExecutionAlreadyExists:
            pass  # this event again: the undo run was started the first time
        except Exception as exc:
            return (
                f"its undo run could not be started ({exc}): start {machine} with the input"
                f" {json.dumps({'undo': arn})}, or undo it by hand"
            )
        return f"undo run {name} started to undo what it did in '{intent.step}'"

    def _close_open_intents(
        self, event: StepEvent, request: Request, error: dict[str, Any] | None
    ) -> list[AuditRow]:
        """A run that ends after an intent row but before its outcome row (the call timed out and
        its error row failed too, the outcome step raised once the call was made) must not leave a
        call the trail cannot account for: its outcome is written as unknown, with the run's error,
        for whoever checks the target. Returns the run's rows, those written here included."""
        rows = self.audit.for_request(request.request_id)
        for intent in open_intents(rows):
            closing = (
                self._row(
                    event,
                    request,
                    Phase.ACTION,
                    action=intent.action,
                    parameters=intent.parameters,
                    outcome="unknown",
                    error=error,
                    reason=f"the run ended before it recorded what {intent.action} did: check the target",
                )
                .model_copy(update={"step": f"{event.state.name} ({intent.step})"})
                .with_key()
            )
            self.audit.write(closing)
            rows.append(closing)
        return rows

    def _changes_made(self, request: Request, rows: list[AuditRow] | None = None) -> list[str]:
        """The calls of this run that changed something, or may have (outcome ok or unknown)."""
        return [
            f"{row.action} ({row.outcome})"
            for row in (self.audit.for_request(request.request_id) if rows is None else rows)
            if row.phase in (Phase.ACTION, Phase.COMPENSATED) and row.outcome in ("ok", "unknown")
        ]

    def finish(self, event: StepEvent) -> dict[str, Any]:
        """The last row (succeeded / failed / skipped), the notification and the outgoing event."""
        request = self._request(event)
        outcome = Outcome(event.outcome or "failed")
        guard = event.guard or {}
        error = _error(event.error)
        reason = event.reason or guard.get("skip_reason") or (error or {}).get("message")
        rows = self._close_open_intents(event, request, error)
        if outcome is Outcome.SKIPPED and (changed := self._changes_made(request, rows)):
            why = reason or (error or {}).get("error") or "the run was stopped"
            stopped = StoppedPartWay(
                f"{why}; but it had already changed the target ({', '.join(changed)}):"
                " it may be half-way, check it (the run's rows say what was done)",
                changed=changed,
            )
            outcome, error, reason = Outcome.FAILED, stopped.as_dict(), stopped.message
        healed = outcome is Outcome.SUCCEEDED and not event.dry_run
        heal_time = self._time_to_heal(request, rows, event) if healed else None
        if heal_time is not None and heal_time.get("overObjective"):
            reason = (
                f"healed in {heal_time['seconds']:.0f} s, over its recovery time objective of"
                f" {heal_time['objectiveSeconds']} s"
            )
        row = self._row(
            event,
            request,
            Phase(outcome.value),
            before=event.before,
            after=event.after,
            error=error,
            reason=reason,
            time_to_heal=heal_time,
        )
        self.audit.write(row)
        self._release_slots(self._runbook(request.runbook), event.plan, request.request_id)
        budgets = Budgets(self.clients.dynamodb, self.settings.lease_table)
        try:
            budgets.leave_in_flight(event.execution.arn)
        except Exception:  # cleared by the next run that finds the set full; never fail the finish
            logger.warning("could not leave the runs acting now", extra={"execution": event.execution.arn})
        escalate = outcome is Outcome.FAILED or bool(guard.get("escalate"))
        escalate = escalate or bool(heal_time and heal_time.get("overObjective"))
        error_name = (error or {}).get("error", "")
        stopped_by = ONCE_AN_HOUR.get(guard.get("guard") or "") or ONCE_AN_HOUR.get(error_name)
        if stopped_by:
            # A burst stopped by a budget pages once, not once a run: the first escalates, the rest
            # record why (their rows and notifications).
            key = f"{request.runbook}#{stopped_by}"
            if stopped_by in PER_TARGET:
                key += f"#{request.target_key}"
            escalate = budgets.first_escalation(key, utcnow())
        said = self._said(outcome, event, request, guard)
        summary = self._summary(said, event, request, reason, rows)
        tell: dict[str, Any] = {"row": row, "outcome": outcome, "escalate": escalate, "rows": rows}
        tell |= {"evidence": request.reason, "result": f"{said}: {summary}" if summary else said}
        ops_item = self._open_ops_item(event, request, report_of(**tell)) if escalate else None
        publish_outcome(self.clients, self.settings, plan=event.plan, ops_item=ops_item, **tell)
        result = {
            "outcome": said,
            "reason": summary,
            "runbook": request.runbook,
            "target": request.target_key,
            "requestId": request.request_id,
            "escalated": escalate,
        }
        if ops_item is not None:
            result["opsItemId"] = ops_item
        if heal_time is not None:
            result["timeToHealSeconds"] = heal_time["seconds"]
        if said == "skipped":  # a stable category for the metrics: the guard's or the error's name
            forced = "forced-dry-run" if outcome is Outcome.SUCCEEDED else "other"
            result["skipReason"] = guard.get("guard") or error_name or forced
        if outcome is Outcome.FAILED:  # only a failure has an error (a success carried one before)
            result["error"] = (error or {}).get("error", "RemediationFailed")
        return result

    @staticmethod
    def _said(outcome: Outcome, event: StepEvent, request: Request, guard: dict[str, Any]) -> RunOutcome:
        """What a run's output says became of it: healed | dry-run | skipped | rejected | failed. A
        run that only dry-ran because the kill switch (or the stack) said so did not heal: skipped.
        A human's no is a rejection, not a skip (its audit row is the skip it was)."""
        if outcome is Outcome.SUCCEEDED and event.dry_run:
            return "dry-run" if request.dry_run else "skipped"
        if outcome is Outcome.SKIPPED and guard.get("rejected"):
            return "rejected"
        if outcome is Outcome.SUCCEEDED:
            return "healed"
        return "skipped" if outcome is Outcome.SKIPPED else "failed"

    def _time_to_heal(self, request: Request, rows: list[AuditRow], event: StepEvent) -> dict[str, Any]:
        """From the fault (triage's received row is written at the alarm's state change, the Health
        event's start...) or, for a request by hand, from the request, to the last verified row (or
        now, for a runbook whose check is the call's own answer); and the recovery time objective
        the policy holds the run to, if any."""
        received = next((r for r in rows if r.phase is Phase.RECEIVED), None)
        start = received or next((r for r in rows if r.phase is Phase.STARTED), None)
        verified = [r.at for r in rows if r.phase is Phase.VERIFIED]
        done = max(verified) if verified else utcnow()
        since = start.at if start is not None else event.state.entered_time
        seconds = round(max(0.0, (done - since).total_seconds()), 1)
        heal: dict[str, Any] = {
            "seconds": seconds,
            "from": "fault" if request.actor.kind == "automatic" else "request",
            "since": iso(since),
        }
        objective = self.policy.recovery_objective(request.runbook, request.actor.rule)
        if objective is not None:
            heal["objectiveSeconds"] = objective
            heal["overObjective"] = seconds > objective
        return heal

    def _summary(
        self,
        said: str,
        event: StepEvent,
        request: Request,
        reason: str | None,
        rows: list[AuditRow] | None = None,
    ) -> str:
        """The output's one-line reason: what a heal changed, why a run did not act."""
        if said == "healed":
            changed = [c.removesuffix(" (ok)") for c in self._changes_made(request, rows)]
            return f"{len(changed)} change(s): {', '.join(changed)}" if changed else "nothing needed changing"
        if said == "dry-run":
            return "dry run, as asked: nothing was changed (the would-do rows list the calls)"
        if said == "skipped" and event.outcome == Outcome.SUCCEEDED.value:
            return f"only a dry run, nothing was changed: {event.dry_run_reason or 'the stack said so'}"
        return reason or ""


def open_intents(rows: list[AuditRow]) -> list[AuditRow]:
    """Intent rows of one remediation that no outcome row follows."""
    return calls_made(rows)[1]


def _error(error: dict[str, Any] | None) -> dict[str, Any] | None:
    """ASL Catch gives {Error, Cause}; Lambda errors put a JSON {errorMessage, errorType} in Cause."""
    if not error:
        return None

    name = error.get("Error") or error.get("error") or "Unknown"
    cause = error.get("Cause") or error.get("message") or ""
    try:
        parsed = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        cause = parsed["errorMessage"]
    return {"error": name, "message": str(cause)[:2000]}
