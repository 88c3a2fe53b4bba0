"""One entry per runbook: how to break something on the local cloud, and the fewest AWS calls the fix needs.

Adding a runbook = adding one ``Scenario`` to ``SCENARIOS`` (a test fails while a runbook in
``selfheal.runbooks.RUNBOOKS`` has none). The minimum is written down per AWS operation with the reason
the job cannot do without it; the benchmark compares what the local cloud recorded against it.

Operation names are ``<service>:<Operation>`` as the local cloud records them (botocore service names).
Lambda ``Invoke`` and the fault injection itself are not counted as calls: invocations are reported
on their own line.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = ROOT / "events"
FENCE = {"Key": "selfheal:managed", "Value": "true"}


@dataclass(frozen=True)
class Need:
    count: int
    why: str


@dataclass(frozen=True)
class Wait:
    """A wait the runbook can make: its configured value, and what the benchmark shortens it to."""

    what: str
    configured_s: float
    benchmark_s: float
    when: str


@dataclass(frozen=True)
class Scenario:
    runbook: str
    fault: str  # one line: what breaks
    # (cloud) -> context: builds the resources the fault is about (not recorded, not timed)
    setup: Callable[[Any], dict[str, Any]]
    # context -> the AWS event that reports the fault (put on the default bus, as AWS would)
    event: Callable[[dict[str, Any]], dict[str, Any]]
    # (cloud, context) -> True when the fault is repaired, checked through the AWS APIs afterwards
    healed: Callable[[Any, dict[str, Any]], bool]
    mutating: frozenset[str]  # the calls that change the broken resources (time to first action)
    verify_state: str  # the ASL state that polls for the result: each entry beyond the first is a poll
    verify_call: str  # the AWS call that state makes
    minimum: dict[str, Need]
    waits: tuple[Wait, ...] = field(default_factory=tuple)


def load_event(name: str) -> dict[str, Any]:
    with (EVENTS_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    return event


# ------------------------------------------------------------------------------------------ remap-eip


def _remap_eip_setup(cloud: Any) -> dict[str, Any]:
    """A fenced primary holding a fenced EIP tagged with its standby (as the README says to tag it)."""
    ec2 = cloud.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]

    def instance() -> str:
        tags = [{"Key": "Name", "Value": "api"}, FENCE]
        return str(
            ec2.run_instances(
                ImageId=image,
                MinCount=1,
                MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"][0]["InstanceId"]
        )

    primary, standby = instance(), instance()
    tags = [
        FENCE,
        {"Key": "selfheal:primary", "Value": primary},
        {"Key": "selfheal:param:standbyInstanceId", "Value": standby},
    ]
    allocation = ec2.allocate_address(
        Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}]
    )["AllocationId"]
    ec2.associate_address(AllocationId=allocation, InstanceId=primary)
    return {"primary": primary, "standby": standby, "allocation": allocation}


def _remap_eip_event(ctx: dict[str, Any]) -> dict[str, Any]:
    """The sample status-check alarm (events/alarm-status-check-failed.json) about the primary."""
    event = copy.deepcopy(load_event("alarm-status-check-failed"))
    instance = ctx["primary"]
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"{instance}-status-check"
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{instance}-status-check"]
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "InstanceId": instance
    }
    return event


def _remap_eip_healed(cloud: Any, ctx: dict[str, Any]) -> bool:
    address = cloud.client("ec2").describe_addresses(AllocationIds=[ctx["allocation"]])["Addresses"][0]
    return bool(address.get("InstanceId") == ctx["standby"])


# Every audit row the contract (DESIGN.md, "Audit row" and "Every action logged") requires on the happy
# path: received (triage), started, action intent, action outcome, verified, succeeded.
_AUDIT_ROWS = 6

REMAP_EIP = Scenario(
    runbook="remap-eip",
    fault="status-check alarm on the instance holding a managed EIP; a fenced standby is running",
    setup=_remap_eip_setup,
    event=_remap_eip_event,
    healed=_remap_eip_healed,
    mutating=frozenset({"ec2:AssociateAddress"}),
    verify_state="Describe the EIP",
    verify_call="ec2:DescribeAddresses",
    minimum={
        "dynamodb:PutItem": Need(
            _AUDIT_ROWS + 1,
            f"{_AUDIT_ROWS} write-once audit rows (received, started, intent, outcome, verified,"
            " succeeded) + 1 conditional put for the lease",
        ),
        "dynamodb:DeleteItem": Need(1, "release the lease"),
        "dynamodb:Query": Need(
            2,
            "guard history: this target (cooldown, loop) and this runbook (budget); two indexes,"
            " two partitions",
        ),
        "ssm:GetParameter": Need(1, "the kill switch, read on every run"),
        "ec2:DescribeAddresses": Need(
            2,
            "find the EIP with its tags and association (one call: every managed EIP, matched on"
            " association or selfheal:primary); verify once after the move",
        ),
        "ec2:DescribeInstances": Need(1, "the standby's tags, for the fence"),
        "ec2:DescribeInstanceStatus": Need(
            1, "the standby's state and status checks just before acting (IncludeAllInstances)"
        ),
        "ec2:AssociateAddress": Need(1, "the repair"),
        "sns:Publish": Need(1, "tell a human"),
        "events:PutEvents": Need(1, "the outcome event on the bus"),
        "stepfunctions:StartExecution": Need(1, "triage starts the runbook"),
    },
    waits=(
        Wait(
            "verify interval (params.verifyIntervalSeconds, between DescribeAddresses polls)",
            configured_s=5,
            benchmark_s=5,
            when="only if the first verify poll does not see the EIP on the standby",
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {s.runbook: s for s in (REMAP_EIP,)}
