"""flip-dns: api.shop.example.com, a weighted pair with a Route 53 health check on each side.

blue (the primary, weight 100) and green (weight 0). Both health checks are fenced (flip-dns moves
traffic only onto an endpoint a fenced health check watches); blue's names, in ``selfheal:param:*``
tags, the zone and record to flip, and the hold-down before the failback. The alarm on blue's
HealthCheckStatus is what companion/route53-health-alarms.yaml creates for each health check. The
stack must declare the zone and record too (FlipDnsHostedZoneIds, FlipDnsRecordNames).
"""

from __future__ import annotations

from collections.abc import Callable

from localcloud.worlds import Aws, Fault, UnknownWorld, World, hosted_zone, param_tags, tags

ZONE, RECORD = "shop.example.com.", "api.shop.example.com."
SIDES = {"blue": "192.0.2.10", "green": "198.51.100.20"}
ALARM = "api-blue-health"
# Local-sized; production defaults: hold-down 900 s, primary healthy for 300 s. The stack's
# FlipDnsMinHoldDownSeconds (300) still applies unless it is overridden.
TUNING = {"holdDownSeconds": "6", "primaryHealthySeconds": "2", "verifyIntervalSeconds": "1"}


def build(aws: Aws) -> str:
    r53, cw = aws.client("route53"), aws.client("cloudwatch")
    zone = r53.create_hosted_zone(Name=ZONE, CallerReference="selfheal-world-shop-example")["HostedZone"][
        "Id"
    ]
    zone = zone.rsplit("/", 1)[-1]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone, AddTags=tags())
    checks = {
        side: r53.create_health_check(
            CallerReference=f"selfheal-world-api-{side}",
            HealthCheckConfig={"IPAddress": ip, "Port": 443, "Type": "HTTPS", "ResourcePath": "/health"},
        )["HealthCheck"]["Id"]
        for side, ip in SIDES.items()
    }
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": RECORD,
                        "Type": "A",
                        "SetIdentifier": side,
                        "Weight": 100 if side == "blue" else 0,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                        "HealthCheckId": checks[side],
                    },
                }
                for side, ip in SIDES.items()
            ]
        },
    )
    r53.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=checks["green"], AddTags=tags(("Name", "api-green"))
    )
    blue = param_tags({"hostedZoneId": zone, "recordName": RECORD, **TUNING})
    r53.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=checks["blue"], AddTags=tags(("Name", "api-blue"), *blue)
    )
    cw.put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": checks["blue"]}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    return f"{RECORD} weighted blue 100 / green 0 in zone {zone}; health checks api-blue, api-green; {ALARM}"


def zone_id(aws: Aws) -> str:
    return hosted_zone(aws, ZONE, "flip-dns")


def health_check(aws: Aws, side: str) -> str:
    """The id of the health check on ``side`` (its record's HealthCheckId)."""
    records = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id(aws), StartRecordName=RECORD, StartRecordType="A"
    )["ResourceRecordSets"]
    for record in records:
        if record["Name"] == RECORD and record.get("SetIdentifier") == side:
            return str(record["HealthCheckId"])
    raise UnknownWorld(f"no {side} record {RECORD}: was the flip-dns world built?")


def weights(aws: Aws) -> dict[str, int]:
    records = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id(aws), StartRecordName=RECORD, StartRecordType="A"
    )["ResourceRecordSets"]
    return {r["SetIdentifier"]: int(r["Weight"]) for r in records if r["Name"] == RECORD}


def _blue_fails(aws: Aws) -> None:
    aws.controls().set_endpoint_health(health_check(aws, "blue"), False)


def _blue_recovers(aws: Aws) -> None:
    aws.controls().set_endpoint_health(health_check(aws, "blue"), True)


def _traffic_on(side: str) -> Callable[[Aws], tuple[bool, str]]:
    wanted = {name: 100 if name == side else 0 for name in SIDES}

    def check(aws: Aws) -> tuple[bool, str]:
        now = weights(aws)
        return (
            now == wanted,
            f"{RECORD} weights {now}: traffic on {side if now == wanted else 'neither side alone'}",
        )

    return check


WORLD = World(
    runbook="flip-dns",
    describe=f"the weighted pair {RECORD} (blue, green) and their health checks",
    build=build,
    parameters=lambda aws: {"FlipDnsHostedZoneIds": zone_id(aws), "FlipDnsRecordNames": RECORD.rstrip(".")},
    faults=(
        Fault(
            name="api-blue-unhealthy",
            runbook="flip-dns",
            title=f"the primary endpoint of {RECORD.rstrip('.')} (blue) fails its Route 53 health check",
            injected=f"the checkers see blue fail; HealthCheckStatus 0 puts {ALARM} in ALARM",
            inject=_blue_fails,
            target_key=lambda aws: health_check(aws, "blue"),
            healed=_traffic_on("green"),
        ),
        Fault(
            name="api-blue-recovers",
            runbook="flip-dns",
            title="blue answers its health checkers again: traffic goes back after the hold-down",
            injected=f"the checkers see blue healthy; {ALARM} goes back to OK",
            inject=_blue_recovers,
            target_key=lambda aws: health_check(aws, "blue"),
            healed=_traffic_on("blue"),
        ),
    ),
)
