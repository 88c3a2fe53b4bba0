"""remap-eip end to end on the local cloud: the real template, rules, functions and ASL.

Each test builds its own primary/standby/EIP, so tests never share a target (cooldown and leases
are per target) and can run in any order.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from localcloud.worlds import Aws, remap_eip, unique
from localcloud.worlds.remap_eip import Pair
from tests.e2e.throttling import THROTTLES_PAST_THE_CLIENT
from tests.events import load_event


def make_pair(cloud: DeployedCloud, fence_standby: bool = True, standby_tag: bool = True) -> Pair:
    return remap_eip.pair(Aws.of(cloud), unique("api"), fence_standby=fence_standby, standby_tag=standby_tag)


def alarm_event(instance: str) -> dict[str, Any]:
    """The sample status-check alarm event, about this instance, as a new delivery."""
    event = copy.deepcopy(load_event("alarm-status-check-failed"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"{instance}-status-check"
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{instance}-status-check"]
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "InstanceId": instance
    }
    return event


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def manual_input(pair: Pair, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "target": {"instanceId": pair.primary},
        "params": {"verifyIntervalSeconds": 0},
        "dryRun": False,
        "reason": "e2e test",
    }
    body.update(overrides)
    return body


def test_remap_eip_alarm_on_the_primary_moves_its_eip_to_the_standby(cloud):
    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(alarm_event(pair.primary))
    assert [r["rule"] for r in summary.rules if "AlarmStateChange" in r["rule"]]
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.standby
    phases = [r["phase"] for r in rows_for(cloud, pair.primary)]
    assert phases == ["received", "started", "action", "action", "verified", "succeeded"]
    intent, outcome = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "action"]
    assert intent["outcome"] == "pending" and intent["before"]["instanceId"] == pair.primary
    assert outcome["outcome"] == "ok" and outcome["after"]["associationId"]


def test_remap_eip_same_event_three_times_starts_exactly_one_execution(cloud):
    pair = make_pair(cloud)
    event = alarm_event(pair.primary)
    summaries = [cloud.send_event_and_wait(event) for _ in range(3)]
    names = {e.name for s in summaries for e in s.executions}
    assert len(names) == 1
    assert [r["phase"] for r in rows_for(cloud, pair.primary)].count("received") == 1
    assert pair.holder(cloud) == pair.standby


def test_remap_eip_dry_run_mode_runs_everything_but_changes_nothing(cloud, mode):
    pair = make_pair(cloud)
    mode("dry-run")
    summary = cloud.send_event_and_wait(alarm_event(pair.primary))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED"
    assert pair.holder(cloud) == pair.primary
    rows = rows_for(cloud, pair.primary)
    assert [r["phase"] for r in rows] == ["received", "started", "would-do", "succeeded"]
    would = rows[2]
    assert would["dryRun"] is True and would["action"] == "ec2:AssociateAddress"
    assert would["parameters"] == {
        "AllocationId": pair.allocation,
        "InstanceId": pair.standby,
        "AllowReassociation": True,
    }


def test_remap_eip_dry_run_request_from_the_console_changes_nothing(cloud):
    pair = make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", manual_input(pair, dryRun=True))
    assert result.status == "SUCCEEDED"
    assert pair.holder(cloud) == pair.primary
    assert "would-do" in [r["phase"] for r in rows_for(cloud, pair.primary)]


def test_remap_eip_mode_off_does_nothing_and_says_so(cloud, mode):
    pair = make_pair(cloud)
    mode("off")
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "SUCCEEDED" and pair.holder(cloud) == pair.primary
    (skipped,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "skipped"]
    assert "mode=off" in skipped["reason"]


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda body: body.pop("reason"), "reason"),
        (lambda body: body.update(target={"instanceId": "web-1"}), "target.instanceId"),
        (lambda body: body.update(params={"standby": "i-1"}), "params.standby"),
    ],
)
def test_remap_eip_bad_console_input_fails_with_a_named_error_and_changes_nothing(cloud, mutate, needle):
    pair = make_pair(cloud)
    body = manual_input(pair)
    mutate(body)
    result = cloud.start_and_wait("remap-eip", body)
    assert result.status == "FAILED" and result.error == "InvalidInput"
    assert needle in (result.cause or "") and not (result.cause or "").startswith("{")
    assert pair.holder(cloud) == pair.primary
    rejected = [
        r
        for r in ops.scan_audit(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])
        if r["requestId"] == result.name
    ]
    assert [r["phase"] for r in rejected] == ["rejected"] and needle in rejected[0]["reason"]


def test_remap_eip_unfenced_standby_is_refused(cloud):
    pair = make_pair(cloud, fence_standby=False)
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "SUCCEEDED" and pair.holder(cloud) == pair.primary
    (skipped,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "skipped"]
    assert pair.standby in skipped["reason"] and "fence" in skipped["reason"]


def test_remap_eip_stopped_standby_fails_the_precheck_and_escalates(cloud):
    pair = make_pair(cloud)
    cloud.client("ec2").stop_instances(InstanceIds=[pair.standby])
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "FAILED" and result.error == "PreconditionFailed"
    assert pair.holder(cloud) == pair.primary
    (failed,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "failed"]
    assert "stopped" in failed["reason"]


def test_remap_eip_second_run_within_the_cooldown_is_skipped(cloud):
    pair = make_pair(cloud)
    first = cloud.start_and_wait("remap-eip", manual_input(pair, target={"allocationId": pair.allocation}))
    assert first.status == "SUCCEEDED" and pair.holder(cloud) == pair.standby
    cloud.client("ec2").associate_address(
        AllocationId=pair.allocation, InstanceId=pair.primary, AllowReassociation=True
    )
    again = cloud.start_and_wait("remap-eip", manual_input(pair, target={"allocationId": pair.allocation}))
    assert again.status == "SUCCEEDED" and pair.holder(cloud) == pair.primary
    skipped = [r for r in rows_for(cloud, pair.allocation) if r["phase"] == "skipped"]
    assert len(skipped) == 1 and "came back" in skipped[0]["reason"]


def test_remap_eip_lease_held_by_another_execution_skips(cloud):
    pair = make_pair(cloud)
    cloud.client("dynamodb").put_item(
        TableName=cloud.stack.outputs["LeaseTableName"],
        Item={
            "targetKey": {"S": pair.primary},
            "owner": {"S": "someone-else"},
            "expiresAt": {"N": "9999999999"},
        },
    )
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "SUCCEEDED" and pair.holder(cloud) == pair.primary
    (skipped,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "skipped"]
    assert "lease" in skipped["reason"]


def test_remap_eip_instance_without_a_managed_eip_is_not_applicable(cloud):
    lonely = remap_eip.instance(Aws.of(cloud), unique("lonely"), fenced=False)
    result = cloud.start_and_wait(
        "remap-eip", {"target": {"instanceId": lonely}, "reason": "e2e: nothing to move"}
    )
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in rows_for(cloud, lonely) if r["phase"] == "skipped"]
    assert "no managed Elastic IP" in skipped["reason"]


def test_remap_eip_stopped_primary_event_moves_the_eip(cloud):
    """The EC2 state-change path: AWS emits the event when the instance stops (the local cloud too)."""
    pair = make_pair(cloud)
    cloud.client("ec2").stop_instances(InstanceIds=[pair.primary])
    rows: list[dict[str, Any]] = []
    for _ in range(200):
        rows = rows_for(cloud, pair.primary)
        if any(r["phase"] in {"succeeded", "failed", "skipped"} for r in rows):
            break
        time.sleep(0.1)
    assert [r["phase"] for r in rows][-1] == "succeeded", rows
    assert pair.holder(cloud) == pair.standby


def test_remap_eip_verification_failure_moves_the_eip_back_and_escalates(cloud, monkeypatch):
    """AWS accepts the call but the address never shows up on the standby: verify must catch it."""
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    pair = make_pair(cloud)
    original = ElasticAddressBackend.associate_address

    def accepted_but_never_applied(
        self: Any,
        instance: Any = None,
        eni: Any = None,
        address: Any = None,
        allocation_id: Any = None,
        reassociate: bool = False,
    ) -> Any:
        if instance is not None and instance.id == pair.standby:
            return self.address_by_allocation([allocation_id])[0]
        return original(self, instance, eni, address, allocation_id, reassociate)

    monkeypatch.setattr(ElasticAddressBackend, "associate_address", accepted_but_never_applied)
    result = cloud.start_and_wait(
        "remap-eip", manual_input(pair, params={"verifyIntervalSeconds": 0, "verifyAttempts": 2})
    )
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    assert pair.holder(cloud) == pair.primary
    phases = [r["phase"] for r in rows_for(cloud, pair.primary)]
    assert phases == ["started", "action", "action", "action", "compensated", "failed"]


def _association_fails_for(monkeypatch: Any, refused: set[str], lost: frozenset[str] = frozenset()) -> None:
    """EC2 refuses AssociateAddress onto these instances (and silently drops it onto `lost`)."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    original = ElasticAddressBackend.associate_address

    def associate(
        self: Any,
        instance: Any = None,
        eni: Any = None,
        address: Any = None,
        allocation_id: Any = None,
        reassociate: bool = False,
    ) -> Any:
        if instance is not None and instance.id in refused:
            raise InvalidInstanceIdError(instance.id)
        if instance is not None and instance.id in lost:
            return self.address_by_allocation([allocation_id])[0]
        return original(self, instance, eni, address, allocation_id, reassociate)

    monkeypatch.setattr(ElasticAddressBackend, "associate_address", associate)


