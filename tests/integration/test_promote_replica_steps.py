"""promote-replica resolve and precheck against moto RDS, Route 53 and CloudWatch."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud.worlds import Aws, promote_replica
from localcloud.worlds.promote_replica import Database, Zone
from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.errors import NotApplicable, PreconditionFailed, UnknownResource
from selfheal.models import Actor as ActorModel
from selfheal.runbooks.promote_replica import (
    PromoteReplica,
    PromoteReplicaParams,
    PromoteReplicaTarget,
    precheck,
    resolve,
)
from tests.integration.conftest import approve, running_execution

KEY, VALUE = "selfheal:managed", "true"


RECORD = "orders.shop.internal."


@pytest.fixture
def world(clients: Clients) -> Aws:
    """What this tier builds its databases with: the worlds' builders, on in-process moto."""
    return Aws(client=clients.client)


@pytest.fixture
def zone(world: Aws) -> Zone:
    return promote_replica.private_zone(world, "shop.internal.")


def orders(world: Aws, zone: Zone, tag_primary: bool = False, **variants: Any) -> Database:
    """The database orders, its replica orders-replica-1 and its name orders.shop.internal. in
    ``zone``; the primary's tags name no DNS name unless ``tag_primary`` (the tests pass it as params)."""
    return promote_replica.database(world, "orders", zone, RECORD, tag_primary=tag_primary, **variants)


def target(**kw: Any) -> PromoteReplicaTarget:
    return PromoteReplicaTarget.model_validate(kw)


def params(zone: Zone, **kw: Any) -> PromoteReplicaParams:
    return PromoteReplicaParams.model_validate(
        {"hostedZoneId": zone.id, "recordName": "orders.shop.internal", **kw}
    )


def test_resolve_finds_the_only_replica_and_fences_replica_and_zone(clients, world, zone):
    orders(world, zone)
    plan = resolve(clients, target(dbInstanceIdentifier="orders"), params(zone), KEY, VALUE)
    assert (plan.kind, plan.replica_identifier, plan.record_name) == (
        "rds-replica",
        "orders-replica-1",
        "orders.shop.internal.",
    )
    assert set(plan.resource_tags) == {"orders-replica-1", zone.id}
    assert all(tags.get(KEY) == VALUE for tags in plan.resource_tags.values())
    # The promotion, which cannot be undone, comes last: after the repoint, which can (restore)
    dns, promote, restore = PromoteReplica(clients, Settings(AUDIT_TABLE="audit")).exact_calls(plan)
    assert (promote.action, promote.parameters) == (
        "rds:PromoteReadReplica",
        {"DbInstanceIdentifier": "orders-replica-1"},
    )
    primary = clients.rds.describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]
    assert restore.parameters["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["ResourceRecords"] == [
        {"Value": primary["Endpoint"]["Address"]}
    ]
    assert dns.parameters["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]["ResourceRecords"] == [
        {"Value": plan.replica_endpoint}
    ]


def test_resolve_takes_missing_params_from_the_primary_tags_and_explicit_params_win(clients, world, zone):
    # the primary's tags name its DNS name (hostedZoneId, recordName) and these
    tagged = {"verifyIntervalSeconds": "1", "replicaIdentifier": "orders-replica-2"}
    orders(world, zone, tag_primary=True, params=tagged, replicas=2)
    plan = resolve(clients, target(dbInstanceIdentifier="orders"), PromoteReplicaParams(), KEY, VALUE)
    assert (plan.replica_identifier, plan.verify_interval_seconds, plan.hosted_zone_id) == (
        "orders-replica-2",
        1,
        zone.id,
    )
    explicit = PromoteReplicaParams.model_validate(
        {"replicaIdentifier": "orders-replica-1", "verifyIntervalSeconds": 5}
    )
    plan = resolve(clients, target(dbInstanceIdentifier="orders"), explicit, KEY, VALUE)
    assert (plan.replica_identifier, plan.verify_interval_seconds) == ("orders-replica-1", 5)


def test_resolve_several_replicas_without_a_choice_is_refused(clients, world, zone):
    orders(world, zone, replicas=2)
    with pytest.raises(PreconditionFailed, match="2 read replicas"):
        resolve(clients, target(dbInstanceIdentifier="orders"), params(zone), KEY, VALUE)


