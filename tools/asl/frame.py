"""The one frame every runbook's workflow shares, and its named hooks.

validate -> lease -> guards -> [before start] -> started -> [before precheck] -> precheck
-> [after precheck] -> dry run? (would-do rows from the plan's calls) | the runbook's body
-> succeeded | skipped | failed -> release the lease.

A runbook's module gives its body (the path of a real run, from the plan to "Record: verified") and
only the hooks it needs; every other difference between workflows would be drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selfheal.errors import LeaseHeld, NotApplicable, SelfhealError
from selfheal.undo import STOPPED_IN, UNDO_CHOICE
from tools.asl.idioms import (
    LAMBDA_SERVICE_ERRORS,
    SKIPPED,
    Call,
    Flow,
    State,
    catch,
    equals,
    error_names,
    formatted,
)

VALIDATE = "Validate the input"
EXPLAIN_REJECTION = "Explain the rejection"
REJECTED = "Input rejected"
LEASE = "Acquire the lease on the target"
GUARDS = "Check the guards"
MAY_WE_ACT = "May we act?"
STARTED = "Record: started"
DRY_RUN = "Is this a dry run?"
WOULD_DO = "Record: what a real run would do"
VERIFIED = "Record: verified"
SUCCEEDED = "Record: succeeded"
FAILED = "Record: failed"
FAILED_RUN = "Remediation failed"
HEALED = "Healed"
IS_UNDO = "Is this an undo run?"
OUTCOME = "$.result.outcome"
VALIDATE_UNDO = "Validate the undo"

# A hook: (flow, the state that follows it) -> the hook's first state.
Hook = Callable[[Flow, str], str]


@dataclass(frozen=True)
class Workflow:
    runbook: str
    comment: str
    precheck: str  # the precheck state's sentence: "Precheck: is the standby healthy?"
    body: Callable[[Flow], str]  # a real run's path after the precheck; returns its first state
    substitutions: Sequence[str] = ("Partition", "StepsFunctionArn", "LeaseTableName")
    # Hooks (named differences from the frame):
    # the precheck, and what it waits for, before the started row (a run that only waited and
    # skipped must not count for the cooldown: redrive-dlq waits for its consumer there)
    precheck_first: bool = False
    precheck_catches: Callable[[Flow], list[State]] | None = None
    before_precheck: Hook | None = None  # flip-dns: wait out the hold-down
    after_precheck: Hook | None = None  # flip-dns: the primary healthy for a while, checked again
    # Undo runs (selfheal.undo): the call a run was stopped in -> the state its undo run starts
    # from (its undo chain, or a step that settles the call). None: a stop leaves nothing half-way.
    undo: Sequence[tuple[Call, str]] = ()


def build(workflow: Workflow) -> dict[str, Any]:
    """The ASL definition of one runbook: the frame, its hooks and its body."""
    f = Flow(workflow.runbook)
    if workflow.undo:
        has_undo = {"Variable": "$.undo", "IsPresent": True}
        f.choice(IS_UNDO, [(has_undo, VALIDATE_UNDO)], VALIDATE, comment="Input {undo: <stopped run>}.")
    _start(f)
    proceed = [({"Variable": "$.guard.decision.proceed", "BooleanEquals": True}, STARTED)]
    started = {"reason.$": "$.request.reason", "dryRunReason.$": "$.guard.decision.dryRunReason"}
    precheck = workflow.precheck
    if workflow.precheck_first:
        first = _hook(f, workflow.before_precheck, precheck)
        f.choice(MAY_WE_ACT, [(proceed[0][0], first)], SKIPPED)
        _precheck(f, workflow, next_state=STARTED)
        f.record(STARTED, "started", next_state=DRY_RUN, on_error=FAILED, **started)
    else:
        f.choice(MAY_WE_ACT, proceed, SKIPPED)
        hold = Flow(workflow.runbook)
        first = _hook(hold, workflow.before_precheck, precheck)
        f.record(STARTED, "started", next_state=first, on_error=FAILED, **started)
        f.merge(hold)
        after = Flow(workflow.runbook)
        _precheck(f, workflow, next_state=_hook(after, workflow.after_precheck, DRY_RUN))
        f.merge(after)
    body = Flow(workflow.runbook)
    entry = workflow.body(body)
    f.choice(DRY_RUN, [({"Variable": "$.guard.dryRun", "BooleanEquals": True}, WOULD_DO)], entry)
    f.step(
        WOULD_DO,
        "would-do",
        next_state=SUCCEEDED,
        payload={"plan.$": "$.guard.plan", "before.$": "$.precheck.before"},
        catches=[catch("States.ALL", FAILED)],
    )
    f.merge(body)
    if workflow.undo:
        _undo_run(f, workflow.undo)
    _finish(f)
    start = IS_UNDO if workflow.undo else VALIDATE
    return {"Comment": workflow.comment, "StartAt": start, "States": f.states}


def _hook(f: Flow, hook: Hook | None, next_state: str) -> str:
    """Build the hook's states into ``f``; its first state (or ``next_state`` when there is none)."""
    return hook(f, next_state) if hook is not None else next_state