def test_remap_eip_refused_association_is_audited_and_fails_with_the_ec2_error(cloud, monkeypatch):
    pair = make_pair(cloud)
    _association_fails_for(monkeypatch, {pair.standby})
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "FAILED" and result.error == "Ec2.Ec2Exception"
    assert pair.holder(cloud) == pair.primary
    rows = rows_for(cloud, pair.primary)
    assert [r["phase"] for r in rows] == ["started", "action", "action", "failed"]
    assert [r.get("outcome") for r in rows if r["phase"] == "action"] == ["pending", "error"]
    assert rows[-1]["error"]["error"] == "Ec2.Ec2Exception"


def test_remap_eip_failed_compensation_is_audited_and_escalated(cloud, monkeypatch):
    """The move never shows up and moving it back fails too: both are in the trail, a human is told."""
    pair = make_pair(cloud)
    _association_fails_for(monkeypatch, {pair.primary}, lost=frozenset({pair.standby}))
    result = cloud.start_and_wait(
        "remap-eip", manual_input(pair, params={"verifyIntervalSeconds": 0, "verifyAttempts": 1})
    )
    assert result.status == "FAILED" and result.error == "Ec2.Ec2Exception"
    rows = rows_for(cloud, pair.primary)
    assert [(r["phase"], r.get("outcome")) for r in rows] == [
        ("started", None),
        ("action", "pending"),
        ("action", "ok"),
        ("action", "pending"),
        ("compensated", "error"),
        ("failed", None),
    ]


