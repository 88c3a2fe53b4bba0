"""`make demo`: start the local cloud, build a small HA environment, break it, watch selfheal heal it.

Everything happens through AWS APIs against the local cloud: the fault is injected the way AWS
would see it (an alarm goes to ALARM), the event reaches the stack's rules on its own, and the
demo only watches the audit trail and the resources. Exit status 0 only if every fault healed.
"""

from __future__ import annotations

import argparse
import sys
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


WIDTH = 160  # a demo is read in a terminal: no line wider


def say(clock: Clock, what: str, text: str) -> None:
    _end_progress()
    line = f"[{clock():6.2f}s] {what:<10} {text}"
    print(line if len(line) <= WIDTH else line[: WIDTH - 3] + "...", flush=True)


_progress_shown = False


def _progress(clock: Clock, text: str) -> None:
    """A line that says what the demo waits for, on a terminal only, replaced by the next one."""
    global _progress_shown
    if sys.stdout.isatty():
        print(f"\r[{clock():6.2f}s] {'...':<10} {text}"[: WIDTH + 1], end="", flush=True)
        _progress_shown = True


def _end_progress() -> None:
    global _progress_shown
    if _progress_shown:
        print("\r\033[K", end="", flush=True)
        _progress_shown = False


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
    # What later faults build for themselves (flip-dns: zone, health checks).
    extra: dict[str, Any] = field(default_factory=dict)
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
    image = ops.any_image_id(ec2)
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


def _status_check_fails(alarm: str) -> Callable[[DeployedCloud, Environment], None]:
    """The fault as CloudWatch sees it: the instance's status-check alarm goes to ALARM."""

    def inject(cloud: DeployedCloud, env: Environment) -> None:
        cloud.client("cloudwatch").set_alarm_state(
            AlarmName=env.alarms[alarm],
            StateValue="ALARM",
            StateReason="Threshold Crossed: 2 out of the last 2 datapoints [1.0, 1.0] >= the threshold (1.0)",
        )

    return inject


def _eip_on_standby(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    address = cloud.client("ec2").describe_addresses(AllocationIds=[env.api_allocation])["Addresses"][0]
    holder = address.get("InstanceId")
    return holder == env.api_standby, f"{env.api_public_ip} is on {holder} (standby {env.api_standby})"


# ------------------------------------------------------------------------- redrive-dlq fault
ORDERS_MESSAGES = 20
# The DLQ's pace for the demo, as an operator would set it: selfheal:param:<name> tags on the DLQ.
DLQ_PARAM_TAGS = {
    "selfheal:param:consumerAlarmName": "orders-consumer-errors",
    "selfheal:param:canaryMessages": "3",
    "selfheal:param:canaryMessagesPerSecond": "5",
    "selfheal:param:canaryObserveSeconds": "2",
    "selfheal:param:maxMessagesPerSecond": "100",
    "selfheal:param:pollIntervalSeconds": "1",
}


def _orders_queues(cloud: DeployedCloud) -> tuple[str, str]:
    """orders (fenced, redrive policy: 2 receives) -> orders-dlq (fenced); the consumer's health
    alarm and the DLQ alarm the policy rule sqs-dlq-has-messages listens to."""
    sqs, cw = cloud.client("sqs"), cloud.client("cloudwatch")
    fence = {FENCE["Key"]: FENCE["Value"]}
    # selfheal:dlq=true declares it a DLQ: the redrive role may take messages only out of such queues.
    dlq = sqs.create_queue(QueueName="orders-dlq", tags={**fence, "selfheal:dlq": "true", **DLQ_PARAM_TAGS})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 2}}'
    orders = sqs.create_queue(QueueName="orders", Attributes={"RedrivePolicy": policy}, tags=fence)[
        "QueueUrl"
    ]
    common: dict[str, Any] = {
        "Statistic": "Maximum",
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 0,
        "ComparisonOperator": "GreaterThanThreshold",
    }
    cw.put_metric_alarm(
        AlarmName="orders-consumer-errors",
        AlarmDescription="the orders consumer (a Lambda function) is failing",
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "orders-consumer"}],
        **common,
    )
    cw.put_metric_alarm(
        AlarmName="dlq-orders-dlq-has-messages",
        AlarmDescription="orders-dlq holds dead-lettered orders",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "orders-dlq"}],
        **common,
    )
    return orders, dlq