def _start(f: Flow) -> None:
    f.step(
        VALIDATE,
        "validate",
        next_state=LEASE,
        payload={"input.$": "$$.Execution.Input"},
        # The state from here on: the request, and empty slots the later states fill.
        result={
            "request.$": "$.Payload",
            "guard": {"decision": {}, "plan": {}, "dryRun": None},
            "precheck": {"before": None},
            "error": None,
        },
        result_path="$",
        # The whole state: the input may be no object to add an error to (a list, a string).
        catches=[catch("States.ALL", EXPLAIN_REJECTION, "$")],
        with_request=False,
    )
    f.pass_(
        EXPLAIN_REJECTION,
        next_state=REJECTED,
        comment="Lambda reports the error as JSON; the console user should read just its message.",
        parameters={"Error.$": "$.Error", "Details.$": "States.StringToJson($.Cause)"},
        result_path="$.error",
    )
    f.add(
        REJECTED,
        {
            "Type": "Fail",
            "Comment": "The validate step wrote a 'rejected' audit row saying why.",
            "ErrorPath": "$.error.Error",
            "CausePath": "$.error.Details.errorMessage",
        },
    )
    f.step(
        LEASE,
        "acquire-lease",
        next_state=GUARDS,
        result={"owner.$": "$.Payload.owner"},
        result_path="$.lease",
        catches=[catch(LeaseHeld, SKIPPED), catch("States.ALL", FAILED)],
    )
    f.step(
        GUARDS,
        "guards",
        next_state=MAY_WE_ACT,
        comment="Resolves the plan (what it would touch and the exact calls), then mode, fence, scope,"
        " cooldown, loop and budget.",
        result={
            "decision.$": "$.Payload.decision",
            "plan.$": "$.Payload.plan",
            "dryRun.$": "$.Payload.dryRun",
            "callTimeoutSeconds.$": "$.Payload.callTimeoutSeconds",
        },
        result_path="$.guard",
        catches=[catch(NotApplicable, SKIPPED), catch("States.ALL", FAILED)],
    )


def _undo_run(f: Flow, entries: Sequence[tuple[Call, str]]) -> None:
    """An undo run: the stopped run's state taken up (checked by the steps function, from Step
    Functions' history of that run), the lease, a started row, then where the stop left it."""
    f.step(
        VALIDATE_UNDO,
        "validate-undo",
        next_state="Take up the stopped run's state",
        payload={"input.$": "$$.Execution.Input"},
        result_path="$",
        catches=[catch("States.ALL", EXPLAIN_REJECTION, "$")],
        with_request=False,
    )
    f.pass_(
        "Take up the stopped run's state", next_state="Acquire the lease for the undo", input_path="$.Payload"
    )
    f.step(
        "Acquire the lease for the undo",
        "acquire-lease",
        next_state="Record: started (undo)",
        result={"owner.$": "$.Payload.owner"},
        result_path="$.lease",
        catches=[catch(LeaseHeld, SKIPPED), catch("States.ALL", FAILED)],
    )
    f.record(
        "Record: started (undo)",
        "started",
        next_state=UNDO_CHOICE,
        on_error=FAILED,
        **{"reason.$": "$.request.reason"},
    )
    f.choice(
        UNDO_CHOICE,
        [(equals(STOPPED_IN, call.intent), entry) for call, entry in entries],
        "Explain: no undo begins there",
        comment="By the intent state of the call the stopped run was in.",
    )
    f.error(
        "Explain: no undo begins there",
        "$.error.Error",
        "{}: no undo begins after {}",
        "$.error.Cause",
        STOPPED_IN,
        next_state=FAILED,
    )