def test_every_mutating_call_has_audit_rows_before_and_after(cloud):
    """Record every AWS request of a heal; each mutating one is bracketed by audit rows."""
    pair = make_pair(cloud)
    cloud.reset_recording()
    summary = cloud.send_event_and_wait(alarm_event(pair.primary))
    assert summary.executions[0].status == "SUCCEEDED"
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service == "ec2" and not r.operation.startswith(("Describe", "Get", "List"))
    ]
    assert [m.operation for m in mutating] == ["AssociateAddress"]
    rows = rows_for(cloud, pair.primary)
    for call in mutating:
        matching = [
            r
            for r in rows
            if r.get("action") == f"ec2:{call.operation}"
            and r["parameters"]["AllocationId"] == call.parameters.get("AllocationId")
            and r["parameters"]["InstanceId"] == call.parameters.get("InstanceId")
        ]
        outcomes = [r["outcome"] for r in matching]
        assert outcomes == ["pending", "ok"], json.dumps(rows, default=str)


def test_remap_eip_outcome_is_notified_and_published_on_the_bus(cloud, outcome_inbox):
    pair = make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", manual_input(pair, reason="INC-42: api-1 is down"))
    assert result.status == "SUCCEEDED"
    received = outcome_inbox()
    (event,) = [m for m in received if m.get("source") == "selfheal"]
    assert event["detail-type"] == "Remediation Succeeded"
    assert event["detail"]["targetKey"] == pair.primary and event["detail"]["dryRun"] is False
    (note,) = [m for m in received if m.get("Type") == "Notification"]
    assert note["Subject"].startswith(f"[selfheal] HEALED: remap-eip {pair.primary} in ")
    assert "INC-42: api-1 is down" in note["Message"] and pair.allocation in note["Message"]
    assert note["MessageAttributes"]["severity"]["Value"] == "info"


