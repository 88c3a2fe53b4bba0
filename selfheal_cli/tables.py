"""Text tables within 160 columns: the audit trail (and its CSV) and ``selfheal status``."""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfheal_cli.steer import Status

_MAX_CELL = 48
TABLE_WIDTH = 160
# The audit table's columns, the same whatever rows come back: (name, widest, narrowest), each at
# most _MAX_CELL; the narrowest add up to fit TABLE_WIDTH. --output json or csv shows everything.
_AUDIT_COLUMNS = (
    ("at", 20, 20),
    ("targetKey", 40, 16),
    ("runbook", 16, 16),
    ("phase", 17, 14),
    ("step", 32, 12),
    ("outcome", 8, 7),
    ("approver", 40, 20),
    ("reason", 48, 20),
    ("requestId", 48, 12),
)
# --output csv: the table's columns, untruncated, then what else tells a row apart.
_AUDIT_CSV_COLUMNS = (*(name for name, _, _ in _AUDIT_COLUMNS), "action", "dryRun", "executionArn", "sk")


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _utc(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Any) -> str:
    """A row's time to the second (the rows keep microseconds, for order)."""
    text = str(value or "")
    return text[:19] + "Z" if len(text) > 20 and text[19] == "." and text.endswith("Z") else text


def format_table(
    header: Sequence[str], cells: Sequence[Sequence[str]], limits: Sequence[tuple[int, int]]
) -> list[str]:
    """Aligned columns within TABLE_WIDTH: each as wide as its content up to its widest, and the ones
    with most room narrowed (never under their narrowest) while the line is too long."""
    widths = [
        min(widest, max([len(name)] + [len(line[i]) for line in cells]))
        for i, (name, (widest, _)) in enumerate(zip(header, limits, strict=True))
    ]
    while sum(widths) + 2 * (len(widths) - 1) > TABLE_WIDTH:
        room = [width - narrowest for width, (_, narrowest) in zip(widths, limits, strict=True)]
        if max(room) <= 0:
            break
        widths[room.index(max(room))] -= 1
    lines = [
        "  ".join(_fit(cell, w).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(header), *cells]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _audit_cell(row: dict[str, Any], column: str, short: bool = False) -> Any:
    from selfheal_cli.steer import approver

    if column != "approver":
        return row.get(column, "")
    who = approver(row)
    # In the table, a principal's ARN without its partition and account: user/bob, assumed-role/Ops/al.
    return who.split(":", 5)[5] if short and who.startswith("arn:") and who.count(":") >= 5 else who


def format_audit_table(rows: Sequence[dict[str, Any]]) -> str:
    """The audit rows as an aligned text table: the same columns whatever the rows hold, within
    TABLE_WIDTH; ``approver`` is who approved (an approved row's)."""
    header = [name for name, _, _ in _AUDIT_COLUMNS]
    cells = [
        [_when(row.get("at")) if c == "at" else _cell(_audit_cell(row, c, short=True)) for c in header]
        for row in rows
    ]
    lines = format_table(header, cells, [(widest, narrowest) for _, widest, narrowest in _AUDIT_COLUMNS])
    if not rows:
        lines.append("(no audit rows)")
    return "\n".join(lines)


def format_audit_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV with a header: fixed columns, values in full (nested ones as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_AUDIT_CSV_COLUMNS)
    for row in rows:
        values = [_audit_cell(row, name) for name in _AUDIT_CSV_COLUMNS]
        writer.writerow(v if isinstance(v, str) else json.dumps(v, default=str) for v in values)
    return out.getvalue().rstrip("\n")


def format_status(state: Status) -> str:
    """``selfheal status`` as text: the switch, one line a runbook, then what holds them back."""
    lines = [f"stack {state.stack} at {_utc(state.at)}"]
    switch = f"kill switch {state.mode_parameter}: {state.mode.value} (for every runbook)"
    lines.append(switch + (f"; {state.mode_problem}" if state.mode_problem else ""))
    lines.append(f"runs acting at once: {state.acting_now} of {state.acting_limit} (MaxConcurrentActions)")
    lines.append("")
    header = ["runbook", "mode", "budget/h", "failed/h", "breaker", "leases", "last outcome"]
    cells = [
        [
            r.runbook,
            r.mode.value,
            f"{r.budget_used}/{r.budget_limit}",
            f"{r.failed_runs}/{r.failed_limit}",
            "OPEN" if r.breaker_reasons else "closed",
            str(len(r.leases)),
            r.last[0].outcome if r.last else "-",
        ]
        for r in state.runbooks
    ]
    lines += format_table(header, cells, [(20, 16), (8, 7), (10, 8), (10, 8), (7, 7), (6, 6), (40, 12)])
    open_breakers = [(r.runbook, why) for r in state.runbooks for why in r.breaker_reasons]
    if open_breakers:
        lines += ["", "breakers open:"] + [f"  {runbook}: {why}" for runbook, why in open_breakers]
    holders = [h for r in state.runbooks for h in r.leases] + list(state.other_leases)
    lines += ["", "leases held now:" if holders else "leases held now: none"]
    if holders:
        header = ["target", "runbook", "owner", "running", "expires", "owner execution"]
        cells = [
            [
                h.lease.target_key,
                h.runbook or "?",
                h.lease.owner,
                "yes" if h.running else "no",
                _utc(h.lease.expires_at),
                h.execution_arn or "?",
            ]
            for h in sorted(holders, key=lambda h: h.lease.target_key)
        ]
        lines += format_table(header, cells, [(40, 16), (16, 16), (48, 16), (7, 7), (20, 20), (100, 20)])
    remediations = sorted((m for r in state.runbooks for m in r.last), key=lambda m: m.at, reverse=True)
    lines += ["", "last remediations:" if remediations else "last remediations: none"]
    if remediations:
        header = ["when", "runbook", "target", "outcome", "requestId", "reason"]
        cells = [
            [
                _when(m.at),
                m.runbook,
                m.target,
                m.outcome + (" (dry run)" if m.dry_run else ""),
                m.request_id,
                _cell(m.reason or ""),
            ]
            for m in remediations
        ]
        lines += format_table(header, cells, [(20, 20), (16, 16), (40, 16), (34, 12), (48, 16), (48, 20)])
    return "\n".join(lines)
