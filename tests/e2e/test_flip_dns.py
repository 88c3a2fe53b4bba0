"""flip-dns end to end on the local cloud: the real template, rules, functions and ASL.

Route 53's checkers are emulated by localcloud.route53: `set_endpoint_health` is an outage (or a
recovery) as the checkers see it; alarms on HealthCheckStatus change state and emit their events.
Each test builds its own zone and records (targets are never shared).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from localcloud import ops
from localcloud.faults import Fault
from localcloud.harness import DeployedCloud
from localcloud.route53 import set_endpoint_health
from localcloud.worlds import Aws
from localcloud.worlds.flip_dns import PRIMARY_IP, SECONDARY_IP, Zone, build_health_check, forced, unique_zone
from tests.e2e.throttling import THROTTLES_PAST_THE_CLIENT

FAST = {"verifyIntervalSeconds": "0", "holdDownSeconds": "4", "primaryHealthySeconds": "1"}
TERMINAL = {"succeeded", "failed", "skipped"}


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def wait_rows(
    cloud: DeployedCloud, target: str, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows = rows_for(cloud, target)
    while not done(rows):
        if time.monotonic() > deadline:
            raise AssertionError(json.dumps([(r["phase"], r.get("reason")) for r in rows], default=str))
        time.sleep(0.2)
        rows = rows_for(cloud, target)
    return rows


def terminal(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["phase"] in TERMINAL]


def flips(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Successful mutating calls (not compensations) on this target."""
    return [r for r in rows if r["phase"] == "action" and r.get("outcome") == "ok"]


@pytest.fixture
def dns(cloud: DeployedCloud) -> Zone:
    return unique_zone(Aws.of(cloud))


@pytest.fixture
def scope(steps_env: Callable[..., None]) -> Callable[..., None]:
    """Put zones / health checks into the stack's flip-dns scope (the FlipDns* parameters' variables)."""

    def allow(zones: list[str] = (), checks: list[str] = (), names: str = "*") -> None:  # type: ignore[assignment]
        steps_env(
            FLIP_DNS_HOSTED_ZONE_IDS=",".join(zones),
            FLIP_DNS_HEALTH_CHECK_IDS=",".join(checks),
            FLIP_DNS_RECORD_NAMES=names,
            # The session's many flip-dns tests would otherwise open the per-runbook budget breaker
            # (BudgetPerHour actions per runbook per hour) and be skipped.
            BUDGET_PER_HOUR="1000",
        )

    return allow


def alarm_on(cloud: DeployedCloud, health_check: str) -> str:
    """The alarm the companion template creates for a health check (us-east-1, where the metric is)."""
    name = f"route53-{health_check}-{uuid.uuid4().hex[:6]}"
    cloud.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": health_check}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )
    return name


def manual(target: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"target": target, "params": {"verifyIntervalSeconds": 0, **params}, "reason": "e2e flip-dns"}


# ----------------------------------------------------------------------------------- record kinds


def test_flip_dns_weighted_pair_health_check_alarm_moves_the_weight_to_the_secondary(cloud, dns, scope):
    primary = dns.weighted(params=FAST).primary
    scope(zones=[dns.id])
    alarm_on(cloud, primary)
    set_endpoint_health(primary, False)
    rows = wait_rows(cloud, primary, lambda rs: bool(terminal(rs)))
    assert [r["phase"] for r in rows] == ["received", "started", "action", "action", "verified", "succeeded"]
    assert dns.weights() == {"blue": 0, "green": 100}
    intent = rows[2]
    assert intent["action"] == "route53:ChangeResourceRecordSets" and intent["outcome"] == "pending"
    assert intent["before"]["to"]["status"] == "healthy"
    assert rows[3]["after"]["changeId"].startswith("/change/")


def test_flip_dns_simple_record_is_upserted_to_the_secondary(cloud, dns, scope):
    primary = dns.simple().primary
    scope(zones=[dns.id])
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dns.answer() == [SECONDARY_IP]
    (intent,) = [r for r in rows_for(cloud, primary) if r.get("outcome") == "pending"]
    (change,) = intent["parameters"]["ChangeBatch"]["Changes"]
    assert change["Action"] == "UPSERT" and change["ResourceRecordSet"]["ResourceRecords"] == [
        {"Value": SECONDARY_IP}
    ]


