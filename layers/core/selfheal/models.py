"""Typed models at the edges: runbook input, audit rows, decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

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


class Mode(StrEnum):
    ENFORCE = "enforce"
    DRY_RUN = "dry-run"
    OFF = "off"


class Actor(StrictModel):
    """Who asked: automatic (rule and event id) or manual (who)."""

    kind: str = Field(description="automatic | manual")
    rule: str | None = None
    event_id: str | None = Field(default=None, alias="eventId")
    principal: str | None = None


class RunbookInput(StrictModel):
    """What a runbook execution receives: what the console user pastes, and what triage sends."""

    target: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = Field(default=False, alias="dryRun", strict=True)  # "no" is not false
    reason: str = Field(min_length=1, max_length=1024)
    actor: Actor | None = None


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
