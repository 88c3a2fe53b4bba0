"""replace-instance: heal a failed or retiring EC2 instance, in or out of an Auto Scaling group.

Three paths, chosen by ``resolve`` from what the instance is (``params.strategy`` may force one):

- ``asg``: the instance belongs to an Auto Scaling group -> ``SetInstanceHealth Unhealthy`` so the
  group replaces it; never more than ``maxInFlight`` members of the group out of service at once;
  verify the group is back to its desired capacity, all InService and Healthy, the old one gone.
- ``stop-start``: a standalone EBS-backed instance -> ``StopInstances`` then ``StartInstances``
  (a stopped instance starts on other hardware); verify running with both status checks ok.
- ``launch-template``: anything else (instance-store root, or ``params.strategy``) -> ``RunInstances``
  a replacement from the instance's launch template (else its AMI, type, subnet, security groups,
  instance profile), carrying its tags (so it is fenced too); verify it running with both checks ok;
  register it in each of the old one's target groups and verify it healthy there; move the Elastic IP
  and check the address now points at it; then deregister the old one and retire it (``params.retire``:
  stop or terminate). Any failure before that terminates the replacement (the Elastic IP moved back,
  the registrations undone first) and leaves the old one untouched.

When stop/start does not heal the instance (a call fails, it does not stop, or it is not healthy after
the start), the state machine falls back to the launch-template path (``params.fallback``):
``fallback_plan`` re-plans the replacement then, and the fence and the scope guard are checked again
on what it would touch.

"Don't fight AWS": ``resolve`` raises AlreadyRecovering when EC2 is moving the instance (pending,
stopping, shutting-down), when its status checks are still initializing (it was just started or
recovered), when a maintenance reboot is in its window now, when a CloudWatch alarm with the EC2
recover action is in ALARM for it, or when its group already marked it unhealthy.

The mutations and their verification run as direct SDK integrations in the workflow
(``tools/asl/runbooks/replace_instance.py``); this module decides the path, checks it is safe and
declares the exact calls.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from selfheal.config import listed
from selfheal.ec2 import describe_instance
from selfheal.errors import (
    AlreadyRecovering,
    GroupBudgetExceeded,
    GroupCannotReplace,
    NotApplicable,
    OutsideFence,
    PreconditionFailed,
    TerminalError,
    UnknownResource,
)
from selfheal.guards import fence_violations
from selfheal.models import StrictModel
from selfheal.runbooks.base import Call, CallSpec, Plan, Runbook, placeholder, register

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

    from selfheal.clients import Clients
    from selfheal.config import Settings

Path = Literal["asg", "stop-start", "launch-template"]

IAM_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "cloudwatch:DescribeAlarms",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:SetInstanceHealth",
    "ec2:StopInstances",
    "ec2:StartInstances",
    # launch-template path
    "ec2:DescribeAddresses",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "ec2:RunInstances",
    "ec2:CreateTags",
    "elasticloadbalancing:DescribeTags",
    "iam:GetInstanceProfile",
    "iam:PassRole",
    "ec2:AssociateAddress",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "ec2:TerminateInstances",
)
# Tags EC2 owns (aws:*): copied onto nothing, RunInstances refuses them.
_RESERVED_TAG_PREFIX = "aws:"
# The RunInstances requests the workflow can send (one SDK task each: its Parameters are fixed keys),
# by name. A replacement whose request has another shape is refused (PreconditionFailed).
_FROM_IMAGE = (
    "MinCount",
    "MaxCount",
    "ImageId",
    "InstanceType",
    "SubnetId",
    "SecurityGroupIds",
    "TagSpecifications",
)
LAUNCH_SHAPES: dict[str, tuple[str, ...]] = {
    "template": ("MinCount", "MaxCount", "LaunchTemplate", "SubnetId", "TagSpecifications"),
    "image": _FROM_IMAGE,
    "image-profile": (*_FROM_IMAGE, "IamInstanceProfile"),
    "image-key": (*_FROM_IMAGE, "KeyName"),
    "image-profile-key": (*_FROM_IMAGE, "IamInstanceProfile", "KeyName"),
}
# The replacement's id in the planned calls: the workflow fills it in once it is launched (a dry run
# launches nothing, so its would-do rows show this).
REPLACEMENT = placeholder("replacement")

# States in which EC2 is already moving the instance: acting now would fight AWS.
_EC2_RECOVERING = {"pending", "stopping", "shutting-down"}
# Scheduled events during whose window EC2 itself reboots or repairs the instance. Retirement events
# (instance-stop, instance-retirement, system-... ) are what this runbook heals, so they are not here.
_EC2_MAINTENANCE_EVENTS = {"instance-reboot", "system-reboot", "system-maintenance"}
# The status-check metrics a CloudWatch alarm may carry the EC2 recover action on.
_RECOVER_METRICS = ("StatusCheckFailed_System", "StatusCheckFailed")
# Processes without which the group cannot replace an unhealthy member.
_REPLACEMENT_PROCESSES = ("HealthCheck", "ReplaceUnhealthy", "Terminate", "Launch")


class OldInstanceStillRegistered(TerminalError):
    """The replacement serves (the address on it, healthy in every target group), but the old
    instance could not be taken out of a target group: it is left there, running, for a human."""


class ReplaceInstanceTarget(StrictModel):
    instance_id: str = Field(alias="instanceId", pattern=r"^i-[0-9a-f]{8,17}$")

    @property
    def key(self) -> str:
        return self.instance_id


class ReplaceInstanceParams(StrictModel):
    strategy: Literal["auto", "asg", "stop-start", "launch-template"] = Field(
        default="auto", description="auto: asg if a group member, else stop-start if EBS-backed"
    )
    max_in_flight: int = Field(
        default=1,
        alias="maxInFlight",
        ge=1,
        le=10,
        description="At most this many members of the group out of service (replacing) at once",
    )
    force_stop: bool = Field(
        default=False, alias="forceStop", description="StopInstances Force (no guest shutdown)"
    )
    verify_attempts: int = Field(
        default=30,
        alias="verifyAttempts",
        ge=1,
        le=120,
        description="Checks of the result (each path's) before the run fails",
    )
    verify_interval_seconds: int = Field(
        default=10, alias="verifyIntervalSeconds", ge=0, le=300, description="Seconds between those checks"
    )
    retire: Literal["stop", "terminate"] = Field(
        default="stop",
        description="launch-template path: what happens to the old instance once the new one serves",
    )
    fallback: Literal["launch-template", "none"] = Field(
        default="launch-template",
        description="stop-start path: when stop/start does not heal it, launch a replacement (or fail)",
    )


class Registration(StrictModel):
    """One target group the old instance serves, and the target it is registered as there."""

    target_group_arn: str = Field(alias="targetGroupArn")
    target: dict[str, Any]


class ReplacePlan(Plan):
    instance_id: str = Field(alias="instanceId")
    path: Path
    root_device_type: str = Field(alias="rootDeviceType")
    # Read by resolve's DescribeInstances and carried here, so precheck need not describe it again.
    instance_type: str | None = Field(default=None, alias="instanceType")
    auto_scaling_group_name: str | None = Field(default=None, alias="autoScalingGroupName")
    max_in_flight: int = Field(alias="maxInFlight")
    force_stop: bool = Field(alias="forceStop")
    verify_attempts: int = Field(alias="verifyAttempts")
    verify_interval_seconds: int = Field(alias="verifyIntervalSeconds")
    # launch-template path only
    launch: dict[str, Any] | None = None
    instance_profile_arn: str | None = Field(default=None, alias="instanceProfileArn")
    pass_role_arns: list[str] = Field(default_factory=list, alias="passRoleArns")
    allocation_id: str | None = Field(default=None, alias="allocationId")
    has_address: bool = Field(default=False, alias="hasAddress")
    registrations: list[Registration] = Field(default_factory=list)
    has_target_group: bool = Field(default=False, alias="hasTargetGroup")
    retire: Literal["stop", "terminate"] = "stop"
    # stop-start path: what the state machine does when stop/start does not heal the instance.
    fallback: Literal["launch-template", "none"] = "none"
    # Set on the plan fallback_plan returns: the path that failed first.
    fallback_from: str | None = Field(default=None, alias="fallbackFrom")


def _tags(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def _membership(autoscaling: Any, instance_id: str) -> dict[str, Any] | None:
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return dict(found[0]) if found else None


def _group(autoscaling: Any, name: str) -> dict[str, Any]:
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if not groups:
        raise UnknownResource(f"no Auto Scaling group {name}", group=name)
    return dict(groups[0])


def _group_tags(group: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in group.get("Tags", [])}


def resolve(
    clients: Clients,
    target: ReplaceInstanceTarget,
    params: ReplaceInstanceParams,
    fence_key: str,
    fence_value: str,
) -> ReplacePlan:
    """Which path heals this instance. Raises AlreadyRecovering when AWS is already on it."""
    ec2, autoscaling = clients.ec2, clients.autoscaling
    instance = describe_instance(ec2, target.instance_id)
    state = instance["State"]["Name"]
    if state in _EC2_RECOVERING:
        raise AlreadyRecovering(
            f"{target.instance_id} is {state}: EC2 is already moving it; not acting on top of that",
            instance=target.instance_id,
        )
    if state in {"stopped", "terminated"}:
        # Someone (or AWS) already took it out of service: starting it again is a human's call.
        raise NotApplicable(
            f"{target.instance_id} is {state}: nothing running to heal", instance=target.instance_id
        )
    resource_tags = {target.instance_id: _tags(instance)}
    membership = _membership(autoscaling, target.instance_id)
    group_name: str | None = membership["AutoScalingGroupName"] if membership else None
    if membership is not None and group_name is not None:
        lifecycle, health = membership["LifecycleState"], membership["HealthStatus"]
        if lifecycle != "InService" or health.upper() != "HEALTHY":
            raise AlreadyRecovering(
                f"{target.instance_id} is {lifecycle}/{health} in group {group_name}:"
                " the group is already replacing it",
                instance=target.instance_id,
                group=group_name,
            )
        resource_tags[f"autoScalingGroup/{group_name}"] = _group_tags(_group(autoscaling, group_name))
    recovering = recovery_in_progress(
        _instance_status(ec2, target.instance_id),
        _recover_alarms(clients.cloudwatch, target.instance_id),
        datetime.now(UTC),
    )
    if recovering:
        raise AlreadyRecovering(f"{target.instance_id}: {recovering}", instance=target.instance_id)
    root = instance.get("RootDeviceType", "ebs")
    path: Path
    if params.strategy != "auto":
        path = params.strategy
    elif group_name:
        path = "asg"
    elif root == "ebs":
        path = "stop-start"
    else:
        path = "launch-template"
    if path == "asg" and not group_name:
        raise PreconditionFailed(f"strategy asg, but {target.instance_id} is in no Auto Scaling group")
    if path == "launch-template" and group_name:
        raise PreconditionFailed(
            f"{target.instance_id} is a member of group {group_name}: the group replaces its members"
            " (strategy asg), a standalone replacement would fight it",
            instance=target.instance_id,
            group=group_name,
        )
    if path == "stop-start" and root != "ebs":
        raise PreconditionFailed(
            f"{target.instance_id} has an {root} root device: stop/start would lose its root volume"
        )
    extra: dict[str, Any] = {}
    if path == "launch-template":
        extra = _replacement(ec2, clients.elbv2, clients.iam, instance, resource_tags)
    return ReplacePlan(
        retire=params.retire,
        fallback=params.fallback if path == "stop-start" else "none",
        **extra,
        instance_id=target.instance_id,
        path=path,
        root_device_type=root,
        instance_type=instance.get("InstanceType"),
        auto_scaling_group_name=group_name,
        max_in_flight=params.max_in_flight,
        force_stop=params.force_stop,
        resource_tags=resource_tags,
        verify_attempts=params.verify_attempts,
        verify_interval_seconds=params.verify_interval_seconds,
    )


def recovery_in_progress(
    status: dict[str, Any], recover_alarms: list[dict[str, Any]], now: datetime
) -> str | None:
    """Why EC2 is already recovering the instance, or None (pure). ``status``: its
    DescribeInstanceStatus entry; ``recover_alarms``: alarms on it with the EC2 recover action."""
    checks = {
        "system": status.get("SystemStatus", {}).get("Status"),
        "instance": status.get("InstanceStatus", {}).get("Status"),
    }
    initializing = sorted(name for name, value in checks.items() if value == "initializing")
    if initializing:
        return (
            f"its {' and '.join(initializing)} status check is still initializing: it was just"
            " started or recovered; not acting before EC2 has checked it"
        )
    for event in status.get("Events", []):
        description = event.get("Description", "")
        if event.get("Code") not in _EC2_MAINTENANCE_EVENTS or description.startswith(
            ("[Completed]", "[Canceled]")
        ):
            continue
        not_before, not_after = event.get("NotBefore"), event.get("NotAfter")
        if not_before is not None and not_before <= now and (not_after is None or now <= not_after):
            return f"EC2 is in the window of its scheduled {event['Code']} ({description}): let it finish"
    for alarm in recover_alarms:
        if alarm.get("StateValue") == "ALARM":
            return f"alarm {alarm['AlarmName']} is in ALARM with the EC2 recover action: EC2 is recovering it"
    return None


def _recover_alarms(cloudwatch: Any, instance_id: str) -> list[dict[str, Any]]:
    """The alarms on this instance in ALARM whose actions include EC2 recover: one call for the
    account's few alarms with that action (filtered by CloudWatch), then this instance's."""
    recover = f"arn:{cloudwatch.meta.partition}:automate:{cloudwatch.meta.region_name}:ec2:recover"
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    found = []
    pages = cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmTypes=["MetricAlarm"], StateValue="ALARM", ActionPrefix=recover
    )
    for page in pages:
        for alarm in page["MetricAlarms"]:
            if (
                alarm.get("Namespace") == "AWS/EC2"
                and alarm.get("MetricName") in _RECOVER_METRICS
                and alarm.get("Dimensions") == dimensions
                and alarm.get("ActionsEnabled", True)
                and recover in alarm.get("AlarmActions", [])
            ):
                found.append(dict(alarm))
    return found


def fallback_plan(
    clients: Clients, plan: ReplacePlan, fence_key: str, fence_value: str, scope: LaunchScope
) -> ReplacePlan:
    """The launch-template plan that takes over when stop/start did not heal ``plan``'s instance.

    Planned now, not at resolve, because only now is it needed (and the instance may have stopped
    since). Its resources are fenced and its launch template or image and pass roles in scope, or it
    raises (OutsideFence, PreconditionFailed) and the execution fails as it would have without a fallback."""
    if plan.path != "stop-start" or plan.fallback != "launch-template":
        raise PreconditionFailed(f"no fallback from the {plan.path} path (params.fallback {plan.fallback})")
    instance = describe_instance(clients.ec2, plan.instance_id)
    state = instance["State"]["Name"]
    if state in {"shutting-down", "terminated"}:
        raise PreconditionFailed(f"{plan.instance_id} is {state}: nothing left to replace")
    resource_tags = {plan.instance_id: _tags(instance)}
    extra = _replacement(clients.ec2, clients.elbv2, clients.iam, instance, resource_tags)
    replacement = ReplacePlan.model_validate(
        {
            **plan.model_dump(),
            **extra,
            "path": "launch-template",
            "fallback": "none",
            "fallback_from": plan.path,
            "resource_tags": resource_tags,
        }
    )
    unfenced = fence_violations(resource_tags, fence_key, fence_value)
    if unfenced:
        raise OutsideFence(
            f"no replacement for {plan.instance_id}: it would touch {', '.join(unfenced)}, not tagged"
            f" {fence_key}={fence_value}",
            unfenced=unfenced,
        )
    refused = out_of_scope(replacement, scope)
    if refused:
        raise PreconditionFailed(
            f"no replacement for {plan.instance_id}: it would use {'; '.join(refused)}",
            outOfScope=refused,
        )
    return replacement


def launch_parameters(instance: dict[str, Any]) -> dict[str, Any]:
    """The RunInstances request for a replacement of ``instance`` (pure): its launch template (the
    version it was launched from) else its AMI, type, key, security groups and instance profile; its
    subnet; its own tags (so the replacement is fenced like it)."""
    tags = [{"Key": k, "Value": v} for k, v in sorted(_tags(instance).items())]
    own = [t for t in tags if not t["Key"].startswith(_RESERVED_TAG_PREFIX)]
    by_key = {t["Key"]: t["Value"] for t in tags}
    params: dict[str, Any] = {"MinCount": 1, "MaxCount": 1}
    template_id = by_key.get("aws:ec2launchtemplate:id")
    if template_id:
        params["LaunchTemplate"] = {
            "LaunchTemplateId": template_id,
            "Version": by_key.get("aws:ec2launchtemplate:version", "$Default"),
        }
    else:
        params["ImageId"] = instance["ImageId"]
        params["InstanceType"] = instance["InstanceType"]
        groups = [g["GroupId"] for g in instance.get("SecurityGroups", [])]
        if groups:
            params["SecurityGroupIds"] = groups
        if instance.get("KeyName"):
            params["KeyName"] = instance["KeyName"]
        if instance.get("IamInstanceProfile", {}).get("Arn"):
            params["IamInstanceProfile"] = {"Arn": instance["IamInstanceProfile"]["Arn"]}
    if instance.get("SubnetId"):
        params["SubnetId"] = instance["SubnetId"]
    if own:
        params["TagSpecifications"] = [{"ResourceType": "instance", "Tags": own}]
    return params


def _target_registrations(elbv2: Any, instance_id: str) -> list[dict[str, Any]]:
    found = []
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page["TargetGroups"]:
            if group.get("TargetType", "instance") != "instance":
                continue
            health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
            for desc in health["TargetHealthDescriptions"]:
                if desc["Target"]["Id"] == instance_id:
                    # The port is always sent: the replacement is registered on the same one.
                    target = {"Id": instance_id, "Port": desc["Target"].get("Port", group.get("Port"))}
                    found.append({"targetGroupArn": group["TargetGroupArn"], "target": target})
    return found


def _replacement(
    ec2: EC2Client, elbv2: Any, iam: Any, instance: dict[str, Any], resource_tags: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """What the launch-template path launches, moves and swaps (the plan's extra fields)."""
    instance_id = instance["InstanceId"]
    addresses = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [instance_id]}])[
        "Addresses"
    ]
    address = next((a for a in addresses if a.get("AllocationId")), None)
    if address is not None:
        resource_tags[address["AllocationId"]] = _tags(address)
    registrations = _target_registrations(elbv2, instance_id)
    arns = sorted({r["targetGroupArn"] for r in registrations})
    for chunk in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
        for description in elbv2.describe_tags(ResourceArns=arns[chunk : chunk + 20])["TagDescriptions"]:
            resource_tags[description["ResourceArn"]] = {t["Key"]: t["Value"] for t in description["Tags"]}
    launch = launch_parameters(instance)
    if LAUNCH.shape_of(launch) is None:
        raise PreconditionFailed(
            f"{instance_id}: no supported way to launch a replacement with {', '.join(sorted(launch))}"
            " (needs a subnet and tags, and security groups when it has no launch template): replace it"
            " by hand",
            instance=instance_id,
        )
    profile = instance.get("IamInstanceProfile", {}).get("Arn")
    roles = []
    if profile:  # the roles RunInstances passes (iam:PassRole), checked by the scope guard
        found = iam.get_instance_profile(InstanceProfileName=profile_name(profile))["InstanceProfile"]
        roles = sorted(r["Arn"] for r in found.get("Roles", []))
    return {
        "pass_role_arns": roles,
        "launch": launch,
        "instance_profile_arn": instance.get("IamInstanceProfile", {}).get("Arn"),
        "allocation_id": address["AllocationId"] if address else None,
        "has_address": address is not None,
        "registrations": registrations,
        "has_target_group": bool(registrations),
    }


