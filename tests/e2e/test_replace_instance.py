"""replace-instance end to end on the local cloud: the real template, rules, functions and ASL.

Each test builds its own instances and groups, so tests never share a target (cooldown and leases are
per target) and can run in any order.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from localcloud import autoscaling as local_autoscaling
from localcloud import ops
from localcloud.harness import DeployedCloud
from localcloud.worlds import FENCE, Aws, image, remap_eip, replace_instance, unique
from localcloud.worlds.replace_instance import Group, Served
from selfheal.audit import AuditTrail
from selfheal.budget import Budgets
from selfheal.models import Phase, utcnow
from tests.e2e.throttling import THROTTLES_PAST_THE_CLIENT
from tests.events import load_event

FAST = {"verifyIntervalSeconds": 0, "verifyAttempts": 40}


def make_group(cloud: DeployedCloud, size: int = 2, fenced: bool = True) -> Group:
    return replace_instance.group(Aws.of(cloud), unique("web"), size=size, fenced=fenced)


def make_standalone(cloud: DeployedCloud, fenced: bool = True) -> str:
    return replace_instance.standalone(Aws.of(cloud), unique("batch"), fenced=fenced)


def manual_input(instance: str, **params: Any) -> dict[str, Any]:
    return {"target": {"instanceId": instance}, "params": {**FAST, **params}, "reason": "e2e test"}


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def replace_rows(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return [r for r in rows_for(cloud, target) if r.get("runbook") == "replace-instance"]


def state_of(cloud: DeployedCloud, instance: str) -> str:
    reservations = cloud.client("ec2").describe_instances(InstanceIds=[instance])["Reservations"]
    return str(reservations[0]["Instances"][0]["State"]["Name"])


# ---------------------------------------------------------------------------------- ASG path


def test_replace_instance_group_member_is_replaced_by_the_group(cloud):
    group = make_group(cloud)
    sick = group.instances[0]
    result = cloud.start_and_wait("replace-instance", manual_input(sick))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    members = group.members(cloud)
    assert sick not in [m["InstanceId"] for m in members] and len(members) == 2
    assert {(m["LifecycleState"], m["HealthStatus"]) for m in members} == {("InService", "Healthy")}
    assert state_of(cloud, sick) == "terminated"
    phases = [r["phase"] for r in replace_rows(cloud, sick)]
    assert phases == ["started", "action", "action", "verified", "succeeded"]
    intent = next(r for r in replace_rows(cloud, sick) if r["phase"] == "action")
    assert intent["action"] == "autoscaling:SetInstanceHealth"
    assert intent["parameters"] == {
        "InstanceId": sick,
        "HealthStatus": "Unhealthy",
        "ShouldRespectGracePeriod": False,
    }
    assert intent["before"]["group"]["inFlight"] == 0


def test_replace_instance_group_budget_refuses_a_second_concurrent_replacement(cloud, monkeypatch):
    # Long enough that the first run is still replacing when the second asks, however busy the machine
    monkeypatch.setattr(local_autoscaling, "REPLACEMENT_DELAY_SECONDS", 8.0)
    group = make_group(cloud, size=3)
    first, second = group.instances[0], group.instances[1]
    sfn = cloud.client("stepfunctions")
    arn = cloud.state_machine_arn("replace-instance")
    running = sfn.start_execution(
        stateMachineArn=arn, input=json.dumps(manual_input(first, verifyIntervalSeconds=1, verifyAttempts=15))
    )
    deadline = time.monotonic() + 60  # until the first replacement is in flight (slow on a busy machine)
    while not any(r["phase"] == "action" and r.get("outcome") == "ok" for r in replace_rows(cloud, first)):
        assert time.monotonic() < deadline, "the first replacement never started"
        time.sleep(0.1)
    refused = cloud.start_and_wait("replace-instance", manual_input(second))
    assert refused.status == "FAILED" and refused.error == "GroupBudgetExceeded"
    (failed,) = [r for r in replace_rows(cloud, second) if r["phase"] == "failed"]
    assert "budget 1" in failed["reason"]
    assert not [r for r in replace_rows(cloud, second) if r["phase"] == "action"]
    assert ops.wait_for_execution(sfn, running["executionArn"]).status == "SUCCEEDED"
    assert second in [m["InstanceId"] for m in group.members(cloud)]


def test_replace_instance_group_with_suspended_replacement_fails_and_escalates(cloud):
    group = make_group(cloud)
    cloud.client("autoscaling").suspend_processes(
        AutoScalingGroupName=group.name, ScalingProcesses=["ReplaceUnhealthy"]
    )
    result = cloud.start_and_wait("replace-instance", manual_input(group.instances[0]))
    assert result.status == "FAILED" and result.error == "GroupCannotReplace"
    assert "ReplaceUnhealthy" in result.cause
    assert {m["HealthStatus"] for m in group.members(cloud)} == {"Healthy"}


def test_replace_instance_group_verification_failure_is_named_escalated_and_audited(cloud, monkeypatch):
    """The group accepts the mark but cannot launch a replacement (no capacity): verify catches it."""
    monkeypatch.setattr(local_autoscaling, "replace_unhealthy", lambda *a: "InsufficientInstanceCapacity")
    group = make_group(cloud)
    sick = group.instances[0]
    result = cloud.start_and_wait("replace-instance", manual_input(sick, verifyAttempts=3))
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    rows = replace_rows(cloud, sick)
    assert [r["phase"] for r in rows] == ["started", "action", "action", "failed"]
    assert "is not back to 2" in rows[-1]["reason"]


def test_replace_instance_group_with_launch_suspended_is_refused(cloud):
    group = make_group(cloud)
    cloud.client("autoscaling").suspend_processes(
        AutoScalingGroupName=group.name, ScalingProcesses=["Launch"]
    )
    result = cloud.start_and_wait("replace-instance", manual_input(group.instances[0]))
    assert result.status == "FAILED" and result.error == "GroupCannotReplace"


def test_replace_instance_member_already_being_replaced_is_skipped(cloud):
    group = make_group(cloud)
    sick = group.instances[0]
    cloud.client("autoscaling").suspend_processes(
        AutoScalingGroupName=group.name, ScalingProcesses=["ReplaceUnhealthy"]
    )
    cloud.client("autoscaling").set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    result = cloud.start_and_wait("replace-instance", manual_input(sick))
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in replace_rows(cloud, sick) if r["phase"] == "skipped"]
    assert "already replacing" in skipped["reason"]


def test_replace_instance_unfenced_group_member_is_left_untouched(cloud):
    group = make_group(cloud, fenced=False)
    sick = group.instances[0]
    result = cloud.start_and_wait("replace-instance", manual_input(sick))
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in replace_rows(cloud, sick) if r["phase"] == "skipped"]
    assert "fence" in skipped["reason"]
    assert {m["HealthStatus"] for m in group.members(cloud)} == {"Healthy"}
    assert state_of(cloud, sick) == "running"


# ---------------------------------------------------------------------------- stop/start path


def test_replace_instance_standalone_instance_is_stopped_and_started(cloud):
    instance = make_standalone(cloud)
    result = cloud.start_and_wait("replace-instance", manual_input(instance))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert state_of(cloud, instance) == "running"
    rows = replace_rows(cloud, instance)
    assert [r["phase"] for r in rows] == [
        "started",
        "action",
        "action",
        "action",
        "action",
        "verified",
        "succeeded",
    ]
    actions = [(r["action"], r["outcome"]) for r in rows if r["phase"] == "action"]
    assert actions == [
        ("ec2:StopInstances", "pending"),
        ("ec2:StopInstances", "ok"),
        ("ec2:StartInstances", "pending"),
        ("ec2:StartInstances", "ok"),
    ]


def test_replace_instance_dry_run_records_the_exact_calls_and_changes_nothing(cloud):
    instance = make_standalone(cloud)
    result = cloud.start_and_wait("replace-instance", {**manual_input(instance), "dryRun": True})
    assert result.status == "SUCCEEDED"
    would = [r for r in replace_rows(cloud, instance) if r["phase"] == "would-do"]
    assert [(r["action"], r["parameters"]) for r in would] == [
        ("ec2:StopInstances", {"InstanceIds": [instance], "Force": False}),
        ("ec2:StartInstances", {"InstanceIds": [instance]}),
    ]
    assert not [r for r in replace_rows(cloud, instance) if r["phase"] == "action"]


def test_replace_instance_unfenced_standalone_instance_is_left_untouched(cloud):
    instance = make_standalone(cloud, fenced=False)
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(instance))
    assert result.status == "SUCCEEDED"
    assert [r["phase"] for r in replace_rows(cloud, instance)] == ["skipped"]
    assert not [r for r in cloud.recorded_requests() if r.operation in {"StopInstances", "StartInstances"}]


def test_replace_instance_stopping_instance_is_not_fought(cloud):
    """EC2 is already moving it (state stopping): skip with an audit row."""
    instance = make_standalone(cloud)
    ec2_instance = _moto_instance(instance)
    ec2_instance._state.name, ec2_instance._state.code = "stopping", 64
    try:
        result = cloud.start_and_wait("replace-instance", manual_input(instance))
    finally:
        ec2_instance._state.name, ec2_instance._state.code = "running", 16
    assert result.status == "SUCCEEDED"
    (skipped,) = [r for r in replace_rows(cloud, instance) if r["phase"] == "skipped"]
    assert "is stopping" in skipped["reason"]


def test_replace_instance_restart_that_never_passes_checks_fails_named_and_escalated(cloud, monkeypatch):
    from moto.ec2.models.instances import InstanceBackend

    instance = make_standalone(cloud)
    original = InstanceBackend.start_instances

    def started_but_impaired(self: Any, instance_ids: list[str]) -> Any:
        started = original(self, instance_ids)
        for i in self.get_multi_instances_by_id(instance_ids):
            i._state.name, i._state.code = "pending", 0  # never reaches running
        return started

    monkeypatch.setattr(InstanceBackend, "start_instances", started_but_impaired)
    result = cloud.start_and_wait("replace-instance", manual_input(instance, verifyAttempts=2))
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    failed = replace_rows(cloud, instance)[-1]
    assert failed["phase"] == "failed" and "status checks" in failed["reason"]
    # the fallback was asked and refused: this instance has no launch request the runbook can send
    assert "no replacement could take over: PreconditionFailed" in failed["reason"]


def _moto_instance(instance_id: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends["123456789012"]["us-east-1"].get_instance(instance_id)


def test_every_mutating_call_of_replace_instance_has_audit_rows_before_and_after(cloud):
    group = make_group(cloud)
    standalone = make_standalone(cloud)
    cloud.reset_recording()
    for target in (group.instances[0], standalone):
        assert cloud.start_and_wait("replace-instance", manual_input(target)).status == "SUCCEEDED"
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service in {"ec2", "autoscaling"} and not r.operation.startswith(("Describe", "Get", "List"))
    ]
    assert sorted(m.operation for m in mutating) == ["SetInstanceHealth", "StartInstances", "StopInstances"]
    rows = replace_rows(cloud, group.instances[0]) + replace_rows(cloud, standalone)
    for call in mutating:
        service = "autoscaling" if call.service == "autoscaling" else "ec2"
        bracket = [r for r in rows if r["phase"] == "action" and r["action"] == f"{service}:{call.operation}"]
        assert [r["outcome"] for r in bracket] == ["pending", "ok"], call.operation


# ------------------------------------------------------------------ signals, through triage


def alarm_event(instance: str) -> dict[str, Any]:
    """The sample status-check alarm event, about this instance, as a new delivery."""
    event = copy.deepcopy(load_event("alarm-status-check-failed"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"{instance}-status-check"
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{instance}-status-check"]
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "InstanceId": instance
    }
    return event


def health_event(code: str, *instances: str) -> dict[str, Any]:
    event = copy.deepcopy(load_event("health-ec2-retirement"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["eventTypeCode"] = code
    event["detail"]["eventArn"] = f"arn:aws:health:us-east-1::event/EC2/{code}/{code}_{uuid.uuid4().hex[:16]}"
    event["resources"] = list(instances)
    event["detail"]["affectedEntities"] = [
        {"entityValue": f"arn:aws:ec2:us-east-1:123456789012:instance/{i}", "status": "IMPAIRED"}
        for i in instances
    ]
    return event


def runbook_of(summary: Any, execution: Any) -> str:
    return str(summary.runbooks.get(execution.state_machine_arn))


def test_replace_instance_status_check_alarm_on_a_group_member_replaces_it(cloud):
    group = make_group(cloud)
    sick = group.instances[0]
    summary = cloud.send_event_and_wait(alarm_event(sick), timeout=120)
    replace = [e for e in summary.executions if runbook_of(summary, e) == "replace-instance"]
    # remap-eip was not chosen for the alarm (its only run comes from the termination event, and
    # finds nothing to move)
    rules = {r["actor"]["rule"] for r in rows_for(cloud, sick) if r["phase"] == "received"}
    assert "ec2-status-check-failed" not in rules
    (execution,) = replace
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert sick not in [m["InstanceId"] for m in group.members(cloud)]
    received = next(r for r in rows_for(cloud, sick) if r["phase"] == "received")
    assert received["actor"]["rule"] == "replace-instance-status-check-failed"


def test_replace_instance_health_event_with_several_instances_heals_each_fenced_one(cloud):
    fenced = [make_standalone(cloud), make_standalone(cloud)]
    unfenced = make_standalone(cloud, fenced=False)
    summary = cloud.send_event_and_wait(
        health_event("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", *fenced, unfenced), timeout=120
    )
    replace = [e for e in summary.executions if runbook_of(summary, e) == "replace-instance"]
    assert len(replace) == 3  # one remediation per affected instance
    assert all(e.status == "SUCCEEDED" for e in replace), [(e.error, e.cause) for e in replace]
    for instance in fenced:
        phases = [r["phase"] for r in replace_rows(cloud, instance)]
        assert phases[-2:] == ["verified", "succeeded"], phases
    # The unfenced one is left untouched, and the audit says why.
    assert [r["phase"] for r in replace_rows(cloud, unfenced)] == ["received", "skipped"]
    assert "fence" in replace_rows(cloud, unfenced)[-1]["reason"]
    assert state_of(cloud, unfenced) == "running"


def test_replace_instance_public_health_event_without_entities_is_recorded_and_ignored(cloud):
    event = copy.deepcopy(load_event("health-public-no-entities"))
    event["id"] = str(uuid.uuid4())
    summary = cloud.send_event_and_wait(event)
    assert summary.executions == []
    assert [r["phase"] for r in summary.audit] == ["ignored"]


def test_replace_instance_status_check_on_an_eip_pair_is_left_to_remap_eip(cloud):
    """One runbook per fault: the instance with a managed EIP + standby is remap-eip's."""
    from tests.e2e.test_remap_eip import make_pair

    pair = make_pair(cloud)
    summary = cloud.send_event_and_wait(alarm_event(pair.primary))
    assert [runbook_of(summary, e) for e in summary.executions] == ["remap-eip"]
    assert not replace_rows(cloud, pair.primary)


