"""Ready worlds for the local cloud: per runbook, the resources it heals, and the faults that break them.

One world per runbook, built through AWS APIs and tagged exactly as the README tells operators to tag
theirs (the fence tag, ``selfheal:param:*``, ``selfheal:dlq``). Each fault is injected the way AWS
would see it: an alarm goes to ALARM, AWS Health puts an event on the bus, a health checker sees its
endpoint fail (``localcloud.control``, for what has no AWS API). ``make demo``, ``selfheal local
serve --world`` and ``selfheal local break`` use these, so what the demo shows is what a user can do
by hand.

A fault finds its world's resources by their names each time, never from an object kept in memory:
``selfheal local break`` runs in another process than the one that built the world.

Each module also offers its world's parts as builders that take a name and variants (an unfenced
standby, a FIFO queue ...), returning what they made as a typed record. The ready world is those
builders called with its fixed names; the e2e tests, the integration tier and the benchmarks call
them with unique names (``unique``), so many copies live side by side in one cloud. One way of
building each resource, for everyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.control import Control

FENCE = {"Key": "selfheal:managed", "Value": "true"}
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account: the local cloud's only one


@dataclass(frozen=True)
class Aws:
    """What a world is built and broken with: clients of one account, and the local cloud's control API."""

    client: Callable[[str], Any]
    # None in-process (the integration tier's moto has no server, hence no control API).
    control: Control | None = None

    @classmethod
    def of(cls, cloud: Any) -> Aws:
        """The Aws of a running local cloud or deployed stack (anything with .client and .endpoint)."""
        return cls(client=cloud.client, control=Control(cloud.endpoint))

    def controls(self) -> Control:
        """The control API, for what no AWS API can cause; only a local cloud server has one."""
        if self.control is None:
            raise UnknownWorld(
                "this fault needs the control API of a local cloud server, not in-process moto"
            )
        return self.control


@dataclass(frozen=True)
class Fault:
    name: str  # `selfheal local break <name>`
    runbook: str  # the runbook that heals it
    title: str  # what breaks, for people
    injected: str  # how AWS sees it
    inject: Callable[[Aws], None]
    # The audit trail's key for the target the run acts on (its rows are found by it).
    target_key: Callable[[Aws], str]
    # Whether the world is whole again, with the evidence; asked once the run has ended.
    healed: Callable[[Aws], tuple[bool, str]]


@dataclass(frozen=True)
class World:
    runbook: str
    describe: str  # one line: what it holds
    build: Callable[[Aws], str]  # creates it; returns what was built, in one line
    # The stack parameters it needs, found in the built world (a hosted zone's id ...): what an
    # operator passes to `sam deploy --parameter-overrides` for their own resources.
    parameters: Callable[[Aws], dict[str, str]]
    faults: tuple[Fault, ...]


class UnknownWorld(LookupError):
    """A world or fault name that no world declares."""


def _worlds() -> tuple[World, ...]:
    from localcloud.worlds import flip_dns, promote_replica, redrive_dlq, remap_eip, replace_instance

    return (remap_eip.WORLD, replace_instance.WORLD, redrive_dlq.WORLD, promote_replica.WORLD, flip_dns.WORLD)


def worlds() -> dict[str, World]:
    return {world.runbook: world for world in _worlds()}


def faults() -> dict[str, Fault]:
    return {fault.name: fault for world in _worlds() for fault in world.faults}


def select(names: Iterable[str]) -> list[World]:
    """The worlds named (runbook names, or ``all``), in the registry's order."""
    known = worlds()
    wanted = set(names)
    if "all" in wanted:
        return list(known.values())
    unknown = wanted - set(known)
    if unknown:
        raise UnknownWorld(f"no world {', '.join(sorted(unknown))}; known: all, {', '.join(known)}")
    return [world for name, world in known.items() if name in wanted]


def fault(name: str) -> Fault:
    known = faults()
    if name not in known:
        raise UnknownWorld(f"no fault {name!r}; known: {', '.join(known)}")
    return known[name]


def build(aws: Aws, chosen: Iterable[World]) -> tuple[list[str], dict[str, str]]:
    """Build the worlds: what each built (one line each), and the stack parameters they need."""
    built, parameters = [], {}
    for world in chosen:
        built.append(f"{world.runbook}: {world.build(aws)}")
        parameters.update(world.parameters(aws))
    return built, parameters