def profile_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class LaunchScope:
    """What the stack lets a replacement be launched with: the roles its instance profile may pass,
    the launch templates and the images it may come from (comma-separated stack parameters; empty or
    "none": none; * and ? wildcards as IAM's StringLike/ArnLike). The same parameters scope the state
    machine's iam:PassRole and ec2:RunInstances, so the guard refuses what IAM would."""

    pass_role_arns: str = ""
    launch_template_ids: str = ""
    image_ids: str = ""

    @classmethod
    def of(cls, settings: Settings) -> LaunchScope:
        return cls(
            pass_role_arns=settings.replace_instance_pass_role_arns,
            launch_template_ids=settings.replace_instance_launch_template_ids,
            image_ids=settings.replace_instance_image_ids,
        )


def _declared(value: str, patterns: str) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for pattern in listed(patterns))


def out_of_scope(plan: ReplacePlan, scope: LaunchScope) -> list[str]:
    """What the replacement would be launched from or pass that the stack does not declare: its
    launch template (ReplaceInstanceLaunchTemplateIds) or, without one, its image
    (ReplaceInstanceImageIds), and the roles of its instance profile (ReplaceInstancePassRoleArns)."""
    if plan.path != "launch-template":
        return []
    refused = []
    launch = plan.launch or {}
    template = (launch.get("LaunchTemplate") or {}).get("LaunchTemplateId")
    if template and not _declared(template, scope.launch_template_ids):
        refused.append(
            f"launch template {template} (ReplaceInstanceLaunchTemplateIds:"
            f" {', '.join(listed(scope.launch_template_ids)) or 'none'})"
        )
    image = launch.get("ImageId")
    if image and not _declared(image, scope.image_ids):
        refused.append(
            f"image {image} (ReplaceInstanceImageIds: {', '.join(listed(scope.image_ids)) or 'none'})"
        )
    allowed = listed(scope.pass_role_arns)
    refused += [
        f"role {arn} of instance profile {profile_name(plan.instance_profile_arn or '')}"
        f" (allowed: {', '.join(allowed) or 'none'})"
        for arn in plan.pass_role_arns
        if arn not in allowed
    ]
    return refused