def test_replace_instance_health_event_naming_two_members_of_one_group_replaces_one_at_a_time(cloud):
    """Two executions start together; the group's slot lets one act, the other fails named and escalates."""
    group = make_group(cloud, size=3)
    a, b = group.instances[0], group.instances[1]
    summary = cloud.send_event_and_wait(
        health_event("AWS_EC2_INSTANCE_STORE_DRIVE_PERFORMANCE_DEGRADED", a, b), timeout=120
    )
    replace = [e for e in summary.executions if runbook_of(summary, e) == "replace-instance"]
    outcomes = sorted((e.status, e.error) for e in replace)
    assert outcomes == [("FAILED", "GroupBudgetExceeded"), ("SUCCEEDED", None)], [e.cause for e in replace]
    members = [m["InstanceId"] for m in group.members(cloud)]
    assert len(members) == 3 and len({a, b} & set(members)) == 1  # exactly one replaced


# ------------------------------------------------------------------ launch-template path


def make_served(cloud: DeployedCloud, fenced: bool = True) -> Served:
    return replace_instance.served(Aws.of(cloud), unique("api"), fenced=fenced)


def address_owner(cloud: DeployedCloud, allocation: str) -> str | None:
    return remap_eip.holder(cloud, allocation)


def registered(cloud: DeployedCloud, target_group: str) -> list[str]:
    return replace_instance.registered(cloud, target_group)


