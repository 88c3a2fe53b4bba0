"""promote-replica: the orders database, its read replica, and the DNS name the shop connects to.

orders-db is fenced and names, in ``selfheal:param:*`` tags, the private zone and record that point
at it; the replica is fenced. The stack must name the zone and record too (DatabaseHostedZoneId,
DatabaseRecordNames): a tag alone cannot send the runbook to a zone the operator did not declare.
"""

from __future__ import annotations

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
)

PRIMARY, REPLICA = "orders-db", "orders-db-replica-1"
ZONE, RECORD = "shop.internal.", "orders-db.shop.internal."
ALARM = f"selfheal-db-primary-{PRIMARY}-connections"
# Under the stack's PromoteReplicaMaxLagSeconds (60): the promotion needs no approval.
REPLICA_LAG_SECONDS = 1.0


def build(aws: Aws) -> str:
    rds, r53, cw = aws.client("rds"), aws.client("route53"), aws.client("cloudwatch")
    zone = r53.create_hosted_zone(
        Name=ZONE,
        CallerReference="selfheal-world-orders-db",
        HostedZoneConfig={"PrivateZone": True, "Comment": "names the shop uses"},
        VPC={"VPCRegion": REGION, "VPCId": "vpc-0demo0000000000a"},
    )["HostedZone"]["Id"].rsplit("/", 1)[-1]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone, AddTags=tags())
    params = {"hostedZoneId": zone, "recordName": RECORD, "verifyIntervalSeconds": "1"}
    primary = rds.create_db_instance(
        DBInstanceIdentifier=PRIMARY,
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        AllocatedStorage=100,
        MasterUsername="shop",
        MasterUserPassword="local-cloud-only",  # a moto database: nothing to protect
        Tags=tags(*param_tags(params)),
    )["DBInstance"]
    rds.create_db_instance_read_replica(
        DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=PRIMARY, Tags=tags()
    )
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": RECORD,
                        "Type": "CNAME",
                        "TTL": 30,
                        "ResourceRecords": [{"Value": primary["Endpoint"]["Address"]}],
                    },
                }
            ]
        },
    )
    cw.put_metric_alarm(
        AlarmName=ALARM,
        AlarmDescription=f"{PRIMARY} accepts no connections",
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": PRIMARY}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=3,
        Threshold=0,
        ComparisonOperator="LessThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )
    return f"{PRIMARY} (primary) and {REPLICA}; {RECORD} -> {PRIMARY} in zone {zone}; alarm {ALARM}"


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
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": REPLICA}],
                "Value": REPLICA_LAG_SECONDS,
                "Unit": "Seconds",
            }
        ],
    )
    aws.controls().set_db_instance_status(PRIMARY, "failed")
    alarm_fires(
        aws,
        ALARM,
        "Threshold Crossed: 3 out of the last 3 datapoints [0.0, 0.0, 0.0] <= the threshold (0.0)",
    )


def _name_on_the_new_writer(aws: Aws) -> tuple[bool, str]:
    record = aws.client("route53").list_resource_record_sets(
        HostedZoneId=zone_id(aws), StartRecordName=RECORD, MaxItems="1"
    )["ResourceRecordSets"][0]
    value = record["ResourceRecords"][0]["Value"]
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
