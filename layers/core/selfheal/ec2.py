"""EC2 reads shared by the runbooks that act on instances."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from selfheal.errors import UnknownResource

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client


def describe_instance(ec2: EC2Client, instance_id: str) -> dict[str, Any]:
    """One instance, or ``UnknownResource`` (AWS answers NotFound, or an empty reservation list)."""
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
