"""replace-instance resolve/precheck and the remap-eip/replace-instance routing, against moto."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from localcloud.worlds.replace_instance import INSTANCE_TYPE
from selfheal.config import Settings
from selfheal.errors import (
    AlreadyRecovering,
    GroupBudgetExceeded,
    GroupCannotReplace,
    NotApplicable,
    UnknownResource,
)
from selfheal.policy import load_policy
from selfheal.runbooks import remap_eip
from selfheal.runbooks import replace_instance as ri
from selfheal.triage import Triage
from tests.events import load_event
from tests.integration.conftest import running_execution

FENCE_KEY, FENCE_VALUE = "selfheal:managed", "true"
PASS_MACHINE = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def _group(world: Any, size: int = 2) -> tuple[str, list[str]]:
    group = world.group(size=size)
    return group.name, list(group.instances)


def _resolve(clients: Any, instance: str, **params: Any) -> ri.ReplacePlan:
    return ri.resolve(
        clients,
        ri.ReplaceInstanceTarget(instanceId=instance),
        ri.ReplaceInstanceParams.model_validate(params),
        FENCE_KEY,
        FENCE_VALUE,
    )


def test_resolve_group_member_takes_the_asg_path_and_fences_the_group_too(clients, world):
    name, members = _group(world)
    plan = _resolve(clients, members[0])
    assert plan.path == "asg" and plan.auto_scaling_group_name == name
    assert set(plan.resource_tags) == {members[0], f"autoScalingGroup/{name}"}
    assert plan.resource_tags[f"autoScalingGroup/{name}"][FENCE_KEY] == FENCE_VALUE


def test_resolve_standalone_ebs_instance_takes_the_stop_start_path(clients, world):
    plan = _resolve(clients, world.instance())
    assert plan.path == "stop-start" and plan.root_device_type == "ebs"


@pytest.mark.parametrize("state", ["stopped", "terminated"])
def test_resolve_instance_already_out_of_service_is_not_applicable(clients, world, state):
    instance = world.instance()
    (clients.ec2.stop_instances if state == "stopped" else clients.ec2.terminate_instances)(
        InstanceIds=[instance]
    )
    with pytest.raises(NotApplicable):
        _resolve(clients, instance)


def test_resolve_member_the_group_already_marked_unhealthy_is_already_recovering(clients, world):
    _, members = _group(world)
    clients.autoscaling.set_instance_health(InstanceId=members[0], HealthStatus="Unhealthy")
    with pytest.raises(AlreadyRecovering, match="already replacing"):
        _resolve(clients, members[0])


def test_precheck_refuses_a_second_replacement_over_the_group_budget(clients, world):
    _, members = _group(world, size=3)
    plan = _resolve(clients, members[1])
    clients.autoscaling.set_instance_health(InstanceId=members[0], HealthStatus="Unhealthy")
    with pytest.raises(GroupBudgetExceeded) as refused:
        ri.precheck(clients.ec2, clients.autoscaling, plan)
    assert refused.value.details["inFlight"] == 1


def test_precheck_allows_two_in_flight_when_the_policy_says_so(clients, world):
    _, members = _group(world, size=3)
    plan = _resolve(clients, members[1], maxInFlight=2)
    clients.autoscaling.set_instance_health(InstanceId=members[0], HealthStatus="Unhealthy")
    before = ri.precheck(clients.ec2, clients.autoscaling, plan)
    assert before["group"]["inFlight"] == 1 and before["group"]["withinBudget"]


@pytest.mark.parametrize(("stack_max", "asked", "effective"), [(1, 2, 1), (2, 5, 2), (3, 2, 2)])
def test_a_request_may_lower_max_in_flight_but_never_raise_it_above_the_stacks(
    clients, settings, world, stack_max, asked, effective
):
    # Given the stack's ReplaceInstanceMaxInFlight, and a request (or tag) asking for maxInFlight
    _, members = _group(world, size=3)
    runbook = ri.ReplaceInstance(
        clients, settings.model_copy(update={"replace_instance_max_in_flight": stack_max})
    )
    plan = runbook.plan(
        ri.ReplaceInstanceTarget(instanceId=members[0]),
        ri.ReplaceInstanceParams.model_validate({"maxInFlight": asked}),
    )
    # Then the plan (and the group's slots made from it) carries the lower of the two
    assert plan.max_in_flight == effective
    assert len(runbook.slots(plan.model_dump(mode="json", by_alias=True))) == effective


def test_precheck_records_state_type_and_az_without_describing_the_instance_again(clients, world):
    _, members = _group(world)
    plan = _resolve(clients, members[0])
    assert plan.instance_type == INSTANCE_TYPE
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    clients.ec2.meta.events.register("before-call.ec2.*", record)
    try:
        before = ri.precheck(clients.ec2, clients.autoscaling, plan)
    finally:
        clients.ec2.meta.events.unregister("before-call.ec2.*", record)
    assert calls == ["DescribeInstanceStatus"]  # resolve already read the type; state and AZ come here
    (member,) = clients.ec2.describe_instances(InstanceIds=[members[0]])["Reservations"][0]["Instances"]
    assert (before["state"], before["instanceType"], before["availabilityZone"]) == (
        "running",
        INSTANCE_TYPE,
        member["Placement"]["AvailabilityZone"],
    )
    assert before["statusChecks"] == {"state": "running", "system": "ok", "instance": "ok"}


def test_precheck_of_an_instance_gone_since_resolve_is_unknown(clients, world):
    plan = _resolve(clients, world.instance())
    gone = plan.model_copy(update={"instance_id": "i-0123456789abcdef0"})
    with pytest.raises(UnknownResource, match="no instance i-0123456789abcdef0"):
        ri.precheck(clients.ec2, clients.autoscaling, gone)


def test_precheck_refuses_a_group_that_cannot_replace(clients, world):
    name, members = _group(world)
    clients.autoscaling.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=["Terminate"])
    with pytest.raises(GroupCannotReplace, match="Terminate"):
        ri.precheck(clients.ec2, clients.autoscaling, _resolve(clients, members[0]))


def test_group_budget_counts_missing_members_as_in_flight():
    group = {
        "AutoScalingGroupName": "g",
        "DesiredCapacity": 3,
        "MinSize": 3,
        "MaxSize": 3,
        "Instances": [
            {"InstanceId": "i-1", "LifecycleState": "InService", "HealthStatus": "Healthy"},
            {"InstanceId": "i-2", "LifecycleState": "InService", "HealthStatus": "Healthy"},
        ],
    }
    budget = ri.group_budget(group, "i-1", 1)
    assert budget["inFlight"] == 1 and not budget["withinBudget"]


# ----------------------------------------------------------------------- remap-eip applicability


def _applies(clients: Any, instance: str) -> str | None:
    return remap_eip.applies(
        clients.ec2,
        remap_eip.RemapEipTarget(instanceId=instance),
        remap_eip.RemapEipParams(),
        FENCE_KEY,
        FENCE_VALUE,
    )


def test_remap_eip_applies_to_a_primary_with_a_managed_eip_and_a_standby(clients, world):
    primary, standby = world.instance(), world.instance()
    world.eip(on=primary, standby=standby)
    assert _applies(clients, primary) is None


def test_remap_eip_does_not_apply_to_an_instance_without_a_managed_eip(clients, world):
    assert "no managed Elastic IP" in (_applies(clients, world.instance()) or "")


def test_remap_eip_does_not_apply_to_a_managed_eip_without_a_standby(clients, world):
    primary = world.instance()
    world.eip(on=primary)
    assert "no standby" in (_applies(clients, primary) or "")


def test_triage_alarm_on_an_instance_without_a_standby_starts_replace_instance(clients, settings, world):
    machines = {
        runbook: clients.stepfunctions.create_state_machine(
            name=runbook, definition=PASS_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
        for runbook in ("remap-eip", "replace-instance")
    }
    triage = Triage(settings.model_copy(update={"state_machines": machines}), clients, load_policy())
    lonely = world.instance()
    event = copy.deepcopy(load_event("alarm-status-check-failed"))
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "InstanceId": lonely
    }
    (outcome,) = triage.handle(event)
    assert outcome.decision == "started" and outcome.runbook == "replace-instance"


# ------------------------------------------------------------------- group concurrency slots


def _steps_event(clients: Any, step: str, request_id: str, plan: dict[str, Any], **extra: Any) -> Any:
    from selfheal.models import Actor, Request
    from selfheal.steps import StepEvent

    execution = running_execution(clients, "replace-instance", request_id)
    request = Request(
        request_id=request_id,
        runbook="replace-instance",
        target={"instanceId": plan["instanceId"]},
        target_key=plan["instanceId"],
        params={},
        dry_run=False,
        reason="test",
        actor=Actor(kind="manual"),
    )
    return StepEvent.model_validate(
        {
            "step": step,
            "runbook": "replace-instance",
            "execution": execution,
            "state": {"name": "test", "enteredTime": "2026-11-22T01:00:00Z"},
            "request": request.model_dump(mode="json", by_alias=True),
            "plan": plan,
            **extra,
        }
    )


def test_steps_two_concurrent_replacements_in_one_group_the_second_finds_no_slot(clients, settings, world):
    """Both read the group before either marks a member: only the slot lease keeps them apart."""
    from selfheal.steps import Steps

    _, members = _group(world, size=3)
    steps = Steps(settings, clients)
    first = _resolve(clients, members[0]).model_dump(mode="json", by_alias=True)
    second = _resolve(clients, members[1]).model_dump(mode="json", by_alias=True)
    before = steps.run(_steps_event(clients, "precheck", "exec-1", first))["before"]
    assert before["slot"].endswith("#replacing-0")
    with pytest.raises(GroupBudgetExceeded, match="budget 1"):
        steps.run(_steps_event(clients, "precheck", "exec-2", second))
    # When the first finishes, its slot is released and the next replacement may go.
    steps.run(_steps_event(clients, "finish", "exec-1", first, outcome="succeeded"))
    assert steps.run(_steps_event(clients, "precheck", "exec-2", second))["before"]["slot"].endswith(
        "#replacing-0"
    )


# ------------------------------------------------------------------ launch-template path


_resolve_lt = _resolve


def _moto_instance(instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends["123456789012"]["us-east-1"].get_instance(instance_id)


def test_resolve_instance_store_root_takes_the_launch_template_path(clients, world):
    """Given a standalone instance with an instance-store root (stop/start would lose it), When
    resolved with strategy auto, Then the plan launches a replacement from its image, with its tags."""
    instance = world.standalone()
    _moto_instance(instance).root_device_type = "instance-store"
    plan = _resolve_lt(clients, instance)
    assert plan.path == "launch-template" and plan.root_device_type == "instance-store"
    assert plan.launch is not None and ri.LAUNCH.shape_of(plan.launch) == "image"
    assert {"Key": FENCE_KEY, "Value": FENCE_VALUE} in plan.launch["TagSpecifications"][0]["Tags"]
    assert not plan.has_address and not plan.has_target_group
    forward = [c for c in _calls(clients, plan) if not ri.ReplaceInstance.spec(c.name).contingent]
    assert (forward[-1].action, forward[-1].parameters) == (
        "ec2:StopInstances",
        {"InstanceIds": [instance], "Force": False},
    )


def test_resolve_launch_template_path_names_the_profile_roles_and_the_scope_guard_checks_them(clients, world):
    profile = world.instance_profile()
    instance = world.standalone(profile=profile.arn)
    plan = _resolve_lt(clients, instance, strategy="launch-template")
    assert plan.launch is not None and ri.LAUNCH.shape_of(plan.launch) == "image-profile"
    assert plan.pass_role_arns == [profile.role_arn]
    assert plan.launch is not None and plan.launch["IamInstanceProfile"] == {"Arn": profile.arn}
    assert ri.out_of_scope(plan, ri.LaunchScope(pass_role_arns=profile.role_arn, image_ids=world.image)) == []
    (refused,) = ri.out_of_scope(plan, ri.LaunchScope(pass_role_arns="none", image_ids=world.image))
    assert profile.role_arn in refused and "allowed: none" in refused


def test_scope_guard_refuses_a_replacement_from_an_undeclared_image_or_launch_template(clients, world):
    """Given replacements launched from an image and from a launch template, When the stack declares
    other ones (or none), Then the scope guard names the image or template and the parameter; a
    declared one (or a wildcard that matches it) passes."""
    from_image = _resolve_lt(clients, world.standalone(), strategy="launch-template")
    assert ri.out_of_scope(from_image, ri.LaunchScope(image_ids=world.image)) == []
    assert ri.out_of_scope(from_image, ri.LaunchScope(image_ids="ami-*")) == []
    (refused,) = ri.out_of_scope(from_image, ri.LaunchScope(image_ids="ami-00000000000000000"))
    assert f"image {world.image}" in refused and "ReplaceInstanceImageIds: ami-00000000000000000" in refused
    (refused,) = ri.out_of_scope(from_image, ri.LaunchScope(launch_template_ids="*"))
    assert "ReplaceInstanceImageIds: none" in refused  # a template wildcard does not declare images
    template = "lt-0123456789abcdef0"
    tags = [{"Key": "aws:ec2launchtemplate:id", "Value": template}, {"Key": FENCE_KEY, "Value": FENCE_VALUE}]
    launch = ri.launch_parameters({"InstanceId": "i-1", "SubnetId": "subnet-1", "Tags": tags})
    from_template = from_image.model_copy(update={"launch": launch})
    assert ri.out_of_scope(from_template, ri.LaunchScope(launch_template_ids=template)) == []
    assert ri.out_of_scope(from_template, ri.LaunchScope(launch_template_ids="lt-0123*")) == []
    (refused,) = ri.out_of_scope(
        from_template, ri.LaunchScope(launch_template_ids="lt-0other", image_ids="*")
    )
    assert f"launch template {template}" in refused
    assert "ReplaceInstanceLaunchTemplateIds: lt-0other" in refused


def test_resolve_launch_template_path_swaps_every_target_group_the_instance_serves(clients, world):
    """Given an instance registered in two target groups (ports 80 and 81), When planned, Then the
    replacement is registered in both on the same ports, both groups are fenced, and the old one is
    deregistered from both."""
    instance = world.standalone()
    arns = world.target_groups(instance, (80, 81))
    plan = _resolve_lt(clients, instance, strategy="launch-template")
    assert plan.has_target_group
    assert sorted((r.target_group_arn, r.target["Port"]) for r in plan.registrations) == sorted(
        zip(arns, (80, 81), strict=True)
    )
    assert set(arns) <= set(plan.resource_tags)
    calls = _calls(clients, plan)
    registers = [c.parameters for c in calls if c.name == "register"]
    deregisters = [c.parameters for c in calls if c.name == "deregister"]
    undo = [c.parameters for c in calls if c.name == "deregister-replacement"]
    assert sorted(r["TargetGroupArn"] for r in registers) == sorted(arns)
    assert all(r["Targets"][0]["Id"] == ri.REPLACEMENT for r in registers + undo)
    assert sorted(d["Targets"][0]["Id"] for d in deregisters) == [instance, instance]


def _calls(clients: Any, plan: ri.ReplacePlan) -> list[Any]:
    return ri.ReplaceInstance(clients, Settings(AUDIT_TABLE="audit")).exact_calls(plan)


def test_launch_shapes_name_only_requests_the_workflow_can_send():
    assert ri.LAUNCH.shape_of({k: 1 for k in ri.LAUNCH_SHAPES["template"]}) == "template"
    assert ri.LAUNCH.shape_of({"MinCount": 1, "MaxCount": 1, "ImageId": "ami-1"}) is None


def test_resolve_launch_template_path_refuses_a_group_member(clients, world):
    from selfheal.errors import PreconditionFailed

    _, members = _group(world)
    with pytest.raises(PreconditionFailed, match="the group replaces its members"):
        _resolve_lt(clients, members[0], strategy="launch-template")


# ------------------------------------------------------------------ don't fight AWS


RECOVER = "arn:aws:automate:us-east-1:ec2:recover"


def _status_check_alarm(clients: Any, name: str, instance: str, action: str) -> str:
    clients.cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed_System",
        Dimensions=[{"Name": "InstanceId", "Value": instance}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[action],
    )
    return name


def _fire(clients: Any, alarm: str) -> None:
    clients.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test")


def test_resolve_skips_an_instance_whose_recover_alarm_is_in_alarm(clients, world):
    """Given a standalone instance with a StatusCheckFailed_System alarm whose action is EC2 recover,
    in ALARM, When resolved, Then AlreadyRecovering names the alarm (EC2 is recovering it)."""
    instance = world.standalone()
    alarm = _status_check_alarm(clients, f"recover-{instance}", instance, RECOVER)
    assert _resolve(clients, instance).path == "stop-start"  # OK: the alarm is not firing
    _fire(clients, alarm)
    with pytest.raises(AlreadyRecovering, match=f"alarm {alarm} is in ALARM with the EC2 recover action"):
        _resolve(clients, instance)


def test_resolve_ignores_alarms_without_the_recover_action_and_on_other_instances(clients, world):
    instance, other = world.standalone(), world.standalone()
    _fire(
        clients,
        _status_check_alarm(
            clients, f"notify-{instance}", instance, "arn:aws:sns:us-east-1:123456789012:ops"
        ),
    )
    _fire(clients, _status_check_alarm(clients, f"recover-other-{instance}", other, RECOVER))
    assert _resolve(clients, instance).path == "stop-start"


def test_resolve_skips_an_instance_whose_status_checks_are_initializing(clients, world, monkeypatch):
    from moto.ec2.models.instances import Instance

    instance = world.standalone()
    monkeypatch.setattr(Instance, "system_status", property(lambda self: {"Status": "initializing"}))
    with pytest.raises(AlreadyRecovering, match="system status check is still initializing"):
        _resolve(clients, instance)


def test_recovery_in_progress_reads_maintenance_windows_and_ignores_retirements_and_finished_events():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)

    def status(code: str, description: str, start: int, end: int) -> dict[str, Any]:
        window = {"NotBefore": now + timedelta(hours=start), "NotAfter": now + timedelta(hours=end)}
        return {"Events": [{"Code": code, "Description": description, **window}]}

    assert "system-reboot" in (
        ri.recovery_in_progress(status("system-reboot", "reboot", -1, 1), [], now) or ""
    )
    assert ri.recovery_in_progress(status("system-reboot", "reboot", 1, 2), [], now) is None  # not yet
    assert ri.recovery_in_progress(status("system-reboot", "[Completed] reboot", -1, 1), [], now) is None
    # a retirement is what this runbook heals: never a reason to stand back
    assert ri.recovery_in_progress(status("instance-retirement", "retiring", -1, 1), [], now) is None
    assert ri.recovery_in_progress({"SystemStatus": {"Status": "impaired"}}, [], now) is None


# ------------------------------------------------------------------ fallback from stop/start


def test_fallback_plan_replaces_a_stopped_instance_with_its_address_and_target_groups(clients, world):
    """Given a stop-start plan whose instance is now stopped (its start failed), When the fallback is
    planned, Then it is the launch-template path for the same instance, with its fenced Elastic IP and
    target groups, marked as coming from stop-start."""
    instance = world.standalone()
    arns = world.target_groups(instance, (80,))
    address = world.eip(on=instance)
    first = _resolve(clients, instance)
    assert first.path == "stop-start" and first.fallback == "launch-template"
    assert not first.registrations and first.allocation_id is None  # resolve does not plan it
    clients.ec2.stop_instances(InstanceIds=[instance])
    plan = ri.fallback_plan(clients, first, FENCE_KEY, FENCE_VALUE, ri.LaunchScope(image_ids=world.image))
    assert plan.path == "launch-template" and plan.fallback_from == "stop-start" and plan.fallback == "none"
    assert plan.allocation_id == address and plan.has_address
    assert [r.target_group_arn for r in plan.registrations] == arns
    assert set(plan.resource_tags) == {instance, address, *arns}


def test_fallback_plan_refuses_an_unfenced_target_group_or_a_role_out_of_scope(clients, world):
    from selfheal.errors import OutsideFence, PreconditionFailed

    instance = world.standalone()
    (arn,) = world.target_groups(instance, (80,), fenced=False)
    first = _resolve(clients, instance)
    images = ri.LaunchScope(image_ids=world.image)
    with pytest.raises(OutsideFence, match=arn):
        ri.fallback_plan(clients, first, FENCE_KEY, FENCE_VALUE, images)
    profile = world.instance_profile()
    with_profile = world.standalone(profile=profile.arn)
    with pytest.raises(PreconditionFailed, match="allowed: none"):
        ri.fallback_plan(clients, _resolve(clients, with_profile), FENCE_KEY, FENCE_VALUE, images)
    with pytest.raises(PreconditionFailed, match=f"image {world.image}"):
        ri.fallback_plan(
            clients, _resolve(clients, with_profile), FENCE_KEY, FENCE_VALUE, ri.LaunchScope(profile.role_arn)
        )
    declared = ri.LaunchScope(pass_role_arns=profile.role_arn, image_ids=world.image)
    assert ri.fallback_plan(clients, _resolve(clients, with_profile), FENCE_KEY, FENCE_VALUE, declared)


def test_fallback_plan_only_from_stop_start_with_the_fallback_on(clients, world):
    from selfheal.errors import PreconditionFailed

    instance = world.standalone()
    with pytest.raises(PreconditionFailed, match=r"params\.fallback none"):
        ri.fallback_plan(
            clients, _resolve(clients, instance, fallback="none"), FENCE_KEY, FENCE_VALUE, ri.LaunchScope()
        )