def test_remap_eip_failure_is_escalated(cloud, outcome_inbox):
    pair = make_pair(cloud)
    cloud.client("ec2").stop_instances(InstanceIds=[pair.standby])
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    assert result.status == "FAILED"
    assert result.cause == f"standby {pair.standby} is stopped, not running"
    # Stopping the standby is a signal of its own (skipped: it holds no managed EIP): look at ours.
    received = outcome_inbox()
    (event,) = [
        m for m in received if m.get("source") == "selfheal" and m["detail"]["targetKey"] == pair.primary
    ]
    assert event["detail-type"] == "Remediation Failed" and event["detail"]["escalate"] is True
    (note,) = [m for m in received if m.get("Type") == "Notification" and pair.primary in m["Subject"]]
    assert note["MessageAttributes"]["severity"]["Value"] == "escalation"
    assert "ACTION NEEDED" in note["Message"] and "PreconditionFailed" in note["Message"]


def test_remap_eip_ec2_throttling_a_step_is_retried_and_the_run_heals(cloud, faults):
    # Given EC2 throttling the guards step's DescribeInstances (the standby) past the client's retries
    pair = make_pair(cloud)
    throttle = faults.throttle("ec2", "DescribeInstances", times=THROTTLES_PAST_THE_CLIENT)
    # When the runbook runs
    result = cloud.start_and_wait("remap-eip", manual_input(pair))
    # Then the step failed once with the retryable error, was run again, and the EIP moved
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ("Check the guards", "AwsCallFailed") in result.failed_attempts
    assert len(throttle.hits) == THROTTLES_PAST_THE_CLIENT
    assert pair.holder(cloud) == pair.standby


def manual_event(pair: Pair, **detail: Any) -> dict[str, Any]:
    """A "Remediation Requested" event on the bus, as the EventBridge console sends it."""
    event = copy.deepcopy(load_event("manual-remap-eip"))
    event["id"] = str(uuid.uuid4())
    event["detail"].update(target={"instanceId": pair.primary}, params={"standbyInstanceId": pair.standby})
    event["detail"].update(detail)
    return event


@pytest.mark.parametrize(
    "change,needle",
    [
        (lambda detail: detail.pop("reason"), "reason"),
        (lambda detail: detail.update(force=True), "force"),
    ],
    ids=["without-a-reason", "with-an-unknown-field"],
)
def test_remap_eip_bad_manual_request_on_the_bus_is_refused_like_a_console_input(cloud, change, needle):
    # Given a bus request the console would refuse (no reason; a field no runbook input has)
    pair = make_pair(cloud)
    event = manual_event(pair)
    change(event["detail"])
    # When it is sent
    summary = cloud.send_event_and_wait(event)
    # Then nothing starts, nothing moves, and a rejected row names the field
    assert summary.executions == []
    assert pair.holder(cloud) == pair.primary
    (rejected,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "rejected"]
    assert rejected["error"]["error"] == "InvalidInput" and needle in rejected["reason"]


def test_remap_eip_fence_value_is_compared_exactly_as_iam_compares_it(cloud):
    # Given an EIP tagged selfheal:managed=TRUE (IAM's StringEquals would not match "true")
    pair = make_pair(cloud)
    cloud.client("ec2").create_tags(
        Resources=[pair.allocation], Tags=[{"Key": "selfheal:managed", "Value": "TRUE"}]
    )
    # When the runbook is asked to move it
    result = cloud.start_and_wait("remap-eip", manual_input(pair, target={"allocationId": pair.allocation}))
    # Then it is not ours: skipped, not moved
    assert result.status == "SUCCEEDED" and pair.holder(cloud) == pair.primary
    (skipped,) = [r for r in rows_for(cloud, pair.allocation) if r["phase"] == "skipped"]
    assert "fence" in skipped["reason"] and pair.allocation in skipped["reason"]


