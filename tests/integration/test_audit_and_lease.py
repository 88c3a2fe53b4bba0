"""Audit rows are write-once and queryable by target; leases are exclusive and expire."""

from datetime import UTC, datetime, timedelta

import pytest

from selfheal.audit import AuditRow, AuditTrail
from selfheal.errors import LeaseHeld
from selfheal.lease import LeaseStore
from selfheal.models import Phase


def test_audit_write_is_write_once(clients, settings):
    trail = AuditTrail(clients.dynamodb, settings.audit_table)
    at = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    first = AuditRow(
        requestId="r1", phase=Phase.STARTED, targetKey="i-1", runbook="remap-eip", step="s", at=at
    )
    trail.write(first)
    trail.write(first.model_copy(update={"reason": "a retried step must not overwrite"}))
    rows = trail.for_request("r1")
    assert len(rows) == 1 and rows[0].reason is None


def test_audit_rows_round_trip_nested_values(clients, settings):
    trail = AuditTrail(clients.dynamodb, settings.audit_table)
    row = AuditRow(
        requestId="r2",
        phase=Phase.ACTION,
        targetKey="i-1",
        runbook="remap-eip",
        action="ec2:AssociateAddress",
        parameters={"AllocationId": "eipalloc-1", "AllowReassociation": True},
        before={"checks": {"system": "ok"}, "n": 1.5, "none": None, "list": [1, "a"]},
    )
    trail.write(row)
    (back,) = trail.for_request("r2")
    assert back.parameters == row.parameters and back.before == row.before and back.at == row.at


def test_audit_for_target_returns_the_window_in_time_order(clients, settings):
    trail = AuditTrail(clients.dynamodb, settings.audit_table)
    now = datetime.now(UTC)
    for minutes, request in ((120, "old"), (10, "a"), (5, "b")):
        trail.write(
            AuditRow(
                requestId=request, phase=Phase.STARTED, targetKey="i-1", at=now - timedelta(minutes=minutes)
            )
        )
    trail.write(AuditRow(requestId="c", phase=Phase.STARTED, targetKey="i-2", at=now))
    rows = trail.for_target("i-1", now - timedelta(hours=1))
    assert [r.request_id for r in rows] == ["a", "b"]


def test_lease_is_exclusive_until_released(clients, settings):
    leases = LeaseStore(clients.dynamodb, settings.lease_table)
    now = datetime.now(UTC)
    leases.acquire("i-1", "exec-a", now, 900)
    leases.acquire("i-1", "exec-a", now, 900)  # re-entrant for its owner (a retried step)
    with pytest.raises(LeaseHeld) as held:
        leases.acquire("i-1", "exec-b", now, 900)
    assert held.value.details["holder"] == "exec-a"
    assert leases.release("i-1", "exec-b") is False
    assert leases.release("i-1", "exec-a") is True
    leases.acquire("i-1", "exec-b", now, 900)


def test_lease_expired_can_be_taken_over(clients, settings):
    leases = LeaseStore(clients.dynamodb, settings.lease_table)
    now = datetime.now(UTC)
    leases.acquire("i-1", "crashed", now - timedelta(hours=1), 900)
    leases.acquire("i-1", "exec-b", now, 900)
    assert leases.holder("i-1") == "exec-b"


def test_leases_held_lists_unexpired_leases_only_and_no_other_items(clients, settings):
    leases = LeaseStore(clients.dynamodb, settings.lease_table)
    now = datetime.now(UTC)
    leases.acquire("i-2", "exec-b", now, 900)
    leases.acquire("i-1", "exec-a", now, 900)
    leases.acquire("i-old", "crashed", now - timedelta(hours=1), 900)
    # Other items of the lease table (a budget bucket, a question) are not leases
    clients.dynamodb.put_item(
        TableName=settings.lease_table, Item={"targetKey": {"S": "budget#x"}, "runs": {"SS": ["r"]}}
    )
    held = leases.held(now)
    assert [(lease.target_key, lease.owner) for lease in held] == [("i-1", "exec-a"), ("i-2", "exec-b")]
    assert held[0].expires_at == datetime.fromtimestamp(int((now + timedelta(seconds=900)).timestamp()), UTC)
    # get reads one, expired or not; an item that is no lease reads as none
    old = leases.get("i-old")
    assert old is not None and old.owner == "crashed" and not old.held(now)
    assert leases.get("budget#x") is None and leases.holder("budget#x") is None
    assert leases.get("i-none") is None
