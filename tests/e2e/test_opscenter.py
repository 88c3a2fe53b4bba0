"""Escalations as OpsCenter OpsItems (EscalateToOpsCenter=true) on the local cloud: a failed run
opens one OpsItem for its target and runbook; while it is open, runs for that target and runbook are
skipped, saying so, and change nothing (another target is not paused); resolving it re-arms them.
The escalation is audited before and after; an OpsItem that cannot be created fails nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from localcloud import ops
from localcloud.faults import terminal
from localcloud.harness import DeployedCloud
from tests.e2e import test_remap_eip as remap_world


@pytest.fixture
def opscenter(cloud: DeployedCloud, steps_env: Any) -> Iterator[Any]:
    """The stack with EscalateToOpsCenter=true (and no cooldown: a re-armed target may act at once,
    where the stack's default would hold it 10 minutes after the failed run), and its OpsCenter."""
    steps_env(ESCALATE_TO_OPSCENTER="true", COOLDOWN_SECONDS="0")
    yield cloud.client("ssm")


def open_items(ssm: Any, target: str) -> list[dict[str, Any]]:
    return ssm.describe_ops_items(
        OpsItemFilters=[
            {"Key": "Source", "Values": ["selfheal"], "Operator": "Equal"},
            {"Key": "Status", "Values": ["Open", "InProgress"], "Operator": "Equal"},
            {
                "Key": "OperationalData",
                "Values": [json.dumps({"key": "selfheal:target", "value": f"remap-eip#{target}"})],
                "Operator": "Equal",
            },
        ]
    )["OpsItemSummaries"]


def rows_of(cloud: DeployedCloud, request_id: str) -> list[dict[str, Any]]:
    return ops.audit_for_request(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], request_id)


def fail_a_run(cloud: DeployedCloud, pair: remap_world.Pair) -> ops.ExecutionResult:
    cloud.client("ec2").stop_instances(InstanceIds=[pair.standby])
    failed = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert failed.status == "FAILED" and failed.error == "PreconditionFailed", failed
    cloud.client("ec2").start_instances(InstanceIds=[pair.standby])  # healable again
    return failed


def test_a_failure_opens_one_opsitem_which_pauses_its_target_until_it_is_resolved(
    cloud, opscenter, outcome_inbox
):
    pair, other = remap_world.make_pair(cloud), remap_world.make_pair(cloud)
    # Given a run that failed: one OpsItem, with the evidence, the execution and how to audit it
    failed = fail_a_run(cloud, pair)
    (summary,) = open_items(opscenter, pair.primary)
    item = opscenter.get_ops_item(OpsItemId=summary["OpsItemId"])["OpsItem"]
    assert item["Title"] == f"selfheal FAILED: remap-eip {pair.primary}" and item["Source"] == "selfheal"
    data = {k: v["Value"] for k, v in item["OperationalData"].items()}
    assert json.loads(data["/aws/dedup"]) == {"dedupString": f"selfheal#remap-eip#{pair.primary}"}
    assert data["selfheal:execution"] == failed.arn and data["selfheal:requestId"] == failed.name
    assert data["selfheal:audit"] == f"selfheal audit --target {pair.primary}"
    assert "PreconditionFailed" in item["Description"] and "is stopped" in item["Description"]
    # ... audited before and after, after the run's failed row
    escalated = [r for r in rows_of(cloud, failed.name) if r["phase"] == "escalated"]
    assert [(r["action"], r["outcome"]) for r in escalated] == [
        ("ssm:CreateOpsItem", "pending"),
        ("ssm:CreateOpsItem", "ok"),
    ]
    assert escalated[1]["after"] == {"opsItemId": item["OpsItemId"]}
    assert escalated[0]["parameters"]["dedupString"] == f"selfheal#remap-eip#{pair.primary}"
    # ... and the e-mail names it (and the pause), as the outcome event does
    messages = outcome_inbox()
    (note,) = [m for m in messages if m.get("Type") == "Notification" and pair.primary in m["Subject"]]
    words = " ".join(note["Message"].split())
    assert f"OpsItem {item['OpsItemId']} is open in OpsCenter: remap-eip on this target is paused" in words
    (event,) = [m for m in messages if m.get("detail", {}).get("requestId") == failed.name]
    assert event["detail"]["opsItemId"] == item["OpsItemId"]

    # When a run for the same target and runbook comes while it is open: skipped, saying so
    paused = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert paused.output["outcome"] == "skipped" and paused.output["escalated"] is False, paused.output
    assert paused.output["reason"] == f"paused: OpsItem {item['OpsItemId']} is open; resolve it to re-arm"
    assert pair.holder(cloud) == pair.primary  # changed nothing
    phases = [r["phase"] for r in rows_of(cloud, paused.name)]
    assert "started" not in phases and "action" not in phases and "escalated" not in phases, phases
    assert [s["OpsItemId"] for s in open_items(opscenter, pair.primary)] == [item["OpsItemId"]]

    # ... while another target of the same runbook is not paused
    healed = cloud.start_and_wait("remap-eip", remap_world.manual_input(other))
    assert healed.output["outcome"] == "healed", healed.output
    assert other.holder(cloud) == other.standby

    # Then, once the OpsItem is resolved, the next run acts (re-armed)
    opscenter.update_ops_item(OpsItemId=item["OpsItemId"], Status="Resolved")
    rearmed = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert rearmed.output["outcome"] == "healed", rearmed.output
    assert pair.holder(cloud) == pair.standby
    assert open_items(opscenter, pair.primary) == []


def test_a_second_escalation_while_the_opsitem_is_open_lands_on_it(cloud, opscenter, faults):
    pair = remap_world.make_pair(cloud)
    fail_a_run(cloud, pair)
    (first,) = open_items(opscenter, pair.primary)
    # When OpsCenter cannot be read, the guard cannot see the pause: the run is held and escalated
    # (a pause nobody can see is not run through), and the escalation is deduplicated by AWS
    faults.add(terminal("ssm", "DescribeOpsItems"))
    held = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert held.output["outcome"] == "skipped" and held.output["escalated"] is True, held.output
    assert held.output["reason"].startswith("pause unknown: ssm:DescribeOpsItems failed (ClientError")
    assert held.output["opsItemId"] == first["OpsItemId"]
    assert pair.holder(cloud) == pair.primary
    assert [s["OpsItemId"] for s in open_items(opscenter, pair.primary)] == [first["OpsItemId"]]


def test_an_opsitem_that_cannot_be_created_fails_nothing_and_says_so(cloud, opscenter, faults):
    pair = remap_world.make_pair(cloud)
    faults.add(terminal("ssm", "CreateOpsItem"))
    failed = fail_a_run(cloud, pair)  # its named error, not the OpsItem's
    escalated = [r for r in rows_of(cloud, failed.name) if r["phase"] == "escalated"]
    assert [r["outcome"] for r in escalated] == ["pending", "error"]
    assert (
        escalated[1]["error"]["error"] == "ClientError" and "AccessDenied" in escalated[1]["error"]["message"]
    )
    assert "nothing is paused" in escalated[1]["reason"]
    assert open_items(opscenter, pair.primary) == []
    again = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert again.output["outcome"] == "healed", again.output