def group_budget(group: dict[str, Any], instance_id: str, max_in_flight: int) -> dict[str, Any]:
    """The group's picture and whether replacing ``instance_id`` stays within its budget (pure)."""
    members = group.get("Instances", [])
    healthy = [
        m["InstanceId"]
        for m in members
        if m["LifecycleState"] == "InService" and m["HealthStatus"].upper() == "HEALTHY"
    ]
    replacing = [m["InstanceId"] for m in members if m["InstanceId"] not in healthy]
    desired = int(group["DesiredCapacity"])
    # Out of service already: members not healthy in service, and missing members not yet launched.
    in_flight = max(len(replacing), desired - len(healthy))
    suspended = sorted(
        p["ProcessName"]
        for p in group.get("SuspendedProcesses", [])
        if p["ProcessName"] in _REPLACEMENT_PROCESSES
    )
    return {
        "group": group["AutoScalingGroupName"],
        "desiredCapacity": desired,
        "minSize": int(group["MinSize"]),
        "maxSize": int(group["MaxSize"]),
        "healthyInService": healthy,
        "outOfService": replacing,
        "inFlight": in_flight,
        "maxInFlight": max_in_flight,
        "suspendedProcesses": suspended,
        "withinBudget": in_flight < max_in_flight,
    }


def _instance_status(ec2: EC2Client, instance_id: str) -> dict[str, Any]:
    """State, AZ and status checks in one call (``IncludeAllInstances``: not only running instances).
    UnknownResource when the instance is gone, as ``describe_instance``."""
    try:
        statuses = ec2.describe_instance_status(InstanceIds=[instance_id], IncludeAllInstances=True)[
            "InstanceStatuses"
        ]
    except ec2.exceptions.ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"]:
            raise UnknownResource(f"no instance {instance_id}", instance=instance_id) from exc
        raise
    if not statuses:
        raise UnknownResource(f"no instance {instance_id}", instance=instance_id)
    return dict(statuses[0])


