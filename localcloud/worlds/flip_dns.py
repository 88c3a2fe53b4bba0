"""flip-dns: api.shop.example.com, a weighted pair with a Route 53 health check on each side.

blue (the primary, weight 100) and green (weight 0). Both health checks are fenced (flip-dns moves
traffic only onto an endpoint a fenced health check watches); blue's names, in ``selfheal:param:*``
tags, the zone and record to flip, and the hold-down before the failback. The alarm on blue's
HealthCheckStatus is what companion/route53-health-alarms.yaml creates for each health check. The
stack must declare the zone and record too (FlipDnsHostedZoneIds, FlipDnsRecordNames).

The parts are builders (``build_zone``, ``build_health_check``, and a zone's ``weighted``,
``simple`` and ``failover`` records), and a ``Zone`` reads back what flip-dns changed. The ready
world below is them called with its fixed names; the tests and the benchmarks call them in a zone of
their own (``unique_zone``), and put that zone into the flip-dns scope themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.worlds import Aws, Fault, UnknownWorld, World, hosted_zone, param_tags, tags, unique

ZONE, RECORD = "shop.example.com.", "api.shop.example.com."
SIDES = {"blue": "192.0.2.10", "green": "198.51.100.20"}
# Every pair the builders make has these two endpoints: the primary side, then the secondary.
PRIMARY_IP, SECONDARY_IP = SIDES["blue"], SIDES["green"]
ALARM = "api-blue-health"
# Local-sized; production defaults: hold-down 900 s, primary healthy for 300 s. The stack's
# FlipDnsMinHoldDownSeconds (300) still applies unless it is overridden.
TUNING = {"holdDownSeconds": "6", "primaryHealthySeconds": "2", "verifyIntervalSeconds": "1"}


# --- the parts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HealthCheck:
    id: str
    ip: str  # the endpoint it watches (HTTPS on 443, /health)


@dataclass(frozen=True)
class Flippable:
    """A record flip-dns can flip, as built: its name and the health checks of its two sides. The
    primary's health check carries the ``selfheal:param:*`` tags that name the record."""

    record: str  # with its final dot
    primary: str
    secondary: str


def build_health_check(
    aws: Aws, ip: str, *extra: tuple[str, str], fenced: bool = True, reference: str | None = None
) -> HealthCheck:
    """A health check on ``ip``, tagged with the fence (unless ``fenced=False``) and ``extra``."""
    r53 = aws.client("route53")
    created = r53.create_health_check(
        CallerReference=reference or str(uuid.uuid4()),
        HealthCheckConfig={"IPAddress": ip, "Port": 443, "Type": "HTTPS", "ResourcePath": "/health"},
    )["HealthCheck"]["Id"]
    added = tags(*extra, fenced=fenced)
    if added:
        r53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=created, AddTags=added)
    return HealthCheck(str(created), ip)


def forced(aws: Aws, health_check: str) -> tuple[bool, bool]:
    """(Disabled, Inverted) of a health check: both True is how flip-dns fails over failover records."""
    config = aws.client("route53").get_health_check(HealthCheckId=health_check)["HealthCheck"][
        "HealthCheckConfig"
    ]
    return bool(config["Disabled"]), bool(config["Inverted"])


