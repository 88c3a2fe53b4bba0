"""The frame every runbook shares, seen from the console: the same rejection and the same failure,
with a named error and a cause a person can read, in all five runbooks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from selfheal.runbooks import RUNBOOKS
from tests.events import load_event

# A target of the right form that does not exist, per runbook.
MISSING_TARGETS = {
    "remap-eip": {"allocationId": "eipalloc-0000000000000dead"},
    "replace-instance": {"instanceId": "i-0000000000000dead"},
    "promote-replica": {"dbClusterIdentifier": "no-such-cluster"},
    "redrive-dlq": {"queueName": "no-such-queue"},
    "flip-dns": {"healthCheckId": "00000000-0000-0000-0000-00000000dead"},
}


def readable(cause: str | None) -> bool:
    """A sentence, not a Lambda error's JSON (errorMessage, errorType, stackTrace)."""
    return bool(cause) and not cause.lstrip().startswith("{") and "stackTrace" not in cause  # type: ignore[union-attr]


def rows_of(cloud: DeployedCloud, request_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in ops.scan_audit(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])
        if r["requestId"] == request_id
    ]


def test_every_runbook_has_a_missing_target_here() -> None:
    assert set(MISSING_TARGETS) == set(RUNBOOKS)


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_invalid_console_input_is_rejected_the_same_way_in_every_runbook(cloud, runbook):
    # Given the runbook's own console example, without its reason
    body = copy.deepcopy(load_event(f"runbooks/{runbook}"))
    del body["reason"]
    # When started from the console
    result = cloud.start_and_wait(runbook, body)
    # Then it fails at once with InvalidInput, a cause naming the field, and a rejected row
    assert (result.status, result.error) == ("FAILED", "InvalidInput")
    assert readable(result.cause) and "reason" in (result.cause or ""), result.cause
    assert [r["phase"] for r in rows_of(cloud, result.name)] == ["rejected"]


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_a_failed_run_shows_its_named_error_and_a_readable_cause_in_every_runbook(cloud, runbook):
    # Given a target that does not exist
    body = {"target": MISSING_TARGETS[runbook], "reason": "e2e: a target that does not exist"}
    # When started
    result = cloud.start_and_wait(runbook, body)
    # Then it fails with UnknownResource and the message, audited as failed, the lease released
    assert (result.status, result.error) == ("FAILED", "UnknownResource"), (result.error, result.cause)
    assert readable(result.cause), result.cause
    rows = rows_of(cloud, result.name)
    assert [r["phase"] for r in rows] == ["failed"]
    assert rows[0]["error"]["error"] == "UnknownResource" and rows[0]["reason"] == result.cause
    leases = cloud.client("dynamodb").scan(TableName=cloud.stack.outputs["LeaseTableName"])["Items"]
    assert not [item for item in leases if item.get("owner", {}).get("S") == result.name]


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_a_console_input_that_is_no_json_object_is_rejected_in_every_runbook(cloud, runbook):
    result = cloud.start_and_wait(runbook, [{"target": {}, "reason": "a list, not an object"}])
    assert (result.status, result.error) == ("FAILED", "InvalidInput"), (result.error, result.cause)
    assert readable(result.cause), result.cause
    assert [r["phase"] for r in rows_of(cloud, result.name)] == ["rejected"]


@pytest.mark.parametrize(
    "target,needle",
    [
        ({"instanceId": "i-" + "a" * 20_000}, "bytes"),
        (
            {"instanceId": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": "deep"}}}}}}}}}}},
            "nested",
        ),
    ],
    ids=["oversized", "deeply-nested"],
)
def test_an_oversized_or_deeply_nested_input_is_rejected_with_its_row(cloud, target, needle):
    result = cloud.start_and_wait("replace-instance", {"target": target, "reason": "hostile input"})
    assert (result.status, result.error) == ("FAILED", "InvalidInput"), (result.error, result.cause)
    assert needle in (result.cause or "")
    (rejected,) = rows_of(cloud, result.name)
    assert rejected["phase"] == "rejected" and needle in rejected["reason"] and rejected["target"] == {}