def test_flip_dns_failover_records_force_the_primary_health_check_and_fail_back(cloud, dns, scope, steps_env):
    steps_env(COOLDOWN_SECONDS="0")  # the failback follows the failover at once
    primary = dns.failover().primary
    scope(zones=[dns.id], checks=[primary])
    target = {"hostedZoneId": dns.id, "recordName": dns.record("app")}
    result = cloud.start_and_wait("flip-dns", manual(target))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert forced(dns.aws, primary) == (True, True)
    back = cloud.start_and_wait(
        "flip-dns", manual(target, direction="failback", holdDownSeconds=0, primaryHealthySeconds=0)
    )
    assert back.status == "SUCCEEDED", (back.error, back.cause)
    assert forced(dns.aws, primary) == (False, False)
    key = f"{dns.id}/{dns.record('app')}A"
    actions = [r["action"] for r in flips(rows_for(cloud, key))]
    assert actions == ["route53:UpdateHealthCheck", "route53:UpdateHealthCheck"]


# ------------------------------------------------------------------------------------------ refusals


def test_flip_dns_unhealthy_secondary_is_refused_with_a_named_error(cloud, dns, scope):
    api = dns.weighted()
    primary, secondary = api.primary, api.secondary
    scope(zones=[dns.id])
    set_endpoint_health(secondary, False)
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "FAILED" and result.error == "SecondaryUnhealthy"
    assert dns.weights() == {"blue": 100, "green": 0}
    rows = rows_for(cloud, primary)
    assert not [r for r in rows if r["phase"] == "action"]
    (failed,) = [r for r in rows if r["phase"] == "failed"]
    assert "unhealthy" in failed["reason"] and secondary in failed["reason"]


def test_flip_dns_record_not_pointing_at_the_primary_is_refused(cloud, dns, scope):
    primary = dns.simple().primary
    scope(zones=[dns.id])
    dns.upsert(
        {"Name": dns.record("www"), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "203.0.113.9"}]}
    )
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "FAILED" and result.error == "PreconditionFailed"
    assert "not the primary" in (result.cause or "") and dns.answer() == ["203.0.113.9"]


def test_flip_dns_zone_outside_the_scope_is_refused_by_the_guard(cloud, dns, scope):
    primary = dns.weighted().primary
    scope(zones=["Z0THERZONE000000000"])
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED"  # skipped, escalated: the guard said no
    assert dns.weights() == {"blue": 100, "green": 0}
    (skipped,) = [r for r in rows_for(cloud, primary) if r["phase"] == "skipped"]
    assert dns.id in skipped["reason"] and "scope" in skipped["reason"]


def test_flip_dns_record_name_outside_the_scope_is_refused_by_the_guard(cloud, dns, scope):
    primary = dns.weighted().primary
    scope(zones=[dns.id], names=f"www.{dns.name.rstrip('.')}")
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED" and dns.weights() == {"blue": 100, "green": 0}
    (skipped,) = [r for r in rows_for(cloud, primary) if r["phase"] == "skipped"]
    assert dns.record("api").rstrip(".") in skipped["reason"]


def test_flip_dns_unfenced_zone_is_refused(cloud, scope):
    dns = unique_zone(Aws.of(cloud), fenced=False)
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED" and dns.weights() == {"blue": 100, "green": 0}
    (skipped,) = [r for r in rows_for(cloud, primary) if r["phase"] == "skipped"]
    assert "fence" in skipped["reason"]


def test_flip_dns_dry_run_records_the_exact_change_batch_and_changes_nothing(cloud, dns, scope):
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    result = cloud.start_and_wait("flip-dns", {**manual({"healthCheckId": primary}), "dryRun": True})
    assert result.status == "SUCCEEDED"
    assert dns.weights() == {"blue": 100, "green": 0}
    rows = rows_for(cloud, primary)
    assert [r["phase"] for r in rows] == ["started", "would-do", "succeeded"]
    would = rows[1]
    assert would["dryRun"] is True and would["action"] == "route53:ChangeResourceRecordSets"
    changes = would["parameters"]["ChangeBatch"]["Changes"]
    assert would["parameters"]["HostedZoneId"] == dns.id
    assert {c["ResourceRecordSet"]["SetIdentifier"]: c["ResourceRecordSet"]["Weight"] for c in changes} == {
        "blue": 0,
        "green": 100,
    }
    assert would["before"]["to"]["status"] == "healthy"


