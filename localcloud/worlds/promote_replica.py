"""promote-replica: the orders database, its read replica, and the DNS name the shop connects to.

orders-db is fenced and names, in ``selfheal:param:*`` tags, the private zone and record that point
at it; the replica is fenced. The stack must name the zone and record too (DatabaseHostedZoneId,
DatabaseRecordNames): a tag alone cannot send the runbook to a zone the operator did not declare.

The parts are builders (``private_zone``, ``database``, ``connections_alarm``, ``publish_lag``) that
the e2e tests, the integration tier and the benchmarks call with unique names and the variants they
need (an unfenced replica, a primary that names no DNS name, a replica's lag, several replicas); and
``aurora_cluster``, for the runbook's other kind of target (not in the ready world).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from localcloud.worlds import (
    REGION,
    Aws,
    Fault,
    UnknownWorld,
    World,
    alarm,
    alarm_fires,
    hosted_zone,
    param_tags,
    tags,
    unique,
)
from localcloud.worlds.redrive_dlq import HasClients

PRIMARY = "orders-db"
REPLICA = f"{PRIMARY}-replica-1"  # the name database() gives a primary's first replica
ZONE, RECORD = "shop.internal.", "orders-db.shop.internal."
ALARM = f"selfheal-db-primary-{PRIMARY}-connections"
# Under the stack's PromoteReplicaMaxLagSeconds (60): the promotion needs no approval.
REPLICA_LAG_SECONDS = 1.0


@dataclass(frozen=True)
class Zone:
    id: str
    name: str  # with its final dot


@dataclass(frozen=True)
class Database:
    """A primary, its read replica(s), and the CNAME in ``zone`` that points at the primary."""

    primary: str
    replica: str  # the first replica: the one a run promotes when there is only one
    zone: str
    record: str
    primary_endpoint: str
    replica_endpoint: str
    replicas: tuple[str, ...]

    def record_value(self, aws: HasClients) -> str:
        """Where the DNS name points now."""
        return cname_value(aws, self.zone, self.record)

    def replica_state(self, aws: HasClients) -> tuple[str, str | None]:
        """The replica's status, and the primary it replicates (None once promoted)."""
        db = aws.client("rds").describe_db_instances(DBInstanceIdentifier=self.replica)["DBInstances"][0]
        return db["DBInstanceStatus"], db.get("ReadReplicaSourceDBInstanceIdentifier")


def private_zone(aws: Aws, name: str) -> Zone:
    """The fenced private hosted zone ``name`` (with its final dot)."""
    r53 = aws.client("route53")
    zone = r53.create_hosted_zone(
        Name=name,
        # Route 53's idempotency token: one per zone created.
        CallerReference=unique(f"selfheal-world-{name.rstrip('.')}"),
        HostedZoneConfig={"PrivateZone": True, "Comment": "names the shop uses"},
        VPC={"VPCRegion": REGION, "VPCId": "vpc-0demo0000000000a"},
    )["HostedZone"]["Id"].rsplit("/", 1)[-1]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone, AddTags=tags())
    return Zone(zone, name)


def database(
    aws: Aws,
    name: str,
    zone: Zone,
    record: str,
    *,
    replicas: int = 1,
    fence_replica: bool = True,
    tag_primary: bool = True,
    params: Mapping[str, str] | None = None,
    lag: float | None = None,
) -> Database:
    """The fenced primary ``name`` and its replicas ``<name>-replica-1``, ...; the CNAME ``record``
    (with its final dot) in ``zone`` points at the primary. The primary names the zone and record in
    ``selfheal:param:*`` tags (unless ``tag_primary`` is false), with any other ``params``; ``lag``
    is the first replica's ReplicaLag, published as RDS does (None: none published, lag unknown)."""
    rds, r53 = aws.client("rds"), aws.client("route53")
    dns = {"hostedZoneId": zone.id, "recordName": record} if tag_primary else {}
    primary = rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        AllocatedStorage=100,
        MasterUsername="shop",
        MasterUserPassword="local-cloud-only",  # a moto database: nothing to protect
        Tags=tags(*param_tags({**dns, **(params or {})})),
    )["DBInstance"]
    made = [
        rds.create_db_instance_read_replica(
            DBInstanceIdentifier=f"{name}-replica-{i}",
            SourceDBInstanceIdentifier=name,
            Tags=tags(fenced=fence_replica),
        )["DBInstance"]
        for i in range(1, replicas + 1)
    ]
    r53.change_resource_record_sets(
        HostedZoneId=zone.id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": record,
                        "Type": "CNAME",
                        "TTL": 30,
                        "ResourceRecords": [{"Value": primary["Endpoint"]["Address"]}],
                    },
                }
            ]
        },
    )
    replica = made[0]["DBInstanceIdentifier"]
    if lag is not None:
        publish_lag(aws, replica, lag)
    return Database(
        primary=name,
        replica=replica,
        zone=zone.id,
        record=record,
        primary_endpoint=primary["Endpoint"]["Address"],
        replica_endpoint=made[0]["Endpoint"]["Address"],
        replicas=tuple(r["DBInstanceIdentifier"] for r in made),
    )