def test_resolve_without_a_dns_name_is_refused(clients, world, zone):
    orders(world, zone)
    with pytest.raises(PreconditionFailed, match="no DNS name"):
        resolve(clients, target(dbInstanceIdentifier="orders"), PromoteReplicaParams(), KEY, VALUE)


def test_resolve_recovering_event_means_do_not_fight_aws(clients, world, zone):
    orders(world, zone)
    with pytest.raises(NotApplicable, match="not fighting AWS"):
        resolve(
            clients,
            target(dbInstanceIdentifier="orders"),
            params(zone, recoveringEvent="RDS-EVENT-0013"),
            KEY,
            VALUE,
        )


def test_resolve_unknown_replica_is_unknown_resource(clients, world, zone):
    orders(world, zone)
    with pytest.raises(UnknownResource):
        resolve(
            clients, target(dbInstanceIdentifier="orders"), params(zone, replicaIdentifier="nope"), KEY, VALUE
        )


def test_precheck_lag_within_limit_needs_no_approval_and_records_how_to_go_back(clients, world, zone):
    orders(world, zone)
    promote_replica.publish_lag(world, "orders-replica-1", 3)
    plan = resolve(clients, target(dbInstanceIdentifier="orders"), params(zone, maxLagSeconds=10), KEY, VALUE)
    before = precheck(clients, plan)
    assert before["needsApproval"] is False and before["replicaLagSeconds"] == 3
    assert "To go back" in before["howToGoBack"] and "orders-replica-1" in before["trafficMove"]


@pytest.mark.parametrize("lag, verdict", [(None, "unknown"), (60.0, "over the limit"), (-1.0, "unknown")])
def test_precheck_lag_over_the_limit_or_unknown_needs_approval(clients, world, zone, lag, verdict):
    orders(world, zone)
    if lag is not None:
        promote_replica.publish_lag(world, "orders-replica-1", lag)
    plan = resolve(clients, target(dbInstanceIdentifier="orders"), params(zone, maxLagSeconds=10), KEY, VALUE)
    before = precheck(clients, plan)
    assert before["needsApproval"] is True and verdict in before["lag"]


def test_resolve_cluster_picks_the_best_available_reader(clients, world):
    members = [("w", 0, "db.r6g.large"), ("a", 1, "db.r6g.4xlarge"), ("b", 0, "db.r6g.large")]
    promote_replica.aurora_cluster(world, "c1", members)
    plan = resolve(clients, target(dbClusterIdentifier="c1"), PromoteReplicaParams(), KEY, VALUE)
    assert (plan.current_writer, plan.target_instance_identifier) == ("c1-w", "c1-b")
    assert set(plan.resource_tags) == {"c1", "c1-b"}
    assert precheck(clients, plan)["newWriter"] == "c1-b"


# ---------------------------------------------------------------- recheck after an approval


def _recheck(clients: Any, settings: Any, plan: Any, request_params: dict[str, Any]) -> dict[str, Any]:
    from selfheal.models import Actor, Request
    from selfheal.steps import StepEvent, Steps

    execution = running_execution(clients, "promote-replica")
    request = Request(
        request_id=execution["name"],
        runbook="promote-replica",
        target={"dbInstanceIdentifier": "orders"},
        target_key="orders",
        params=request_params,
        dry_run=False,
        reason="test",
        actor=Actor(kind="manual"),
    )
    approve(clients, settings, execution, plan.model_dump(mode="json", by_alias=True))
    event = StepEvent.model_validate(
        {
            "step": "recheck",
            "runbook": "promote-replica",
            "execution": execution,
            "state": {"name": "Look again after the approval", "enteredTime": "2026-11-22T04:00:00Z"},
            "request": request.model_dump(mode="json", by_alias=True),
            "plan": plan.model_dump(mode="json", by_alias=True),
        }
    )
    return Steps(settings, clients).run(event)


