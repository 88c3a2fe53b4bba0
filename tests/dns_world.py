"""A Route 53 world for flip-dns tests: a fenced zone, health checks, and each record kind.

Works with any route53 client (moto in-process for integration tests, the local cloud for e2e).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

FENCE = {"Key": "selfheal:managed", "Value": "true"}
PRIMARY_IP, SECONDARY_IP = "192.0.2.10", "198.51.100.20"


@dataclass
class DnsWorld:
    route53: Any
    zone: str = ""
    zone_name: str = ""
    health_checks: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, route53: Any, fenced: bool = True) -> DnsWorld:
        name = f"z{uuid.uuid4().hex[:10]}.example.com"
        zone = route53.create_hosted_zone(Name=name, CallerReference=str(uuid.uuid4()))["HostedZone"]["Id"]
        zone_id = zone.rsplit("/", 1)[-1]
        if fenced:
            route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=[FENCE])
        return cls(route53, zone_id, name + ".")

    def name(self, label: str = "api") -> str:
        return f"{label}.{self.zone_name}"

    def health_check(self, ip: str, tags: dict[str, str] | None = None, fenced: bool = True) -> str:
        hc = self.route53.create_health_check(
            CallerReference=str(uuid.uuid4()),
            HealthCheckConfig={"IPAddress": ip, "Port": 443, "Type": "HTTPS", "ResourcePath": "/health"},
        )["HealthCheck"]["Id"]
        all_tags = [FENCE] if fenced else []
        all_tags += [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        if all_tags:
            self.route53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=hc, AddTags=all_tags)
        return str(hc)

    def tag_health_check(self, hc: str, tags: dict[str, str]) -> None:
        self.route53.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=hc,
            AddTags=[{"Key": k, "Value": v} for k, v in tags.items()],
        )

    def upsert(self, *records: dict[str, Any]) -> None:
        self.route53.change_resource_record_sets(
            HostedZoneId=self.zone,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records]},
        )

    def records(self, label: str = "api", record_type: str = "A") -> list[dict[str, Any]]:
        name = self.name(label)
        page = self.route53.list_resource_record_sets(
            HostedZoneId=self.zone, StartRecordName=name, StartRecordType=record_type, MaxItems="100"
        )
        return [r for r in page["ResourceRecordSets"] if r["Name"] == name and r["Type"] == record_type]

    # ------------------------------------------------------------------ the three record kinds

    def weighted(self, label: str = "api") -> tuple[str, str]:
        """blue (primary, weight 100) and green (secondary, weight 0), each with a health check."""
        primary, secondary = self.health_check(PRIMARY_IP), self.health_check(SECONDARY_IP)
        self.upsert(
            {
                "Name": self.name(label), "Type": "A", "SetIdentifier": "blue", "Weight": 100, "TTL": 60,
                "ResourceRecords": [{"Value": PRIMARY_IP}], "HealthCheckId": primary,
            },
            {
                "Name": self.name(label), "Type": "A", "SetIdentifier": "green", "Weight": 0, "TTL": 60,
                "ResourceRecords": [{"Value": SECONDARY_IP}], "HealthCheckId": secondary,
            },
        )  # fmt: skip
        self.tag_health_check(
            primary, {"selfheal:param:hostedZoneId": self.zone, "selfheal:param:recordName": self.name(label)}
        )
        return primary, secondary

    def simple(self, label: str = "www") -> tuple[str, str]:
        primary, secondary = self.health_check(PRIMARY_IP), self.health_check(SECONDARY_IP)
        self.upsert(
            {"Name": self.name(label), "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": PRIMARY_IP}]}
        )
        self.tag_health_check(
            primary,
            {
                "selfheal:param:hostedZoneId": self.zone,
                "selfheal:param:recordName": self.name(label),
                "selfheal:param:primaryValue": PRIMARY_IP,
                "selfheal:param:secondaryValue": SECONDARY_IP,
                "selfheal:param:secondaryHealthCheckId": secondary,
            },
        )
        return primary, secondary

    def failover(self, label: str = "app") -> tuple[str, str]:
        primary, secondary = self.health_check(PRIMARY_IP), self.health_check(SECONDARY_IP)
        self.upsert(
            {
                "Name": self.name(label), "Type": "A", "SetIdentifier": "primary", "Failover": "PRIMARY",
                "TTL": 60, "ResourceRecords": [{"Value": PRIMARY_IP}], "HealthCheckId": primary,
            },
            {
                "Name": self.name(label), "Type": "A", "SetIdentifier": "secondary", "Failover": "SECONDARY",
                "TTL": 60, "ResourceRecords": [{"Value": SECONDARY_IP}], "HealthCheckId": secondary,
            },
        )  # fmt: skip
        self.tag_health_check(
            primary, {"selfheal:param:hostedZoneId": self.zone, "selfheal:param:recordName": self.name(label)}
        )
        return primary, secondary

    def on_secondary(self, label: str = "api") -> None:
        """The weighted pair as an earlier failover left it: all the weight on green."""
        records = {r["SetIdentifier"]: r for r in self.records(label)}
        self.upsert({**records["blue"], "Weight": 0}, {**records["green"], "Weight": 100})

    def weights(self, label: str = "api") -> dict[str, int]:
        return {r["SetIdentifier"]: int(r["Weight"]) for r in self.records(label)}

    def answer(self, label: str = "www") -> list[str]:
        return [v["Value"] for r in self.records(label) for v in r.get("ResourceRecords", [])]

    def forced(self, hc: str) -> tuple[bool, bool]:
        config = self.route53.get_health_check(HealthCheckId=hc)["HealthCheck"]["HealthCheckConfig"]
        return bool(config["Disabled"]), bool(config["Inverted"])
