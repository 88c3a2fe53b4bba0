"""One runbook per target at a time: a DynamoDB conditional write with an expiry.

An expired lease (a crashed execution that never released) can be taken over; ``expiresAt`` is
also the table's TTL attribute, so DynamoDB removes stale leases eventually.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from selfheal.errors import LeaseHeld, LeaseLost

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


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
        item = self._client.get_item(
            TableName=self._table, Key={"targetKey": {"S": target_key}}, ConsistentRead=True
        ).get("Item")
        return item["owner"]["S"] if item else None

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