def test_replace_instance_launch_template_path_moves_the_eip_and_the_registration(cloud):
    served = make_served(cloud)
    cloud.reset_recording()
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    new = address_owner(cloud, served.allocation)
    assert new and new != served.instance
    assert registered(cloud, served.target_group) == [new]
    assert state_of(cloud, served.instance) == "stopped"  # retire: stop (the default), kept for a human
    (launched,) = cloud.client("ec2").describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"]
    tags = {t["Key"]: t["Value"] for t in launched["Tags"]}
    assert tags[FENCE["Key"]] == FENCE["Value"] and tags["aws:ec2launchtemplate:id"] == served.template
    rows = replace_rows(cloud, served.instance)
    actions = [(r["action"], r["outcome"]) for r in rows if r["phase"] == "action"]
    assert actions == [
        ("ec2:RunInstances", "pending"),
        ("ec2:RunInstances", "ok"),
        ("elasticloadbalancing:RegisterTargets", "pending"),
        ("elasticloadbalancing:RegisterTargets", "ok"),
        ("ec2:AssociateAddress", "pending"),
        ("ec2:AssociateAddress", "ok"),
        ("elasticloadbalancing:DeregisterTargets", "pending"),
        ("elasticloadbalancing:DeregisterTargets", "ok"),
        ("ec2:StopInstances", "pending"),
        ("ec2:StopInstances", "ok"),
    ]
    launch = next(r for r in rows if r.get("action") == "ec2:RunInstances")["parameters"]
    assert launch["LaunchTemplate"] == {"LaunchTemplateId": served.template, "Version": "1"}
    assert [r["phase"] for r in rows][-2:] == ["verified", "succeeded"]
    verified = next(r for r in rows if r["phase"] == "verified")
    assert verified["after"]["newInstanceId"] == new
    # every mutating call the local cloud saw is bracketed by the audit rows above
    mutating = [
        r.operation
        for r in cloud.recorded_requests()
        if r.service in {"ec2", "elasticloadbalancing", "elbv2"}
        and not r.operation.startswith(("Describe", "Get", "List"))
    ]
    assert sorted(mutating) == sorted(
        ["RunInstances", "RegisterTargets", "AssociateAddress", "DeregisterTargets", "StopInstances"]
    )


