"""Undo runs: settling what a run stopped from outside left half-way.

StopExecution (an operator's, or the execution's own timeout) ends a run at once: no Catch, no undo
chain. The RunEnded handler records the end; where the run was stopped in a call that the workflow
can undo, it also starts an *undo run*: an execution of the same state machine whose input is
``{"undo": <the stopped execution's ARN>}``. The undo run takes up the stopped run's own state (its
plan, what it launched, what it moved: from Step Functions' history of it, never from the input)
and enters the workflow's undo chain where the stop left it. The mutations stay in the state
machines, under their roles, audited, fenced, and stopped by the kill switch like any other call:
to freeze everything, turn the kill switch off first; a stop alone means "undo what it did".

Where an undo begins is written once, in the generated workflow: the frame's ``UNDO_CHOICE`` maps
the intent state of the call the run was in to the state the undo starts from. This module reads
it from the state machine's definition, so the handler and the workflow cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from selfheal.audit import AuditRow
from selfheal.errors import InvalidInput, NothingToUndo
from selfheal.models import Phase, Request, StrictModel

# The frame's Choice that routes an undo run; its rules test this path.
UNDO_CHOICE = "Where does the undo begin?"
STOPPED_IN = "$.undo.stoppedIn"
# A run that FAILED ran its own undo chain; only these ended with nobody at the helm.
UNDONE_STATUSES = ("ABORTED", "TIMED_OUT")
MAX_EXECUTION_NAME = 80


class UndoInput(StrictModel):
    """What starts an undo run (the RunEnded handler, or an operator from the console)."""

    undo: str = Field(min_length=1, max_length=2048, description="the stopped execution's ARN")
    reason: str = Field(default="", max_length=500)


@dataclass(frozen=True)
class StoppedRun:
    arn: str
    name: str
    status: str
    stopped_in: str  # the intent state of the last call it began
    state: dict[str, Any]  # its state as it entered its last top-level state
    request: Request


def undo_entries(definition: dict[str, Any]) -> dict[str, str]:
    """Where an undo begins, by the intent state of the call a run was stopped in ({} when the
    workflow undoes nothing after a stop)."""
    choice = (definition.get("States") or {}).get(UNDO_CHOICE) or {}
    return {
        rule["StringEquals"]: rule["Next"]
        for rule in choice.get("Choices", [])
        if rule.get("Variable") == STOPPED_IN and "StringEquals" in rule
    }


def last_intent(rows: list[AuditRow]) -> AuditRow | None:
    """The intent row of the last call a run began (calls are made one at a time)."""
    intents = [
        r for r in rows if r.phase in (Phase.ACTION, Phase.COMPENSATED) and r.outcome == "pending" and r.step
    ]
    return max(intents, key=lambda r: r.at) if intents else None


def undo_name(stopped_name: str) -> str:
    """The undo run's execution name: one per stopped run (a repeated RunEnded event meets
    ExecutionAlreadyExists, never starts a second one)."""
    name = f"undo-{stopped_name}"
    if len(name) <= MAX_EXECUTION_NAME:
        return name
    return f"undo-{hashlib.sha256(stopped_name.encode()).hexdigest()[:40]}"


def definition_of(sfn: Any, execution_arn: str) -> dict[str, Any]:
    found = json.loads(sfn.describe_state_machine_for_execution(executionArn=execution_arn)["definition"])
    return found if isinstance(found, dict) else {}


def last_state(sfn: Any, execution_arn: str, top_level: set[str]) -> dict[str, Any] | None:
    """The run's state as it entered its last top-level state (a Map's iterations see only their
    item: the Map's own input is the run's state)."""
    last: tuple[int, str] | None = None
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in page["events"]:
            entered = event.get("stateEnteredEventDetails") or {}
            later = last is None or event["id"] > last[0]
            if entered.get("name") in top_level and "input" in entered and later:
                last = (event["id"], entered["input"])
    if last is None:
        return None
    state = json.loads(last[1])
    return state if isinstance(state, dict) else None


def stopped_run(
    sfn: Any, rows_of: Any, raw: Any, *, runbook: str, stack_name: str, account_id: str | None
) -> StoppedRun:
    """The run an undo input names, checked: an execution of this stack's state machine for this
    runbook, stopped from outside (or timed out), in a call this workflow undoes. Raises
    InvalidInput or NothingToUndo, naming why."""
    try:
        asked = UndoInput.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(input)'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid {runbook} undo input: {problems}") from exc
    arn = asked.undo
    parts = arn.split(":")
    expected = f"{stack_name}-{runbook}"
    if len(parts) != 8 or parts[2] != "states" or parts[5] != "execution" or parts[6] != expected:
        raise InvalidInput(
            f"{arn!r} is not an execution of this stack's {runbook} state machine ({expected})"
        )
    if account_id and parts[4] != account_id:
        raise InvalidInput(f"{arn!r} is in account {parts[4]}, not this stack's")
    try:
        described = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise InvalidInput(f"{arn!r} does not exist") from None
    status = str(described["status"])
    if status not in UNDONE_STATUSES:
        raise NothingToUndo(
            f"{parts[7]} is {status}: only a run stopped from outside (ABORTED) or timed out is undone"
            " by an undo run (a run that failed ran its own undo)",
            execution=arn,
        )
    intent = last_intent(rows_of(parts[7]))
    if intent is None or intent.step is None:
        raise NothingToUndo(f"{parts[7]} began no call: it changed nothing", execution=arn)
    definition = definition_of(sfn, arn)
    if intent.step not in undo_entries(definition):
        raise NothingToUndo(
            f"{parts[7]} was stopped after '{intent.step}' ({intent.action}), which leaves its target as"
            " before or as after: nothing to undo",
            execution=arn,
        )
    state = last_state(sfn, arn, set(definition.get("States") or {}))
    try:
        request = Request.model_validate((state or {}).get("request"))
    except ValidationError:
        raise NothingToUndo(f"{parts[7]}'s state has no request to undo", execution=arn) from None
    if state is None or request.runbook != runbook or not (state.get("guard") or {}).get("plan"):
        raise NothingToUndo(f"{parts[7]}'s state has no plan to undo", execution=arn)
    return StoppedRun(arn, parts[7], status, intent.step, state, request)


def undo_state(stopped: StoppedRun, execution_arn: str, execution_name: str, reason: str) -> dict[str, Any]:
    """The undo run's state: the stopped run's, its request now the undo run's (the budget it spends
    is the stopped run's: ``undoOf``), with the stop as the error the undo chain explains."""
    request = stopped.request.model_copy(
        update={
            "request_id": execution_name,
            "execution_arn": execution_arn,
            "reason": f"undo of {stopped.name} ({stopped.status} in '{stopped.stopped_in}')"
            + (f": {reason}" if reason else ""),
            "undo_of": stopped.request.undo_of or stopped.request.request_id,
        }
    )
    cause = (
        f"{stopped.name} was stopped from outside ({stopped.status}) in '{stopped.stopped_in}'"
        f" (undo run {execution_name})"
    )
    guard = dict(stopped.state.get("guard") or {})
    # An undo that cannot act (the kill switch, another run's lease) leaves the target half-way: its
    # skip escalates.
    guard["decision"] = {**(guard.get("decision") or {}), "escalate": True}
    return {
        **stopped.state,
        "guard": guard,
        "request": request.model_dump(mode="json", by_alias=True),
        "error": {
            "Error": "ExecutionAborted" if stopped.status == "ABORTED" else "ExecutionTimedOut",
            "Cause": cause,
        },
        "undo": {"of": stopped.arn, "stoppedIn": stopped.stopped_in},
    }