@dataclass(frozen=True)
class Zone:
    """A hosted zone: builds flip-dns's three record kinds in it, and reads back what a run changed."""

    aws: Aws
    id: str
    name: str  # with its final dot

    @property
    def route53(self) -> Any:
        return self.aws.client("route53")

    def record(self, label: str) -> str:
        return f"{label}.{self.name}"

    # ..................................................................... the three record kinds

    def weighted(
        self,
        label: str = "api",
        *,
        sides: tuple[HealthCheck, HealthCheck] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Flippable:
        """blue (the primary, weight 100) and green (weight 0), each with its side's health check
        (fenced ones on PRIMARY_IP and SECONDARY_IP unless ``sides`` are given)."""
        blue, green = sides or self._sides()
        name = self.record(label)
        self.upsert(
            *(
                {
                    "Name": name,
                    "Type": "A",
                    "SetIdentifier": side,
                    "Weight": weight,
                    "TTL": 60,
                    "ResourceRecords": [{"Value": check.ip}],
                    "HealthCheckId": check.id,
                }
                for side, weight, check in (("blue", 100, blue), ("green", 0, green))
            )
        )
        self._name_the_record(blue, name, params)
        return Flippable(name, blue.id, green.id)

    def simple(self, label: str = "www", *, params: Mapping[str, str] | None = None) -> Flippable:
        """One record answering PRIMARY_IP, no health check on it: the primary's health check names
        the record, both values and the secondary's health check."""
        primary, secondary = self._sides()
        name = self.record(label)
        self.upsert({"Name": name, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": primary.ip}]})
        values = {
            "primaryValue": primary.ip,
            "secondaryValue": secondary.ip,
            "secondaryHealthCheckId": secondary.id,
        }
        self._name_the_record(primary, name, {**values, **(params or {})})
        return Flippable(name, primary.id, secondary.id)

    def failover(self, label: str = "app", *, params: Mapping[str, str] | None = None) -> Flippable:
        """PRIMARY and SECONDARY failover records, each with its side's health check."""
        primary, secondary = self._sides()
        name = self.record(label)
        self.upsert(
            *(
                {
                    "Name": name,
                    "Type": "A",
                    "SetIdentifier": side.lower(),
                    "Failover": side,
                    "TTL": 60,
                    "ResourceRecords": [{"Value": check.ip}],
                    "HealthCheckId": check.id,
                }
                for side, check in (("PRIMARY", primary), ("SECONDARY", secondary))
            )
        )
        self._name_the_record(primary, name, params)
        return Flippable(name, primary.id, secondary.id)

    def _sides(self) -> tuple[HealthCheck, HealthCheck]:
        return build_health_check(self.aws, PRIMARY_IP), build_health_check(self.aws, SECONDARY_IP)

    def _name_the_record(self, primary: HealthCheck, record: str, params: Mapping[str, str] | None) -> None:
        """The primary's ``selfheal:param:*`` tags: where its record is (as the README has operators tag)."""
        named = param_tags({"hostedZoneId": self.id, "recordName": record, **(params or {})})
        self.route53.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=primary.id, AddTags=tags(*named, fenced=False)
        )

    # ..................................................................... reading back, changing

    def upsert(self, *records: dict[str, Any]) -> None:
        self.route53.change_resource_record_sets(
            HostedZoneId=self.id,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records]},
        )

    def records(self, label: str = "api", record_type: str = "A") -> list[dict[str, Any]]:
        name = self.record(label)
        page = self.route53.list_resource_record_sets(
            HostedZoneId=self.id, StartRecordName=name, StartRecordType=record_type, MaxItems="100"
        )
        return [r for r in page["ResourceRecordSets"] if r["Name"] == name and r["Type"] == record_type]

    def weights(self, label: str = "api") -> dict[str, int]:
        return {r["SetIdentifier"]: int(r["Weight"]) for r in self.records(label)}

    def answer(self, label: str = "www") -> list[str]:
        return [v["Value"] for r in self.records(label) for v in r.get("ResourceRecords", [])]

    def on_secondary(self, label: str = "api") -> None:
        """The weighted pair as an earlier failover left it: all the weight on green."""
        records = {r["SetIdentifier"]: r for r in self.records(label)}
        self.upsert({**records["blue"], "Weight": 0}, {**records["green"], "Weight": 100})


def build_zone(aws: Aws, name: str, *, fenced: bool = True, reference: str | None = None) -> Zone:
    """The hosted zone ``name`` (its final dot optional), fenced unless ``fenced=False``."""
    r53 = aws.client("route53")
    created = r53.create_hosted_zone(Name=name, CallerReference=reference or str(uuid.uuid4()))
    zone = str(created["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    if fenced:
        r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone, AddTags=tags())
    return Zone(aws, zone, name.rstrip(".") + ".")


def unique_zone(aws: Aws, *, fenced: bool = True) -> Zone:
    """A zone of its own (``z-<random>.example.com``), beside any other in the cloud."""
    return build_zone(aws, f"{unique('z')}.example.com", fenced=fenced)


# --- the ready world ---------------------------------------------------------------------------------


def build(aws: Aws) -> str:
    zone = build_zone(aws, ZONE, reference="selfheal-world-shop-example")
    blue, green = (
        build_health_check(aws, ip, ("Name", f"api-{side}"), reference=f"selfheal-world-api-{side}")
        for side, ip in SIDES.items()
    )
    zone.weighted("api", sides=(blue, green), params=TUNING)
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=ALARM,
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": blue.id}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    return (
        f"{RECORD} weighted blue 100 / green 0 in zone {zone.id}; health checks api-blue, api-green; {ALARM}"
    )


def zone_id(aws: Aws) -> str:
    return hosted_zone(aws, ZONE, "flip-dns")


def shop(aws: Aws) -> Zone:
    """The ready world's zone, found by its name."""
    return Zone(aws, zone_id(aws), ZONE)


def health_check(aws: Aws, side: str) -> str:
    """The id of the health check on ``side`` (its record's HealthCheckId)."""
    for record in shop(aws).records("api"):
        if record.get("SetIdentifier") == side:
            return str(record["HealthCheckId"])
    raise UnknownWorld(f"no {side} record {RECORD}: was the flip-dns world built?")


def weights(aws: Aws) -> dict[str, int]:
    return shop(aws).weights("api")


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