def test_recheck_after_approval_passes_when_nothing_changed_and_names_what_did(
    clients, settings, world, zone
):
    """Given a plan approved for replica orders-replica-1, When the replica's tags change while the human
    decides, Then the recheck refuses and names the field; unchanged, it returns a fresh before."""
    orders(world, zone)
    request_params = params(zone).model_dump(mode="json", by_alias=True, exclude_none=True)
    approved = PromoteReplica(clients, settings).plan(target(dbInstanceIdentifier="orders"), params(zone))
    assert (
        _recheck(clients, settings, approved, request_params)["before"]["replica"]["identifier"]
        == "orders-replica-1"
    )
    arn = clients.rds.describe_db_instances(DBInstanceIdentifier="orders-replica-1")["DBInstances"][0][
        "DBInstanceArn"
    ]
    clients.rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": "owner", "Value": "someone-else"}])
    with pytest.raises(PreconditionFailed, match="changed since it was approved: resourceTags"):
        _recheck(clients, settings, approved, request_params)


def test_recheck_after_approval_stops_when_the_kill_switch_left_enforce(clients, settings, world, zone):
    from selfheal.errors import ModeChanged

    orders(world, zone)
    request_params = params(zone).model_dump(mode="json", by_alias=True, exclude_none=True)
    approved = PromoteReplica(clients, settings).plan(target(dbInstanceIdentifier="orders"), params(zone))
    clients.ssm.put_parameter(Name=settings.mode_parameter, Value="dry-run", Type="String", Overwrite=True)
    with pytest.raises(ModeChanged, match="kill switch is dry-run"):
        _recheck(clients, settings, approved, request_params)


@pytest.mark.parametrize(
    ("kinds", "actor", "asks"),
    [
        ([], ActorModel(kind="manual"), False),
        (["manual"], ActorModel(kind="manual"), True),
        (["manual"], ActorModel(kind="automatic", rule="r"), False),
        (["direct", "automatic"], ActorModel(kind="automatic", rule="r"), True),
    ],
)
def test_the_policy_marks_request_kinds_that_always_ask(clients, settings, world, zone, kinds, actor, asks):
    from selfheal.models import Request, utcnow
    from selfheal.policy import parse_policy
    from selfheal.steps import StepEvent, Steps

    orders(world, zone)
    promote_replica.publish_lag(world, "orders-replica-1", 1)
    policy = parse_policy(
        {
            "version": 1,
            "approvals": {"promote-replica": kinds},
            "rules": [],
        }
    )
    plan = PromoteReplica(clients, settings).plan(target(dbInstanceIdentifier="orders"), params(zone))
    execution = running_execution(clients, "promote-replica")
    request = Request(
        request_id=execution["name"],
        runbook="promote-replica",
        target={"dbInstanceIdentifier": "orders"},
        target_key="orders",
        params={},
        dry_run=False,
        reason="test",
        actor=actor,
    )
    event = StepEvent.model_validate(
        {
            "step": "precheck",
            "runbook": "promote-replica",
            "execution": execution,
            "state": {"name": "Precheck", "enteredTime": utcnow().isoformat()},
            "request": request.model_dump(mode="json", by_alias=True),
            "plan": plan.model_dump(mode="json", by_alias=True),
        }
    )
    before = Steps(settings, clients, policy).run(event)["before"]
    assert before["needsApproval"] is asks
    assert ("policy asks a human" in (before.get("approvalReason") or "")) is asks


@pytest.mark.parametrize(
    "record,says",
    [
        (None, "there is no CNAME orders.shop.internal."),
        ({"Type": "A", "TTL": 30, "ResourceRecords": [{"Value": "10.0.0.5"}]}, "is a record of type A"),
    ],
    ids=["missing", "a-record"],
)
def test_resolve_refuses_a_name_it_could_not_put_back(clients, world, zone, record, says):
    # The repoint is undone (put back) when the promotion after it is not made: a name that is not
    # a plain CNAME cannot be, and is refused before anything changes.
    orders(world, zone)
    r53 = clients.route53
    cname = r53.list_resource_record_sets(HostedZoneId=zone.id, StartRecordName="orders.shop.internal.")
    r53.change_resource_record_sets(
        HostedZoneId=zone.id,
        ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": cname["ResourceRecordSets"][0]}]},
    )
    if record is not None:
        r53.change_resource_record_sets(
            HostedZoneId=zone.id,
            ChangeBatch={
                "Changes": [
                    {"Action": "CREATE", "ResourceRecordSet": {"Name": "orders.shop.internal.", **record}}
                ]
            },
        )
    with pytest.raises(PreconditionFailed, match=says):
        resolve(clients, target(dbInstanceIdentifier="orders"), params(zone), KEY, VALUE)
