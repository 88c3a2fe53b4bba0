"""replace-instance: an Auto Scaling web tier, and a standalone EBS-backed batch host.

The group is fenced with the tag propagated to its members (as the README says: a member is managed
when it carries the fence tag), and one member has a system status-check alarm. batch-1 is a fenced
instance of its own: AWS Health announcing its retirement is healed by a stop and start onto new
hardware.
"""

from __future__ import annotations

from typing import Any

from localcloud import ops
from localcloud.worlds import (
    ACCOUNT,
    FENCE,
    REGION,
    STATUS_CHECK_CROSSED,
    Aws,
    Fault,
    UnknownWorld,
    World,
    alarm,
    alarm_fires,
    image,
    instance_named,
    network,
    run_instance,
    status_check_alarm,
)

GROUP = "shop-web-asg"
MEMBER_ALARM = "shop-web-asg-member-status-check-failed"
BATCH = "batch-1"
RETIREMENT = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"


def build(aws: Aws) -> str:
    ec2, autoscaling = aws.client("ec2"), aws.client("autoscaling")
    _, subnets = network(aws)
    template = ec2.create_launch_template(
        LaunchTemplateName=GROUP, LaunchTemplateData={"ImageId": image(aws), "InstanceType": "t3.small"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=2,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[
            {**FENCE, "PropagateAtLaunch": True},
            {"Key": "Name", "Value": GROUP, "PropagateAtLaunch": True},
        ],
    )
    members = sorted(m["InstanceId"] for m in _group(aws)["Instances"])
    status_check_alarm(
        aws,
        MEMBER_ALARM,
        members[0],
        "StatusCheckFailed_System",
        "an Auto Scaling web instance failed its EC2 system status check",
    )
    batch = run_instance(aws, BATCH, subnets[0], ("Role", "batch"))
    return f"{GROUP} {members} (alarm {MEMBER_ALARM} on {members[0]}), standalone {BATCH} {batch}"


def _group(aws: Aws) -> dict[str, Any]:
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])
    if not groups["AutoScalingGroups"]:
        raise UnknownWorld(f"no Auto Scaling group {GROUP}: was the replace-instance world built?")
    return dict(groups["AutoScalingGroups"][0])


def _sick_member(aws: Aws) -> str:
    """The member the alarm watches: the instance the fault breaks."""
    dimensions = {d["Name"]: d["Value"] for d in alarm(aws, MEMBER_ALARM)["Dimensions"]}
    return str(dimensions["InstanceId"])


def _member_fails(aws: Aws) -> None:
    alarm_fires(aws, MEMBER_ALARM, STATUS_CHECK_CROSSED)


def _group_whole_without_the_sick_member(aws: Aws) -> tuple[bool, str]:
    group, sick = _group(aws), _sick_member(aws)
    members = {m["InstanceId"]: f"{m['LifecycleState']}/{m['HealthStatus']}" for m in group["Instances"]}
    healed = (
        sick not in members
        and len(members) == group["DesiredCapacity"]
        and set(members.values()) == {"InService/Healthy"}
    )
    return healed, f"{GROUP}: {members} (replaced {sick})"


def retirement_notice(instance: str) -> dict[str, Any]:
    """The AWS Health event of a scheduled retirement, as AWS puts it on the default bus."""
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance}"
    return {
        "source": "aws.health",
        "detail-type": "AWS Health Event",
        "resources": [instance],
        "detail": {
            "eventArn": f"arn:aws:health:{REGION}::event/EC2/{RETIREMENT}/{RETIREMENT}_{instance}",
            "service": "EC2",
            "eventTypeCode": RETIREMENT,
            "eventTypeCategory": "scheduledChange",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "statusCode": "upcoming",
            "eventRegion": REGION,
            "eventDescription": [
                {
                    "language": "en_US",
                    "latestDescription": "EC2 has detected degradation of the underlying hardware"
                    " hosting your Amazon EC2 instance. We will stop your instance in two weeks.",
                }
            ],
            "affectedEntities": [{"entityValue": arn, "status": "PENDING"}],
            "affectedAccount": ACCOUNT,
        },
    }


def _retirement_scheduled(aws: Aws) -> None:
    ops.put_event(aws.client("events"), retirement_notice(instance_named(aws, BATCH)))


def _batch_running_on_new_hardware(aws: Aws) -> tuple[bool, str]:
    batch = instance_named(aws, BATCH)
    statuses = aws.client("ec2").describe_instance_status(InstanceIds=[batch], IncludeAllInstances=True)[
        "InstanceStatuses"
    ]
    status = statuses[0] if statuses else {}
    state = status.get("InstanceState", {}).get("Name")
    checks = (status.get("SystemStatus", {}).get("Status"), status.get("InstanceStatus", {}).get("Status"))
    return state == "running" and checks == (
        "ok",
        "ok",
    ), f"{BATCH} {batch} is {state}, status checks {checks}"


WORLD = World(
    runbook="replace-instance",
    describe=f"the Auto Scaling group {GROUP} and the standalone host {BATCH}",
    build=build,
    parameters=lambda aws: {},
    faults=(
        Fault(
            name="asg-member-status-check-failed",
            runbook="replace-instance",
            title=f"a web instance of {GROUP} fails its system status check",
            injected=f"the alarm {MEMBER_ALARM} goes to ALARM; CloudWatch publishes the state change",
            inject=_member_fails,
            target_key=_sick_member,
            healed=_group_whole_without_the_sick_member,
        ),
        Fault(
            name="batch-1-retirement-scheduled",
            runbook="replace-instance",
            title=f"AWS Health schedules the retirement of {BATCH} (standalone, EBS-backed)",
            injected=f"AWS Health puts a scheduled retirement for {BATCH} on the bus",
            inject=_retirement_scheduled,
            target_key=lambda aws: instance_named(aws, BATCH),
            healed=_batch_running_on_new_hardware,
        ),
    ),
)
