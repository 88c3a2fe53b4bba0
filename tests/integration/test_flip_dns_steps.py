"""flip-dns resolve, precheck and verify against moto Route 53 (with localcloud.route53's checkers)."""

from __future__ import annotations

import pytest

from localcloud.route53 import patch_route53, set_endpoint_health
from localcloud.worlds import Aws
from localcloud.worlds.flip_dns import PRIMARY_IP, SECONDARY_IP, Zone, build_health_check, forced, unique_zone
from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.errors import NotApplicable, PreconditionFailed, SecondaryUnhealthy, UnknownResource
from selfheal.runbooks.flip_dns import (
    FlipDns,
    FlipDnsParams,
    FlipDnsTarget,
    health,
    out_of_scope,
    precheck,
    resolve,
    verify,
)

KEY, VALUE = "selfheal:managed", "true"


@pytest.fixture
def dns(clients) -> Zone:
    patch_route53()
    # In-process moto: no local cloud server, so no control API (the checkers are patched in).
    return unique_zone(Aws(client=clients.client))


def plan_for(dns: Zone, hc: str, **params):
    return resolve(
        dns.route53, FlipDnsTarget(healthCheckId=hc), FlipDnsParams.model_validate(params), KEY, VALUE
    )


def apply(dns: Zone, plan) -> None:
    """What the workflow does: the plan's first call (the change; the undo is contingent)."""
    call, undo = FlipDns(Clients(), Settings(AUDIT_TABLE="audit")).exact_calls(plan)
    assert FlipDns.spec(undo.name).undo
    if call.action == "route53:UpdateHealthCheck":
        dns.route53.update_health_check(**call.parameters)
    else:
        dns.route53.change_resource_record_sets(**call.parameters)


def test_resolve_weighted_pair_moves_all_weight_to_the_secondary(dns):
    made = dns.weighted()
    primary, secondary = made.primary, made.secondary
    plan = plan_for(dns, primary)
    assert (plan.kind, plan.to_health_check_id) == ("weighted", secondary)
    # the zone, the health check the request names, and the one that vouches for the destination
    assert set(plan.resource_tags) == {
        f"hostedzone/{dns.id}",
        f"healthcheck/{primary}",
        f"healthcheck/{secondary}",
    }
    changes = plan.change["ChangeBatch"]["Changes"]
    assert {c["ResourceRecordSet"]["SetIdentifier"]: c["ResourceRecordSet"]["Weight"] for c in changes} == {
        "blue": 0,
        "green": 100,
    }
    assert {c["Action"] for c in changes} == {"UPSERT"}
    precheck(dns.route53, plan)
    assert verify(dns.route53, plan)["done"] is False
    apply(dns, plan)
    assert verify(dns.route53, plan)["done"] is True
    assert dns.weights() == {"blue": 0, "green": 100}


def test_resolve_weighted_failback_restores_the_primary(dns):
    primary = dns.weighted().primary
    apply(dns, plan_for(dns, primary))
    back = plan_for(dns, primary, direction="failback")
    assert back.to_health_check_id == primary and back.hold_down_seconds == 900
    apply(dns, back)
    assert dns.weights() == {"blue": 100, "green": 0}


def test_resolve_weighted_already_on_the_secondary_is_not_applicable(dns):
    primary = dns.weighted().primary
    apply(dns, plan_for(dns, primary))
    with pytest.raises(NotApplicable):
        plan_for(dns, primary)


def test_resolve_simple_record_upserts_the_secondary_value(dns):
    made = dns.simple()
    primary, secondary = made.primary, made.secondary
    plan = plan_for(dns, primary)
    assert plan.kind == "simple" and plan.to_health_check_id == secondary
    (change,) = plan.change["ChangeBatch"]["Changes"]
    assert change["ResourceRecordSet"]["ResourceRecords"] == [{"Value": SECONDARY_IP}]
    apply(dns, plan)
    assert dns.answer() == [SECONDARY_IP] and verify(dns.route53, plan)["done"]


def test_resolve_simple_record_pointing_elsewhere_is_refused(dns):
    primary = dns.simple().primary
    dns.upsert(
        {"Name": dns.record("www"), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "203.0.113.9"}]}
    )
    with pytest.raises(PreconditionFailed, match="not the primary"):
        plan_for(dns, primary)


def test_resolve_simple_record_without_a_health_check_for_the_destination_says_what_to_set(dns):
    dns.simple()
    with pytest.raises(PreconditionFailed, match="secondaryHealthCheckId"):
        resolve(
            dns.route53,
            FlipDnsTarget(hostedZoneId=dns.id, recordName=dns.record("www")),
            FlipDnsParams(),
            KEY,
            VALUE,
        )