# --- lookups every world uses ------------------------------------------------------------------------


def unique(name: str) -> str:
    """``name`` with a short random suffix: a world part of its own beside others in one cloud."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def tags(*pairs: tuple[str, str], fenced: bool = True) -> list[dict[str, str]]:
    return ([FENCE] if fenced else []) + [{"Key": k, "Value": v} for k, v in pairs]


def instance_named(aws: Aws, name: str) -> str:
    """The id of the live instance whose Name tag is ``name``."""
    reservations = aws.client("ec2").describe_instances(
        Filters=[
            {"Name": "tag:Name", "Values": [name]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
    )["Reservations"]
    ids = [i["InstanceId"] for r in reservations for i in r["Instances"]]
    if not ids:
        raise UnknownWorld(f"no instance named {name}: was its world built (selfheal local serve --world)?")
    return str(ids[0])


def alarm(aws: Aws, name: str) -> dict[str, Any]:
    found = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    if not found:
        raise UnknownWorld(f"no alarm {name}: was its world built (selfheal local serve --world)?")
    return dict(found[0])


def set_alarm(aws: Aws, name: str, state: str, reason: str) -> None:
    """An alarm's state as CloudWatch would set it (its state change event reaches the bus)."""
    aws.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def alarm_fires(aws: Aws, name: str, reason: str) -> None:
    """The alarm goes to ALARM. One already in ALARM (a fault broken a second time) first goes back
    to OK: only a change of state is an event, and the fault is that change."""
    if alarm(aws, name)["StateValue"] == "ALARM":
        set_alarm(aws, name, "OK", "the fault was repaired; broken again")
    set_alarm(aws, name, "ALARM", reason)


def status_check_alarm(aws: Aws, name: str, instance: str, metric: str, about: str) -> None:
    aws.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        AlarmDescription=about,
        Namespace="AWS/EC2",
        MetricName=metric,
        Dimensions=[{"Name": "InstanceId", "Value": instance}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=2,
        DatapointsToAlarm=2,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        TreatMissingData="breaching",
    )


STATUS_CHECK_CROSSED = "Threshold Crossed: 2 out of the last 2 datapoints [1.0, 1.0] >= the threshold (1.0)"


def hosted_zone(aws: Aws, name: str, runbook: str) -> str:
    """The id of the hosted zone ``name`` (with its final dot) that ``runbook``'s world made."""
    zones = aws.client("route53").list_hosted_zones_by_name(DNSName=name)["HostedZones"]
    found = [str(z["Id"]).rsplit("/", 1)[-1] for z in zones if z["Name"] == name]
    if not found:
        raise UnknownWorld(f"no hosted zone {name}: was the {runbook} world built?")
    return found[0]


def network(aws: Aws) -> tuple[str, list[str]]:
    """The shop's VPC (Name shop) and its two subnets, made once for whichever world asks first."""
    ec2 = aws.client("ec2")
    found = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["shop"]}])["Vpcs"]
    if found:
        vpc = found[0]["VpcId"]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        return vpc, sorted(s["SubnetId"] for s in subnets)
    vpc = ec2.create_vpc(
        CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": tags(("Name", "shop"))}]
    )["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab", start=1)
    ]
    return vpc, sorted(subnets)


def image(aws: Aws) -> str:
    from localcloud import ops

    return ops.any_image_id(aws.client("ec2"))


def run_instance(
    aws: Aws, name: str, subnet: str, *extra: tuple[str, str], fenced: bool = True, **launch: Any
) -> str:
    """An instance named ``name``; ``launch``: more of RunInstances' arguments (security groups ...)."""
    instance = aws.client("ec2").run_instances(
        ImageId=image(aws),
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        SubnetId=subnet,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags(("Name", name), *extra, fenced=fenced)}],
        **launch,
    )["Instances"][0]
    return str(instance["InstanceId"])


def param_tags(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """``selfheal:param:<name>`` tags: how an operator sets a runbook's params on their resource."""
    return [(f"selfheal:param:{k}", v) for k, v in params.items()]