# ------------------------------------------------------------------ trust boundaries for signals

FOREIGN_ACCOUNT = "210987654321"


def _delivered_directly(cloud: DeployedCloud, deliver: Any) -> tuple[set[str], list[dict[str, Any]]]:
    """Run ``deliver`` (a publish or an invoke, both delivered before they return on the local cloud);
    the executions it started and the triage rows it wrote."""
    sfn, dynamodb = cloud.client("stepfunctions"), cloud.client("dynamodb")
    machines = ops.stack_state_machines(cloud.client("cloudformation"), cloud.stack.name)
    table = cloud.stack.outputs["AuditTableName"]
    executions, rows = ops.execution_arns(sfn, machines), ops.scan_audit(dynamodb, table)
    deliver()
    seen = {json.dumps(r, sort_keys=True, default=str) for r in rows}
    new_rows = [
        r for r in ops.scan_audit(dynamodb, table) if json.dumps(r, sort_keys=True, default=str) not in seen
    ]
    return ops.execution_arns(sfn, machines) - executions, new_rows


def sns_alarm_message(instance: str, arn_account: str = "123456789012") -> dict[str, Any]:
    """The sample alarm notification, about this instance, from an alarm in ``arn_account``."""
    sample = load_event("alarm-sns")["Records"][0]["Sns"]["Message"]
    message = json.loads(sample)
    message["AlarmName"] = f"{instance}-status-check-{uuid.uuid4().hex[:6]}"
    message["AlarmArn"] = f"arn:aws:cloudwatch:us-east-1:{arn_account}:alarm:{message['AlarmName']}"
    message["Trigger"]["Dimensions"] = [{"name": "InstanceId", "value": instance}]
    return dict(message)


@pytest.mark.parametrize(
    "message,needle",
    [
        # An AWS Health event published to the topic: EventBridge would refuse it from PutEvents.
        (lambda pair: remap_health_event(pair.primary), "no AlarmName"),
        # An alarm notification that claims this account while its alarm is another's.
        (lambda pair: sns_alarm_message(pair.primary, FOREIGN_ACCOUNT), "claims account 123456789012"),
        # An alarm of another account, saying so.
        (
            lambda pair: {
                **sns_alarm_message(pair.primary, FOREIGN_ACCOUNT),
                "AWSAccountId": FOREIGN_ACCOUNT,
            },
            f"from account {FOREIGN_ACCOUNT}",
        ),
    ],
    ids=["health-event-in-an-sns-message", "alarm-arn-of-another-account", "alarm-of-another-account"],
)
def test_remap_eip_alarm_topic_takes_only_this_accounts_alarm_notifications(cloud, message, needle):
    # Given a managed EIP, and a message on the alarm topic that is not an alarm of this account
    pair = make_pair(cloud)
    body = json.dumps(message(pair))
    # When it is published to the alarm topic
    started, rows = _delivered_directly(
        cloud,
        lambda: cloud.client("sns").publish(TopicArn=cloud.stack.outputs["AlarmTopicArn"], Message=body),
    )
    # Then nothing starts, the address stays, and triage's row says why
    assert started == set()
    assert pair.holder(cloud) == pair.primary
    (ignored,) = [r for r in rows if r["phase"] == "ignored"]
    assert needle in ignored["reason"]


