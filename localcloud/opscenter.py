"""Systems Manager OpsCenter (OpsItems), which moto 5.2.5 does not implement.

What AWS does (Systems Manager API reference: CreateOpsItem, DescribeOpsItems, GetOpsItem,
UpdateOpsItem; user guide, "Managing duplicate OpsItems"), as emulated here:

- ``CreateOpsItem`` needs Title (at most 1,024 characters), Description (at most 2,048) and Source
  (at most 128, and none of "aws", "amazon", "amzn" in it). OperationalData keys are at most 128
  characters and may not begin with amazon, aws, amzn, ssm (nor /amazon, /aws, /amzn, /ssm) but for
  the documented ``/aws/dedup``, ``/aws/resources`` and ``/aws/automations``; a value is at most
  20 KB. A new item is ``Open``; its id is ``oi-`` and 12 hex digits.
- Deduplication: ``/aws/dedup`` = ``{"dedupString": "..."}``. When an item with the same string is
  Open or InProgress, no item is created and that item's id is returned; once it is Resolved, the
  next create makes a new item.
- ``DescribeOpsItems``: filters are ANDed, the values of one filter ORed. Keys emulated: Source
  (Equal, Contains), Status (Equal), OpsItemId (Equal), Title (Equal, Contains), OperationalData
  (Equal, value ``{"key": ..., "value": ...}``), OperationalDataKey (Equal), OperationalDataValue
  (Equal, Contains). Only ``SearchableString`` operational data is searched and shown in summaries;
  the rest only ``GetOpsItem`` shows. Any other key is refused, so a test cannot rely on a filter
  this emulation would ignore.
- ``UpdateOpsItem`` changes Status (and Title, Description, Severity, Category, OperationalData);
  an unknown id is ``OpsItemNotFoundException``, as for ``GetOpsItem``.

Items live on moto's SSM backend (per account and region), so moto's reset forgets them.
Pinned to moto 5.2.5 with every patch (localcloud.patches).
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ssm.responses import SimpleSystemManagerResponse

from localcloud.patches import patch

OPEN_STATUSES = frozenset({"Open", "InProgress"})
MAX_TITLE, MAX_DESCRIPTION, MAX_SOURCE = 1024, 2048, 128
MAX_DATA_KEY, MAX_DATA_VALUE = 128, 20 * 1024
RESERVED_PREFIXES = ("amazon", "aws", "amzn", "ssm", "/amazon", "/aws", "/amzn", "/ssm")
DOCUMENTED_AWS_KEYS = frozenset({"/aws/dedup", "/aws/resources", "/aws/automations"})
DEDUP_KEY = "/aws/dedup"

_lock = threading.Lock()


class OpsItemInvalidParameterException(ServiceException):
    code = "OpsItemInvalidParameterException"


class OpsItemNotFoundException(ServiceException):
    code = "OpsItemNotFoundException"


def _items(backend: Any) -> dict[str, dict[str, Any]]:
    """The backend's OpsItems by id (an attribute of moto's backend: reset with it)."""
    found: dict[str, dict[str, Any]] = backend.__dict__.setdefault("_selfheal_ops_items", {})
    return found


def dedup_string(item: dict[str, Any]) -> str | None:
    raw = (item.get("OperationalData") or {}).get(DEDUP_KEY, {}).get("Value")
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return str(value["dedupString"]) if isinstance(value, dict) and "dedupString" in value else None


def _check(params: dict[str, Any]) -> None:
    """CreateOpsItem's limits (botocore checks only the minimum lengths client side)."""
    title, description, source = params.get("Title"), params.get("Description"), params.get("Source")
    problems = []
    if not title or len(title) > MAX_TITLE:
        problems.append(f"Title must be 1 to {MAX_TITLE} characters")
    if not description or len(description) > MAX_DESCRIPTION:
        problems.append(f"Description must be 1 to {MAX_DESCRIPTION} characters")
    if not source or len(source) > MAX_SOURCE or any(w in source.lower() for w in ("aws", "amazon", "amzn")):
        problems.append(f"Source must be 1 to {MAX_SOURCE} characters without aws, amazon or amzn")
    problems += _data_problems(params.get("OperationalData") or {})
    if problems:
        raise OpsItemInvalidParameterException("; ".join(problems))


def _data_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in data.items():
        if len(key) > MAX_DATA_KEY:
            problems.append(f"OperationalData key {key[:40]}... is over {MAX_DATA_KEY} characters")
        if key.lower().startswith(RESERVED_PREFIXES) and key not in DOCUMENTED_AWS_KEYS:
            problems.append(f"OperationalData key {key!r} begins with a reserved prefix")
        if len(str(value.get("Value", "")).encode()) > MAX_DATA_VALUE:
            problems.append(f"OperationalData value of {key!r} is over 20 KB")
        if value.get("Type", "String") not in ("String", "SearchableString"):
            problems.append(f"OperationalData type of {key!r} must be String or SearchableString")
    return problems