def test_replace_instance_launch_template_path_terminates_the_old_one_when_policy_says_so(cloud):
    served = make_served(cloud)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template", retire="terminate")
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert state_of(cloud, served.instance) == "terminated"
    assert address_owner(cloud, served.allocation) not in (None, served.instance)


def test_replace_instance_launch_template_dry_run_records_the_exact_calls_and_changes_nothing(cloud):
    served = make_served(cloud)
    cloud.reset_recording()
    result = cloud.start_and_wait(
        "replace-instance", {**manual_input(served.instance, strategy="launch-template"), "dryRun": True}
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    would = [
        (r["action"], r["parameters"])
        for r in replace_rows(cloud, served.instance)
        if r["phase"] == "would-do"
    ]
    new = {"Id": "(the replacement)", "Port": 8080}
    assert [a for a, _ in would] == [
        "ec2:RunInstances",
        "elasticloadbalancing:RegisterTargets",
        "ec2:AssociateAddress",
        "elasticloadbalancing:DeregisterTargets",
        "ec2:StopInstances",
    ]
    assert would[1][1] == {"TargetGroupArn": served.target_group, "Targets": [new]}
    assert would[2][1] == {
        "AllocationId": served.allocation,
        "InstanceId": "(the replacement)",
        "AllowReassociation": True,
    }
    assert would[3][1] == {
        "TargetGroupArn": served.target_group,
        "Targets": [{"Id": served.instance, "Port": 8080}],
    }
    assert would[4][1] == {"InstanceIds": [served.instance], "Force": False}
    assert not [
        r
        for r in cloud.recorded_requests()
        if not r.operation.startswith(("Describe", "Get", "List"))
        and r.service in {"ec2", "elasticloadbalancing", "elbv2"}
    ]
    assert address_owner(cloud, served.allocation) == served.instance


def test_replace_instance_replacement_never_healthy_is_undone_named_escalated_and_audited(cloud, monkeypatch):
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    served = make_served(cloud)
    original = FakeTargetGroup.health_for

    def new_targets_unhealthy(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(self, target, ec2_backend)
        if target["Id"] != served.instance and status.status == "healthy":
            return FakeHealthStatus(
                target["Id"],
                status.port,
                self.health_check_port,
                "unhealthy",
                "Target.FailedHealthChecks",
                "Health checks failed",
            )
        return status

    monkeypatch.setattr(FakeTargetGroup, "health_for", new_targets_unhealthy)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template", verifyAttempts=2)
    )
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    rows = replace_rows(cloud, served.instance)
    assert rows[-1]["phase"] == "failed" and "unhealthy in target group" in rows[-1]["reason"]
    # undone: the replacement deregistered and terminated, the old one untouched
    launched = next(r for r in rows if r.get("action") == "ec2:RunInstances" and r.get("outcome") == "ok")
    new = launched["after"]["instanceId"]
    assert state_of(cloud, new) == "terminated"
    assert registered(cloud, served.target_group) == [served.instance]
    assert address_owner(cloud, served.allocation) == served.instance
    assert state_of(cloud, served.instance) == "running"
    undo = [(r["phase"], r["action"], r["outcome"]) for r in rows if r["phase"] in {"action", "compensated"}][
        -4:
    ]
    assert undo == [
        ("action", "elasticloadbalancing:DeregisterTargets", "pending"),
        ("compensated", "elasticloadbalancing:DeregisterTargets", "ok"),
        ("action", "ec2:TerminateInstances", "pending"),
        ("compensated", "ec2:TerminateInstances", "ok"),
    ]


def test_replace_instance_unfenced_target_group_is_left_untouched(cloud):
    served = make_served(cloud)
    cloud.client("elbv2").remove_tags(ResourceArns=[served.target_group], TagKeys=[FENCE["Key"]])
    cloud.reset_recording()
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "SUCCEEDED"
    assert [r["phase"] for r in replace_rows(cloud, served.instance)] == ["skipped"]
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]


