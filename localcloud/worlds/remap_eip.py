"""remap-eip: the shop's API on api-1 behind an Elastic IP, api-2 standing by.

As the README has operators tag theirs: the EIP fenced, with ``selfheal:param:standbyInstanceId``
naming the standby (and ``selfheal:primary`` the instance it belongs on); both instances fenced; a
status-check alarm on api-1, which the policy rule for EC2 status checks routes to remap-eip.
"""

from __future__ import annotations

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

ALARM = "api-1-status-check-failed"


def build(aws: Aws) -> str:
    ec2 = aws.client("ec2")
    _, subnets = network(aws)
    primary = run_instance(aws, "api-1", subnets[0], ("Role", "api-primary"))
    standby = run_instance(aws, "api-2", subnets[1], ("Role", "api-standby"))
    address = ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {
                "ResourceType": "elastic-ip",
                "Tags": tags(
                    ("Name", "api"),
                    ("selfheal:param:standbyInstanceId", standby),
                    ("selfheal:primary", primary),
                ),
            }
        ],
    )
    ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=primary)
    status_check_alarm(aws, ALARM, primary, "StatusCheckFailed", "api-1 failed its EC2 status checks")
    return f"Elastic IP {address['PublicIp']} on api-1 {primary}, standby api-2 {standby}, alarm {ALARM}"


def _address(aws: Aws) -> dict[str, str]:
    found = aws.client("ec2").describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["api"]}])[
        "Addresses"
    ]
    if not found:
        raise UnknownWorld("no Elastic IP named api: was the remap-eip world built?")
    return dict(found[0])


def _status_check_fails(aws: Aws) -> None:
    alarm_fires(aws, ALARM, STATUS_CHECK_CROSSED)


def _eip_on_standby(aws: Aws) -> tuple[bool, str]:
    address, standby = _address(aws), instance_named(aws, "api-2")
    holder = address.get("InstanceId")
    return holder == standby, f"{address['PublicIp']} is on {holder} (standby api-2 {standby})"


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
            target_key=lambda aws: instance_named(aws, "api-1"),
            healed=_eip_on_standby,
        ),
    ),
)
