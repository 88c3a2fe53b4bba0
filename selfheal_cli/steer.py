"""See and steer a stack: what holds its runbooks back now, who holds which target, the audit trail
narrowed down, and releasing a lease a run left behind.

Functions take the CLI's ``clients`` (service name -> boto3 client) and the stack's outputs and
return data; ``selfheal status``, ``selfheal leases release`` and ``selfheal audit`` print it. Every
number is read the way the stack's own code reads it (``selfheal.budget``, ``selfheal.guards``,
``selfheal.lease``), and the limits are those the steps function runs with.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from selfheal.audit import AuditRow, AuditTrail
from selfheal.budget import Budgets
from selfheal.config import Settings
from selfheal.guards import acted_runs, failed_runs, happened, read_mode
from selfheal.lease import Lease, LeaseStore
from selfheal.models import Actor, Mode, Phase, iso, utcnow
from selfheal_cli import ops

Clients = Callable[[str], Any]

MODE_PARAMETER_OUTPUT = "ModeParameterName"
STEPS_FUNCTION_OUTPUT = "RunbookStepsFunctionArn"
RUNBOOK_INDEX = "byRunbook"
# The phases a remediation ends in (what its last row says of it).
END_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.SKIPPED, Phase.REJECTED})
RELEASE_STEP = "selfheal leases release"


class SteerError(ops.OpsError):
    """Refused or failed: nothing was changed unless the message says otherwise (exit status 1)."""


class NoLease(SteerError):
    """There is no lease on the target."""


class LeaseChanged(SteerError):
    """The lease is not (or no longer) held by the owner the release was for: nothing released."""


class OwnerStillRunning(SteerError):
    """The lease's owner still runs: it would take its lease again at its next renewal."""


class InvalidFilter(ValueError):
    """An audit filter that cannot be used (a time that is no ISO 8601 time): a usage error."""


def _output(outputs: Mapping[str, str], key: str) -> str:
    value = outputs.get(key)
    if not value:
        raise ops.OpsError(f"the stack has no {key} output (is it a selfheal stack?)")
    return value


# --- the stack's configuration -------------------------------------------------------------------


def stack_settings(clients: Clients, outputs: Mapping[str, str]) -> Settings:
    """The settings the runs enforce: the steps function's own variables, read as it reads them."""
    function = _output(outputs, STEPS_FUNCTION_OUTPUT)
    configured = clients("lambda").get_function_configuration(FunctionName=function)
    variables = configured.get("Environment", {}).get("Variables", {})
    return Settings.from_env({k: str(v) for k, v in variables.items()})


# --- who holds a target --------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A lease and the run that owns it, as far as Step Functions and the audit trail tell."""

    lease: Lease
    runbook: str | None = None
    execution_arn: str | None = None
    running: bool = False

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "target": self.lease.target_key,
            "owner": self.lease.owner,
            "runbook": self.runbook,
            "ownerExecution": self.execution_arn,
            "ownerRunning": self.running,
            "expiresAt": iso(self.lease.expires_at),
            "expired": not self.lease.held(now),
        }