def _standalone_in_default_group(cloud: DeployedCloud, profile: str | None = None) -> str:
    return replace_instance.standalone(Aws.of(cloud), unique("cache"), security_group=True, profile=profile)


def test_replace_instance_instance_store_root_is_replaced_from_its_image(cloud):
    """No strategy given: an instance-store root cannot stop/start, so a replacement is launched."""
    instance = _standalone_in_default_group(cloud)
    _moto_instance(instance).root_device_type = "instance-store"
    result = cloud.start_and_wait("replace-instance", manual_input(instance, retire="terminate"))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    rows = replace_rows(cloud, instance)
    (launch,) = [r for r in rows if r.get("action") == "ec2:RunInstances" and r["outcome"] == "pending"]
    assert (
        launch["parameters"]["ImageId"] == image(Aws.of(cloud))
        and "LaunchTemplate" not in launch["parameters"]
    )
    assert state_of(cloud, instance) == "terminated"
    assert [r["action"] for r in rows if r["phase"] == "action" and r["outcome"] == "ok"] == [
        "ec2:RunInstances",
        "ec2:TerminateInstances",
    ]


def test_replace_instance_profile_outside_the_allowed_roles_is_refused_before_any_call(cloud):
    """The stack allows no role (ReplaceInstancePassRoleArns: none): the scope guard refuses to launch
    a replacement that would pass one, as IAM would."""
    profile = replace_instance.instance_profile(Aws.of(cloud), unique("cache"))
    instance = _standalone_in_default_group(cloud, profile=profile.arn)
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(instance, strategy="launch-template"))
    assert result.status == "SUCCEEDED"
    (skipped,) = replace_rows(cloud, instance)
    assert skipped["phase"] == "skipped" and f"role/{profile.name}" in skipped["reason"]
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]


def test_replace_instance_from_an_undeclared_image_is_refused_before_any_call(cloud, steps_env):
    """Given a stack that declares another image (ReplaceInstanceImageIds), When an instance that was
    not launched from a launch template is to be replaced from its own image, Then the scope guard
    skips it (escalated) with a row naming the image and the parameter; nothing is launched."""
    instance = _standalone_in_default_group(cloud)
    steps_env(REPLACE_INSTANCE_IMAGE_IDS="ami-00000000000000000", REPLACE_INSTANCE_LAUNCH_TEMPLATE_IDS="*")
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(instance, strategy="launch-template"))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    (skipped,) = replace_rows(cloud, instance)
    assert skipped["phase"] == "skipped" and f"image {image(Aws.of(cloud))}" in skipped["reason"]
    assert "ReplaceInstanceImageIds: ami-00000000000000000" in skipped["reason"]
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]
    assert state_of(cloud, instance) == "running"


def test_replace_instance_from_an_undeclared_launch_template_is_refused_before_any_call(cloud, steps_env):
    """Given a stack that declares other launch templates (an image wildcard does not declare them),
    When an instance launched from a template is to be replaced, Then it is skipped with a row naming
    the template; nothing is launched, moved or deregistered."""
    served = make_served(cloud)
    steps_env(REPLACE_INSTANCE_LAUNCH_TEMPLATE_IDS="lt-00000000000000000", REPLACE_INSTANCE_IMAGE_IDS="*")
    cloud.reset_recording()
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    (skipped,) = replace_rows(cloud, served.instance)
    assert skipped["phase"] == "skipped" and f"launch template {served.template}" in skipped["reason"]
    assert "ReplaceInstanceLaunchTemplateIds: lt-00000000000000000" in skipped["reason"]
    assert not [
        r
        for r in cloud.recorded_requests()
        if r.service in {"ec2", "elasticloadbalancing", "elbv2"}
        and not r.operation.startswith(("Describe", "Get", "List"))
    ]
    assert address_owner(cloud, served.allocation) == served.instance
    assert registered(cloud, served.target_group) == [served.instance]


def test_replace_instance_from_a_declared_launch_template_is_launched(cloud, steps_env):
    """The stack names the exact template (not a wildcard): the replacement is launched from it."""
    served = make_served(cloud)
    steps_env(REPLACE_INSTANCE_LAUNCH_TEMPLATE_IDS=f"lt-00000000000000000,{served.template}")
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    new = address_owner(cloud, served.allocation)
    assert new and new != served.instance and registered(cloud, served.target_group) == [new]


# ------------------------------------------------------- fallback: stop/start did not heal it