def precheck(ec2: EC2Client, autoscaling: Any, plan: ReplacePlan) -> dict[str, Any]:
    """Refuse what the group or the instance cannot take right now. Returns `before`."""
    status = _instance_status(ec2, plan.instance_id)
    state = status["InstanceState"]["Name"]
    before: dict[str, Any] = {
        "instanceId": plan.instance_id,
        "path": plan.path,
        "state": state,
        "instanceType": plan.instance_type,
        "availabilityZone": status.get("AvailabilityZone"),
        "rootDeviceType": plan.root_device_type,
        "statusChecks": {
            "state": state,
            "system": status.get("SystemStatus", {}).get("Status", "unknown"),
            "instance": status.get("InstanceStatus", {}).get("Status", "unknown"),
        },
    }
    if plan.path == "asg":
        assert plan.auto_scaling_group_name is not None
        budget = group_budget(
            _group(autoscaling, plan.auto_scaling_group_name), plan.instance_id, plan.max_in_flight
        )
        before["group"] = budget
        if budget["suspendedProcesses"]:
            raise GroupCannotReplace(
                f"group {budget['group']} has suspended {', '.join(budget['suspendedProcesses'])}:"
                f" it would not replace {plan.instance_id}",
                **budget,
            )
        if not budget["withinBudget"]:
            raise GroupBudgetExceeded(
                f"group {budget['group']} already has {budget['inFlight']} member(s) out of service"
                f" (budget {plan.max_in_flight}): not replacing {plan.instance_id} now",
                **budget,
            )
    elif plan.path == "launch-template":
        before["launch"] = plan.launch
        before["allocationId"] = plan.allocation_id
        before["targetGroupArns"] = [r.target_group_arn for r in plan.registrations]
    return before