# ------------------------------------------------------------------------- hold-down and failback


def test_flip_dns_failback_after_recovery_respects_the_hold_down(cloud, dns, scope, steps_env):
    steps_env(COOLDOWN_SECONDS="0")  # the hold-down alone keeps them apart here
    primary = dns.weighted(params=FAST).primary
    scope(zones=[dns.id])
    alarm_on(cloud, primary)
    set_endpoint_health(primary, False)
    wait_rows(cloud, primary, lambda rs: len(terminal(rs)) >= 1)
    assert dns.weights() == {"blue": 0, "green": 100}
    set_endpoint_health(primary, True)  # alarm -> OK: the failback rule starts flip-dns back
    rows = wait_rows(cloud, primary, lambda rs: len(terminal(rs)) >= 2)
    assert [r["phase"] for r in terminal(rows)] == ["succeeded", "succeeded"], rows
    assert dns.weights() == {"blue": 100, "green": 0}
    flip, back = flips(rows)
    from datetime import datetime

    gap = datetime.fromisoformat(back["at"]) - datetime.fromisoformat(flip["at"])
    assert gap.total_seconds() >= 4  # holdDownSeconds


def test_flip_dns_flapping_health_check_flips_once_within_the_hold_down(cloud, dns, scope):
    primary = dns.weighted(params=FAST).primary
    scope(zones=[dns.id])
    alarm_on(cloud, primary)
    set_endpoint_health(primary, False)
    wait_rows(cloud, primary, lambda rs: len(terminal(rs)) >= 1)
    for healthy in (True, False, True, False):  # flapping inside the hold-down
        set_endpoint_health(primary, healthy)
        time.sleep(0.3)
    # Every execution the flapping started has ended: each failback found the primary unhealthy.
    rows = wait_rows(
        cloud,
        primary,
        lambda rs: len(terminal(rs)) == len({r["requestId"] for r in rs if r["phase"] == "received"}),
        timeout=90,
    )
    assert len(flips(rows)) == 1, [(r["phase"], r.get("reason")) for r in rows]
    assert dns.weights() == {"blue": 0, "green": 100}
    refused = [r for r in terminal(rows) if r["phase"] != "succeeded"]
    assert refused and all(
        "PrimaryUnhealthy" in json.dumps(r.get("error")) or r["phase"] == "skipped" for r in refused
    )


# --------------------------------------------------------------------------------------- evidence


def test_flip_dns_every_mutating_call_has_audit_rows_before_and_after(cloud, dns, scope):
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    cloud.reset_recording()
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED"
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service == "route53" and not r.operation.startswith(("Get", "List"))
    ]
    assert [m.operation for m in mutating] == ["ChangeResourceRecordSets"]
    rows = rows_for(cloud, primary)
    outcomes = [r["outcome"] for r in rows if r.get("action") == "route53:ChangeResourceRecordSets"]
    assert outcomes == ["pending", "ok"]
    # The one bracketed call is the flip itself: the record set now sends all traffic to the
    # secondary, and neither record's address was touched.
    served = {r["SetIdentifier"]: (r["Weight"], r["ResourceRecords"]) for r in dns.records()}
    assert served == {"blue": (0, [{"Value": PRIMARY_IP}]), "green": (100, [{"Value": SECONDARY_IP}])}