def _start_fails_for(instance: str, monkeypatch: Any) -> None:
    """StartInstances on ``instance`` fails as EC2 does when the AZ has no capacity for its type."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.instances import InstanceBackend

    original = InstanceBackend.start_instances

    def no_capacity(self: Any, instance_ids: list[str]) -> Any:
        if instance in instance_ids:
            raise EC2ClientError("InsufficientInstanceCapacity", "We currently do not have capacity")
        return original(self, instance_ids)

    monkeypatch.setattr(InstanceBackend, "start_instances", no_capacity)


def test_replace_instance_failed_start_falls_back_to_a_replacement(cloud, monkeypatch):
    """Given a standalone EBS instance behind an Elastic IP and a target group, When it is stopped
    and its start fails (no capacity), Then a replacement takes over: launched from its launch
    template, registered, given the address; the old one stays stopped; all of it audited."""
    served = make_served(cloud)
    _start_fails_for(served.instance, monkeypatch)
    result = cloud.start_and_wait("replace-instance", manual_input(served.instance))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    new = address_owner(cloud, served.allocation)
    assert new and new != served.instance
    assert registered(cloud, served.target_group) == [new]
    assert state_of(cloud, served.instance) == "stopped"
    rows = replace_rows(cloud, served.instance)
    steps = [(r["phase"], r.get("action"), r.get("outcome")) for r in rows]
    assert steps[:6] == [
        ("started", None, None),
        ("action", "ec2:StopInstances", "pending"),
        ("action", "ec2:StopInstances", "ok"),
        ("action", "ec2:StartInstances", "pending"),
        ("action", "ec2:StartInstances", "error"),
        ("started", None, None),
    ]
    switch = rows[5]
    assert (
        "stop-start did not heal it" in switch["reason"]
        and "falling back to launch-template" in switch["reason"]
    )
    assert switch["error"]["message"] and switch["before"]["plan"]["fallbackFrom"] == "stop-start"
    assert [a for _, a, o in steps[6:] if o == "ok"] == [
        "ec2:RunInstances",
        "elasticloadbalancing:RegisterTargets",
        "ec2:AssociateAddress",
        "elasticloadbalancing:DeregisterTargets",
        "ec2:StopInstances",
    ]
    verified = next(r for r in rows if r["phase"] == "verified")
    assert verified["after"]["fallbackFrom"] == "stop-start" and verified["after"]["newInstanceId"] == new
    assert rows[-1]["phase"] == "succeeded"


def test_replace_instance_failed_start_without_a_fenced_fallback_fails_with_the_start_error(
    cloud, monkeypatch
):
    """The fallback is refused like the guards refuse (an unfenced target group): nothing is launched
    and the execution fails with the restart's own error, the refusal in its cause."""
    served = make_served(cloud)
    cloud.client("elbv2").remove_tags(ResourceArns=[served.target_group], TagKeys=[FENCE["Key"]])
    _start_fails_for(served.instance, monkeypatch)
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(served.instance))
    assert result.status == "FAILED" and result.error == "Ec2.Ec2Exception", (result.error, result.cause)
    assert "no replacement could take over: OutsideFence" in result.cause
    assert served.target_group in result.cause
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]
    failed = replace_rows(cloud, served.instance)[-1]
    assert failed["phase"] == "failed" and "no replacement could take over" in failed["reason"]


def test_replace_instance_fallback_step_crashing_fails_with_the_start_error(cloud, monkeypatch):
    """An unexpected error while planning the fallback (not a refusal): nothing is launched and the
    run fails, escalated, with the restart's own error."""
    from selfheal.runbooks import replace_instance

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom while planning")

    served = make_served(cloud)
    _start_fails_for(served.instance, monkeypatch)
    monkeypatch.setattr(replace_instance, "fallback_plan", broken)
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(served.instance))
    assert result.status == "FAILED" and result.error == "Ec2.Ec2Exception", (result.error, result.cause)
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]
    failed = replace_rows(cloud, served.instance)[-1]
    assert failed["phase"] == "failed" and failed["error"]["error"] == "Ec2.Ec2Exception"


def test_replace_instance_fallback_none_fails_without_launching(cloud, monkeypatch):
    served = make_served(cloud)
    _start_fails_for(served.instance, monkeypatch)
    cloud.reset_recording()
    result = cloud.start_and_wait("replace-instance", manual_input(served.instance, fallback="none"))
    assert result.status == "FAILED"
    assert not [r for r in cloud.recorded_requests() if r.operation == "RunInstances"]
    assert address_owner(cloud, served.allocation) == served.instance


# ------------------------------------------------------- launch-template path: more than one group


def _second_target_group(cloud: DeployedCloud, served: Served, port: int = 9090) -> str:
    return replace_instance.target_group(Aws.of(cloud), unique("admin"), served.instance, port=port)


def test_replace_instance_launch_template_path_swaps_every_target_group(cloud):
    served = make_served(cloud)
    admin = _second_target_group(cloud, served)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    new = address_owner(cloud, served.allocation)
    assert registered(cloud, served.target_group) == [new] and registered(cloud, admin) == [new]
    ports = cloud.client("elbv2").describe_target_health(TargetGroupArn=admin)["TargetHealthDescriptions"]
    assert [d["Target"]["Port"] for d in ports] == [9090]  # on the old one's port in that group
    rows = replace_rows(cloud, served.instance)
    swaps = [
        (r["action"], r["parameters"]["TargetGroupArn"])
        for r in rows
        if r["phase"] == "action" and r["outcome"] == "ok" and r["action"].startswith("elasticloadbalancing")
    ]
    assert sorted(swaps) == sorted(
        [
            ("elasticloadbalancing:RegisterTargets", served.target_group),
            ("elasticloadbalancing:RegisterTargets", admin),
            ("elasticloadbalancing:DeregisterTargets", served.target_group),
            ("elasticloadbalancing:DeregisterTargets", admin),
        ]
    )