def group_slots(plan: Mapping[str, Any]) -> list[str]:
    """One lease per replacement allowed in flight in the group: concurrent executions on members of
    the same group (a Health event naming several) take them before reading the group's state, so
    they cannot all see "nothing in flight" and all act."""
    group = plan.get("autoScalingGroupName")
    if plan.get("path") != "asg" or not group:
        return []
    return [f"autoScalingGroup/{group}#replacing-{n}" for n in range(int(plan.get("maxInFlight", 1)))]


_INSTANCE_IDS = {"default": ("InstanceIds",)}
_STOP = {"default": ("InstanceIds", "Force")}
_ASSOCIATE = {"default": ("AllocationId", "InstanceId", "AllowReassociation")}
_TARGETS = {"default": ("TargetGroupArn", "Targets")}
_HEALTH = {"default": ("InstanceId", "HealthStatus", "ShouldRespectGracePeriod")}
_NEW_TARGET = {"Targets.0.Id": "replacement"}

# asg
MARK_UNHEALTHY = CallSpec("mark-unhealthy", "autoscaling:SetInstanceHealth", _HEALTH)
# stop-start
STOP = CallSpec("stop", "ec2:StopInstances", _STOP)
START = CallSpec("start", "ec2:StartInstances", _INSTANCE_IDS)
# launch-template (RunInstances without a ClientToken: a second send launches a second instance)
LAUNCH = CallSpec("launch", "ec2:RunInstances", LAUNCH_SHAPES, idempotent=False)
REGISTER = CallSpec("register", "elasticloadbalancing:RegisterTargets", _TARGETS, runtime=_NEW_TARGET)
ASSOCIATE = CallSpec("associate", "ec2:AssociateAddress", _ASSOCIATE, runtime={"InstanceId": "replacement"})
DEREGISTER = CallSpec("deregister", "elasticloadbalancing:DeregisterTargets", _TARGETS)
RETIRE_TERMINATE = CallSpec("retire-terminate", "ec2:TerminateInstances", _INSTANCE_IDS)
RETIRE_STOP = CallSpec("retire-stop", "ec2:StopInstances", _STOP)
# the undo of a replacement that did not take over
MOVE_BACK = CallSpec("move-back", "ec2:AssociateAddress", _ASSOCIATE, undo=True, contingent=True)
DEREGISTER_REPLACEMENT = CallSpec(
    "deregister-replacement",
    "elasticloadbalancing:DeregisterTargets",
    _TARGETS,
    runtime=_NEW_TARGET,
    undo=True,
    contingent=True,
)
TERMINATE_REPLACEMENT = CallSpec(
    "terminate-replacement",
    "ec2:TerminateInstances",
    _INSTANCE_IDS,
    runtime={"InstanceIds.0": "replacement"},
    undo=True,
    contingent=True,
)


