"""Escalations as AWS Systems Manager OpsCenter OpsItems, and the pause they hold.

One open OpsItem per target and runbook: AWS deduplicates CreateOpsItem by the ``/aws/dedup``
operational data (an Open or InProgress item with the same dedup string is not created again), so a
second escalation for the same target and runbook lands on the item a human already has. While it
is open, the guards skip runs for that target and runbook (found by the searchable
``selfheal:target`` operational data); resolving it re-arms them.

``item_request`` is pure (the report in, CreateOpsItem's parameters out); ``create`` and
``open_item`` are the adapter (the SSM client passed in).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from selfheal.notify import EVENT_SOURCE, Outcome, Report, email_body

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

SOURCE = EVENT_SOURCE
TARGET_KEY = "selfheal:target"  # searchable: "<runbook>#<targetKey>", what the pause guard looks up
STACK_TAG = "selfheal:stack"  # the tag IAM requires on every OpsItem the stack creates
OPEN_STATUSES = ("Open", "InProgress")
# CreateOpsItem's limits: Title 1,024 characters, Description 2,048, an operational data value 20 KB.
MAX_TITLE, MAX_DESCRIPTION, MAX_VALUE_BYTES = 1024, 2048, 20 * 1024
_CUT = "\n... (cut: the whole report is the operational data selfheal:report)\n```"
# OpsCenter's severities are 1 (critical) to 4 (low): a failed run may have left the target
# half-way; a skip that needs a human (cooldown, loop, breaker, fence...) changed nothing.
SEVERITY = {Outcome.FAILED: "2"}
DEFAULT_SEVERITY = "3"
CATEGORY = "Availability"


def target_value(runbook: str, target_key: str) -> str:
    return f"{runbook}#{target_key}"


def dedup_string(runbook: str, target_key: str) -> str:
    return f"selfheal#{runbook}#{target_key}"


def _fit_bytes(text: str, limit: int) -> str:
    raw = text.encode()
    return text if len(raw) <= limit else raw[: limit - 3].decode(errors="ignore") + "..."


def item_request(report: Report, *, stack_name: str) -> dict[str, Any]:
    """CreateOpsItem's parameters for one escalation: the e-mail's evidence as the description
    (a code block, within 2,048 characters; the whole of it as operational data), the execution,
    the request id, the audit command and the dedup key."""
    row = report.row
    body = email_body(report)
    description = f"```\n{body}\n```"
    if len(description) > MAX_DESCRIPTION:
        description = description[: MAX_DESCRIPTION - len(_CUT)] + _CUT
    data: dict[str, dict[str, str]] = {
        "/aws/dedup": {
            "Type": "SearchableString",
            "Value": json.dumps({"dedupString": dedup_string(row.runbook, row.target_key)}),
        },
        TARGET_KEY: {"Type": "SearchableString", "Value": target_value(row.runbook, row.target_key)},
        "selfheal:runbook": {"Type": "SearchableString", "Value": row.runbook},
        "selfheal:requestId": {"Type": "SearchableString", "Value": row.request_id},
        "selfheal:audit": {"Type": "String", "Value": f"selfheal audit --target {row.target_key}"},
        "selfheal:reArm": {
            "Type": "String",
            "Value": f"{row.runbook} on {row.target_key} is paused while this OpsItem is open:"
            " set its status to Resolved to re-arm it",
        },
        "selfheal:report": {"Type": "String", "Value": _fit_bytes(body, MAX_VALUE_BYTES)},
    }
    if row.execution_arn:
        data["selfheal:execution"] = {"Type": "String", "Value": row.execution_arn}
        resources = json.dumps([{"arn": row.execution_arn}])
        data["/aws/resources"] = {"Type": "SearchableString", "Value": resources}
    return {
        "Title": f"selfheal {report.title()}"[:MAX_TITLE],
        "Description": description,
        "Source": SOURCE,
        "Severity": SEVERITY.get(report.outcome, DEFAULT_SEVERITY),
        "Category": CATEGORY,
        "OperationalData": data,
        "Tags": [{"Key": STACK_TAG, "Value": stack_name}],
    }


def create(ssm: SSMClient, params: dict[str, Any]) -> str:
    """The OpsItem's id: the new one, or the open one AWS deduplicated this escalation into."""
    try:
        return str(ssm.create_ops_item(**params)["OpsItemId"])
    except ssm.exceptions.OpsItemAlreadyExistsException as exc:
        existing = exc.response.get("OpsItemId") or exc.response.get("Error", {}).get("OpsItemId")
        if existing:
            return str(existing)
        raise


def open_item(ssm: SSMClient, runbook: str, target_key: str) -> str | None:
    """The id of an Open or InProgress OpsItem of selfheal's for this target and runbook, if any."""
    filters: Any = [
        {"Key": "Source", "Values": [SOURCE], "Operator": "Equal"},
        {"Key": "Status", "Values": list(OPEN_STATUSES), "Operator": "Equal"},
        {
            "Key": "OperationalData",
            "Values": [json.dumps({"key": TARGET_KEY, "value": target_value(runbook, target_key)})],
            "Operator": "Equal",
        },
    ]
    kwargs: dict[str, Any] = {"OpsItemFilters": filters, "MaxResults": 10}
    while True:
        page = ssm.describe_ops_items(**kwargs)
        for summary in page.get("OpsItemSummaries", []):
            if summary.get("OpsItemId"):
                return str(summary["OpsItemId"])
        if not page.get("NextToken"):
            return None
        kwargs["NextToken"] = page["NextToken"]
