"""The audit trail's hash chain, without AWS: what verify sees and names."""

from __future__ import annotations

import copy
from typing import Any

from selfheal.chain import GENESIS, row_hash, verify


def remediation(request: str, phases: list[str], after: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows chained as AuditTrail.write chains them; the first to ``after``'s row, if given."""
    rows: list[dict[str, Any]] = []
    for seq, phase in enumerate(phases):
        row: dict[str, Any] = {
            "requestId": request,
            "sk": f"2026-12-01T10:00:0{seq}.000000Z#{phase}#step",
            "phase": phase,
            "targetKey": "i-1",
            "reason": "r",
            "dryRun": False,
            "before": {"weight": 1.0, "list": [1, 2]},
            "seq": seq,
        }
        if seq:
            row["prev"] = rows[-1]["hash"]
        elif after:
            row |= {"prev": after["hash"], "prevRequestId": after["requestId"]}
        else:
            row["prev"] = GENESIS
        row["hash"] = row_hash(row)
        rows.append(row)
    return rows


def two_remediations() -> list[dict[str, Any]]:
    first = remediation("r1", ["received", "started", "action", "action", "succeeded"])
    return first + remediation("r2", ["received", "started", "skipped"], after=first[-1])


def test_verify_finds_nothing_wrong_with_an_intact_trail():
    assert verify(two_remediations()) == []


def test_verify_hashes_numbers_as_dynamodb_gives_them_back():
    rows = two_remediations()
    rows[0]["before"]["weight"] = 1  # 1.0 written, 1 read back
    assert verify(rows) == []


def test_verify_names_an_edited_row():
    rows = two_remediations()
    rows[2]["reason"] = "nothing to see here"
    (problem,) = verify(rows)
    assert "r1" in problem and "seq 2" in problem and "edited" in problem


def test_verify_names_a_removed_row():
    rows = two_remediations()
    del rows[2]
    (problem,) = verify(rows)
    assert "seq 2" in problem and "missing" in problem


def test_verify_names_a_row_moved_even_when_its_hash_was_recomputed():
    rows = two_remediations()
    # swap seq 2 and 3 and make each row's hash match its new content again
    rows[2]["seq"], rows[3]["seq"] = 3, 2
    for row in (rows[2], rows[3]):
        row["hash"] = row_hash(row)
    problems = verify(rows)
    assert problems and all("does not follow" in p for p in problems), problems


def test_verify_names_two_rows_claiming_one_seq_and_an_unchained_row():
    rows = two_remediations()
    forged = copy.deepcopy(rows[3])
    forged["sk"] = "2026-12-01T10:00:09.000000Z#action#forged"
    forged["hash"] = row_hash(forged)
    unchained = {k: v for k, v in rows[1].items() if k not in ("seq", "hash")} | {"sk": "x#started#y"}
    problems = verify([*rows, forged, unchained])
    assert any("both claim seq 3" in p for p in problems)
    assert any("not chained" in p for p in problems)


def test_verify_names_a_remediation_removed_entirely_unless_it_may_be_before_the_cut():
    rows = [r for r in two_remediations() if r["requestId"] == "r2"]
    (problem,) = verify(rows)
    assert "chains to remediation r1" in problem
    assert verify(rows, since_cut=True) == []


def test_verify_names_a_first_row_whose_previous_row_was_edited_and_rehashed():
    rows = two_remediations()
    rows[4]["reason"] = "rewritten"
    rows[4]["hash"] = row_hash(rows[4])  # consistent in itself, but r2 chained to the old hash
    problems = verify(rows)
    assert any("r2" in p and "gone or was edited" in p for p in problems), problems