@dataclass(frozen=True)
class Cluster:
    name: str
    members: dict[str, str]  # the instances' identifiers by their suffix


def aurora_cluster(aws: Aws, name: str, members: Sequence[tuple[str, int, str]]) -> Cluster:
    """The fenced Aurora cluster ``name``; ``members`` are (suffix, promotion tier, instance class) of
    its fenced instances ``<name>-<suffix>``, the first made its writer."""
    rds = aws.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        MasterUsername="shop",
        MasterUserPassword="local-cloud-only",  # a moto database: nothing to protect
        Tags=tags(),
    )
    made = {}
    for suffix, tier, instance_class in members:
        made[suffix] = f"{name}-{suffix}"
        rds.create_db_instance(
            DBInstanceIdentifier=made[suffix],
            DBClusterIdentifier=name,
            Engine="aurora-postgresql",
            DBInstanceClass=instance_class,
            PromotionTier=tier,
            Tags=tags(),
        )
    return Cluster(name, made)


def publish_lag(aws: Aws, replica: str, seconds: float) -> None:
    """The replica's ReplicaLag, as RDS publishes it every minute (the runbook's precheck reads it)."""
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": replica}],
                "Value": seconds,
                "Unit": "Seconds",
            }
        ],
    )


def connections_alarm(aws: Aws, primary: str) -> str:
    """The alarm on ``primary`` accepting no connections (what the world's fault fires)."""
    name = f"selfheal-db-primary-{primary}-connections"
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        AlarmDescription=f"{primary} accepts no connections",
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": primary}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=3,
        Threshold=0,
        ComparisonOperator="LessThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )
    return name


def cname_value(aws: HasClients, zone: str, record: str) -> str:
    found = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone, StartRecordName=record, MaxItems="1"
    )["ResourceRecordSets"]
    return str(found[0]["ResourceRecords"][0]["Value"])


def build(aws: Aws) -> str:
    zone = private_zone(aws, ZONE)
    database(aws, PRIMARY, zone, RECORD, params={"verifyIntervalSeconds": "1"})
    connections_alarm(aws, PRIMARY)
    return f"{PRIMARY} (primary) and {REPLICA}; {RECORD} -> {PRIMARY} in zone {zone.id}; alarm {ALARM}"


def zone_id(aws: Aws) -> str:
    return hosted_zone(aws, ZONE, "promote-replica")


def _instance(aws: Aws, identifier: str) -> dict[str, Any]:
    rds = aws.client("rds")
    try:
        return dict(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])
    except rds.exceptions.DBInstanceNotFoundFault as exc:
        raise UnknownWorld(f"no DB instance {identifier}: was the promote-replica world built?") from exc


def _primary_fails(aws: Aws) -> None:
    """The primary's storage fails (only AWS can do that: the control API), its connections alarm
    fires. The replica goes on publishing its lag, as RDS does every minute."""
    alarm(aws, ALARM)
    publish_lag(aws, REPLICA, REPLICA_LAG_SECONDS)
    aws.controls().set_db_instance_status(PRIMARY, "failed")
    alarm_fires(
        aws,
        ALARM,
        "Threshold Crossed: 3 out of the last 3 datapoints [0.0, 0.0, 0.0] <= the threshold (0.0)",
    )


def _name_on_the_new_writer(aws: Aws) -> tuple[bool, str]:
    value = cname_value(aws, zone_id(aws), RECORD)
    writer = _instance(aws, REPLICA)
    standalone = writer["DBInstanceStatus"] == "available" and not writer.get(
        "ReadReplicaSourceDBInstanceIdentifier"
    )
    return (
        value == writer["Endpoint"]["Address"] and standalone,
        f"{RECORD} -> {value} ({REPLICA} is {'a standalone writer' if standalone else 'still a replica'})",
    )


WORLD = World(
    runbook="promote-replica",
    describe=f"the database {PRIMARY}, its replica {REPLICA} and the name {RECORD}",
    build=build,
    # What an operator passes to sam deploy: the zone exists only once the world is built.
    parameters=lambda aws: {"DatabaseHostedZoneId": zone_id(aws), "DatabaseRecordNames": RECORD.rstrip(".")},
    faults=(
        Fault(
            name="orders-db-failed",
            runbook="promote-replica",
            title=f"{PRIMARY} (the shop's primary database) fails; its read replica must take over",
            injected=f"{PRIMARY}'s storage fails; the alarm {ALARM} goes to ALARM",
            inject=_primary_fails,
            target_key=lambda aws: PRIMARY,
            healed=_name_on_the_new_writer,
        ),
    ),
)
