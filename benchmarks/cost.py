"""What one remediation costs at list prices (benchmarks/prices.py), from what the local cloud recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from benchmarks import prices


@dataclass(frozen=True)
class Invocation:
    function: str
    memory_mb: int
    billed_ms: int


@dataclass
class Usage:
    """What one remediation consumed of everything that is billed per use."""

    transitions: int = 0
    invocations: list[Invocation] = field(default_factory=list)
    dynamodb_wru: float = 0.0
    dynamodb_rru: float = 0.0
    sns_publishes: int = 0
    eventbridge_custom_events: int = 0
    xray_traces: int = 0

    @property
    def lambda_gb_seconds(self) -> float:
        return sum(i.memory_mb / 1024 * i.billed_ms / 1000 for i in self.invocations)


def cost_per_1000(usage: Usage, email_subscribers: int = 0) -> dict[str, float]:
    """USD per 1,000 remediations, per line item and in total."""
    p = prices
    lines = {
        "stepfunctions_transitions": usage.transitions * p.STEP_FUNCTIONS_STANDARD_TRANSITION.unit_price,
        "lambda_requests": len(usage.invocations) * p.LAMBDA_REQUEST.unit_price,
        "lambda_duration": usage.lambda_gb_seconds * p.LAMBDA_ARM64_GB_SECOND.unit_price,
        "dynamodb_writes": usage.dynamodb_wru * p.DYNAMODB_WRITE_REQUEST_UNIT.unit_price,
        "dynamodb_reads": usage.dynamodb_rru * p.DYNAMODB_READ_REQUEST_UNIT.unit_price,
        "sns_publish": usage.sns_publishes * p.SNS_PUBLISH.unit_price,
        "sns_email": usage.sns_publishes * email_subscribers * p.SNS_EMAIL_DELIVERY.unit_price,
        "eventbridge_events": usage.eventbridge_custom_events * p.EVENTBRIDGE_CUSTOM_EVENT.unit_price,
        "xray_traces": usage.xray_traces * p.XRAY_TRACE_RECORDED.unit_price,
    }
    per_1000 = {name: value * 1000 for name, value in lines.items()}
    per_1000["total"] = sum(per_1000.values())
    return per_1000


def billed_ms(duration_ms: float, aws_calls: int, call_ms: float = prices.ASSUMED_AWS_CALL_MS) -> int:
    """Lambda bills in 1 ms steps: local compute time plus an assumed round trip per AWS call."""
    return max(1, math.ceil(duration_ms + aws_calls * call_ms))


# ------------------------------------------------------------------------------ DynamoDB capacity units


def attribute_size(value: Any) -> int:
    """Bytes of one DynamoDB attribute value ({"S": ...}), after the item-size rules in the DynamoDB
    developer guide: strings and binaries by length, numbers ~1 byte per 2 digits + 1, maps and lists
    3 bytes + 1 per element + their contents."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else math.ceil(len(str(inner)) * 3 / 4)
    if kind == "N":
        return math.ceil(len(str(inner).lstrip("-").replace(".", "")) / 2) + 1
    if kind in {"BOOL", "NULL"}:
        return 1
    if kind in {"SS", "NS", "BS"}:
        return sum(attribute_size({kind[0]: v}) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(attribute_size(v) + 1 for v in inner)
    return len(str(inner))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(item: dict[str, Any], index_keys: list[frozenset[str]]) -> int:
    """WRUs of one PutItem: 1 per KB for the table, and again for every GSI (projection ALL) the item
    appears in (it has all of that index's key attributes)."""
    units = max(1, math.ceil(item_size(item) / 1024))
    copies = 1 + sum(1 for keys in index_keys if keys.issubset(item))
    return units * copies


def dynamodb_units(
    requests: list[tuple[str, dict[str, Any]]], indexes: dict[str, list[frozenset[str]]]
) -> tuple[float, float]:
    """(WRU, RRU) of recorded DynamoDB requests; ``indexes`` maps table name -> GSI key attributes.

    Reads are counted at their floor (a Query or eventually consistent GetItem under 4 KB = 0.5 RRU):
    the request does not say how much it read. Deletes of small items = 1 WRU (+ their index copies).
    """
    wru = rru = 0.0
    for operation, params in requests:
        table_indexes = indexes.get(str(params.get("TableName", "")), [])
        if operation == "PutItem":
            wru += write_units(params.get("Item", {}), table_indexes)
        elif operation in {"DeleteItem", "UpdateItem"}:
            wru += 1 + len(table_indexes)
        elif operation in {"Query", "Scan"}:
            rru += 0.5
        elif operation == "GetItem":
            rru += 1.0 if params.get("ConsistentRead") else 0.5
    return wru, rru
