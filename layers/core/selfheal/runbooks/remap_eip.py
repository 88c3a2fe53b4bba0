"""remap-eip: move an Elastic IP from a failed instance to a healthy, fenced standby.

The move itself (``AssociateAddress``) and its verification run as direct SDK integrations in
the workflow (``tools/asl/runbooks/remap_eip.py``); this module resolves what to move, checks it is
safe and declares the exact calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import Field, model_validator

from selfheal.ec2 import describe_instance
from selfheal.errors import NotApplicable, PreconditionFailed, UnknownResource
from selfheal.guards import fenced
from selfheal.models import StrictModel
from selfheal.runbooks.base import Call, CallSpec, Plan, Runbook, register
from selfheal.tags import TAG_PARAM_PREFIX, tag_dict, tag_params

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import AddressTypeDef

STANDBY_TAG = f"{TAG_PARAM_PREFIX}standbyInstanceId"
# Set on an EIP whose primary may be terminated: termination disassociates the address, so the
# instance id is the only way to find it again.
PRIMARY_TAG = "selfheal:primary"

IAM_ACTIONS = (
    "ec2:DescribeAddresses",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ec2:AssociateAddress",
)


class RemapEipTarget(StrictModel):
    """Either the failed instance (its managed EIP moves) or one EIP (by allocation id or public IP)."""

    instance_id: str | None = Field(default=None, alias="instanceId", pattern=r"^i-[0-9a-f]{8,17}$")
    allocation_id: str | None = Field(
        default=None, alias="allocationId", pattern=r"^eipalloc-[0-9a-f]{8,17}$"
    )
    public_ip: str | None = Field(default=None, alias="publicIp", pattern=r"^\d{1,3}(\.\d{1,3}){3}$")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [v for v in (self.instance_id, self.allocation_id, self.public_ip) if v]
        if len(given) != 1:
            raise ValueError("target needs exactly one of instanceId, allocationId, publicIp")
        return self

    @property
    def key(self) -> str:
        return self.instance_id or self.allocation_id or self.public_ip or ""


class RemapEipParams(StrictModel):
    standby_instance_id: str | None = Field(
        default=None,
        alias="standbyInstanceId",
        pattern=r"^i-[0-9a-f]{8,17}$",
        description="Where the EIP goes; default: the EIP's selfheal:param:standbyInstanceId tag",
    )
    verify_attempts: int = Field(
        default=10,
        alias="verifyAttempts",
        ge=1,
        le=60,
        description="Reads of the address after the move; never on the standby: it is moved back",
    )
    verify_interval_seconds: int = Field(
        default=5, alias="verifyIntervalSeconds", ge=0, le=300, description="Seconds between those reads"
    )


class EipMove(Plan):
    """The plan: which address goes where, and where it was (for compensation and failback)."""

    allocation_id: str = Field(alias="allocationId")
    public_ip: str = Field(alias="publicIp")
    from_instance_id: str | None = Field(default=None, alias="fromInstanceId")
    association_id: str | None = Field(default=None, alias="associationId")
    standby_instance_id: str = Field(alias="standbyInstanceId")
    verify_attempts: int = Field(alias="verifyAttempts")
    verify_interval_seconds: int = Field(alias="verifyIntervalSeconds")


def _tags(resource: Any) -> dict[str, str]:
    return tag_dict(resource.get("Tags"))


def _find_addresses(ec2: EC2Client, target: RemapEipTarget, fence_key: str) -> list[AddressTypeDef]:
    if target.allocation_id:
        query: dict[str, Any] = {"AllocationIds": [target.allocation_id]}
    elif target.public_ip:
        query = {"PublicIps": [target.public_ip]}
    else:
        # One call, not one per way an EIP can belong to the instance (associated with it, or tagged
        # selfheal:primary after the instance was terminated): only fenced EIPs may move anyway, so ask
        # for the EIPs carrying the fence tag key (its value is compared by the caller) and pick the
        # instance's ones here.
        tagged = ec2.describe_addresses(Filters=[{"Name": "tag-key", "Values": [fence_key]}])["Addresses"]
        return [
            a for a in tagged if a.get("InstanceId") == target.key or _tags(a).get(PRIMARY_TAG) == target.key
        ]
    try:
        return list(ec2.describe_addresses(**query)["Addresses"])
    except ec2.exceptions.ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"]:
            raise UnknownResource(f"no Elastic IP {target.key}", target=target.key) from exc
        raise


def resolve(
    ec2: EC2Client, target: RemapEipTarget, params: RemapEipParams, fence_key: str, fence_value: str
) -> EipMove:
    """Which EIP moves to which standby. Raises NotApplicable when there is nothing to move."""
    addresses = _find_addresses(ec2, target, fence_key)
    if target.instance_id:
        # Only managed EIPs move; an unmanaged one on the same instance is not ours to touch.
        addresses = [a for a in addresses if fenced(_tags(a), fence_key, fence_value)]
        if not addresses:
            raise NotApplicable(f"instance {target.instance_id} holds no managed Elastic IP")
    if not addresses:
        raise UnknownResource(f"no Elastic IP {target.key}", target=target.key)
    if len(addresses) > 1:
        ids = ", ".join(sorted(a["AllocationId"] for a in addresses))
        raise PreconditionFailed(
            f"instance {target.key} holds several managed Elastic IPs ({ids}):"
            " start one execution per allocationId",
            allocations=ids,
        )
    address = addresses[0]
    tags = _tags(address)
    # An explicit param (request or policy) wins over the EIP's own selfheal:param: tag.
    standby = params.standby_instance_id or tag_params(tags).get("standbyInstanceId")
    if not standby:
        raise PreconditionFailed(
            f"no standby for {address['AllocationId']}:"
            f" pass params.standbyInstanceId or tag the EIP {STANDBY_TAG}"
        )
    if address.get("InstanceId") == standby:
        raise NotApplicable(f"{address['PublicIp']} is already on the standby {standby}")
    standby_instance = describe_instance(ec2, standby)
    return EipMove(
        allocation_id=address["AllocationId"],
        public_ip=address["PublicIp"],
        from_instance_id=address.get("InstanceId"),
        association_id=address.get("AssociationId"),
        standby_instance_id=standby,
        resource_tags={address["AllocationId"]: tags, standby: _tags(standby_instance)},
        verify_attempts=params.verify_attempts,
        verify_interval_seconds=params.verify_interval_seconds,
    )


def precheck(ec2: EC2Client, move: EipMove) -> dict[str, Any]:
    """Refuse to move onto a standby that is not running with passing status checks. Returns `before`."""
    # One call gives both the state and the status checks (IncludeAllInstances: also when not running);
    # the standby's tags were read by the guards, and do not decide anything here.
    try:
        statuses = ec2.describe_instance_status(
            InstanceIds=[move.standby_instance_id], IncludeAllInstances=True
        )["InstanceStatuses"]
    except ec2.exceptions.ClientError as exc:
        if "NotFound" in exc.response["Error"]["Code"]:
            raise UnknownResource(
                f"no instance {move.standby_instance_id}", instance=move.standby_instance_id
            ) from exc
        raise
    if not statuses:
        raise UnknownResource(f"no instance {move.standby_instance_id}", instance=move.standby_instance_id)
    status = statuses[0]
    state = status["InstanceState"]["Name"]
    if state != "running":
        raise PreconditionFailed(
            f"standby {move.standby_instance_id} is {state}, not running", standby=move.standby_instance_id
        )
    checks = {
        "system": status.get("SystemStatus", {}).get("Status", "unknown"),
        "instance": status.get("InstanceStatus", {}).get("Status", "unknown"),
    }
    # "initializing" is a standby that just booted: not proven healthy, so not a place to send traffic.
    if any(v != "ok" for v in checks.values()):
        raise PreconditionFailed(
            f"standby {move.standby_instance_id} status checks are not ok: {checks}",
            standby=move.standby_instance_id,
        )
    return {
        "allocationId": move.allocation_id,
        "publicIp": move.public_ip,
        "instanceId": move.from_instance_id,
        "associationId": move.association_id,
        "standby": {"instanceId": move.standby_instance_id, "state": state, "statusChecks": checks},
    }


def applies(
    ec2: EC2Client, target: RemapEipTarget, params: RemapEipParams, fence_key: str, fence_value: str
) -> str | None:
    """remap-eip's domain: an instance that is the primary of a managed Elastic IP with a standby,
    wherever the address is right now (a duplicate delivery after the move must still route here).
    None if it applies, else why not (triage then lets later policy rules, e.g. replace-instance,
    decide). Only asked about instance targets; addresses and IPs are always remap-eip's."""
    if not target.instance_id:
        return None
    addresses = [
        a for a in _find_addresses(ec2, target, fence_key) if fenced(_tags(a), fence_key, fence_value)
    ]
    if not addresses:
        try:
            describe_instance(ec2, target.instance_id)
        except UnknownResource:
            return None  # no such instance: nothing for any runbook to heal; remap-eip records that
        return f"remap-eip does not apply to {target.key}: it holds no managed Elastic IP"
    if params.standby_instance_id or any(_tags(a).get(STANDBY_TAG) for a in addresses):
        return None
    return f"remap-eip does not apply to {target.key}: its managed Elastic IP has no standby"