def running_executions(clients: Clients, outputs: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """execution name -> (runbook, ARN), for every running execution of the stack's runbooks. A
    lease's owner is its run's request id, which is the execution's name."""
    sfn = clients("stepfunctions")
    running: dict[str, tuple[str, str]] = {}
    for runbook, machine in ops.runbook_state_machines(outputs).items():
        pages = sfn.get_paginator("list_executions").paginate(stateMachineArn=machine, statusFilter="RUNNING")
        for page in pages:
            running.update({e["name"]: (runbook, e["executionArn"]) for e in page["executions"]})
    return running


def holder(
    clients: Clients, outputs: Mapping[str, str], lease: Lease, running: Mapping[str, tuple[str, str]]
) -> Holder:
    """Who owns ``lease``: a running execution, else what the owner's audit rows say (a run that
    ended without releasing it: crashed, or stopped before RunEnded caught up)."""
    if lease.owner in running:
        name, execution = running[lease.owner]
        return Holder(lease, name, execution, running=True)
    table = _output(outputs, ops.AUDIT_TABLE_OUTPUT)
    rows = ops.audit_for_request(clients("dynamodb"), table, lease.owner)
    runbook = next((str(r["runbook"]) for r in rows if r.get("runbook") not in (None, "-")), None)
    arn = next((str(r["executionArn"]) for r in rows if r.get("executionArn")), None)
    return Holder(lease, runbook, arn, running=False)


# --- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Remediation:
    """One remediation as its newest row tells it."""

    request_id: str
    runbook: str
    target: str
    outcome: str  # its end phase, or "in progress (<its last phase>)"
    at: str
    dry_run: bool
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "runbook": self.runbook,
            "target": self.target,
            "outcome": self.outcome,
            "at": self.at,
            "dryRun": self.dry_run,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunbookStatus:
    runbook: str
    mode: Mode
    budget_used: int
    budget_limit: int
    failed_runs: int
    failed_limit: int
    acted_runs: int  # the guard's own count (audit rows), beside the atomic budget's
    leases: list[Holder] = field(default_factory=list)
    last: list[Remediation] = field(default_factory=list)

    @property
    def breaker_reasons(self) -> list[str]:
        """Why a run of this runbook would be held back now, in the guards' words; empty: closed."""
        reasons = []
        if self.failed_runs >= self.failed_limit:
            reasons.append(
                f"{self.failed_runs} failed runs in the last hour (MaxFailedRunsPerHour {self.failed_limit})"
            )
        used = max(self.budget_used, self.acted_runs)
        if used >= self.budget_limit:
            reasons.append(f"budget used up: {used} of {self.budget_limit} runs acted in the last hour")
        return reasons

    def as_dict(self, now: datetime) -> dict[str, Any]:
        reasons = self.breaker_reasons
        return {
            "runbook": self.runbook,
            "mode": self.mode.value,
            "budget": {"used": self.budget_used, "limit": self.budget_limit, "window": "last hour"},
            "failedRuns": {"count": self.failed_runs, "limit": self.failed_limit, "window": "last hour"},
            "breaker": {"open": bool(reasons), "why": reasons},
            "leases": [h.as_dict(now) for h in self.leases],
            "lastRemediations": [r.as_dict() for r in self.last],
        }


@dataclass(frozen=True)
class Status:
    stack: str
    at: datetime
    mode_parameter: str
    mode: Mode
    mode_problem: str | None  # the switch could not be read as enforce|dry-run|off: runs dry-run
    acting_now: int
    acting_limit: int
    runbooks: list[RunbookStatus]
    # Leases whose owner no row or running execution ties to a runbook.
    other_leases: list[Holder] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "at": iso(self.at),
            "killSwitch": {
                "parameter": self.mode_parameter,
                "mode": self.mode.value,
                "problem": self.mode_problem,
            },
            "actingNow": {"count": self.acting_now, "limit": self.acting_limit},
            "runbooks": [r.as_dict(self.at) for r in self.runbooks],
            "otherLeases": [h.as_dict(self.at) for h in self.other_leases],
        }


def _newest_first(dynamodb: Any, **query: Any) -> Iterator[dict[str, Any]]:
    for page in dynamodb.get_paginator("query").paginate(ScanIndexForward=False, **query):
        yield from (ops.plain_item(item) for item in page["Items"])


def last_remediations(dynamodb: Any, table: str, runbook: str, count: int) -> list[Remediation]:
    """The runbook's ``count`` latest remediations, newest first, each as its newest row says (a
    remediation's end row is its last). Rows of a released lease are no remediation."""
    found: dict[str, Remediation] = {}
    if count <= 0:
        return []
    rows = _newest_first(
        dynamodb,
        TableName=table,
        IndexName=RUNBOOK_INDEX,
        KeyConditionExpression="runbook = :r",
        ExpressionAttributeValues={":r": {"S": runbook}},
        PaginationConfig={"PageSize": 50},
    )
    for row in rows:
        request = str(row.get("requestId"))
        if request in found or row.get("phase") == Phase.LEASE_RELEASED:
            continue
        phase = str(row.get("phase"))
        found[request] = Remediation(
            request_id=request,
            runbook=runbook,
            target=str(row.get("targetKey", "")),
            outcome=phase if phase in END_PHASES else f"in progress ({phase})",
            at=str(row.get("at", "")),
            dry_run=bool(row.get("dryRun")),
            reason=row.get("reason"),
        )
        if len(found) == count:
            break
    return list(found.values())


