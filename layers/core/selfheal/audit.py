"""The audit trail: write-once rows in DynamoDB, one structured log line per row.

Keys: ``requestId`` (one remediation request) + ``sk`` (time#phase#step). ``sk`` is derived from
the Step Functions state's entered time and name, so a retried audit step rewrites the same key and
the conditional put turns the retry into a no-op instead of a duplicate row.
GSIs: ``byTarget`` (targetKey, at) answers "what happened to this resource"; ``byRunbook``
(runbook, at) feeds the budget guard.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from selfheal.chain import GENESIS, row_hash
from selfheal.models import Actor, Phase, iso, utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)


class AuditRow(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    request_id: str = Field(alias="requestId")
    sk: str = ""
    phase: Phase
    target_key: str = Field(alias="targetKey")
    runbook: str = "-"
    target: dict[str, Any] = Field(default_factory=dict)
    step: str | None = None
    action: str | None = None
    parameters: dict[str, Any] | None = None
    outcome: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    actor: Actor | None = None
    execution_arn: str | None = Field(default=None, alias="executionArn")
    # received rows: the digest of the input triage started the execution with (models.input_digest)
    input_digest: str | None = Field(default=None, alias="inputDigest")
    dry_run: bool = Field(default=False, alias="dryRun")
    # succeeded rows: seconds from the fault (or the request) to verified, and the objective held to
    time_to_heal: dict[str, Any] | None = Field(default=None, alias="timeToHeal")
    at: datetime = Field(default_factory=utcnow)

    @field_serializer("at")
    def _at_as_sortable_text(self, at: datetime) -> str:
        return iso(at)

    def with_key(self) -> AuditRow:
        if self.sk:
            return self
        return self.model_copy(update={"sk": f"{iso(self.at)}#{self.phase.value}#{self.step or '-'}"})

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON (for logs, notifications and the CLI)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# What a row may hold before its bulky fields are summarised (DynamoDB: 400 KB an item, 32 levels).
MAX_ROW_BYTES = 300_000
MAX_ROW_DEPTH = 24
_BULKY = ("before", "after", "parameters", "target", "error")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def fitted(body: dict[str, Any]) -> dict[str, Any]:
    """The row as DynamoDB can store it: a field too big or too deep is replaced by a note saying so,
    so a row is never lost to its own content."""
    if len(json.dumps(body, default=str)) <= MAX_ROW_BYTES and _depth(body) <= MAX_ROW_DEPTH:
        return body
    fitted_body = dict(body)
    for name in _BULKY:
        if name in fitted_body:
            size = len(json.dumps(fitted_body[name], default=str))
            fitted_body[name] = {"truncated": True, "bytes": size, "depth": _depth(fitted_body[name])}
    fitted_body["reason"] = str(fitted_body.get("reason") or "")[:2000]
    return fitted_body


def _to_attr(value: Any) -> dict[str, Any]:
    """Plain JSON -> DynamoDB attribute value (floats as numbers, nested maps kept browsable)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_to_attr(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): _to_attr(v) for k, v in value.items()}}
    return {"S": str(value)}


def _from_attr(attr: dict[str, Any]) -> Any:
    (kind, value), *_ = attr.items()
    if kind == "NULL":
        return None
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "L":
        return [_from_attr(v) for v in value]
    if kind == "M":
        return {k: _from_attr(v) for k, v in value.items()}
    return value  # S, BOOL


def item_to_json(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_attr(v) for k, v in item.items()}


class AuditTrail:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def write(self, row: AuditRow) -> bool:
        """Write once; True if this call wrote it. A second write of the same key keeps the first row.
        The row is chained (selfheal.chain) to the row before it in its remediation, or, the first of
        a remediation, to its target's newest row."""
        row = row.with_key()
        body = fitted(row.to_json())
        earlier = self._items(
            KeyConditionExpression="requestId = :r",
            ExpressionAttributeValues={":r": {"S": row.request_id}},
            ConsistentRead=True,
        )
        if any(r.get("sk") == row.sk for r in earlier):
            logger.info(
                "audit row already written (a retried step, a repeated delivery)", extra={"sk": row.sk}
            )
            return False
        body |= self._link(row, earlier)
        body["hash"] = row_hash(body)
        item = {k: _to_attr(v) for k, v in body.items()}
        logger.info("audit", extra={"audit": body})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(requestId)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            logger.info(
                "audit row already written (retried step or duplicate delivery)", extra={"sk": row.sk}
            )
            return False
        return True

    def _link(self, row: AuditRow, earlier: list[dict[str, Any]]) -> dict[str, Any]:
        chained = [r for r in earlier if "seq" in r and r.get("hash")]
        if chained:
            tip = max(chained, key=lambda r: int(r["seq"]))
            return {"seq": int(tip["seq"]) + 1, "prev": tip["hash"]}
        newest = self._items(
            IndexName="byTarget",
            KeyConditionExpression="targetKey = :t",
            ExpressionAttributeValues={":t": {"S": row.target_key}},
            ScanIndexForward=False,
            Limit=1,
            paged=False,
        )
        if newest and newest[0].get("hash"):
            return {"seq": 0, "prev": newest[0]["hash"], "prevRequestId": newest[0]["requestId"]}
        return {"seq": 0, "prev": GENESIS}

    def _items(self, *, paged: bool = True, **query: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self._table, **query}
        while True:
            page = self._client.query(**kwargs)
            items += [item_to_json(i) for i in page.get("Items", [])]
            if not paged or "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def for_target(self, target_key: str, since: datetime) -> list[AuditRow]:
        return self._query("byTarget", "targetKey", target_key, since)

    def for_runbook(self, runbook: str, since: datetime) -> list[AuditRow]:
        return self._query("byRunbook", "runbook", runbook, since)

    def for_request(self, request_id: str) -> list[AuditRow]:
        """Every row of one remediation, read consistently (the table, not an index): a row written a
        moment ago, by triage say, is there."""
        return self._paged_query(
            KeyConditionExpression="requestId = :r",
            ExpressionAttributeValues={":r": {"S": request_id}},
            ConsistentRead=True,
        )

    def _query(self, index: str, key: str, value: str, since: datetime) -> list[AuditRow]:
        return self._paged_query(
            IndexName=index,
            KeyConditionExpression="#k = :v AND #at >= :since",
            ExpressionAttributeNames={"#k": key, "#at": "at"},
            ExpressionAttributeValues={":v": {"S": value}, ":since": {"S": iso(since)}},
        )

    def _paged_query(self, **query: Any) -> list[AuditRow]:
        return [AuditRow.model_validate(item) for item in self._items(**query)]


def calls_made(rows: Iterable[AuditRow]) -> tuple[list[tuple[AuditRow | None, AuditRow]], list[AuditRow]]:
    """A run's calls from its rows: (intent, outcome) pairs in order (a would-do row is an outcome
    with no intent), and the intents no outcome followed. Calls are made one at a time, so an
    outcome row closes the oldest open intent of its action."""
    made: list[tuple[AuditRow | None, AuditRow]] = []
    waiting: list[AuditRow] = []
    for row in rows:
        if row.phase not in (Phase.ACTION, Phase.COMPENSATED, Phase.WOULD_DO):
            continue
        if row.outcome == "pending":
            waiting.append(row)
            continue
        intent = next((w for w in waiting if w.action == row.action), None)
        if intent is not None:
            waiting.remove(intent)
        made.append((intent, row))
    return made, waiting