def nothing_to_undo(f: Flow, name: str, template: str, *args: str) -> str:
    """An undo run that finds the call it settles never happened: a skip, not escalated (the stopped
    run's end was)."""
    return f.pass_(
        name,
        next_state=SKIPPED,
        parameters={"proceed": False, "escalate": False, "skip_reason.$": formatted(template, args)},
        result_path="$.guard.decision",
    )


def _precheck(f: Flow, workflow: Workflow, next_state: str) -> None:
    extra = workflow.precheck_catches(f) if workflow.precheck_catches else []
    f.step(
        workflow.precheck,
        "precheck",
        next_state=next_state,
        payload={"plan.$": "$.guard.plan"},
        result={"before.$": "$.Payload.before"},
        result_path="$.precheck",
        catches=[*extra, catch(NotApplicable, SKIPPED), catch("States.ALL", FAILED)],
    )


def _release(f: Flow, name: str, next_state: str) -> None:
    f.add(
        name,
        {
            "Type": "Task",
            "Resource": "arn:${Partition}:states:::dynamodb:deleteItem",
            "Comment": "Conditional on owner: never releases a lease another execution took over.",
            "Parameters": {
                "TableName": "${LeaseTableName}",
                "Key": {"targetKey": {"S.$": "$.request.targetKey"}},
                "ConditionExpression": "#o = :me",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":me": {"S.$": "$.request.requestId"}},
            },
            "ResultPath": None,
            "Catch": [catch("States.ALL", next_state, None)],
            "Next": next_state,
        },
    )


def _finish(f: Flow) -> None:
    finish_result = {"outcome.$": "$.Payload"}
    f.step(
        SUCCEEDED,
        "finish",
        next_state="Release the lease",
        payload={
            "outcome": "succeeded",
            "plan.$": "$.guard.plan",
            "before.$": "$.precheck.before",
            "reason.$": "$.request.reason",
            "dryRunReason.$": "$.guard.decision.dryRunReason",
        },
        result=finish_result,
        result_path="$.result",
        comment="A failure here (the row or the notification) fails the run: healed, but not recorded.",
        catches=[catch("States.ALL", FAILED)],
    )
    # The execution's output: the finish step's outcome (healed | dry-run | skipped | rejected), one
    # line of reason, the target; not the whole state.
    _release(f, "Release the lease", "Report the heal")
    f.pass_("Report the heal", next_state=HEALED, input_path=OUTCOME)
    f.succeed(HEALED)
    f.step(
        SKIPPED,
        "finish",
        next_state="Release the lease after skipping",
        payload={"outcome": "skipped", "guard.$": "$.guard.decision", "error.$": "$.error"},
        result=finish_result,
        result_path="$.result",
        catches=[catch("States.ALL", FAILED)],
    )
    _release(f, "Release the lease after skipping", "Did it stop part-way?")
    # A stop after a change (the kill switch, a lost lease) is no skip: the finish step made it a
    # failure (StoppedPartWay), and the run fails with it.
    part_way = {"Variable": "$.result.outcome.outcome", "StringEquals": "failed"}
    f.choice("Did it stop part-way?", [(part_way, "Name the part-way stop")], "Report the skip")
    f.pass_("Report the skip", next_state="Skipped", input_path=OUTCOME)
    error = {"Error.$": "$.result.outcome.error", "Cause.$": "$.result.outcome.reason"}
    f.pass_("Name the part-way stop", next_state=FAILED_RUN, parameters=error, result_path="$.error")
    f.succeed("Skipped", comment="A guard said no (or there was nothing to do); the audit row says why.")
    f.step(
        FAILED,
        "finish",
        next_state="Release the lease after failure",
        payload={"outcome": "failed", "error.$": "$.error", "before.$": "$.precheck.before"},
        # The finish step names the error and gives its message: what the console user reads.
        result={"Error.$": "$.Payload.error", "Cause.$": "$.Payload.reason"},
        result_path="$.error",
        catches=[catch("States.ALL", "Release the lease after failure", None)],
    )
    _release(f, "Release the lease after failure", FAILED_RUN)
    f.fail(FAILED_RUN)


