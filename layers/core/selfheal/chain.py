"""The audit trail's hash chain: rows that cannot be edited, removed or reordered unseen.

Every row carries ``seq`` (0, 1, 2... within its remediation), ``prev`` (the hash of the row before
it) and ``hash`` (SHA-256 of the row itself, ``hash`` left out, in a canonical JSON form). A
remediation's first row chains to the newest row its target had when it began (``prevRequestId``
names that remediation), so remediations of one target form a chain too.

``verify`` reads rows back as plain JSON and names what does not hold: a row whose content no longer
gives its hash (edited), a seq missing (removed), a ``prev`` that is not the hash of the row before
(reordered or inserted), two rows claiming one seq (forked), a first row chaining to a row that is not
there. What it cannot see: rows removed from the very end of a target's newest remediation (nothing
chains to them yet). IAM denies the stack's roles every edit; the chain is for everyone else.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

HASH_FIELDS = ("hash",)
GENESIS = "-"


def _plain(value: Any) -> Any:
    """Numbers as DynamoDB gives them back (1.0 reads as 1), so a row hashes the same written and read."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def row_hash(body: Mapping[str, Any]) -> str:
    content = {k: v for k, v in body.items() if k not in HASH_FIELDS}
    canonical = json.dumps(
        _plain(content), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def verify(rows: Iterable[Mapping[str, Any]], *, since_cut: bool = False) -> list[str]:
    """Every break in the chains of these rows (plain JSON, as read from the table), in words: all
    rows of the targets concerned, or (``since_cut``) those from a time on, whose first rows may
    chain to remediations before it."""
    problems: list[str] = []
    by_request: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    hashes: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        request = str(row.get("requestId"))
        by_request[request].append(row)
        if row.get("hash"):
            hashes[request].add(str(row["hash"]))
    for request, its_rows in sorted(by_request.items()):
        where = f"remediation {request}"
        unchained = [r for r in its_rows if "seq" not in r or not r.get("hash")]
        for row in unchained:
            problems.append(f"{where}: row {row.get('sk')} is not chained (no seq or hash)")
        chained = sorted((r for r in its_rows if r not in unchained), key=lambda r: int(r["seq"]))
        seen: dict[int, Mapping[str, Any]] = {}
        for row in chained:
            seq, sk = int(row["seq"]), row.get("sk")
            if row_hash(row) != row["hash"]:
                problems.append(f"{where}: row {sk} (seq {seq}) was edited: its content gives another hash")
            if seq in seen:
                problems.append(f"{where}: rows {seen[seq].get('sk')} and {sk} both claim seq {seq}")
                continue
            seen[seq] = row
            if seq == 0:
                problems += _first_link(where, row, hashes, since_cut)
                continue
            before = seen.get(seq - 1)
            if before is None:
                problems.append(f"{where}: the row before {sk} (seq {seq - 1}) is missing")
            elif row.get("prev") != before["hash"]:
                problems.append(
                    f"{where}: row {sk} (seq {seq}) does not follow seq {seq - 1} (moved or inserted)"
                )
        if chained and 0 not in seen:
            problems.append(f"{where}: its first row (seq 0) is missing")
    return problems


def _first_link(
    where: str, row: Mapping[str, Any], hashes: Mapping[str, set[str]], since_cut: bool
) -> list[str]:
    """A remediation's first row chains to a row of the target's previous remediation, if it had one:
    that row must still be there, unchanged."""
    previous, prev = row.get("prevRequestId"), row.get("prev")
    if not previous or prev == GENESIS:
        return []
    if previous not in hashes:
        # Every row of the target was read, so the remediation it chains to was removed entirely;
        # from --since on, it may simply be older than the cut.
        return [] if since_cut else [f"{where}: chains to remediation {previous}, which has no rows left"]
    if prev not in hashes[previous]:
        return [f"{where}: its first row chains to a row of {previous} that is gone or was edited"]
    return []
