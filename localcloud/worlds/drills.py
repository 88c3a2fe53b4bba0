"""Drill resources on the local cloud: each runbook's world parts marked ``selfheal:drill=true``.

``selfheal drill`` only touches resources an operator marked for drills (the drill tag besides the
fence tag). These builders make such resources with unique names, from the worlds' own builders, so
the e2e tests (and anyone on the local cloud) drill exactly what an operator would mark in their
account: the drill alarm (or health check) that triggers the runbook, and the resource it heals.
``mark_ready_worlds`` marks the ready worlds of ``selfheal local serve --world`` the same way.

Each builder returns a ``DrillWorld``: the drill's trigger (what ``selfheal drill --target`` names)
and the stack's variables its scope needs (a zone a runbook may change), which a test sets on the
steps function as an operator would redeploy with their parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from localcloud.worlds import (
    FENCE,
    Aws,
    World,
    alarm,
    image,
    instance_named,
    network,
    run_instance,
    set_alarm,
    status_check_alarm,
    tags,
    unique,
)

DRILL = ("selfheal:drill", "true")


@dataclass(frozen=True)
class DrillWorld:
    runbook: str
    trigger: str  # `selfheal drill RUNBOOK --target TRIGGER`
    target: str  # the audit trail's key for what the run acts on
    # The steps function's variables (stack parameters) that put it into the runbook's scope.
    scope: Mapping[str, str] = field(default_factory=dict)
    parts: Mapping[str, str] = field(default_factory=dict)


def mark_alarm(aws: Aws, name: str) -> None:
    cloudwatch = aws.client("cloudwatch")
    cloudwatch.tag_resource(
        ResourceARN=alarm(aws, name)["AlarmArn"], Tags=[{"Key": DRILL[0], "Value": DRILL[1]}]
    )


def mark_instance(aws: Aws, instance: str) -> None:
    aws.client("ec2").create_tags(Resources=[instance], Tags=[{"Key": DRILL[0], "Value": DRILL[1]}])


def mark_db(aws: Aws, identifier: str) -> None:
    rds = aws.client("rds")
    arn = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceArn"]
    rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": DRILL[0], "Value": DRILL[1]}])


def mark_health_check(aws: Aws, health_check: str) -> None:
    aws.client("route53").change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=health_check, AddTags=[{"Key": DRILL[0], "Value": DRILL[1]}]
    )


def mark_queue(aws: Aws, name: str) -> None:
    sqs = aws.client("sqs")
    sqs.tag_queue(QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"], Tags={DRILL[0]: DRILL[1]})


# --- one builder per runbook -----------------------------------------------------------------------


def remap_eip(aws: Aws, *, drill_tag: bool = True) -> DrillWorld:
    """A primary and its standby behind a fenced Elastic IP; the drill alarm on the primary's status
    check. ``drill_tag=False``: the same, unmarked (what a drill must refuse)."""
    ec2, name = aws.client("ec2"), unique("drill-api")
    _, subnets = network(aws)
    marks = (DRILL,) if drill_tag else ()
    primary = run_instance(aws, f"{name}-1", subnets[0], *marks)
    standby = run_instance(aws, f"{name}-2", subnets[1], *marks)
    address = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {
                "ResourceType": "elastic-ip",
                "Tags": tags(
                    ("Name", name),
                    ("selfheal:param:standbyInstanceId", standby),
                    ("selfheal:primary", primary),
                ),
            }
        ],
    )
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=primary)
    trigger = f"{name}-status-check-failed"
    status_check_alarm(
        aws, trigger, primary, "StatusCheckFailed", f"{name}-1 failed its status checks (drill)"
    )
    if drill_tag:
        mark_alarm(aws, trigger)
    parts = {"primary": primary, "standby": standby, "allocationId": address["AllocationId"]}
    return DrillWorld("remap-eip", trigger, primary, parts=parts)


def replace_instance(aws: Aws) -> DrillWorld:
    """A fenced Auto Scaling group of two (the fence and drill tags propagated to its members); the
    drill alarm on one member's system status check."""
    ec2, autoscaling, name = aws.client("ec2"), aws.client("autoscaling"), unique("drill-web")
    _, subnets = network(aws)
    template = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": image(aws), "InstanceType": "t3.small"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=2,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[
            {**FENCE, "PropagateAtLaunch": True},
            {"Key": DRILL[0], "Value": DRILL[1], "PropagateAtLaunch": True},
            {"Key": "Name", "Value": name, "PropagateAtLaunch": True},
        ],
    )
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    member = sorted(m["InstanceId"] for m in group["Instances"])[0]
    trigger = f"{name}-member-status-check-failed"
    status_check_alarm(aws, trigger, member, "StatusCheckFailed_System", "a drill web member failed (drill)")
    mark_alarm(aws, trigger)
    return DrillWorld("replace-instance", trigger, member, parts={"group": name})


def redrive_dlq(aws: Aws) -> DrillWorld:
    """A fenced source queue and its declared DLQ (both marked), empty; the DLQ alarm is the trigger,
    the consumer's health alarm OK."""
    from localcloud.worlds.redrive_dlq import PACE, consumer_alarm, dlq_alarm, queues

    name = unique("drill-orders")
    consumer = consumer_alarm(aws, f"{name}-consumer-errors")
    set_alarm(aws, consumer, "OK", "Errors = 0")
    dlq = queues(aws, name, params={**PACE, "consumerAlarmName": consumer}, dlq_tags=dict([DRILL]))
    mark_queue(aws, name)
    trigger = dlq_alarm(aws, dlq.name)
    mark_alarm(aws, trigger)
    return DrillWorld("redrive-dlq", trigger, dlq.name, parts={"source": name, "dlq": dlq.name})