def test_flip_dns_change_that_never_shows_is_undone_and_escalated(cloud, dns, scope, monkeypatch):
    """Route 53 accepts the batch but the records never show it: verify catches it, the undo runs."""
    from moto.route53.models import Route53Backend

    primary = dns.weighted().primary
    scope(zones=[dns.id])
    original = Route53Backend.change_resource_record_sets
    swallowed: list[str] = []

    def accepted_but_never_applied(self: Any, zoneid: str, change_list: list[dict[str, Any]]) -> None:
        weights = [c["ResourceRecordSet"].get("Weight") for c in change_list]
        if zoneid.endswith(dns.id) and not swallowed:
            swallowed.append(str(weights))
            return None
        return original(self, zoneid, change_list)

    monkeypatch.setattr(Route53Backend, "change_resource_record_sets", accepted_but_never_applied)
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}, verifyAttempts=2))
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    assert swallowed and dns.weights() == {"blue": 100, "green": 0}
    rows = rows_for(cloud, primary)
    assert [r["phase"] for r in rows] == ["started", "action", "action", "action", "compensated", "failed"]
    undo = rows[3]
    assert undo["outcome"] == "pending" and undo["action"] == "route53:ChangeResourceRecordSets"


def test_flip_dns_health_check_updates_have_audit_rows_before_and_after(cloud, dns, scope, steps_env):
    """Failover records: UpdateHealthCheck (force, then un-force) is bracketed like any change."""
    steps_env(COOLDOWN_SECONDS="0")  # the failback follows the failover at once
    primary = dns.failover().primary
    scope(zones=[dns.id], checks=[primary])
    target = {"hostedZoneId": dns.id, "recordName": dns.record("app")}
    cloud.reset_recording()
    assert cloud.start_and_wait("flip-dns", manual(target)).status == "SUCCEEDED"
    back = manual(target, direction="failback", holdDownSeconds=0, primaryHealthySeconds=0)
    assert cloud.start_and_wait("flip-dns", back).status == "SUCCEEDED"
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service == "route53" and not r.operation.startswith(("Get", "List"))
    ]
    assert [m.operation for m in mutating] == ["UpdateHealthCheck", "UpdateHealthCheck"]
    rows = rows_for(cloud, f"{dns.id}/{dns.record('app')}A")
    calls = [
        (r["parameters"]["Disabled"], r["outcome"])
        for r in rows
        if r.get("action") == "route53:UpdateHealthCheck"
    ]
    assert calls == [(True, "pending"), (True, "ok"), (False, "pending"), (False, "ok")]


def test_flip_dns_route53_throttling_a_step_is_retried_and_the_run_heals(cloud, dns, scope, faults):
    primary = dns.simple().primary
    scope(zones=[dns.id])
    throttle = faults.throttle("route53", "ListResourceRecordSets", times=THROTTLES_PAST_THE_CLIENT)
    result = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ("Check the guards", "AwsCallFailed") in result.failed_attempts
    assert len(throttle.hits) == THROTTLES_PAST_THE_CLIENT
    assert dns.answer() == [SECONDARY_IP]


# ------------------------------------------------------------ a failback that waits (mode, lease)

HEALTHY_WAIT = "Wait while the primary stays healthy"


def start_failback(cloud: DeployedCloud, dns: Zone, primary: str, wait_seconds: int = 3) -> str:
    """A failback of the weighted pair (all weight on green, as a failover left it) that waits
    ``wait_seconds`` for the primary to stay healthy: it is inside that wait when this returns."""
    dns.on_secondary()
    arn = cloud.start(
        "flip-dns",
        manual(
            {"healthCheckId": primary},
            direction="failback",
            holdDownSeconds=0,
            primaryHealthySeconds=wait_seconds,
        ),
    )
    cloud.wait_for_state(arn, HEALTHY_WAIT)
    return arn


def _delete_mode(cloud: DeployedCloud) -> None:
    cloud.client("ssm").delete_parameter(Name=cloud.stack.outputs["ModeParameterName"])


def _refuse_mode_reads(cloud: DeployedCloud) -> None:
    cloud.cloud.faults.add(Fault("ssm", "GetParameter", code="AccessDeniedException", times=20))