def _depth(cloud: DeployedCloud, url: str) -> int:
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _orders_dead_letter_then_consumer_recovers(cloud: DeployedCloud, env: Environment) -> None:
    sqs, cw = cloud.client("sqs"), cloud.client("cloudwatch")
    orders, dlq = _orders_queues(cloud)
    env.alarms["orders-consumer"] = "orders-consumer-errors"
    cw.set_alarm_state(AlarmName="orders-consumer-errors", StateValue="ALARM", StateReason="Errors > 0")
    for i in range(ORDERS_MESSAGES):
        sqs.send_message(QueueUrl=orders, MessageBody=f'{{"order": {i}}}')
    # The failing consumer receives each order and never deletes it; after 2 receives SQS moves it
    # to orders-dlq.
    for _ in range(3):
        while sqs.receive_message(QueueUrl=orders, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
            "Messages"
        ):
            pass
    print(
        f"           orders-consumer failed: {_depth(cloud, dlq)} orders dead-lettered in orders-dlq,"
        f" {_depth(cloud, orders)} left in orders; the consumer is fixed and its alarm returns to OK",
        flush=True,
    )
    cw.set_alarm_state(AlarmName="orders-consumer-errors", StateValue="OK", StateReason="Errors = 0")
    cw.set_alarm_state(
        AlarmName="dlq-orders-dlq-has-messages",
        StateValue="ALARM",
        StateReason=f"Threshold Crossed: 1 datapoint [{ORDERS_MESSAGES}.0] > the threshold (0.0)",
    )