def test_resolve_simple_record_moves_only_to_what_the_destination_health_check_watches(dns):
    """A request chooses a side; the value comes from the side's health check, never the request."""
    made = dns.simple()
    primary, secondary = made.primary, made.secondary
    with pytest.raises(PreconditionFailed, match="never a value of its own"):
        plan_for(dns, primary, secondaryValue="203.0.113.66")
    elsewhere = build_health_check(dns.aws, "203.0.113.66", fenced=False).id
    plan = plan_for(dns, primary, secondaryHealthCheckId=elsewhere, secondaryValue="203.0.113.66")
    # The value is what that health check watches, and that health check must pass the fence.
    assert plan.expected == {"value": "203.0.113.66"}
    assert plan.resource_tags[f"healthcheck/{elsewhere}"] == {}
    assert plan_for(dns, primary).expected == {"value": SECONDARY_IP} and secondary


def test_resolve_failover_records_force_the_primary_health_check(dns):
    made = dns.failover()
    primary, secondary = made.primary, made.secondary
    plan = plan_for(dns, primary)
    assert plan.kind == "failover" and plan.to_health_check_id == secondary
    assert plan.health_check_update == {"HealthCheckId": primary, "Disabled": True, "Inverted": True}
    assert plan.undo == {"HealthCheckId": primary, "Disabled": False, "Inverted": False}
    apply(dns, plan)
    assert forced(dns.aws, primary) == (True, True) and verify(dns.route53, plan)["done"]
    assert health(dns.route53, primary)["status"] == "unknown"  # disabled: Route 53 stopped checking
    back = plan_for(dns, primary, direction="failback")
    assert back.health_check_update == {"HealthCheckId": primary, "Disabled": False, "Inverted": False}
    assert back.to_health_check_id is None
    apply(dns, back)
    assert forced(dns.aws, primary) == (False, False)


def test_precheck_refuses_an_unhealthy_secondary_with_a_named_error(dns):
    made = dns.weighted()
    primary, secondary = made.primary, made.secondary
    set_endpoint_health(secondary, False)
    with pytest.raises(SecondaryUnhealthy, match="unhealthy"):
        precheck(dns.route53, plan_for(dns, primary))


def test_precheck_refuses_a_record_changed_since_the_plan(dns):
    primary = dns.weighted().primary
    plan = plan_for(dns, primary)
    records = dns.records()
    dns.upsert(*[{**r, "Weight": 50} for r in records])
    with pytest.raises(PreconditionFailed, match="changed since"):
        precheck(dns.route53, plan)


def test_health_follows_inverted_and_the_checkers(dns):
    hc = build_health_check(dns.aws, PRIMARY_IP).id
    assert health(dns.route53, hc)["status"] == "healthy"
    set_endpoint_health(hc, False)
    assert health(dns.route53, hc)["status"] == "unhealthy"
    dns.route53.update_health_check(HealthCheckId=hc, Inverted=True)
    assert health(dns.route53, hc)["status"] == "healthy"


def test_resolve_unknown_record_and_missing_tags_are_named(dns):
    hc = build_health_check(dns.aws, PRIMARY_IP).id
    with pytest.raises(PreconditionFailed, match="selfheal:param:hostedZoneId"):
        plan_for(dns, hc)
    with pytest.raises(UnknownResource):
        plan_for(dns, hc, hostedZoneId=dns.id, recordName=dns.record("nothing"))


def test_resolve_unknown_health_check_is_named(dns):
    """ListTagsForResource is the existence check (NoSuchHealthCheck on AWS and in localcloud)."""
    unknown = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(UnknownResource, match=f"no health check {unknown}"):
        plan_for(dns, unknown)
    with pytest.raises(UnknownResource, match=f"no health check {unknown}"):
        plan_for(dns, unknown, hostedZoneId=dns.id, recordName=dns.record("app"))


def test_out_of_scope_names_zone_record_and_health_check(dns):
    primary = dns.failover().primary
    plan = plan_for(dns, primary)
    assert out_of_scope(plan, dns.id, "*", primary) == []
    assert out_of_scope(plan, dns.id, f"app.{dns.name.rstrip('.')}", primary) == []
    problems = out_of_scope(plan, "ZOTHER", "www.*", "")
    assert len(problems) == 3 and dns.id in problems[0]
    assert out_of_scope(plan, "none", "none", "none")  # the template's default: nothing allowed


def test_target_key_is_the_record_or_the_health_check():
    record = FlipDnsTarget(hostedZoneId="/hostedzone/Z123", recordName="API.Example.com")
    assert record.key == "Z123/api.example.com.A"
    assert FlipDnsTarget(healthCheckId="abcdef12-3456").key == "abcdef12-3456"
    with pytest.raises(ValueError):
        FlipDnsTarget(hostedZoneId="Z123")
