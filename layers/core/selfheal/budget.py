"""Budgets taken atomically, right before a run's first mutating call (the intent step).

The guards' budget counts audit rows read back through an index: eventually consistent, and read by
every run of a burst at the same moment, so fifty runs all see room for one more. These are
conditional writes to the lease table instead: DynamoDB lets exactly ``limit`` of them through.

- **Hourly budget, per runbook**: a set of the runs that acted, per clock hour. The previous hour's
  runs count for the part of it still inside the last 60 minutes (a sliding-window estimate), so a
  burst across an hour boundary cannot take twice the budget.
- **Runs acting at once, for the whole account**: a set of execution ARNs, at most
  ``MaxConcurrentActions``. A run leaves it when it finishes; when the set is full, members whose
  executions no longer run (stopped, timed out, crashed before finishing) are cleared out first.
- **Escalate once**: the first run stopped by a budget in a window escalates; the rest say why in
  their rows and notifications, without paging anyone again.

A run takes each once: taking again what it already holds is a no-op, so every intent step of a run
(a redrive makes several calls) may ask.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from selfheal.errors import BudgetExhausted, TooManyActionsAtOnce

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

HOUR = timedelta(hours=1)
IN_FLIGHT_KEY = "budget#actions-in-flight"
# Buckets outlive the window they count in (DynamoDB's TTL removes them afterwards).
BUCKET_TTL = timedelta(hours=3)


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _bucket_key(runbook: str, hour: datetime) -> str:
    return f"budget#{runbook}#{hour.strftime('%Y-%m-%dT%H')}"


class Budgets:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def _members(self, key: str) -> set[str]:
        item = self._client.get_item(
            TableName=self._table, Key={"targetKey": {"S": key}}, ConsistentRead=True
        ).get("Item")
        return set(item["runs"]["SS"]) if item and "runs" in item else set()

    def _join(self, key: str, member: str, limit: int, expires: datetime) -> bool:
        """Add ``member`` to the set at ``key`` if it has fewer than ``limit`` members or holds it
        already; False when full."""
        if limit <= 0:
            return member in self._members(key)
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"targetKey": {"S": key}},
                UpdateExpression="ADD runs :me SET expiresAt = :exp",
                ConditionExpression=(
                    "attribute_not_exists(runs) OR size(runs) < :limit OR contains(runs, :one)"
                ),
                ExpressionAttributeValues={
                    ":me": {"SS": [member]},
                    ":one": {"S": member},
                    ":limit": {"N": str(limit)},
                    ":exp": {"N": str(int(expires.timestamp()))},
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _previous_hour(self, runbook: str, now: datetime) -> tuple[set[str], int]:
        """The runs counted in the previous clock hour, and how many of them still count now."""
        counted_before = self._members(_bucket_key(runbook, _hour(now) - HOUR))
        still_in_window = 1 - (now - _hour(now)) / HOUR  # how much of the previous hour the window covers
        return counted_before, math.ceil(len(counted_before) * still_in_window)

    def hourly_used(self, runbook: str, now: datetime) -> int:
        """How much of the runbook's hourly budget the last 60 minutes used, as ``take_hourly`` counts
        it (for people looking: a run takes its share with ``take_hourly``, never by reading this)."""
        _, carried = self._previous_hour(runbook, now)
        return carried + len(self._members(_bucket_key(runbook, _hour(now))))

    def take_hourly(self, runbook: str, request_id: str, limit: int, now: datetime) -> None:
        """Count this run against the runbook's hourly budget, or raise ``BudgetExhausted``."""
        hour = _hour(now)
        counted_before, carried = self._previous_hour(runbook, now)
        if request_id in counted_before:
            return  # a run that acted last hour and acts again now (its next call) counts once
        room = limit - carried
        key = _bucket_key(runbook, hour)
        if not self._join(key, request_id, room, hour + BUCKET_TTL):
            taken = len(self._members(key))
            raise BudgetExhausted(
                f"{runbook} budget exhausted: {taken + carried} runs acted in the last hour"
                f" (limit {limit}, BudgetPerHour); breaker open, not acting",
                runbook=runbook,
                limit=limit,
            )

    def take_in_flight(
        self, execution_arn: str, limit: int, now: datetime, running: Callable[[str], bool]
    ) -> None:
        """Join the runs acting now (account-wide), or raise ``TooManyActionsAtOnce``. ``running``
        tells whether an execution still runs; members that do not are cleared when the set is full."""
        expires = now + BUCKET_TTL
        if self._join(IN_FLIGHT_KEY, execution_arn, limit, expires):
            return
        ended = [arn for arn in self._members(IN_FLIGHT_KEY) if not running(arn)]
        for arn in ended:
            self.leave_in_flight(arn)
        if ended and self._join(IN_FLIGHT_KEY, execution_arn, limit, expires):
            return
        raise TooManyActionsAtOnce(
            f"{limit} runs are acting at once already (MaxConcurrentActions): not acting now",
            limit=limit,
        )

    def in_flight(self) -> set[str]:
        """The executions counted among the runs acting at once now (some may have ended since)."""
        return self._members(IN_FLIGHT_KEY)

    def leave_in_flight(self, execution_arn: str) -> None:
        self._client.update_item(
            TableName=self._table,
            Key={"targetKey": {"S": IN_FLIGHT_KEY}},
            UpdateExpression="DELETE runs :me",
            ExpressionAttributeValues={":me": {"SS": [execution_arn]}},
        )

    def first_escalation(self, what: str, now: datetime) -> bool:
        """True for the first caller in this hour for ``what`` (e.g. "remap-eip#budget"): it pages;
        the others only record."""
        hour = _hour(now)
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "targetKey": {"S": f"escalated#{what}#{hour.strftime('%Y-%m-%dT%H')}"},
                    "expiresAt": {"N": str(int((hour + BUCKET_TTL).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(targetKey)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