def test_replace_instance_registration_failing_in_the_second_group_undoes_only_what_was_done(
    cloud, monkeypatch
):
    """Registered in the first group, refused by the second: the undo deregisters it where it was
    registered (and nowhere else), terminates it, and the old one keeps serving both groups."""
    from moto.elbv2.exceptions import InvalidTargetError
    from moto.elbv2.models import FakeTargetGroup

    served = make_served(cloud)
    admin = _second_target_group(cloud, served)
    original = FakeTargetGroup.register
    groups_given_the_replacement: list[str] = []

    def refuse_the_second_group(self: Any, targets: list[dict[str, Any]]) -> None:
        if any(t["Id"] != served.instance for t in targets):
            if groups_given_the_replacement:
                raise InvalidTargetError()
            groups_given_the_replacement.append(self.arn)
        original(self, targets)

    monkeypatch.setattr(FakeTargetGroup, "register", refuse_the_second_group)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template")
    )
    assert result.status == "FAILED" and result.error == "ElasticLoadBalancingV2.InvalidTargetException"
    assert registered(cloud, served.target_group) == [served.instance]
    assert registered(cloud, admin) == [served.instance]
    assert address_owner(cloud, served.allocation) == served.instance
    rows = replace_rows(cloud, served.instance)
    new = next(r for r in rows if r.get("action") == "ec2:RunInstances" and r["outcome"] == "ok")["after"]
    assert state_of(cloud, new["instanceId"]) == "terminated"
    undone = [
        (r["action"], (r.get("parameters") or {}).get("TargetGroupArn"))
        for r in rows
        if r["phase"] == "compensated"
    ]
    assert undone == [
        ("elasticloadbalancing:DeregisterTargets", groups_given_the_replacement[0]),
        ("ec2:TerminateInstances", None),
    ]


# ------------------------------------------------------- launch-template path: the address moved?


def test_replace_instance_address_not_on_the_replacement_is_moved_back_and_undone(cloud, monkeypatch):
    """AssociateAddress answers but the address never lands on the replacement: verification fails
    (named, escalated), the address goes back to the old instance, the replacement is undone."""
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    served = make_served(cloud)
    original = ElasticAddressBackend.associate_address

    def lost_on_the_replacement(self: Any, instance: Any = None, **kwargs: Any) -> Any:
        if instance is not None and instance.id != served.instance:
            (address,) = self.address_by_allocation([kwargs["allocation_id"]])
            return address  # accepted, not applied
        return original(self, instance=instance, **kwargs)

    monkeypatch.setattr(ElasticAddressBackend, "associate_address", lost_on_the_replacement)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template", verifyAttempts=2)
    )
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    assert "is not on replacement" in result.cause
    assert address_owner(cloud, served.allocation) == served.instance
    assert registered(cloud, served.target_group) == [served.instance]
    rows = replace_rows(cloud, served.instance)
    undone = [r["action"] for r in rows if r["phase"] == "compensated"]
    assert undone == [
        "ec2:AssociateAddress",
        "elasticloadbalancing:DeregisterTargets",
        "ec2:TerminateInstances",
    ]
    back = next(r for r in rows if r["phase"] == "compensated")
    assert back["parameters"] == {
        "AllocationId": served.allocation,
        "InstanceId": served.instance,
        "AllowReassociation": True,
    }


def test_replace_instance_address_that_cannot_be_moved_back_is_audited_and_the_undo_goes_on(
    cloud, monkeypatch
):
    """The address never lands on the replacement and moving it back is refused too: the failed
    compensation is its own audit row, and the undo still deregisters and terminates the replacement."""
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend

    served = make_served(cloud)

    def nothing_moves(self: Any, instance: Any = None, **kwargs: Any) -> Any:
        if instance is not None and instance.id == served.instance:
            raise EC2ClientError("InvalidInstanceID", "the old instance refuses the address")
        (address,) = self.address_by_allocation([kwargs["allocation_id"]])
        return address  # accepted for the replacement, never applied

    monkeypatch.setattr(ElasticAddressBackend, "associate_address", nothing_moves)
    result = cloud.start_and_wait(
        "replace-instance", manual_input(served.instance, strategy="launch-template", verifyAttempts=2)
    )
    assert result.status == "FAILED" and result.error == "VerificationFailed"
    rows = replace_rows(cloud, served.instance)
    compensations = [(r["action"], r["outcome"]) for r in rows if r["phase"] == "compensated"]
    assert compensations == [
        ("ec2:AssociateAddress", "error"),
        ("elasticloadbalancing:DeregisterTargets", "ok"),
        ("ec2:TerminateInstances", "ok"),
    ]
    new = next(r for r in rows if r.get("action") == "ec2:RunInstances" and r["outcome"] == "ok")["after"]
    assert state_of(cloud, new["instanceId"]) == "terminated"
    assert registered(cloud, served.target_group) == [served.instance]
    assert rows[-1]["phase"] == "failed" and "is not on replacement" in rows[-1]["reason"]


# ------------------------------------------------------------------ don't fight AWS