@pytest.mark.parametrize(
    "switch,needle",
    [
        (lambda cloud, mode: mode("off"), "off"),
        (lambda cloud, mode: mode("maybe"), "invalid value 'maybe'"),
        (lambda cloud, mode: _delete_mode(cloud), "unreadable"),
        (lambda cloud, mode: _refuse_mode_reads(cloud), "unreadable"),
    ],
    ids=["set-off", "invalid", "deleted", "unreadable"],
)
def test_flip_dns_kill_switch_is_read_again_before_the_change_and_fails_closed(
    cloud, dns, scope, mode, faults, switch, needle
):
    # Given a failback waiting for the primary to stay healthy (its guards read enforce)
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    arn = start_failback(cloud, dns, primary)
    # When the kill switch is turned off, set to nonsense, deleted or made unreadable meanwhile
    switch(cloud, mode)
    result = cloud.wait(arn)
    # Then nothing changes, and the run ends skipped with a row naming the mode
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert dns.weights() == {"blue": 0, "green": 100}
    rows = [r for r in rows_for(cloud, primary) if r["requestId"] == result.name]
    assert not [r for r in rows if r["phase"] == "action"]
    (skipped,) = [r for r in rows if r["phase"] == "skipped"]
    assert skipped["error"]["error"] == "ModeChanged" and needle in skipped["reason"]
    assert "kill switch" in skipped["reason"]


def test_flip_dns_run_that_lost_its_lease_stops_before_the_change(cloud, dns, scope):
    # Given a failback waiting; another execution takes the target's lease meanwhile
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    arn = start_failback(cloud, dns, primary)
    cloud.client("dynamodb").put_item(
        TableName=cloud.stack.outputs["LeaseTableName"],
        Item={"targetKey": {"S": primary}, "owner": {"S": "intruder"}, "expiresAt": {"N": "99999999999"}},
    )
    try:
        result = cloud.wait(arn)
    finally:
        cloud.client("dynamodb").delete_item(
            TableName=cloud.stack.outputs["LeaseTableName"], Key={"targetKey": {"S": primary}}
        )
    # Then it does not act: skipped, the lease lost named
    assert result.status == "SUCCEEDED" and dns.weights() == {"blue": 0, "green": 100}
    (skipped,) = [r for r in rows_for(cloud, primary) if r["phase"] == "skipped"]
    assert skipped["error"]["error"] == "LeaseLost" and "intruder" in skipped["reason"]


def first_lease_expiry(cloud: DeployedCloud, target: str, owner: str) -> int:
    """``expiresAt`` of the first lease ``owner`` wrote on ``target`` (its acquire), from the PutItem
    the local cloud recorded: the renewals that follow overwrite the row, not the request log."""
    table = cloud.stack.outputs["LeaseTableName"]
    for request in cloud.recorded_requests():
        item = request.parameters.get("Item", {})
        if (
            (request.service, request.operation) == ("dynamodb", "PutItem")
            and request.parameters.get("TableName") == table
            and item.get("targetKey", {}).get("S") == target
            and item.get("owner", {}).get("S") == owner
        ):
            return int(item["expiresAt"]["N"])
    raise AssertionError(f"no lease on {target} was ever written by {owner}")


def wait_until_lapsed(expires_at: int, timeout: float = 10) -> None:
    """Until a lease expiring at ``expires_at`` may be taken: the acquire's condition is
    ``expiresAt < now`` in whole seconds."""
    deadline = time.monotonic() + timeout
    while not expires_at < int(time.time()):
        assert time.monotonic() < deadline, f"the clock never passed {expires_at}"
        time.sleep(0.05)


def test_flip_dns_lease_outlives_a_wait_longer_than_the_lease(cloud, dns, scope, steps_env):
    # Given leases of 2 s, and a failback that waits 4 s (longer than its lease)
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    steps_env(LEASE_SECONDS="2")
    first = start_failback(cloud, dns, primary, wait_seconds=4)
    # and the lease it took when it started has run out (unless renewed), while it still waits
    owner = first.rsplit(":", 1)[-1]
    wait_until_lapsed(first_lease_expiry(cloud, primary, owner))
    assert cloud.client("stepfunctions").describe_execution(executionArn=first)["status"] == "RUNNING"
    lease = cloud.client("dynamodb").get_item(
        TableName=cloud.stack.outputs["LeaseTableName"],
        Key={"targetKey": {"S": primary}},
        ConsistentRead=True,
    )["Item"]
    assert lease["owner"]["S"] == owner and int(lease["expiresAt"]["N"]) >= int(time.time()), lease
    # When a second request for the same target comes while the first still waits
    second = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}, direction="failback"))
    result = cloud.wait(first)
    # Then the first still holds the target (renewed for its wait): the second is skipped, the first
    # fails back, once
    assert result.status == "SUCCEEDED" and dns.weights() == {"blue": 100, "green": 0}
    phases = {r["requestId"]: r["phase"] for r in terminal(rows_for(cloud, primary))}
    assert (phases[result.name], phases[second.name]) == ("succeeded", "skipped")
    (refused,) = [r for r in rows_for(cloud, primary) if r["requestId"] == second.name]
    assert refused["error"]["error"] == "LeaseHeld"


