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
from localcloud.compat import lambda_runtime_environment, set_lambda_runtime_environment
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
    return env


@dataclass
class Fault:
    title: str
    inject: Callable[[DeployedCloud, Environment], None]
    target_key: Callable[[Environment], str]
    healed: Callable[[DeployedCloud, Environment], tuple[bool, str]]


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


# --- promote-replica: the orders database, its read replica and the name the application uses ---
# Kept out of Environment so each runbook's demo world stays its own block.
_ORDERS_DB = {
    "primary": "orders-db",
    "replica": "orders-db-replica-1",
    "zone_name": "shop.internal.",
    "record": "orders-db.shop.internal.",
}


def _build_orders_database(cloud: DeployedCloud) -> None:
    rds, r53, cw = cloud.client("rds"), cloud.client("route53"), cloud.client("cloudwatch")
    db = _ORDERS_DB
    zone = r53.create_hosted_zone(
        Name=db["zone_name"],
        CallerReference="selfheal-demo",
        HostedZoneConfig={"PrivateZone": True, "Comment": "names the shop uses"},
        VPC={"VPCRegion": "us-east-1", "VPCId": "vpc-0demo0000000000a"},
    )["HostedZone"]["Id"].rsplit("/", 1)[-1]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone, AddTags=[FENCE])
    db["zone"] = zone
    primary = rds.create_db_instance(
        DBInstanceIdentifier=db["primary"],
        DBInstanceClass="db.r6g.large",
        Engine="postgres",
        AllocatedStorage=100,
        MasterUsername="shop",
        MasterUserPassword="demo-only-password",
        Tags=[
            FENCE,
            {"Key": "selfheal:param:hostedZoneId", "Value": zone},
            {"Key": "selfheal:param:recordName", "Value": db["record"]},
            {"Key": "selfheal:param:verifyIntervalSeconds", "Value": "1"},
        ],
    )["DBInstance"]
    replica = rds.create_db_instance_read_replica(
        DBInstanceIdentifier=db["replica"], SourceDBInstanceIdentifier=db["primary"], Tags=[FENCE]
    )["DBInstance"]
    db["primary_endpoint"] = primary["Endpoint"]["Address"]
    db["replica_endpoint"] = replica["Endpoint"]["Address"]
    r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": db["record"],
                        "Type": "CNAME",
                        "TTL": 30,
                        "ResourceRecords": [{"Value": db["primary_endpoint"]}],
                    },
                }
            ]
        },
    )
    cw.put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "ReplicaLag",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": db["replica"]}],
                "Value": 1.0,
                "Unit": "Seconds",
            }
        ],
    )
    db["alarm"] = f"selfheal-db-primary-{db['primary']}-connections"
    cw.put_metric_alarm(
        AlarmName=db["alarm"],
        AlarmDescription="orders-db accepts no connections",
        Namespace="AWS/RDS",
        MetricName="DatabaseConnections",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": db["primary"]}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=3,
        Threshold=0,
        ComparisonOperator="LessThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )


def _orders_db_fails(cloud: DeployedCloud, env: Environment) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID

    from localcloud import compat_rds

    _build_orders_database(cloud)
    # The primary's storage fails (only AWS can do that: injected), so its connections alarm fires.
    compat_rds.inject_instance_status(DEFAULT_ACCOUNT_ID, cloud.cloud.region, _ORDERS_DB["primary"], "failed")
    cloud.client("cloudwatch").set_alarm_state(
        AlarmName=_ORDERS_DB["alarm"],
        StateValue="ALARM",
        StateReason="Threshold Crossed: 3 out of the last 3 datapoints [0.0, 0.0, 0.0]"
        " <= the threshold (0.0)",
    )


def _orders_db_name_on_new_writer(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    db = _ORDERS_DB
    record = cloud.client("route53").list_resource_record_sets(
        HostedZoneId=db["zone"], StartRecordName=db["record"], MaxItems="1"
    )["ResourceRecordSets"][0]
    value = record["ResourceRecords"][0]["Value"]
    writer = cloud.client("rds").describe_db_instances(DBInstanceIdentifier=db["replica"])["DBInstances"][0]
    standalone = writer["DBInstanceStatus"] == "available" and not writer.get(
        "ReadReplicaSourceDBInstanceIdentifier"
    )
    return (
        value == db["replica_endpoint"] and standalone,
        f"{db['record']} -> {value}"
        f" ({db['replica']} is {'a standalone writer' if standalone else 'still a replica'})",
    )


FAULTS = [
    Fault(
        title="api-1 (the instance behind the API's Elastic IP) fails its status check",
        inject=_api_status_check_fails,
        target_key=lambda env: env.api_primary,
        healed=_eip_on_standby,
    ),
    Fault(
        title="orders-db (the shop's primary database) fails; its read replica must take over",
        inject=_orders_db_fails,
        target_key=lambda env: _ORDERS_DB["primary"],
        healed=_orders_db_name_on_new_writer,
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
    # The functions' EMF metric lines go to stdout, as in Lambda; here they would drown the story.
    set_lambda_runtime_environment({**lambda_runtime_environment(), "POWERTOOLS_METRICS_DISABLED": "true"})
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
            say(fault_clock, "injected", "the alarm goes to ALARM; CloudWatch publishes the state change")
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