def status(
    clients: Clients, stack_name: str, outputs: Mapping[str, str], last: int = 5, now: datetime | None = None
) -> Status:
    """The kill switch, each runbook's budget and breaker, the leases held and the last remediations."""
    now = now or utcnow()
    settings = stack_settings(clients, outputs)
    dynamodb = clients("dynamodb")
    audit_table = _output(outputs, ops.AUDIT_TABLE_OUTPUT)
    lease_table = _output(outputs, ops.LEASE_TABLE_OUTPUT)
    parameter = _output(outputs, MODE_PARAMETER_OUTPUT)
    mode, problem = read_mode(clients("ssm"), parameter)
    budgets = Budgets(dynamodb, lease_table)
    running = running_executions(clients, outputs)
    leases = LeaseStore(dynamodb, lease_table).held(now)
    holders = [holder(clients, outputs, lease, running) for lease in leases]
    trail = AuditTrail(dynamodb, audit_table)
    runbooks = []
    for runbook in sorted(ops.runbook_state_machines(outputs)):
        history = happened(trail.for_runbook(runbook, now - timedelta(hours=1)), now)
        runbooks.append(
            RunbookStatus(
                runbook=runbook,
                mode=mode,
                budget_used=budgets.hourly_used(runbook, now),
                budget_limit=settings.budget_per_hour,
                failed_runs=len(failed_runs(history, now)),
                failed_limit=settings.max_failed_runs_per_hour,
                acted_runs=len(acted_runs(history, now)),
                leases=[h for h in holders if h.runbook == runbook],
                last=last_remediations(dynamodb, audit_table, runbook, last),
            )
        )
    known = {r.runbook for r in runbooks}
    return Status(
        stack=stack_name,
        at=now,
        mode_parameter=parameter,
        mode=mode,
        mode_problem=problem,
        acting_now=len(budgets.in_flight()),
        acting_limit=settings.max_concurrent_actions,
        runbooks=runbooks,
        other_leases=[h for h in holders if h.runbook not in known],
    )


# --- release a lease -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Released:
    holder: Holder
    by: str
    reason: str
    row: AuditRow

    def as_dict(self) -> dict[str, Any]:
        lease = self.holder.lease
        return {
            "target": lease.target_key,
            "releasedFrom": lease.owner,
            "ownerExecution": self.holder.execution_arn,
            "runbook": self.holder.runbook,
            "expiresAt": iso(lease.expires_at),
            "expired": not lease.held(self.row.at),
            "by": self.by,
            "reason": self.reason,
            "auditRow": {"requestId": self.row.request_id, "sk": self.row.sk},
        }


def release_lease(
    clients: Clients,
    outputs: Mapping[str, str],
    target: str,
    reason: str,
    owner: str | None = None,
    now: datetime | None = None,
) -> Released:
    """Delete the lease on ``target`` if its owner (``owner``, when given) still holds it and no
    longer runs, and write a ``lease-released`` row: who (as STS names the caller), from which
    owner, why. The delete is conditional on that owner, so a lease taken over meanwhile stays."""
    if not reason.strip():
        raise SteerError("--reason must say why (it goes in the audit row)")
    dynamodb = clients("dynamodb")
    lease_table = _output(outputs, ops.LEASE_TABLE_OUTPUT)
    audit_table = _output(outputs, ops.AUDIT_TABLE_OUTPUT)
    leases = LeaseStore(dynamodb, lease_table)
    lease = leases.get(target)
    if lease is None:
        raise NoLease(f"there is no lease on {target}: nothing to release (selfheal status lists the leases)")
    if owner is not None and lease.owner != owner:
        raise LeaseChanged(f"the lease on {target} is held by {lease.owner}, not {owner}: nothing released")
    who = holder(clients, outputs, lease, running_executions(clients, outputs))
    if who.running:
        raise OwnerStillRunning(
            f"{lease.owner} still runs ({who.execution_arn}): it would take the lease on {target} again"
            " at its next renewal; stop the execution instead (its lease is released when it ends)"
        )
    # Asked before the delete: a caller STS cannot name releases nothing.
    caller = str(clients("sts").get_caller_identity()["Arn"])
    if not leases.release(target, lease.owner):
        now_held = leases.holder(target)
        raise LeaseChanged(
            f"the lease on {target} changed while releasing it (now held by {now_held or 'nobody'}):"
            " nothing released"
        )
    row = AuditRow(
        request_id=f"lease-release-{uuid.uuid4()}",
        phase=Phase.LEASE_RELEASED,
        target_key=target,
        runbook=who.runbook or "-",
        step=RELEASE_STEP,
        action="dynamodb:DeleteItem",
        parameters={"TableName": lease_table, "Key": {"targetKey": target}, "ifOwner": lease.owner},
        outcome="ok",
        before={
            "owner": lease.owner,
            "ownerExecution": who.execution_arn,
            "ownerRunning": False,
            "expiresAt": iso(lease.expires_at),
        },
        after={"releasedBy": caller},
        reason=reason,
        actor=Actor(kind="manual", principal=caller),
        at=now or utcnow(),
    ).with_key()
    try:
        AuditTrail(dynamodb, audit_table).write(row)
    except Exception as exc:
        raise SteerError(
            f"the lease on {target} was released (from {lease.owner}), but its audit row could not be"
            f" written ({exc}): record the release by hand"
        ) from exc
    return Released(who, caller, reason, row)