@dataclass(frozen=True)
class Approval:
    """A human must say yes before ``then``. The steps function stores the question (bound to the
    plan's hash, with the task token) and notifies; the state waits for the answer (timeout = no
    action). An answer is checked (who gave it, verified or only claimed), the lease renewed, and
    the run looks again (mode, freshness, the plan's hash, the precheck) before it acts."""

    timeout: str  # the path of the timeout in seconds
    refused: str  # skip reasons: States.Format templates, with their paths
    refused_args: Sequence[str]
    timed_out: str
    timed_out_args: Sequence[str]


ASK = "Ask a human to approve"


def approval(f: Flow, ask: Approval, then: str) -> str:
    """The approval hook; returns its first state."""
    f.renew("Renew the lease for the approval", ask.timeout, next_state=ASK, on_error=FAILED)

    f.step(
        ASK,
        "ask-approval",
        next_state="Check the approval",
        comment="The question (with the plan's hash) and the task token go to the lease table, the"
        " notification says how to answer (`selfheal approve EXECUTION`): never the token. Timeout:"
        " nothing changes.",
        payload={"plan.$": "$.guard.plan", "before.$": "$.precheck.before"},
        result_path="$.approval",
        wait_for_token=ask.timeout,
        catches=[
            catch("States.Timeout", "Not approved in time"),
            # The step's own errors fail the run; any other error is an answer: SendTaskFailure.
            catch([*LAMBDA_SERVICE_ERRORS, *error_names(SelfhealError)], FAILED),
            catch("States.ALL", "Approval was refused"),
        ],
    )
    # Not approved: skipped (and escalated), with the reason; the frame's skip path records it.
    # (A refusal is a rejection in the run's output; its row is the skip it is.)
    for name, template, args, rejected in (
        ("Not approved in time", ask.timed_out, ask.timed_out_args, False),
        ("Approval was refused", ask.refused, ask.refused_args, True),
    ):
        f.pass_(
            name,
            next_state=SKIPPED,
            parameters={
                "proceed": False,
                "escalate": True,
                "rejected": rejected,
                "skip_reason.$": formatted(template, args),
            },
            result_path="$.guard.decision",
        )
    f.step(
        "Check the approval",
        "approved",
        next_state="Renew the lease after the approval",
        comment="Who approved: as STS verified them (`selfheal approve`), or only claimed (a bare"
        " SendTaskSuccess, which acts only if the stack accepts unverified approvals).",
        payload={"approval.$": "$.approval"},
        result={"approver.$": "$.Payload.approver", "planHash.$": "$.Payload.planHash"},
        result_path="$.approval",
        catches=[catch(NotApplicable, SKIPPED), catch("States.ALL", FAILED)],
    )
    f.step(
        "Renew the lease after the approval",
        "acquire-lease",
        next_state="Look again after the approval",
        comment="The wait may outlast the lease: renew it (same owner), or stop if another execution took"
        " the target meanwhile.",
        result={"owner.$": "$.Payload.owner"},
        result_path="$.lease",
        catches=[catch(LeaseHeld, SKIPPED), catch("States.ALL", FAILED)],
    )
    f.step(
        "Look again after the approval",
        "recheck",
        next_state=then,
        comment="The answer may come long after the question: the kill switch, the approval's age, the"
        " plan's hash and the precheck are checked again before acting.",
        payload={"plan.$": "$.guard.plan"},
        result={"before.$": "$.Payload.before"},
        result_path="$.precheck",
        catches=[catch(NotApplicable, SKIPPED), catch("States.ALL", FAILED)],
    )
    return "Renew the lease for the approval"