def promote_replica(aws: Aws) -> DrillWorld:
    """A primary and its replica (both marked), its CNAME in a zone of its own; the drill alarm is
    the primary's connections alarm (the policy routes selfheal-db-primary-* alarms)."""
    from localcloud.worlds.promote_replica import (
        REPLICA_LAG_SECONDS,
        connections_alarm,
        database,
        private_zone,
    )

    name = unique("drill-db")
    zone = private_zone(aws, f"{name}.internal.")
    db = database(
        aws, name, zone, f"db.{zone.name}", params={"verifyIntervalSeconds": "1"}, lag=REPLICA_LAG_SECONDS
    )
    for identifier in (db.primary, db.replica):
        mark_db(aws, identifier)
    trigger = connections_alarm(aws, db.primary)
    mark_alarm(aws, trigger)
    scope = {"DATABASE_HOSTED_ZONE_ID": zone.id, "DATABASE_RECORD_NAMES": f"db.{zone.name}".rstrip(".")}
    return DrillWorld("promote-replica", trigger, db.primary, scope=scope, parts={"replica": db.replica})


def flip_dns(aws: Aws) -> DrillWorld:
    """A weighted pair in a zone of its own, both health checks marked; the primary's health check is
    the trigger (the drill inverts it), with the HealthCheckStatus alarm the companion makes."""
    from localcloud.worlds.flip_dns import PRIMARY_IP, SECONDARY_IP, build_health_check, unique_zone

    zone = unique_zone(aws)
    blue, green = (build_health_check(aws, ip, DRILL) for ip in (PRIMARY_IP, SECONDARY_IP))
    fast = {"holdDownSeconds": "4", "primaryHealthySeconds": "1", "verifyIntervalSeconds": "0"}
    pair = zone.weighted("api", sides=(blue, green), params=fast)
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=f"route53-{blue.id}",
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": blue.id}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    scope = {"FLIP_DNS_HOSTED_ZONE_IDS": zone.id, "FLIP_DNS_RECORD_NAMES": pair.record.rstrip(".")}
    return DrillWorld(
        "flip-dns", blue.id, blue.id, scope=scope, parts={"zone": zone.id, "record": pair.record}
    )


BUILDERS: dict[str, Callable[[Aws], DrillWorld]] = {
    "remap-eip": remap_eip,
    "replace-instance": replace_instance,
    "redrive-dlq": redrive_dlq,
    "promote-replica": promote_replica,
    "flip-dns": flip_dns,
}


# --- the ready worlds, marked for drills ----------------------------------------------------------------


def _mark_remap_eip(aws: Aws) -> str:
    from localcloud.worlds import remap_eip as world

    for name in ("api-1", "api-2"):
        mark_instance(aws, instance_named(aws, name))
    mark_alarm(aws, world.ALARM)
    return world.ALARM


def _mark_replace_instance(aws: Aws) -> str:
    from localcloud.worlds import replace_instance as world

    dimensions = {d["Name"]: d["Value"] for d in alarm(aws, world.MEMBER_ALARM)["Dimensions"]}
    mark_instance(aws, dimensions["InstanceId"])
    mark_alarm(aws, world.MEMBER_ALARM)
    return world.MEMBER_ALARM


def _mark_redrive_dlq(aws: Aws) -> str:
    from localcloud.worlds import redrive_dlq as world

    for name in (world.SOURCE, world.DLQ):
        mark_queue(aws, name)
    set_alarm(aws, world.CONSUMER_ALARM, "OK", "Errors = 0")
    mark_alarm(aws, world.DLQ_ALARM)
    return world.DLQ_ALARM


def _mark_promote_replica(aws: Aws) -> str:
    from localcloud.worlds import promote_replica as world

    for identifier in (world.PRIMARY, world.REPLICA):
        mark_db(aws, identifier)
    world.publish_lag(aws, world.REPLICA, world.REPLICA_LAG_SECONDS)
    mark_alarm(aws, world.ALARM)
    return world.ALARM


def _mark_flip_dns(aws: Aws) -> str:
    from localcloud.worlds import flip_dns as world

    for side in world.SIDES:
        mark_health_check(aws, world.health_check(aws, side))
    return world.health_check(aws, "blue")


MARKERS: dict[str, Callable[[Aws], str]] = {
    "remap-eip": _mark_remap_eip,
    "replace-instance": _mark_replace_instance,
    "redrive-dlq": _mark_redrive_dlq,
    "promote-replica": _mark_promote_replica,
    "flip-dns": _mark_flip_dns,
}


def mark_ready_worlds(aws: Aws, chosen: Iterable[World]) -> dict[str, str]:
    """Mark the built ready worlds' resources for drills; runbook -> the drill's trigger."""
    return {world.runbook: MARKERS[world.runbook](aws) for world in chosen}


def drill_file(triggers: Mapping[str, str]) -> dict[str, Any]:
    """A drill file (``selfheal drill --file``) naming these triggers."""
    return {"targets": dict(triggers)}