# --- the audit trail, narrowed down --------------------------------------------------------------


def parse_time(text: str, what: str) -> str:
    """An ISO 8601 time (a date alone is its midnight; no offset: UTC) as the rows' ``at`` text."""
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidFilter(
            f"{what}: {text!r} is not an ISO 8601 time (e.g. 2026-05-01 or 2026-05-01T12:00:00Z)"
        ) from None
    return iso(at if at.tzinfo else at.replace(tzinfo=UTC))


@dataclass(frozen=True)
class AuditFilter:
    target: str | None = None
    runbook: str | None = None
    phase: str | None = None
    since: str | None = None  # as parse_time gives it; both bounds included
    until: str | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise InvalidFilter(f"--since ({self.since}) is after --until ({self.until})")


def _time_condition(f: AuditFilter, values: dict[str, Any]) -> str | None:
    if f.since:
        values[":since"] = {"S": f.since}
    if f.until:
        values[":until"] = {"S": f.until}
    if f.since and f.until:
        return "#at BETWEEN :since AND :until"
    if f.since:
        return "#at >= :since"
    return "#at <= :until" if f.until else None


def audit_request(table: str, f: AuditFilter) -> tuple[str, dict[str, Any]]:
    """The Query (a target or a runbook: its index, the times in the key condition) or the Scan
    that reads the rows ``f`` asks for: (operation, its parameters)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    time = _time_condition(f, values)
    if time:
        names["#at"] = "at"
    filters = []
    if f.runbook and f.target:
        filters.append("#rb = :runbook")
        names["#rb"], values[":runbook"] = "runbook", {"S": f.runbook}
    if f.phase:
        filters.append("#ph = :phase")
        names["#ph"], values[":phase"] = "phase", {"S": f.phase}
    request: dict[str, Any] = {"TableName": table}
    operation = "scan"
    if f.target or f.runbook:
        operation = "query"
        index, attribute = (ops.AUDIT_TARGET_INDEX, "targetKey") if f.target else (RUNBOOK_INDEX, "runbook")
        values[":key"] = {"S": f.target or f.runbook}
        names["#key"] = attribute
        request["IndexName"] = index
        request["KeyConditionExpression"] = " AND ".join(c for c in ("#key = :key", time) if c)
    elif time:
        filters.insert(0, time)
    if filters:
        request["FilterExpression"] = " AND ".join(filters)
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = values
    return operation, request


def audit_rows(dynamodb: Any, table: str, f: AuditFilter) -> list[dict[str, Any]]:
    """The rows that match ``f``, newest last, as plain JSON."""
    operation, request = audit_request(table, f)
    rows = [
        ops.plain_item(item)
        for page in dynamodb.get_paginator(operation).paginate(**request)
        for item in page["Items"]
    ]
    return sorted(rows, key=lambda row: str(row.get("at", "")))


def approver(row: Mapping[str, Any]) -> str:
    """Who approved, for an ``approved`` row: the principal STS verified, or what an unverified
    approval claimed (marked so); empty for any other row."""
    if row.get("phase") != Phase.APPROVED:
        return ""
    after = row.get("after") or {}
    if not isinstance(after, dict):
        return ""
    if after.get("principal"):
        return str(after["principal"])
    claimed = after.get("claimed")
    if isinstance(claimed, dict):
        claimed = claimed.get("approvedBy") or claimed.get("output") or claimed
    return f"{claimed} (claimed)" if claimed else ""


def known_phases() -> list[str]:
    return [p.value for p in Phase]
