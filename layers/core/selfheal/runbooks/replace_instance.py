"""replace-instance: heal a failed or retiring EC2 instance, in or out of an Auto Scaling group.

Three paths, chosen by ``resolve`` from what the instance is (``params.strategy`` may force one):

- ``asg``: the instance belongs to an Auto Scaling group -> ``SetInstanceHealth Unhealthy`` so the
  group replaces it; never more than ``maxInFlight`` members of the group out of service at once;
  verify the group is back to its desired capacity, all InService and Healthy, the old one gone.
- ``stop-start``: a standalone EBS-backed instance -> ``StopInstances`` then ``StartInstances``
  (a stopped instance starts on other hardware); verify running with both status checks ok.
- ``launch-template``: anything else (instance-store root) -> not automated yet: the runbook fails
  with ``PreconditionFailed`` and escalates (see README, "replace-instance").

The mutations and their verification run as direct SDK integrations in
``statemachines/replace-instance.asl.json``; this module decides the path and checks it is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from selfheal.errors import (
    AlreadyRecovering,
    GroupBudgetExceeded,
    GroupCannotReplace,
    NotApplicable,
    PreconditionFailed,
    UnknownResource,
)
from selfheal.models import StrictModel

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

Path = Literal["asg", "stop-start", "launch-template"]

IAM_ACTIONS = (
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:SetInstanceHealth",
    "ec2:StopInstances",
    "ec2:StartInstances",
)

# States in which EC2 is already moving the instance: acting now would fight AWS.
_EC2_RECOVERING = {"pending", "stopping", "shutting-down"}
# Processes without which the group cannot replace an unhealthy member.
_REPLACEMENT_PROCESSES = ("HealthCheck", "ReplaceUnhealthy", "Terminate", "Launch")


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
    verify_attempts: int = Field(default=30, alias="verifyAttempts", ge=1, le=120)
    verify_interval_seconds: int = Field(default=10, alias="verifyIntervalSeconds", ge=0, le=300)


class ReplacePlan(StrictModel):
    instance_id: str = Field(alias="instanceId")
    path: Path
    root_device_type: str = Field(alias="rootDeviceType")
    # Read by resolve's DescribeInstances and carried here, so precheck need not describe it again.
    instance_type: str | None = Field(default=None, alias="instanceType")
    auto_scaling_group_name: str | None = Field(default=None, alias="autoScalingGroupName")
    max_in_flight: int = Field(alias="maxInFlight")
    force_stop: bool = Field(alias="forceStop")
    resource_tags: dict[str, dict[str, str]] = Field(alias="resourceTags")
    verify_attempts: int = Field(alias="verifyAttempts")
    verify_interval_seconds: int = Field(alias="verifyIntervalSeconds")


def _tags(resource: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def describe_instance(ec2: EC2Client, instance_id: str) -> dict[str, Any]:
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"]:
            raise UnknownResource(f"no instance {instance_id}", instance=instance_id) from exc
        raise
    instances = [i for r in reservations for i in r["Instances"]]
    if not instances:
        raise UnknownResource(f"no instance {instance_id}", instance=instance_id)
    return dict(instances[0])


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
    ec2: EC2Client,
    autoscaling: Any,
    target: ReplaceInstanceTarget,
    params: ReplaceInstanceParams,
    fence_key: str,
    fence_value: str,
) -> ReplacePlan:
    """Which path heals this instance. Raises AlreadyRecovering when AWS is already on it."""
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
    if path == "stop-start" and root != "ebs":
        raise PreconditionFailed(
            f"{target.instance_id} has an {root} root device: stop/start would lose its root volume"
        )
    return ReplacePlan(
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
        raise PreconditionFailed(
            f"{plan.instance_id} ({plan.root_device_type} root) needs a replacement from its launch"
            " template, which this selfheal does not automate yet: replace it by hand",
            instance=plan.instance_id,
        )
    return before


def action_calls(plan: ReplacePlan) -> list[dict[str, Any]]:
    """The exact mutating calls the state machine makes (recorded in would-do/action rows)."""
    if plan.path == "asg":
        return [
            {
                "action": "autoscaling:SetInstanceHealth",
                "parameters": {
                    "InstanceId": plan.instance_id,
                    "HealthStatus": "Unhealthy",
                    "ShouldRespectGracePeriod": False,
                },
            }
        ]
    if plan.path == "stop-start":
        return [
            {
                "action": "ec2:StopInstances",
                "parameters": {"InstanceIds": [plan.instance_id], "Force": plan.force_stop},
            },
            {"action": "ec2:StartInstances", "parameters": {"InstanceIds": [plan.instance_id]}},
        ]
    return []


def group_slots(plan: dict[str, Any]) -> list[str]:
    """One lease per replacement allowed in flight in the group: concurrent executions on members of
    the same group (a Health event naming several) take them before reading the group's state, so
    they cannot all see "nothing in flight" and all act."""
    group = plan.get("autoScalingGroupName")
    if plan.get("path") != "asg" or not group:
        return []
    return [f"autoScalingGroup/{group}#replacing-{n}" for n in range(int(plan.get("maxInFlight", 1)))]