@register
class ReplaceInstance(Runbook):
    name = "replace-instance"
    target_model = ReplaceInstanceTarget
    params_model = ReplaceInstanceParams
    plan_model = ReplacePlan
    permissions = IAM_ACTIONS
    slots_full = GroupBudgetExceeded
    calls = (
        MARK_UNHEALTHY,
        STOP,
        START,
        LAUNCH,
        REGISTER,
        ASSOCIATE,
        DEREGISTER,
        RETIRE_TERMINATE,
        RETIRE_STOP,
        MOVE_BACK,
        DEREGISTER_REPLACEMENT,
        TERMINATE_REPLACEMENT,
    )

    def resolve(self, target: ReplaceInstanceTarget, params: ReplaceInstanceParams) -> ReplacePlan:
        # A request or a tag may ask for fewer members out at once than the stack allows, never
        # more: the plan carries the effective limit (the group's slots are made from it).
        ceiling = self.settings.replace_instance_max_in_flight
        if params.max_in_flight > ceiling:
            params = params.model_copy(update={"max_in_flight": ceiling})
        return resolve(self.clients, target, params, *self.fence)

    def precheck(self, plan: ReplacePlan) -> dict[str, Any]:
        return precheck(self.clients.ec2, self.clients.autoscaling, plan)

    def exact_calls(self, plan: ReplacePlan) -> list[Call]:
        ids = [plan.instance_id]
        if plan.path == "asg":
            health = {"InstanceId": plan.instance_id, "HealthStatus": "Unhealthy"}
            return [MARK_UNHEALTHY.call({**health, "ShouldRespectGracePeriod": False})]
        if plan.path == "stop-start":
            return [
                STOP.call({"InstanceIds": ids, "Force": plan.force_stop}),
                START.call({"InstanceIds": ids}),
            ]
        if plan.launch is None:
            return []

        def targets(registration: Registration, instance: str | None = None) -> dict[str, Any]:
            target = registration.target if instance is None else {**registration.target, "Id": instance}
            return {"TargetGroupArn": registration.target_group_arn, "Targets": [target]}

        def address_to(instance: str) -> dict[str, Any]:
            return {"AllocationId": plan.allocation_id, "InstanceId": instance, "AllowReassociation": True}

        groups = plan.registrations
        calls = [LAUNCH.call(plan.launch), *(REGISTER.call(targets(r, REPLACEMENT)) for r in groups)]
        if plan.has_address:
            calls.append(ASSOCIATE.call(address_to(REPLACEMENT)))
        calls += [DEREGISTER.call(targets(r)) for r in groups]
        if plan.retire == "terminate":
            calls.append(RETIRE_TERMINATE.call({"InstanceIds": ids}))
        else:
            calls.append(RETIRE_STOP.call({"InstanceIds": ids, "Force": False}))
        if plan.has_address:
            calls.append(MOVE_BACK.call(address_to(plan.instance_id)))
        calls += [DEREGISTER_REPLACEMENT.call(targets(r, REPLACEMENT)) for r in groups]
        calls.append(TERMINATE_REPLACEMENT.call({"InstanceIds": [REPLACEMENT]}))
        return calls

    def out_of_scope(self, plan: ReplacePlan) -> list[str]:
        return out_of_scope(plan, LaunchScope.of(self.settings))

    def slots(self, plan: Mapping[str, Any]) -> list[str]:
        return group_slots(plan)

    def fallback(self, plan: ReplacePlan) -> ReplacePlan:
        return fallback_plan(self.clients, plan, *self.fence, LaunchScope.of(self.settings))