# ------------------------------------------------------------------------------- it cannot flap


def test_flip_dns_is_not_exempt_from_the_cooldown(cloud, dns, scope):
    # Given a failover, then the record put back by hand (the primary looked fine again)
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    assert cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary})).status == "SUCCEEDED"
    records = {r["SetIdentifier"]: r for r in dns.records()}
    dns.upsert({**records["blue"], "Weight": 100}, {**records["green"], "Weight": 0})
    # When the primary fails again within CooldownSeconds
    again = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    # Then selfheal does not flip again: skipped and escalated, as for any runbook
    assert again.status == "SUCCEEDED" and dns.weights() == {"blue": 100, "green": 0}
    (skipped,) = [r for r in rows_for(cloud, primary) if r["requestId"] == again.name]
    assert skipped["phase"] == "skipped" and "cooldown" in skipped["reason"]


def test_flip_dns_hold_down_never_goes_below_the_stacks_minimum(cloud, dns, scope, steps_env):
    # Given a stack minimum hold-down of 3 s, no cooldown, and a failover just done
    primary = dns.weighted().primary
    scope(zones=[dns.id])
    steps_env(COOLDOWN_SECONDS="0", FLIP_DNS_MIN_HOLD_DOWN_SECONDS="3")
    failover = cloud.start_and_wait("flip-dns", manual({"healthCheckId": primary}))
    # When a failback asks for no hold-down at all
    back = cloud.start_and_wait(
        "flip-dns",
        manual({"healthCheckId": primary}, direction="failback", holdDownSeconds=0, primaryHealthySeconds=0),
    )
    # Then it still waited out the stack's minimum before it flipped back
    assert (failover.status, back.status) == ("SUCCEEDED", "SUCCEEDED")
    assert dns.weights() == {"blue": 100, "green": 0}
    first, second = flips(rows_for(cloud, primary))
    from datetime import datetime

    gap = datetime.fromisoformat(second["at"]) - datetime.fromisoformat(first["at"])
    assert gap.total_seconds() >= 3


# --------------------------------------------------------------- where traffic may go: declared only


def test_flip_dns_a_request_cannot_send_traffic_to_a_value_of_its_own(cloud, dns, scope):
    # Given a simple record and its fenced secondary (health check on SECONDARY_IP)
    primary = dns.simple().primary
    scope(zones=[dns.id])
    # When a request names another address for the secondary
    result = cloud.start_and_wait(
        "flip-dns", manual({"healthCheckId": primary}, secondaryValue="203.0.113.66")
    )
    # Then it is refused: the record still answers the primary
    assert (result.status, result.error) == ("FAILED", "PreconditionFailed"), (result.error, result.cause)
    assert "never a value of its own" in (result.cause or "")
    assert dns.answer() == [PRIMARY_IP]


def test_flip_dns_a_request_cannot_vouch_with_a_health_check_outside_the_fence(cloud, dns, scope):
    # Given any health check (not fenced) watching another address
    primary = dns.simple().primary
    scope(zones=[dns.id])
    elsewhere = build_health_check(dns.aws, "203.0.113.66", fenced=False).id
    # When a request names it as the secondary's
    result = cloud.start_and_wait(
        "flip-dns",
        manual({"healthCheckId": primary}, secondaryHealthCheckId=elsewhere, secondaryValue="203.0.113.66"),
    )
    # Then the fence refuses it: skipped, the record untouched
    assert result.status == "SUCCEEDED" and dns.answer() == [PRIMARY_IP]
    (skipped,) = [r for r in rows_for(cloud, primary) if r["requestId"] == result.name]
    assert skipped["phase"] == "skipped" and f"healthcheck/{elsewhere}" in skipped["reason"]
