"""One runbook per target at a time: a DynamoDB conditional write with an expiry.

An expired lease (a crashed execution that never released) can be taken over; ``expiresAt`` is
also the table's TTL attribute, so DynamoDB removes stale leases eventually.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from selfheal.errors import LeaseHeld, LeaseLost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Lease:
    target_key: str
    owner: str  # the request id (execution name) of the run that took it
    expires_at: datetime

    def held(self, now: datetime) -> bool:
        """Still held at ``now``: an expired lease is anybody's to take over."""
        return self.expires_at >= now


def _lease(item: dict[str, Any]) -> Lease | None:
    """The item as a lease; None for the table's other items (budgets, approvals), which have no owner."""
    if "owner" not in item or "expiresAt" not in item:
        return None
    return Lease(
        target_key=item["targetKey"]["S"],
        owner=item["owner"]["S"],
        expires_at=datetime.fromtimestamp(int(item["expiresAt"]["N"]), UTC),
    )


class LeaseStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def acquire(self, target_key: str, owner: str, now: datetime, seconds: int) -> None:
        """Take the lease, or raise ``LeaseHeld`` naming the holder. Re-acquiring your own lease is fine."""
        expires = int((now + timedelta(seconds=seconds)).timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "targetKey": {"S": target_key},
                    "owner": {"S": owner},
                    "expiresAt": {"N": str(expires)},
                },
                ConditionExpression="attribute_not_exists(targetKey) OR expiresAt < :now OR #o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}, ":me": {"S": owner}},
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            holder = self.holder(target_key)
            raise LeaseHeld(f"another execution holds the lease on {target_key}", holder=holder) from exc

    def renew(self, target_key: str, owner: str, now: datetime, seconds: int) -> None:
        """Extend our lease to ``now + seconds``; ``LeaseLost`` when another execution holds it."""
        try:
            self.acquire(target_key, owner, now, seconds)
        except LeaseHeld as held:
            raise LeaseLost(
                f"the lease on {target_key} was taken over by {held.details.get('holder')}: stopping",
                holder=held.details.get("holder"),
            ) from held

    def holder(self, target_key: str) -> str | None:
        lease = self.get(target_key)
        return lease.owner if lease else None

    def get(self, target_key: str) -> Lease | None:
        """The lease on ``target_key`` as stored (expired or not), read consistently."""
        item = self._client.get_item(
            TableName=self._table, Key={"targetKey": {"S": target_key}}, ConsistentRead=True
        ).get("Item")
        return _lease(item) if item else None

    def held(self, now: datetime) -> list[Lease]:
        """Every lease still held at ``now`` (targets and concurrency slots), by target. A scan: for
        people looking (``selfheal status``), never for a run deciding anything."""
        leases: list[Lease] = []
        for page in self._client.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="attribute_exists(#o) AND expiresAt >= :now",
            ExpressionAttributeNames={"#o": "owner"},
            ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
        ):
            leases += [lease for item in page.get("Items", []) if (lease := _lease(item))]
        return sorted(leases, key=lambda lease: lease.target_key)

    def release(self, target_key: str, owner: str) -> bool:
        """Release only our own lease; False when it was not ours (expired and taken over)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"targetKey": {"S": target_key}},
                ConditionExpression="#o = :me",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":me": {"S": owner}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
