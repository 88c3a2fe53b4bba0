"""localcloud.autoscaling against the documented Auto Scaling behaviour for members marked Unhealthy."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from localcloud import autoscaling as local_autoscaling
from localcloud import ops
from localcloud.harness import DeployedCloud


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_autoscaling, "REPLACEMENT_DELAY_SECONDS", 0.0)


def _group(local: DeployedCloud, size: int = 2) -> str:
    ec2, asg = local.client("ec2"), local.client("autoscaling")
    name = f"g-{uuid.uuid4().hex[:8]}"
    image = ops.any_image_id(ec2)
    template = ec2.create_launch_template(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "team", "Value": "web", "PropagateAtLaunch": True}],
    )
    return name


def _members(local: DeployedCloud, name: str) -> list[dict[str, Any]]:
    groups = local.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return list(groups["AutoScalingGroups"][0]["Instances"])


def _settle(local: DeployedCloud, name: str, until: Any) -> list[dict[str, Any]]:
    for _ in range(50):
        members = _members(local, name)
        if until(members):
            return members
        time.sleep(0.05)
    return _members(local, name)


def _state(local: DeployedCloud, instance: str) -> str:
    reservations = local.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


def test_autoscaling_unhealthy_member_is_terminated_and_replaced_from_the_template(local, quick):
    name = _group(local)
    sick = _members(local, name)[0]["InstanceId"]
    local.client("autoscaling").set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    members = _settle(local, name, lambda ms: sick not in [m["InstanceId"] for m in ms])
    assert sick not in [m["InstanceId"] for m in members] and len(members) == 2
    assert {m["HealthStatus"] for m in members} == {"Healthy"}
    assert _state(local, sick) == "terminated"
    new = next(m for m in members if m["InstanceId"] != sick and m["LaunchTemplate"])
    reservations = local.client("ec2").describe_instances(InstanceIds=[new["InstanceId"]])["Reservations"]
    tags = {t["Key"]: t["Value"] for t in reservations[0]["Instances"][0].get("Tags", [])}
    assert tags.get("team") == "web"  # propagated at launch


def test_autoscaling_replacement_happens_after_the_call_returns(local, monkeypatch):
    monkeypatch.setattr(local_autoscaling, "REPLACEMENT_DELAY_SECONDS", 0.5)
    name = _group(local)
    sick = _members(local, name)[0]["InstanceId"]
    local.client("autoscaling").set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    right_after = {m["InstanceId"]: m["HealthStatus"] for m in _members(local, name)}
    assert right_after[sick] == "Unhealthy"
    _settle(local, name, lambda ms: sick not in [m["InstanceId"] for m in ms])
    assert sick not in [m["InstanceId"] for m in _members(local, name)]


@pytest.mark.parametrize("process", ["ReplaceUnhealthy", "Terminate"])
def test_autoscaling_suspended_replacement_leaves_the_member_unhealthy(local, quick, process):
    name = _group(local)
    asg = local.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=[process])
    sick = _members(local, name)[0]["InstanceId"]
    asg.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    time.sleep(0.3)
    members = {m["InstanceId"]: m["HealthStatus"] for m in _members(local, name)}
    assert members[sick] == "Unhealthy" and _state(local, sick) == "running"


def test_autoscaling_launch_suspended_terminates_without_replacing(local, quick):
    name = _group(local)
    asg = local.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["Launch"])
    sick = _members(local, name)[0]["InstanceId"]
    asg.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    members = _settle(local, name, lambda ms: len(ms) == 1)
    assert [m["InstanceId"] for m in members] != [sick] and len(members) == 1
    assert _state(local, sick) == "terminated"


def test_autoscaling_healthy_mark_changes_nothing(local, quick):
    name = _group(local)
    before = sorted(m["InstanceId"] for m in _members(local, name))
    local.client("autoscaling").set_instance_health(InstanceId=before[0], HealthStatus="Healthy")
    time.sleep(0.2)
    assert sorted(m["InstanceId"] for m in _members(local, name)) == before