def _orders_back_in_their_queue(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    sqs = cloud.client("sqs")
    orders, dlq = (sqs.get_queue_url(QueueName=n)["QueueUrl"] for n in ("orders", "orders-dlq"))
    in_orders, in_dlq = _depth(cloud, orders), _depth(cloud, dlq)
    return (
        in_dlq == 0 and in_orders == ORDERS_MESSAGES,
        f"orders holds {in_orders} orders again (new message ids), orders-dlq holds {in_dlq}",
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
    # The stack's DatabaseHostedZoneId and DatabaseRecordNames: the zone exists only now.
    cloud.set_steps_variables(
        DATABASE_HOSTED_ZONE_ID=zone, DATABASE_RECORD_NAMES=db["record"].rstrip(".").lower()
    )
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
        inject=_status_check_fails("api-1"),
        target_key=lambda env: env.api_primary,
        healed=_eip_on_standby,
    ),
    Fault(
        title="the orders consumer fails, orders dead-letter; the consumer recovers",
        inject=_orders_dead_letter_then_consumer_recovers,
        target_key=lambda env: "orders-dlq",
        healed=_orders_back_in_their_queue,
    ),
    Fault(
        title="a web instance of the Auto Scaling group fails its system status check",
        inject=_status_check_fails("asg-web"),
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
    Fault(
        title="orders-db (the shop's primary database) fails; its read replica must take over",
        inject=_orders_db_fails,
        target_key=lambda env: _ORDERS_DB["primary"],
        healed=_orders_db_name_on_new_writer,
    ),
]


# ------------------------------------------------------------------------------------ flip-dns
# api.shop.example.com is a weighted pair: blue (primary, weight 100) and green (secondary, weight 0),
# each with a Route 53 health check. The fault: blue stops answering its health checkers. Route 53
# publishes HealthCheckStatus 0 in us-east-1, the alarm fires, flip-dns moves the weight to green.
# Then blue recovers: the failback rule waits out the hold-down, checks blue stays healthy, and moves
# the weight back.
DNS_TUNING = {  # demo-sized; production defaults: hold-down 900s, primary healthy for 300s
    "selfheal:param:holdDownSeconds": "6",
    "selfheal:param:primaryHealthySeconds": "2",
    "selfheal:param:verifyIntervalSeconds": "1",
}


def _dns_environment(cloud: DeployedCloud, env: Environment) -> None:
    r53, cw = cloud.client("route53"), cloud.client("cloudwatch")
    zone = r53.create_hosted_zone(Name="shop.example.com", CallerReference=f"demo-{time.time()}")
    zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
    r53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=[FENCE])
    name = "api.shop.example.com."
    checks = {}
    for side, ip in (("blue", "192.0.2.10"), ("green", "198.51.100.20")):
        checks[side] = r53.create_health_check(
            CallerReference=f"demo-{side}-{time.time()}",
            HealthCheckConfig={"IPAddress": ip, "Port": 443, "Type": "HTTPS", "ResourcePath": "/health"},
        )["HealthCheck"]["Id"]
    r53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "A",
                        "SetIdentifier": side,
                        "Weight": 100 if side == "blue" else 0,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": ip}],
                        "HealthCheckId": checks[side],
                    },
                }
                for side, ip in (("blue", "192.0.2.10"), ("green", "198.51.100.20"))
            ]
        },
    )
    # flip-dns moves traffic only onto an endpoint a fenced health check watches: green's.
    r53.change_tags_for_resource(ResourceType="healthcheck", ResourceId=checks["green"], AddTags=[FENCE])
    tags = {"selfheal:param:hostedZoneId": zone_id, "selfheal:param:recordName": name, **DNS_TUNING}
    r53.change_tags_for_resource(
        ResourceType="healthcheck",
        ResourceId=checks["blue"],
        AddTags=[FENCE, *({"Key": k, "Value": v} for k, v in tags.items())],
    )
    # What companion/route53-health-alarms.yaml creates in us-east-1 for each health check.
    cw.put_metric_alarm(
        AlarmName="api-blue-health",
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": checks["blue"]}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    # The stack's scope parameters (FlipDnsHostedZoneIds, FlipDnsRecordNames): the zone exists only now.
    cloud.set_steps_variables(FLIP_DNS_HOSTED_ZONE_IDS=zone_id, FLIP_DNS_RECORD_NAMES=name.rstrip("."))
    env.extra.update(dns_zone=zone_id, dns_name=name, dns_blue=checks["blue"], dns_green=checks["green"])


def _dns_weights(cloud: DeployedCloud, env: Environment) -> dict[str, int]:
    records = cloud.client("route53").list_resource_record_sets(
        HostedZoneId=env.extra["dns_zone"], StartRecordName=env.extra["dns_name"], StartRecordType="A"
    )["ResourceRecordSets"]
    return {r["SetIdentifier"]: int(r["Weight"]) for r in records if r["Name"] == env.extra["dns_name"]}


def _dns_primary_fails(cloud: DeployedCloud, env: Environment) -> None:
    from localcloud.route53 import set_endpoint_health

    _dns_environment(cloud, env)
    set_endpoint_health(env.extra["dns_blue"], False)


def _dns_moved_and_back(cloud: DeployedCloud, env: Environment) -> tuple[bool, str]:
    """Traffic on green; then blue recovers and (policy permitting) traffic returns after the hold-down."""
    from localcloud.route53 import set_endpoint_health

    moved = _dns_weights(cloud, env)
    if moved != {"blue": 0, "green": 100}:
        return False, f"weights {moved}: traffic did not move to green"
    clock = Clock()
    say(clock, "recovered", "blue answers its health checkers again; the alarm goes back to OK")
    set_endpoint_health(env.extra["dns_blue"], True)
    table = cloud.stack.outputs["AuditTableName"]
    seen = {
        (r["requestId"], r["sk"])
        for r in ops.audit_for_target(cloud.client("dynamodb"), table, env.extra["dns_blue"])
    }
    deadline = time.monotonic() + 90
    final = None
    while time.monotonic() < deadline and final is None:
        for row in ops.audit_for_target(cloud.client("dynamodb"), table, env.extra["dns_blue"]):
            if (row["requestId"], row["sk"]) in seen:
                continue
            seen.add((row["requestId"], row["sk"]))
            for what, text in _describe_row(row):
                say(clock, what, text)
            if row.get("phase") in TERMINAL_PHASES:
                final = row["phase"]
        time.sleep(0.1)
    back = _dns_weights(cloud, env)
    ok = final == "succeeded" and back == {"blue": 100, "green": 0}
    hold = DNS_TUNING["selfheal:param:holdDownSeconds"]
    return ok, f"failed over to green, then back to blue after the {hold}s hold-down: weights {back}"


FAULTS.append(
    Fault(
        title="the primary endpoint of api.shop.example.com (blue) fails its Route 53 health check",
        inject=_dns_primary_fails,
        target_key=lambda env: str(env.extra["dns_blue"]),
        healed=_dns_moved_and_back,
    )
)


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
        # The call once, as it is about to be made; its outcome row says only what came of it.
        verb = {"pending": "acting", "ok": "done", "error": "failed"}.get(str(row.get("outcome")), phase)
        if row.get("outcome") == "pending":
            return verb, f"{row.get('action')} {row.get('parameters')}"
        return verb, f"{row.get('action')} -> {row.get('after') or row.get('error')}"
    if phase == "would-do":
        return "would do", f"{row.get('action')} {row.get('parameters')} (dry run)"
    if phase == "verified":
        step = str(row.get("step") or "")
        if step != "Record: verified":  # a check on the way (promote-replica reads its DNS change back)
            return "checked", step.removeprefix("Record: ")
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
        _progress(clock, f"waiting for the next audit row about {target_key}")
        time.sleep(0.1)
    _end_progress()
    return None


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfheal demo", description=__doc__)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)

    clock = Clock()
    print("selfheal demo: a local cloud (moto), the real template.yaml and state machines, no AWS account\n")
    patch_service_events()
    # WARNING: the functions' own INFO logs would drown the story; `selfheal audit` has it all.
    # The DNS fault fails back seconds after it failed over: the demo's stack waits no cooldown and
    # no minimum hold-down. A real stack keeps CooldownSeconds (600) and FlipDnsMinHoldDownSeconds
    # (300): its failback comes after them, or by hand.
    parameters = {
        "Mode": "enforce",
        "LogLevel": "WARNING",
        "CooldownSeconds": "0",
        "FlipDnsMinHoldDownSeconds": "0",
    }
    cloud = start_deployed_cloud(args.template, parameters)
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
