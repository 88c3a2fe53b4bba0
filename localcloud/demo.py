"""`make demo`: start the local cloud, build a small HA environment, break it, watch selfheal heal it.

Everything happens through AWS APIs against the local cloud: the fault is injected the way AWS
would see it (an alarm goes to ALARM), the event reaches the stack's rules on its own, and the
demo only watches the audit trail and the resources. Exit status 0 only if every fault healed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud import ops
from localcloud.aws_events import patch_service_events
from localcloud.cli import format_audit_table
from localcloud.harness import DeployedCloud, start_deployed_cloud

ROOT = Path(__file__).resolve().parents[1]
FENCE = {"Key": "selfheal:managed", "Value": "true"}
TERMINAL_PHASES = {"succeeded", "failed", "skipped", "rejected"}


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


def say(clock: Clock, what: str, text: str) -> None:
    print(f"[{clock():6.2f}s] {what:<10} {text}", flush=True)


@dataclass
class Environment:
    """The reference HA environment: a web tier behind a load balancer and an EIP'd API pair."""

    vpc: str
    subnets: list[str]
    web: list[str]
    target_group: str
    api_primary: str
    api_standby: str
    api_allocation: str
    api_public_ip: str
    alarms: dict[str, str] = field(default_factory=dict)
    # replace-instance: an Auto Scaling web tier and a standalone EBS-backed batch host.
    asg_name: str = ""
    asg_instances: list[str] = field(default_factory=list)
    batch: str = ""


def _instance(ec2: Any, image: str, subnet: str, name: str, role: str) -> str:
    tags = [FENCE, {"Key": "Name", "Value": name}, {"Key": "Role", "Value": role}]
    instance = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    return str(instance["InstanceId"])


def build_environment(cloud: DeployedCloud) -> Environment:
    ec2, elb, cw = cloud.client("ec2"), cloud.client("elbv2"), cloud.client("cloudwatch")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")[
            "Subnet"
        ]["SubnetId"]
        for i, az in enumerate("ab", start=1)
    ]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    web = [_instance(ec2, image, subnets[i], f"web-{i + 1}", "web") for i in range(2)]
    balancer = elb.create_load_balancer(Name="shop", Subnets=subnets, Type="application")["LoadBalancers"][0]
    group = elb.create_target_group(Name="shop-web", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": i} for i in web])
    elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
    )
    primary = _instance(ec2, image, subnets[0], "api-1", "api-primary")
    standby = _instance(ec2, image, subnets[1], "api-2", "api-standby")
    address = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {
                "ResourceType": "elastic-ip",
                "Tags": [
                    FENCE,
                    {"Key": "Name", "Value": "api"},
                    {"Key": "selfheal:param:standbyInstanceId", "Value": standby},
                    {"Key": "selfheal:primary", "Value": primary},
                ],
            }
        ],
    )
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=primary)
    env = Environment(
        vpc=vpc,
        subnets=subnets,
        web=web,
        target_group=group["TargetGroupArn"],
        api_primary=primary,
        api_standby=standby,
        api_allocation=address["AllocationId"],
        api_public_ip=address["PublicIp"],
    )
    for name, instance in (("api-1", primary), ("web-1", web[0]), ("web-2", web[1])):
        alarm = f"{name}-status-check-failed"
        cw.put_metric_alarm(
            AlarmName=alarm,
            AlarmDescription=f"{name} failed its EC2 status checks",
            Namespace="AWS/EC2",
            MetricName="StatusCheckFailed",
            Dimensions=[{"Name": "InstanceId", "Value": instance}],
            Statistic="Maximum",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="breaching",
        )
        env.alarms[name] = alarm
    _build_replace_instance_environment(cloud, env, image, subnets)
    return env