def create(backend: Any, params: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(the item, whether it is new): an open item with the same dedup string is returned instead."""
    _check(params)
    items = _items(backend)
    with _lock:
        wanted = dedup_string(params)
        if wanted is not None:
            for item in items.values():
                if item["Status"] in OPEN_STATUSES and dedup_string(item) == wanted:
                    return item, False
        ops_item_id = f"oi-{uuid.uuid4().hex[:12]}"
        now = utcnow()
        who = f"arn:aws:iam::{backend.account_id}:root"
        item = {
            "OpsItemId": ops_item_id,
            "OpsItemArn": f"arn:aws:ssm:{backend.region_name}:{backend.account_id}:opsitem/{ops_item_id}",
            "OpsItemType": params.get("OpsItemType") or "/aws/issue",
            "Title": params["Title"],
            "Description": params["Description"],
            "Source": params["Source"],
            "Status": "Open",
            "Version": "1",
            "CreatedBy": who,
            "LastModifiedBy": who,
            "CreatedTime": now,
            "LastModifiedTime": now,
            "OperationalData": dict(params.get("OperationalData") or {}),
            **{k: params[k] for k in ("Severity", "Category", "Priority", "Notifications") if k in params},
        }
        item["_tags"] = list(params.get("Tags") or [])
        items[ops_item_id] = item
        return item, True


def _get(backend: Any, ops_item_id: str) -> dict[str, Any]:
    item = _items(backend).get(ops_item_id)
    if item is None:
        raise OpsItemNotFoundException(f"OpsItem {ops_item_id} not found")
    return item


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not k.startswith("_")}


def _searchable(item: dict[str, Any]) -> dict[str, Any]:
    data = item.get("OperationalData") or {}
    return {k: v for k, v in data.items() if v.get("Type") == "SearchableString"}


# The filters emulated: key -> the operators it takes.
FILTERS = {
    "Source": {"Equal", "Contains"},
    "Title": {"Equal", "Contains"},
    "Status": {"Equal"},
    "OpsItemId": {"Equal"},
    "OperationalData": {"Equal"},
    "OperationalDataKey": {"Equal"},
    "OperationalDataValue": {"Equal", "Contains"},
}


def _matches_one(item: dict[str, Any], key: str, operator: str, value: str) -> bool:
    searchable = _searchable(item)
    if key in ("Source", "Title"):
        field = str(item.get(key, ""))
        return field == value if operator == "Equal" else value in field
    if key in ("Status", "OpsItemId") and operator == "Equal":
        return str(item.get(key)) == value
    if key == "OperationalData" and operator == "Equal":
        wanted = json.loads(value)
        found = searchable.get(wanted.get("key"))
        return found is not None and found.get("Value") == wanted.get("value")
    if key == "OperationalDataKey" and operator == "Equal":
        return value in searchable
    values = [str(v.get("Value", "")) for v in searchable.values()]  # OperationalDataValue
    return value in values if operator == "Equal" else any(value in v for v in values)


def describe(backend: Any, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The summaries of the items every filter matches (one of its values), newest first."""
    for f in filters:
        if f.get("Operator", "Equal") not in FILTERS.get(f["Key"], set()):
            raise OpsItemInvalidParameterException(
                f"the local cloud does not emulate the filter {f['Key']} {f.get('Operator')}"
                " (see localcloud.opscenter)"
            )
    found = [
        item
        for item in _items(backend).values()
        if all(
            any(_matches_one(item, f["Key"], f.get("Operator", "Equal"), v) for v in f.get("Values", []))
            for f in filters
        )
    ]
    found.sort(key=lambda i: i["CreatedTime"], reverse=True)
    summary_keys = (
        "OpsItemId",
        "Title",
        "Source",
        "Status",
        "CreatedBy",
        "CreatedTime",
        "LastModifiedBy",
        "LastModifiedTime",
        "Severity",
        "Category",
        "Priority",
        "OpsItemType",
    )
    return [
        {**{k: item[k] for k in summary_keys if k in item}, "OperationalData": _searchable(item)}
        for item in found
    ]


def update(backend: Any, params: dict[str, Any]) -> None:
    item = _get(backend, params["OpsItemId"])
    problems = _data_problems(params.get("OperationalData") or {})
    if problems:
        raise OpsItemInvalidParameterException("; ".join(problems))
    with _lock:
        for key in ("Status", "Title", "Description", "Severity", "Category", "Priority"):
            if key in params:
                item[key] = params[key]
        item["OperationalData"].update(params.get("OperationalData") or {})
        for key in params.get("OperationalDataToDelete") or []:
            item["OperationalData"].pop(key, None)
        item["LastModifiedTime"] = utcnow()
        item["Version"] = str(int(item["Version"]) + 1)


def _body(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.body or "{}")
    return body


@patch("ssm-opscenter")
def patch_opscenter() -> None:
    """moto's SSM has no OpsCenter: CreateOpsItem (with /aws/dedup deduplication), DescribeOpsItems
    (the filters selfheal uses and a few more), GetOpsItem and UpdateOpsItem."""
    response_cls: Any = SimpleSystemManagerResponse

    def create_ops_item(self: Any) -> ActionResult:
        item, _new = create(self.ssm_backend, _body(self))
        return ActionResult({"OpsItemId": item["OpsItemId"], "OpsItemArn": item["OpsItemArn"]})

    def describe_ops_items(self: Any) -> ActionResult:
        filters = self._get_param("OpsItemFilters") or []
        summaries = describe(self.ssm_backend, filters)
        limit = int(self._get_param("MaxResults") or 50)
        start = int(self._get_param("NextToken") or 0)
        page = summaries[start : start + limit]
        result: dict[str, Any] = {"OpsItemSummaries": page}
        if start + limit < len(summaries):
            result["NextToken"] = str(start + limit)
        return ActionResult(result)

    def get_ops_item(self: Any) -> ActionResult:
        return ActionResult({"OpsItem": _public(_get(self.ssm_backend, self._get_param("OpsItemId")))})

    def update_ops_item(self: Any) -> ActionResult:
        update(self.ssm_backend, _body(self))
        return ActionResult({})

    response_cls.create_ops_item = create_ops_item
    response_cls.describe_ops_items = describe_ops_items
    response_cls.get_ops_item = get_ops_item
    response_cls.update_ops_item = update_ops_item
