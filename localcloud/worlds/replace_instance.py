"""replace-instance: an Auto Scaling web tier, and a standalone EBS-backed batch host.

The group is fenced with the tag propagated to its members (as the README says: a member is managed
when it carries the fence tag), and one member has a system status-check alarm. batch-1 is a fenced
instance of its own: AWS Health announcing its retirement is healed by a stop and start onto new
hardware.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from localcloud import ops
from localcloud.worlds import (
    ACCOUNT,
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
    remap_eip,
    run_instance,
    status_check_alarm,
    tags,
)
from localcloud.worlds.remap_eip import HasClient

GROUP = "shop-web-asg"
MEMBER_ALARM = "shop-web-asg-member-status-check-failed"
BATCH = "batch-1"
RETIREMENT = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
INSTANCE_TYPE = "t3.small"


@dataclass(frozen=True)
class Group:
    """An Auto Scaling group launching from a launch template of its own name."""

    name: str
    template: str
    instances: tuple[str, ...]  # its members once it was built, sorted

    def members(self, aws: HasClient) -> list[dict[str, Any]]:
        return members(aws, self.name)


@dataclass(frozen=True)
class Served:
    """A standalone instance behind an Elastic IP and a target group, as a replacement needs it."""

    instance: str
    allocation: str
    target_group: str
    template: str


@dataclass(frozen=True)
class Profile:
    """An instance profile and its role, both named ``name``: what a replacement would pass on."""

    name: str
    role_arn: str
    arn: str


def launch_template(aws: Aws, name: str) -> str:
    return str(
        aws.client("ec2").create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData={"ImageId": image(aws), "InstanceType": INSTANCE_TYPE}
        )["LaunchTemplate"]["LaunchTemplateId"]
    )


def group(aws: Aws, name: str, *, size: int = 2, fenced: bool = True) -> Group:
    """A group of ``size`` (room for one more) in the shop's subnets; fenced as the README says: the
    fence tag propagated to its members."""
    _, subnets = network(aws)
    template = launch_template(aws, name)
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=size,
        MaxSize=size + 1,
        DesiredCapacity=size,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[{**tag, "PropagateAtLaunch": True} for tag in tags(("Name", name), fenced=fenced)],
    )
    return Group(name, template, tuple(sorted(m["InstanceId"] for m in members(aws, name))))


def described(aws: HasClient, name: str) -> dict[str, Any]:
    """The group ``name`` as Auto Scaling describes it now."""
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    if not groups["AutoScalingGroups"]:
        raise UnknownWorld(f"no Auto Scaling group {name}: was the replace-instance world built?")
    return dict(groups["AutoScalingGroups"][0])


def members(aws: HasClient, name: str) -> list[dict[str, Any]]:
    return list(described(aws, name)["Instances"])


def default_security_group(aws: Aws) -> str:
    """The shop VPC's default security group (EC2 gives every VPC instance one; moto gives none)."""
    vpc, _ = network(aws)
    (found,) = aws.client("ec2").describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    return str(found["GroupId"])


def standalone(
    aws: Aws, name: str, *, fenced: bool = True, security_group: bool = False, profile: str | None = None
) -> str:
    """An EBS-backed instance in no group. Without a security group (``security_group=False``) no
    replacement can be launched from its image; ``profile``: the ARN of its instance profile."""
    _, subnets = network(aws)
    launch: dict[str, Any] = {}
    if security_group:
        launch["SecurityGroupIds"] = [default_security_group(aws)]
    if profile:
        launch["IamInstanceProfile"] = {"Arn": profile}
    return run_instance(aws, name, subnets[0], ("Role", "batch"), fenced=fenced, **launch)


def instance_profile(aws: Aws, name: str) -> Profile:
    iam = aws.client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return Profile(name, str(role), str(profile))


def target_group(aws: Aws, name: str, instance: str, *, port: int = 8080, fenced: bool = True) -> str:
    """A target group in the shop's VPC with ``instance`` registered (on the group's port)."""
    vpc, _ = network(aws)
    elb = aws.client("elbv2")
    fence = tags(fenced=fenced)
    arn = elb.create_target_group(
        Name=name, Protocol="HTTP", Port=port, VpcId=vpc, **({"Tags": fence} if fence else {})
    )["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance}])
    return str(arn)


def served(aws: Aws, name: str, *, fenced: bool = True) -> Served:
    """An instance launched from its launch template, holding an Elastic IP, in a target group; with
    ``fenced=False`` none of them carries the fence tag."""
    _, subnets = network(aws)
    template = launch_template(aws, name)
    instance = aws.client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinCount=1,
        MaxCount=1,
        SubnetId=subnets[0],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags(("Name", name), fenced=fenced)}],
    )["Instances"][0]["InstanceId"]
    eip = remap_eip.address(aws, name, on=instance, fenced=fenced)
    return Served(instance, eip.allocation, target_group(aws, name, instance, fenced=fenced), template)


def registered(aws: HasClient, target_group_arn: str) -> list[str]:
    """The instances registered in the target group now."""
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)
    return [d["Target"]["Id"] for d in health["TargetHealthDescriptions"]]


def build(aws: Aws) -> str:
    web = group(aws, GROUP)
    status_check_alarm(
        aws,
        MEMBER_ALARM,
        web.instances[0],  # the member the fault breaks
        "StatusCheckFailed_System",
        "an Auto Scaling web instance failed its EC2 system status check",
    )
    batch, sick = standalone(aws, BATCH), web.instances[0]
    return f"{GROUP} {list(web.instances)} (alarm {MEMBER_ALARM} on {sick}), standalone {BATCH} {batch}"


def _sick_member(aws: Aws) -> str:
    """The member the alarm watches: the instance the fault breaks."""
    dimensions = {d["Name"]: d["Value"] for d in alarm(aws, MEMBER_ALARM)["Dimensions"]}
    return str(dimensions["InstanceId"])


def _member_fails(aws: Aws) -> None:
    alarm_fires(aws, MEMBER_ALARM, STATUS_CHECK_CROSSED)


def _group_whole_without_the_sick_member(aws: Aws) -> tuple[bool, str]:
    web, sick = described(aws, GROUP), _sick_member(aws)
    states = {m["InstanceId"]: f"{m['LifecycleState']}/{m['HealthStatus']}" for m in web["Instances"]}
    healed = (
        sick not in states
        and len(states) == web["DesiredCapacity"]
        and set(states.values()) == {"InService/Healthy"}
    )
    return healed, f"{GROUP}: {states} (replaced {sick})"


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
