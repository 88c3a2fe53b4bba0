"""Typed models at the edges: runbook input, audit rows, decisions."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class StrictModel(BaseModel):
    """Unknown fields are an error: a typo in a console input must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Phase(StrEnum):
    RECEIVED = "received"
    IGNORED = "ignored"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    STARTED = "started"
    WOULD_DO = "would-do"
    ACTION = "action"
    VERIFIED = "verified"
    COMPENSATED = "compensated"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # A runbook that must ask a human first (waitForTaskToken): the request went out / the answer came.
    AWAITING_APPROVAL = "awaiting-approval"
    APPROVED = "approved"
    # An operator deleted a target's lease by hand (``selfheal leases release``): who, from which
    # owner, why. Its own one-row request, chained to the target's newest row; no run's phase.
    LEASE_RELEASED = "lease-released"
    # An escalation opened as an OpsCenter OpsItem (ssm:CreateOpsItem): intent (outcome pending) and
    # outcome rows, as for a call, but no action on the target (no budget, no undo, no half-way).
    ESCALATED = "escalated"


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"
    OFF = "off"


class Actor(StrictModel):
    """Who asked, with what is verified kept apart from what is only claimed.

    - ``automatic``: triage started the run for a signal (rule and event id: verified, triage wrote
      them in its ``received`` row, which the run checks).
    - ``manual``: triage started the run for a request on the bus. ``requestedBy`` is what the
      request says of itself; EventBridge does not tell who put the event: self-declared.
    - ``direct``: the run was started without triage (the console, the CLI, StartExecution).
      ``claimed`` is the actor its input claimed, kept as a claim, never as fact; who started it is
      in CloudTrail (StartExecution), not in the input.

    ``principal`` is only ever a caller AWS authenticated; nothing in a request body sets it.
    """

    kind: Literal["automatic", "manual", "direct"]
    rule: str | None = None
    event_id: str | None = Field(default=None, alias="eventId")
    principal: str | None = None
    requested_by: str | None = Field(default=None, alias="requestedBy")
    claimed: dict[str, Any] | None = None


class RunbookInput(StrictModel):
    """What a runbook execution receives: what the console user pastes, and what triage sends."""

    target: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(default=False, alias="dryRun", strict=True)  # "no" is not false
    reason: str = Field(min_length=1, max_length=1024)
    # Who asked, as the input says: triage's word is checked against its received row; anything
    # else is a claim (see Actor).
    actor: dict[str, Any] | None = None


def input_digest(value: Any) -> str:
    """A digest of a runbook input that survives a JSON round trip (key order, spacing): how a run
    checks that the input it got is the one triage sent."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    """UTC time as fixed-width text, so string order is time order (DynamoDB sort keys)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Request(StrictModel):
    """A validated runbook request, passed between the steps of one execution."""

    request_id: str = Field(alias="requestId")
    execution_arn: str | None = Field(default=None, alias="executionArn")
    runbook: str
    target: dict[str, Any]
    target_key: str = Field(alias="targetKey")
    params: dict[str, Any]
    dry_run: bool = Field(alias="dryRun")
    reason: str
    actor: Actor
    # An undo run's: the run whose changes it settles (its budget share is that run's).
    undo_of: str | None = Field(default=None, alias="undoOf")


# Limits on what a runbook input may hold, well inside what every row that records it can take
# (DynamoDB: 400 KB an item, 32 levels of nesting); a request beyond them is refused, not truncated.
MAX_INPUT_BYTES = 16 * 1024
MAX_INPUT_DEPTH = 8


def input_problems(raw: Any) -> str | None:
    """Why ``raw`` is too big or too deeply nested to be a runbook input, else None. Depth first, and
    without recursion: a hostile input nested thousands of levels deep must not crash the check."""
    stack: list[tuple[Any, int]] = [(raw, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_INPUT_DEPTH:
                return f"the input is nested more than {MAX_INPUT_DEPTH} levels deep"
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    size = len(json.dumps(raw, default=str).encode())
    if size > MAX_INPUT_BYTES:
        return f"the input is {size} bytes; at most {MAX_INPUT_BYTES}"
    return None