_ASSOCIATE = {"default": ("AllocationId", "InstanceId", "AllowReassociation")}
ASSOCIATE = CallSpec("associate", "ec2:AssociateAddress", _ASSOCIATE)
# Verification failed: the address goes back where it was (the old instance may still serve).
MOVE_BACK = CallSpec("move-back", "ec2:AssociateAddress", _ASSOCIATE, undo=True, contingent=True)


@register
class RemapEip(Runbook):
    name = "remap-eip"
    target_model = RemapEipTarget
    params_model = RemapEipParams
    plan_model = EipMove
    permissions = IAM_ACTIONS
    calls = (ASSOCIATE, MOVE_BACK)

    def resolve(self, target: RemapEipTarget, params: RemapEipParams) -> EipMove:
        return resolve(self.clients.ec2, target, params, *self.fence)

    def precheck(self, plan: EipMove) -> dict[str, Any]:
        return precheck(self.clients.ec2, plan)

    def exact_calls(self, plan: EipMove) -> list[Call]:
        def to(instance_id: str) -> dict[str, Any]:
            return {"AllocationId": plan.allocation_id, "InstanceId": instance_id, "AllowReassociation": True}

        calls = [ASSOCIATE.call(to(plan.standby_instance_id))]
        if plan.from_instance_id:
            calls.append(MOVE_BACK.call(to(plan.from_instance_id)))
        return calls

    def applies(self, target: RemapEipTarget, params: RemapEipParams) -> str | None:
        return applies(self.clients.ec2, target, params, *self.fence)
