"""remap-eip: the shop's API on api-1 behind an Elastic IP, api-2 standing by.

As the README has operators tag theirs: the EIP fenced, with ``selfheal:param:standbyInstanceId``
naming the standby (and ``selfheal:primary`` the instance it belongs on); both instances fenced; a
status-check alarm on api-1, which the policy rule for EC2 status checks routes to remap-eip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from localcloud.worlds import (
    STATUS_CHECK_CROSSED,
    Aws,
    Fault,
    UnknownWorld,
    World,
    alarm_fires,
    instance_named,
    network,
    run_instance,
    status_check_alarm,
    tags,
)

NAME = "api"
ALARM = f"{NAME}-1-status-check-failed"


class HasClient(Protocol):
    """What a record's read-back helpers need: an Aws, a local cloud, a deployed stack."""

    def client(self, service: str) -> Any: ...


@dataclass(frozen=True)
class Address:
    name: str  # its Name tag
    allocation: str
    public_ip: str


@dataclass(frozen=True)
class Pair:
    """A primary holding a managed Elastic IP, and the standby the EIP moves to."""

    name: str  # the EIP's Name; the instances are <name>-1 (primary) and <name>-2 (standby)
    primary: str
    standby: str
    allocation: str
    public_ip: str

    def holder(self, aws: HasClient) -> str | None:
        return holder(aws, self.allocation)


def instance(aws: Aws, name: str, *, fenced: bool = True) -> str:
    """An instance of its own in the shop's network (one with no managed EIP, a standby to name ...)."""
    _, subnets = network(aws)
    return run_instance(aws, name, subnets[0], fenced=fenced)


def address(
    aws: Aws,
    name: str,
    *,
    on: str | None = None,
    standby: str | None = None,
    primary: str | None = None,
    fenced: bool = True,
) -> Address:
    """An Elastic IP named ``name``, associated with ``on``; tagged as the README has operators tag
    it: ``selfheal:param:standbyInstanceId`` (the standby) and ``selfheal:primary`` (where it belongs)."""
    ec2 = aws.client("ec2")
    pairs = [("Name", name)]
    if standby:
        pairs.append(("selfheal:param:standbyInstanceId", standby))
    if primary:
        pairs.append(("selfheal:primary", primary))
    allocated = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags(*pairs, fenced=fenced)}],
    )
    if on:
        ec2.associate_address(AllocationId=allocated["AllocationId"], InstanceId=on)
    return Address(name, str(allocated["AllocationId"]), str(allocated["PublicIp"]))


def pair(aws: Aws, name: str, *, fence_standby: bool = True, standby_tag: bool = True) -> Pair:
    """<name>-1 behind the Elastic IP ``name``, <name>-2 standing by in the other subnet.
    ``fence_standby=False``: a standby nobody fenced; ``standby_tag=False``: the EIP names none."""
    _, subnets = network(aws)
    primary = run_instance(aws, f"{name}-1", subnets[0], ("Role", f"{name}-primary"))
    standby = run_instance(aws, f"{name}-2", subnets[1], ("Role", f"{name}-standby"), fenced=fence_standby)
    eip = address(aws, name, on=primary, standby=standby if standby_tag else None, primary=primary)
    return Pair(name, primary, standby, eip.allocation, eip.public_ip)


def holder(aws: HasClient, allocation: str) -> str | None:
    """The instance the Elastic IP is on now (None: on none)."""
    (found,) = aws.client("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"]
    on = found.get("InstanceId")
    return str(on) if on else None


def build(aws: Aws) -> str:
    api = pair(aws, NAME)
    status_check_alarm(aws, ALARM, api.primary, "StatusCheckFailed", f"{NAME}-1 failed its EC2 status checks")
    return (
        f"Elastic IP {api.public_ip} on {NAME}-1 {api.primary}, standby {NAME}-2 {api.standby}, alarm {ALARM}"
    )


def _address(aws: Aws) -> dict[str, str]:
    found = aws.client("ec2").describe_addresses(Filters=[{"Name": "tag:Name", "Values": [NAME]}])[
        "Addresses"
    ]
    if not found:
        raise UnknownWorld(f"no Elastic IP named {NAME}: was the remap-eip world built?")
    return dict(found[0])


def _status_check_fails(aws: Aws) -> None:
    alarm_fires(aws, ALARM, STATUS_CHECK_CROSSED)


def _eip_on_standby(aws: Aws) -> tuple[bool, str]:
    eip, standby = _address(aws), instance_named(aws, f"{NAME}-2")
    on = eip.get("InstanceId")
    return on == standby, f"{eip['PublicIp']} is on {on} (standby {NAME}-2 {standby})"


WORLD = World(
    runbook="remap-eip",
    describe="api-1 and its standby api-2 behind the Elastic IP named api",
    build=build,
    parameters=lambda aws: {},
    faults=(
        Fault(
            name="api-1-status-check-failed",
            runbook="remap-eip",
            title="api-1 (the instance behind the API's Elastic IP) fails its status check",
            injected=f"the alarm {ALARM} goes to ALARM; CloudWatch publishes the state change",
            inject=_status_check_fails,
            target_key=lambda aws: instance_named(aws, f"{NAME}-1"),
            healed=_eip_on_standby,
        ),
    ),
)