def _build_replace_instance_environment(
    cloud: DeployedCloud, env: Environment, image: str, subnets: list[str]
) -> None:
    """An Auto Scaling group (fenced, tags propagated) with a status-check alarm on one member, and a
    standalone fenced batch host."""
    ec2, asg, cw = cloud.client("ec2"), cloud.client("autoscaling"), cloud.client("cloudwatch")
    template = ec2.create_launch_template(
        LaunchTemplateName="shop-web-asg", LaunchTemplateData={"ImageId": image, "InstanceType": "t3.small"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="shop-web-asg",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=2,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[
            {**FENCE, "PropagateAtLaunch": True},
            {"Key": "Name", "Value": "shop-web-asg", "PropagateAtLaunch": True},
        ],
    )
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop-web-asg"])["AutoScalingGroups"][0]
    env.asg_name = "shop-web-asg"
    env.asg_instances = [m["InstanceId"] for m in members["Instances"]]
    env.batch = _instance(ec2, image, subnets[0], "batch-1", "batch")
    alarm = "shop-web-asg-member-status-check-failed"
    cw.put_metric_alarm(
        AlarmName=alarm,
        AlarmDescription="an Auto Scaling web instance failed its EC2 system status check",
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed_System",
        Dimensions=[{"Name": "InstanceId", "Value": env.asg_instances[0]}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )
    env.alarms["asg-web"] = alarm


@dataclass
class Fault:
    title: str
    inject: Callable[[DeployedCloud, Environment], None]
    target_key: Callable[[Environment], str]
    healed: Callable[[DeployedCloud, Environment], tuple[bool, str]]
    injected: str = "the alarm goes to ALARM; CloudWatch publishes the state change"


def _api_status_check_fails(cloud: DeployedCloud, env: Environment) -> None:
    cloud.client("cloudwatch").set_alarm_state(
        AlarmName=env.alarms["api-1"],
        StateValue="ALARM",
        StateReason="Threshold Crossed: 2 out of the last 2 datapoints [1.0, 1.0] >= the threshold (1.0)",
    )


def _eip_on_standby(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    address = cloud.client("ec2").describe_addresses(AllocationIds=[env.api_allocation])["Addresses"][0]
    holder = address.get("InstanceId")
    return holder == env.api_standby, f"{env.api_public_ip} is on {holder} (standby {env.api_standby})"


def _asg_member_status_check_fails(cloud: DeployedCloud, env: Environment) -> None:
    cloud.client("cloudwatch").set_alarm_state(
        AlarmName=env.alarms["asg-web"],
        StateValue="ALARM",
        StateReason="Threshold Crossed: 2 out of the last 2 datapoints [1.0, 1.0] >= the threshold (1.0)",
    )


def _asg_whole_without_the_sick_member(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    group = cloud.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[env.asg_name])[
        "AutoScalingGroups"
    ][0]
    members = {m["InstanceId"]: f"{m['LifecycleState']}/{m['HealthStatus']}" for m in group["Instances"]}
    healed = (
        env.asg_instances[0] not in members
        and len(members) == group["DesiredCapacity"]
        and set(members.values()) == {"InService/Healthy"}
    )
    return healed, f"{env.asg_name}: {members} (replaced {env.asg_instances[0]})"


def _batch_retirement_notice(cloud: DeployedCloud, env: Environment) -> None:
    """AWS Health announces the retirement of the batch host (as AWS would put it on the bus)."""
    arn = f"arn:aws:ec2:us-east-1:123456789012:instance/{env.batch}"
    code = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED"
    ops.put_event(
        cloud.client("events"),
        {
            "source": "aws.health",
            "detail-type": "AWS Health Event",
            "resources": [env.batch],
            "detail": {
                "eventArn": f"arn:aws:health:us-east-1::event/EC2/{code}/{code}_{env.batch}",
                "service": "EC2",
                "eventTypeCode": code,
                "eventTypeCategory": "scheduledChange",
                "eventScopeCode": "ACCOUNT_SPECIFIC",
                "statusCode": "upcoming",
                "eventRegion": "us-east-1",
                "eventDescription": [
                    {
                        "language": "en_US",
                        "latestDescription": "EC2 has detected degradation of the underlying hardware"
                        " hosting your Amazon EC2 instance. We will stop your instance in two weeks.",
                    }
                ],
                "affectedEntities": [{"entityValue": arn, "status": "PENDING"}],
                "affectedAccount": "123456789012",
            },
        },
    )


def _batch_running_on_new_hardware(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    statuses = cloud.client("ec2").describe_instance_status(
        InstanceIds=[env.batch], IncludeAllInstances=True
    )["InstanceStatuses"]
    s = statuses[0] if statuses else {}
    state = s.get("InstanceState", {}).get("Name")
    checks = (s.get("SystemStatus", {}).get("Status"), s.get("InstanceStatus", {}).get("Status"))
    healed = state == "running" and checks == ("ok", "ok")
    return healed, f"batch-1 {env.batch} is {state}, status checks {checks}"


FAULTS = [
    Fault(
        title="api-1 (the instance behind the API's Elastic IP) fails its status check",
        inject=_api_status_check_fails,
        target_key=lambda env: env.api_primary,
        healed=_eip_on_standby,
    ),
    Fault(
        title="a web instance of the Auto Scaling group fails its system status check",
        inject=_asg_member_status_check_fails,
        target_key=lambda env: env.asg_instances[0],
        healed=_asg_whole_without_the_sick_member,
    ),
    Fault(
        title="AWS Health schedules the retirement of batch-1 (standalone, EBS-backed)",
        inject=_batch_retirement_notice,
        target_key=lambda env: env.batch,
        healed=_batch_running_on_new_hardware,
        injected="AWS Health puts a scheduled retirement for batch-1 on the bus",
    ),
]


def _describe_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    lines = _describe(row)
    return lines if isinstance(lines, list) else [lines]


def _describe(row: dict[str, Any]) -> tuple[str, str] | list[tuple[str, str]]:
    phase = row.get("phase", "?")
    runbook, target = row.get("runbook", "-"), row.get("targetKey", "-")
    if phase == "received":
        actor = row.get("actor") or {}
        return [
            ("detected", str(row.get("reason", ""))),
            ("decided", f"run {runbook} on {target} (policy rule {actor.get('rule', '-')})"),
        ]
    if phase == "started":
        return "started", f"execution {row.get('requestId')}: guards passed, lease held"
    if phase in ("action", "compensated"):
        call = f"{row.get('action')} {row.get('parameters')}"
        verb = {"pending": "acting", "ok": "done", "error": "failed"}.get(str(row.get("outcome")), phase)
        return verb, call if row.get(
            "outcome"
        ) == "pending" else f"{call} -> {row.get('after') or row.get('error')}"
    if phase == "would-do":
        return "would do", f"{row.get('action')} {row.get('parameters')} (dry run)"
    if phase == "verified":
        return "verified", f"{runbook} on {target}: the change is visible in AWS"
    if phase == "succeeded":
        return "succeeded", "audited, notified (SNS), outcome event on the bus, lease released"
    return phase, str(row.get("reason") or row.get("error") or "")


def watch(
    cloud: DeployedCloud, table: str, target_key: str, clock: Clock, timeout: float = 90.0
) -> str | None:
    """Print each audit row about the target as it is written; return the final phase."""
    printed: set[tuple[str, str]] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = ops.audit_for_target(cloud.client("dynamodb"), table, target_key)
        for row in rows:
            key = (row["requestId"], row["sk"])
            if key in printed:
                continue
            printed.add(key)
            for what, text in _describe_row(row):
                say(clock, what, text)
            if row.get("phase") in TERMINAL_PHASES:
                return str(row["phase"])
        time.sleep(0.1)
    return None


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfheal demo", description=__doc__)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)

    clock = Clock()
    print("selfheal demo: a local cloud (moto), the real template.yaml and state machines, no AWS account\n")
    patch_service_events()
    # WARNING: the functions' own INFO logs would drown the story; `selfheal audit` has it all.
    cloud = start_deployed_cloud(args.template, {"Mode": "enforce", "LogLevel": "WARNING"})
    try:
        stack = cloud.stack
        say(clock, "ready", f"local cloud at {cloud.endpoint}, stack {stack.name} deployed")
        env = build_environment(cloud)
        say(
            clock,
            "built",
            f"VPC {env.vpc}: ALB + web-1/web-2 {env.web}; API {env.api_public_ip} on api-1 {env.api_primary}"
            f" with standby api-2 {env.api_standby}",
        )
        table = stack.outputs["AuditTableName"]
        results = []
        for number, fault in enumerate(FAULTS, start=1):
            print(f"\nFault {number}: {fault.title}")
            fault_clock = Clock()
            say(fault_clock, "injected", fault.injected)
            fault.inject(cloud, env)
            final = watch(cloud, table, fault.target_key(env), fault_clock)
            healed, evidence = fault.healed(cloud, env)
            ok = healed and final == "succeeded"
            say(fault_clock, "HEALED" if ok else "NOT HEALED", evidence)
            results.append(ok)

        print("\nAudit trail (selfheal audit):")
        print(format_audit_table(ops.scan_audit(cloud.client("dynamodb"), table)))
        print(f"\n{sum(results)}/{len(results)} faults healed in {clock():.1f}s")
        return 0 if all(results) else 1
    finally:
        cloud.cloud.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)