def remap_health_event(instance: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("health-ec2-retirement"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["eventArn"] += uuid.uuid4().hex[:8]
    event["resources"] = [instance]
    event["detail"]["affectedEntities"] = [{"entityValue": instance, "status": "IMPAIRED"}]
    return event


def test_remap_eip_health_event_is_healed_from_eventbridge(cloud):
    # The same Health event that the alarm topic ignores heals when EventBridge delivers it.
    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(remap_health_event(pair.primary))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.standby


@pytest.mark.parametrize("field", ["account", "detail.affectedAccount"])
def test_remap_eip_event_of_another_account_invoked_directly_is_ignored(cloud, field):
    # Given a managed EIP and an event about its primary, from (or about) another account
    pair = make_pair(cloud)
    event = remap_health_event(pair.primary)
    if field == "account":
        event["account"] = FOREIGN_ACCOUNT
    else:
        event["detail"]["affectedAccount"] = FOREIGN_ACCOUNT
    # When triage is invoked with it directly (the rules filter on the account; an invoke does not)
    started, rows = _delivered_directly(
        cloud,
        lambda: cloud.client("lambda").invoke(
            FunctionName=cloud.stack.outputs["TriageFunctionArn"], Payload=json.dumps(event).encode()
        ),
    )
    # Then nothing starts and the row names the account
    assert started == set()
    assert pair.holder(cloud) == pair.primary
    (ignored,) = [r for r in rows if r["phase"] == "ignored"]
    assert FOREIGN_ACCOUNT in ignored["reason"]


# ------------------------------------------------------------------------------------- who asked


@pytest.mark.parametrize(
    "claim",
    [
        {"kind": "automatic", "rule": "ec2-status-check-failed", "eventId": "made-up"},
        {"kind": "manual", "principal": "arn:aws:iam::123456789012:role/Admin"},
    ],
    ids=["claims-to-be-a-rule", "claims-a-principal"],
)
def test_remap_eip_direct_start_is_audited_as_one_and_its_actor_kept_as_a_claim(cloud, claim):
    # Given a run started directly, its input naming an actor
    pair = make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", manual_input(pair, actor=claim))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    # Then every row says it was started directly, and what it claimed is a claim, not the actor
    rows = rows_for(cloud, pair.primary)
    assert rows and {r["actor"]["kind"] for r in rows} == {"direct"}
    assert all(r["actor"]["claimed"] == claim for r in rows)
    assert not any("principal" in r["actor"] or "rule" in r["actor"] for r in rows)


def test_remap_eip_run_triage_started_carries_triages_actor_in_every_row(cloud):
    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(alarm_event(pair.primary))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    actors = [r["actor"] for r in rows_for(cloud, pair.primary)]
    assert len(actors) == 6 and all(a == actors[0] for a in actors)
    assert actors[0]["kind"] == "automatic" and actors[0]["rule"] == "ec2-status-check-failed"


def test_remap_eip_bus_request_runs_dry_when_the_stack_says_bus_requests_may_not_act(cloud, steps_env):
    # Given a stack whose BusRequestsMode is dry-run (the default), and a bus request to act
    steps_env(BUS_REQUESTS_MODE="dry-run")
    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(manual_event(pair, params={"standbyInstanceId": pair.standby}))
    # Then the run does everything but the move, and says why
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.primary
    rows = rows_for(cloud, pair.primary)
    would_do = [r for r in rows if r["phase"] == "would-do"]
    assert would_do and all(r["dryRun"] for r in would_do)
    assert "BusRequestsMode" in would_do[0]["reason"]
    assert {r["actor"]["kind"] for r in rows} == {"manual"}
    assert rows[0]["actor"]["requestedBy"] == "alice" and "principal" not in rows[0]["actor"]


def test_remap_eip_bus_request_acts_when_the_stack_lets_bus_requests_act(cloud):
    # The e2e stack's BusRequestsMode is enforce
    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(manual_event(pair, params={"standbyInstanceId": pair.standby}))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert pair.holder(cloud) == pair.standby


# ------------------------------------------------------------------- an audit nobody can forge


def _verify(cloud: DeployedCloud, capsys: Any, *args: str) -> tuple[int, str]:
    from selfheal_cli.main import main

    capsys.readouterr()
    code = main(["audit", "verify", *args, "--endpoint", cloud.endpoint, "--stack-name", cloud.stack.name])
    return code, capsys.readouterr().out


def test_remap_eip_audit_chain_holds_and_shows_an_edit_and_a_removal(cloud, capsys):
    # Given two remediations of one address (the second skipped by the cooldown), chained
    pair = make_pair(cloud)
    target = {"allocationId": pair.allocation}
    for _ in range(2):
        result = cloud.start_and_wait("remap-eip", manual_input(pair, target=target))
        assert result.status == "SUCCEEDED", (result.error, result.cause)
    rows = rows_for(cloud, pair.allocation)
    assert len({r["requestId"] for r in rows}) == 2
    # Then the chain holds
    code, out = _verify(cloud, capsys, "--target", pair.allocation)
    assert (code, out.split(":")[0]) == (0, "OK"), out
    dynamodb, table = cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"]
    key = {"requestId": {"S": rows[3]["requestId"]}, "sk": {"S": rows[3]["sk"]}}

    # When someone with table access (not a stack role: those are denied) edits a row
    dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET reason = :r",
        ExpressionAttributeValues={":r": {"S": "nothing happened"}},
    )
    code, out = _verify(cloud, capsys, "--target", pair.allocation)
    assert code == 1 and "was edited" in out and rows[3]["sk"] in out

    # When they remove it instead
    dynamodb.delete_item(TableName=table, Key=key)
    code, out = _verify(cloud, capsys, "--target", pair.allocation)
    assert code == 1 and "is missing" in out

    # When they remove the first remediation entirely: the second still names it
    first = rows[0]["requestId"]
    for row in [r for r in rows if r["requestId"] == first]:
        dynamodb.delete_item(TableName=table, Key={"requestId": {"S": first}, "sk": {"S": row["sk"]}})
    code, out = _verify(cloud, capsys, "--target", pair.allocation)
    assert code == 1 and f"chains to remediation {first}, which has no rows left" in out


# ------------------------------------------------------------ who asked: verified, not declared


def test_remap_eip_signed_request_records_its_sender_as_sts_says_and_may_act(cloud, steps_env, local_user):
    # Given a stack whose self-declared bus requests may only dry-run, and alice, who signs hers
    steps_env(BUS_REQUESTS_MODE="dry-run")
    pair = make_pair(cloud)
    alice = local_user("alice")
    body = {**manual_input(pair), "reason": "web-1 is wedged"}
    # When she asks (what `selfheal trigger` does)
    result = ops.request_and_wait(alice, cloud.stack.outputs, "remap-eip", body, timeout=60)
    # Then the run acts, and every row names her as STS verified her
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert pair.holder(cloud) == pair.standby
    actors = [r["actor"] for r in rows_for(cloud, pair.primary)]
    assert actors and all(
        a == {"kind": "manual", "principal": alice.arn, "eventId": actors[0]["eventId"]} for a in actors
    )


@pytest.mark.parametrize(
    "forge,needle",
    [
        # a proof alice signed for another request (another target)
        (lambda proof, other: other, "signed for another request"),
        # alice's key id, without her secret
        (
            lambda proof, other: {**proof, "Authorization": proof["Authorization"][:-64] + "0" * 64},
            "SignatureDoesNotMatch",
        ),
    ],
    ids=["proof-of-another-request", "forged-signature"],
)
def test_remap_eip_request_with_a_proof_that_does_not_hold_is_refused(cloud, local_user, forge, needle):
    from selfheal.identity import MANUAL_REQUEST, binding, prove

    pair = make_pair(cloud)
    alice = local_user("alice")
    body = manual_input(pair)
    event = ops.signed_request_event(alice("sts"), "remap-eip", body)
    other = prove(alice("sts"), binding(MANUAL_REQUEST, {"runbook": "remap-eip", **body, "reason": "other"}))
    event["detail"]["proof"] = forge(event["detail"]["proof"], other)
    summary = cloud.send_event_and_wait(event)
    assert summary.executions == []
    assert pair.holder(cloud) == pair.primary
    (rejected,) = [r for r in rows_for(cloud, pair.primary) if r["phase"] == "rejected"]
    assert rejected["error"]["error"] == "Unauthenticated" and needle in rejected["reason"]
    assert "principal" not in rejected["actor"]


def test_remap_eip_selfheal_trigger_sends_a_signed_request(cloud):
    from selfheal_cli.main import main

    pair = make_pair(cloud)
    # When an operator runs `selfheal trigger` (the local cloud's own key: its default user)
    assert (
        main(
            ["trigger", "remap-eip", "--input", json.dumps(manual_input(pair)), "--endpoint", cloud.endpoint]
        )
        == 0
    )
    # Then the request went through triage, signed: the rows name the caller STS verified
    assert pair.holder(cloud) == pair.standby
    rows = rows_for(cloud, pair.primary)
    assert rows[0]["phase"] == "received" and rows[0]["actor"]["principal"].endswith(":user/moto")