def test_replace_instance_recover_alarm_in_alarm_is_not_fought(cloud):
    """A status-check alarm whose action is EC2 recover fires: triage routes it here, and the runbook
    stands back (EC2's own recovery is working on it): skipped, audited, no call."""
    instance = make_standalone(cloud)
    cw = cloud.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName=f"{instance}-recover",
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed_System",
        Dimensions=[{"Name": "InstanceId", "Value": instance}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=["arn:aws:automate:us-east-1:ec2:recover"],
    )
    sfn = cloud.client("stepfunctions")
    machines = ops.stack_state_machines(cloud.client("cloudformation"), cloud.stack.name)
    before = ops.execution_arns(sfn, machines)
    cloud.reset_recording()
    cw.set_alarm_state(AlarmName=f"{instance}-recover", StateValue="ALARM", StateReason="e2e")
    (execution,) = ops.wait_for_new_executions(sfn, machines, before)
    assert execution.status == "SUCCEEDED"
    received, skipped = replace_rows(cloud, instance)
    assert received["phase"] == "received" and skipped["phase"] == "skipped"
    assert "EC2 recover action" in skipped["reason"] and skipped["error"]["error"] == "AlreadyRecovering"
    # a manual request finds the same
    assert cloud.start_and_wait("replace-instance", manual_input(instance)).status == "SUCCEEDED"
    rows = replace_rows(cloud, instance)
    assert [r["phase"] for r in rows] == ["received", "skipped", "skipped"]
    assert not [r for r in cloud.recorded_requests() if r.operation in {"StopInstances", "StartInstances"}]
    assert state_of(cloud, instance) == "running"


def test_replace_instance_auto_scaling_throttling_a_step_is_retried_and_the_run_heals(cloud, faults):
    group = make_group(cloud)
    sick = group.instances[0]
    throttle = faults.throttle("autoscaling", "DescribeAutoScalingInstances", times=THROTTLES_PAST_THE_CLIENT)
    result = cloud.start_and_wait("replace-instance", manual_input(sick))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ("Check the guards", "AwsCallFailed") in result.failed_attempts
    assert len(throttle.hits) == THROTTLES_PAST_THE_CLIENT
    assert sick not in [m["InstanceId"] for m in group.members(cloud)]


# --------------------------------------------------------------------------------- under a burst


def _budget_left_at(cloud: DeployedCloud, runbook: str, room: int) -> int:
    """Make exactly ``room`` more runs of ``runbook`` fit in its hourly budget, whatever earlier tests
    of this session spent, and return the BudgetPerHour that does it. The guards count this hour's
    acting runs from the audit trail; the atomic budget is made to hold the same number (the lease
    table's budget items for the runbook are replaced by as many placeholders), and no escalation of
    this hour is on record yet."""
    dynamodb, table = cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"]
    for item in dynamodb.scan(TableName=table)["Items"]:
        key = item["targetKey"]["S"]
        if key.startswith((f"budget#{runbook}#", f"escalated#{runbook}#")):
            dynamodb.delete_item(TableName=table, Key={"targetKey": {"S": key}})
    now = utcnow()
    audit = AuditTrail(dynamodb, cloud.stack.outputs["AuditTableName"])
    acted = {
        r.request_id
        for r in audit.for_runbook(runbook, now - timedelta(hours=1))
        if r.phase is Phase.ACTION and r.outcome == "pending" and not r.dry_run
    }
    limit = len(acted) + room
    budgets = Budgets(dynamodb, table)
    for n in range(len(acted)):
        budgets.take_hourly(runbook, f"earlier-run-{n}", limit, now)
    return limit


# The burst: more runs than the budget has room for, started by one event so that they reach their
# guards together (the guards' count of this hour's audit rows is read by all of them at once: only
# the atomic budget keeps the count to the room). 8 and 3 leave 5 runs to refuse, as 20 and 5 did:
# with the atomic take removed (localcloud.weaken's "budget"), 8 runs acted, so this size fails
# when the mechanism goes; 20 only cost more runs of the same kind.
BURST_INSTANCES, BURST_ROOM = 8, 3


@pytest.mark.long
def test_replace_instance_one_health_event_naming_many_instances_acts_within_the_budget(
    cloud, steps_env, outcome_inbox
):
    # Given fenced standalone instances, more than the room left for replace-instance runs this hour
    budget = BURST_ROOM
    steps_env(BUDGET_PER_HOUR=str(_budget_left_at(cloud, "replace-instance", budget)))
    instances = [make_standalone(cloud) for _ in range(BURST_INSTANCES)]
    assert len(instances) > budget
    # When one AWS Health event names them all (a run each starts at once)
    summary = cloud.send_event_and_wait(
        health_event("AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", *instances), timeout=300
    )
    replace = [e for e in summary.executions if runbook_of(summary, e) == "replace-instance"]
    assert len(replace) == len(instances) and all(e.status == "SUCCEEDED" for e in replace), [
        (e.error, e.cause) for e in replace if e.status != "SUCCEEDED"
    ]
    # Then exactly the budget acted; the rest changed nothing and say why
    rows = {i: replace_rows(cloud, i) for i in instances}
    acted = [i for i in instances if any(r["phase"] == "action" for r in rows[i])]
    assert len(acted) == budget, [[r["phase"] for r in rows[i]] for i in instances]
    for instance in set(instances) - set(acted):
        assert rows[instance][-1]["phase"] == "skipped"
        assert "budget exhausted" in rows[instance][-1]["reason"]
        assert state_of(cloud, instance) == "running"
    # And one escalation says so (the other skips are on record, without paging again)
    notices = []
    for _ in range(10):
        batch = outcome_inbox()
        if not batch:
            break
        notices += batch
    escalations = [
        n
        for n in notices
        if n.get("MessageAttributes", {}).get("severity", {}).get("Value") == "escalation"
        and n["MessageAttributes"]["runbook"]["Value"] == "replace-instance"
    ]
    assert len(escalations) == 1, [n.get("Subject") for n in escalations]
    assert "budget exhausted" in " ".join(escalations[0]["Message"].split())  # e-mail lines wrap
