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

from localcloud.worlds import Aws, promote_replica, redrive_dlq, remap_eip, replace_instance, unique

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
    # How many entries of verify_state the minimum already pays for (a runbook that polls once per
    # move task enters it once per task even when nothing has to be polled twice).
    verify_entries_in_minimum: int = 1
    # Other calls the ASL makes once per poll, next to verify_call (allowed once more per poll).
    poll_calls: tuple[str, ...] = ()


def load_event(name: str) -> dict[str, Any]:
    with (EVENTS_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    return event


# ------------------------------------------------------------------------------------------ remap-eip


def _remap_eip_setup(cloud: Any) -> dict[str, Any]:
    """A fenced primary holding a fenced EIP tagged with its standby (as the README says to tag it)."""
    pair = remap_eip.pair(Aws.of(cloud), unique("api"))
    return {"primary": pair.primary, "standby": pair.standby, "allocation": pair.allocation}


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
    return bool(remap_eip.holder(cloud, ctx["allocation"]) == ctx["standby"])


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
            3,
            "triage asks whether remap-eip applies (policy whenApplicable: instances without a managed"
            " EIP + standby go on to replace-instance); find the EIP with its tags and association (one"
            " call: every managed EIP, matched on association or selfheal:primary); verify once after"
            " the move",
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


# ----------------------------------------------------------------------------------- replace-instance


def _replace_instance_setup(cloud: Any) -> dict[str, Any]:
    """A fenced Auto Scaling group of 2 (the fence propagates to its members), as the README says."""
    group = replace_instance.group(Aws.of(cloud), unique("web"))
    return {"group": group.name, "sick": group.instances[0]}


def _replace_instance_event(ctx: dict[str, Any]) -> dict[str, Any]:
    """The sample status-check alarm about the sick group member (no EIP, no standby: not remap-eip's)."""
    return _remap_eip_event({"primary": ctx["sick"]})


def _replace_instance_healed(cloud: Any, ctx: dict[str, Any]) -> bool:
    members = replace_instance.members(cloud, ctx["group"])
    return (
        ctx["sick"] not in {m["InstanceId"] for m in members}
        and len(members) == 2
        and all((m["LifecycleState"], m["HealthStatus"]) == ("InService", "Healthy") for m in members)
    )


REPLACE_INSTANCE = Scenario(
    runbook="replace-instance",
    fault="status-check alarm on a member of a fenced Auto Scaling group (no managed EIP)",
    setup=_replace_instance_setup,
    event=_replace_instance_event,
    healed=_replace_instance_healed,
    mutating=frozenset({"autoscaling:SetInstanceHealth"}),
    verify_state="Describe the group",
    verify_call="autoscaling:DescribeAutoScalingGroups",
    minimum={
        "dynamodb:PutItem": Need(
            _AUDIT_ROWS + 3,
            f"{_AUDIT_ROWS} write-once audit rows (received, started, intent, outcome, verified,"
            " succeeded) + the target's lease + the group's replacement slot (maxInFlight) + the"
            " 'ignored' row for the EC2 state-change event of the member the group terminates",
        ),
        "dynamodb:DeleteItem": Need(2, "release the lease and the group slot"),
        "dynamodb:Query": Need(2, "guard history: this target (cooldown, loop) and this runbook (budget)"),
        "ssm:GetParameter": Need(1, "the kill switch, read on every run"),
        "ec2:DescribeAddresses": Need(
            2,
            "triage asks remap-eip's whenApplicable (does the instance hold a managed EIP with a"
            " standby?) for the alarm, and again for the terminated member's state-change event",
        ),
        "ec2:DescribeInstances": Need(
            3,
            "the same whenApplicable check confirms the instance exists (twice, as above); resolve:"
            " state, tags (fence), root device, type (carried in the plan to precheck)",
        ),
        "ec2:DescribeInstanceStatus": Need(
            2,
            "resolve: are its status checks initializing or a maintenance reboot in its window (EC2"
            " is on it)?; precheck: state, AZ and status checks just before acting",
        ),
        "cloudwatch:DescribeAlarms": Need(
            1, "resolve: is an alarm with the EC2 recover action in ALARM for it (EC2 is on it)?"
        ),
        "autoscaling:DescribeAutoScalingInstances": Need(1, "resolve: is it a group member, in service?"),
        "autoscaling:DescribeAutoScalingGroups": Need(
            3,
            "resolve: the group's tags (fence, before the guards); precheck: members and suspended"
            " processes after taking the group slot (budget); verify once after the mark",
        ),
        "autoscaling:SetInstanceHealth": Need(1, "the repair: the group replaces the member"),
        "sns:Publish": Need(1, "tell a human"),
        "events:PutEvents": Need(1, "the outcome event on the bus"),
        "stepfunctions:StartExecution": Need(1, "triage starts the runbook"),
    },
    waits=(
        Wait(
            "verify interval (params.verifyIntervalSeconds, between DescribeAutoScalingGroups polls;"
            " set by the policy rule or a manual request, not by tags)",
            configured_s=10,
            benchmark_s=10,
            when="once per poll: the first poll follows the mark at once, before the group has"
            " launched the replacement (AWS: the group acts within about a minute)",
        ),
    ),
)


# ----------------------------------------------------------------------------------------- redrive-dlq

# The pace an operator sets per DLQ with selfheal:param:* tags (README, "redrive-dlq"): a 3-message
# canary at 5/s watched for 1 s, the rest at 200/s, move tasks polled every second.
_REDRIVE_PACE = {
    "canaryMessages": 3,
    "canaryMessagesPerSecond": 5,
    "canaryObserveSeconds": 1,
    "maxMessagesPerSecond": 200,
    "pollIntervalSeconds": 1,
}
_REDRIVE_MESSAGES = 10


def _redrive_dlq_setup(cloud: Any) -> dict[str, Any]:
    """A fenced DLQ holding 10 messages, the DLQ of one fenced source queue; pace set by its tags."""
    dlq = redrive_dlq.queues(
        Aws.of(cloud), unique("orders"), messages=_REDRIVE_MESSAGES, params=_REDRIVE_PACE
    )
    return {"name": dlq.name, "queues": dlq}


def _redrive_dlq_event(ctx: dict[str, Any]) -> dict[str, Any]:
    """The sample DLQ alarm (events/alarm-sqs-dlq-messages.json) about this DLQ."""
    event = copy.deepcopy(load_event("alarm-sqs-dlq-messages"))
    name = ctx["name"]
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"dlq-{name}-has-messages"
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:dlq-{name}-has-messages"]
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {"QueueName": name}
    return event


def _redrive_dlq_healed(cloud: Any, ctx: dict[str, Any]) -> bool:
    dlq: redrive_dlq.Dlq = ctx["queues"]
    return dlq.depth(cloud) == 0 and dlq.depth(cloud, dlq.source_url) == _REDRIVE_MESSAGES


REDRIVE_DLQ = Scenario(
    runbook="redrive-dlq",
    fault="a fenced DLQ holds 10 messages after its consumer recovered; canary first, then the rest",
    setup=_redrive_dlq_setup,
    event=_redrive_dlq_event,
    healed=_redrive_dlq_healed,
    mutating=frozenset({"sqs:StartMessageMoveTask"}),
    verify_state="List the move tasks",
    verify_call="sqs:ListMessageMoveTasks",
    minimum={
        "dynamodb:PutItem": Need(
            11,
            "10 write-once audit rows (received, started, intent + outcome for the canary's"
            " StartMessageMoveTask, its CancelMessageMoveTask and the rest's StartMessageMoveTask,"
            " verified, succeeded) + the lease",
        ),
        "dynamodb:DeleteItem": Need(1, "release the lease"),
        "dynamodb:Query": Need(2, "guard history: this target (cooldown, loop) and this runbook (budget)"),
        "ssm:GetParameter": Need(1, "the kill switch, read on every run"),
        "sqs:GetQueueUrl": Need(1, "the alarm names the DLQ by QueueName"),
        "sqs:GetQueueAttributes": Need(
            6,
            "resolve: the DLQ's ARN and FIFO-ness, the source queue's ARN; precheck: the depth;"
            " the depth after the canary's poll (refilling?), after watching the canary, after the"
            " rest's poll (refilling? and, once that poll says COMPLETED, the end depth: dropped by"
            " what moved?)",
        ),
        "sqs:ListDeadLetterSourceQueues": Need(
            1, "which queues dead-letter into it (where messages go back)"
        ),
        "sqs:ListQueueTags": Need(2, "fence and selfheal:param tags of the DLQ; fence of the source queue"),
        "sqs:ListMessageMoveTasks": Need(
            4,
            "precheck: no move task running; the canary's progress (cancel at its size); the canary's"
            " task cancelled; the rest's task completed",
        ),
        "sqs:StartMessageMoveTask": Need(2, "the repair: the canary, then the rest"),
        "sqs:CancelMessageMoveTask": Need(1, "stop the canary at its size (a task cannot be told N)"),
        "sns:Publish": Need(1, "tell a human"),
        "events:PutEvents": Need(1, "the outcome event on the bus"),
        "stepfunctions:StartExecution": Need(1, "triage starts the runbook"),
    },
    waits=(
        Wait(
            "canary poll (min(1, pollIntervalSeconds), before each ListMessageMoveTasks of the canary)",
            configured_s=1,
            benchmark_s=1,
            when="once at least: the canary (3 at 5/s) has moved enough by the first poll",
        ),
        Wait(
            "poll interval (pollIntervalSeconds tag, before polling the cancelled canary and the rest)",
            configured_s=5,
            benchmark_s=1,
            when="twice at least: before seeing the canary cancelled and the rest completed",
        ),
        Wait(
            "canary observe (canaryObserveSeconds tag, watching the DLQ after the canary)",
            configured_s=120,
            benchmark_s=1,
            when="always, once",
        ),
    ),
    verify_entries_in_minimum=2,
    poll_calls=("sqs:GetQueueAttributes",),
)


# -------------------------------------------------------------------------------------------- flip-dns

# Set per health check with selfheal:param:* tags (README, "flip-dns"): no wait between polls.
_FLIP_PACE = {"verifyIntervalSeconds": "0"}


def _flip_dns_scope(cloud: Any, zone: str) -> None:
    """Add the zone to what flip-dns may change: the variables the FlipDns* stack parameters set."""
    variables = cloud.set_steps_variables()
    zones = [z for z in variables.get("FLIP_DNS_HOSTED_ZONE_IDS", "").split(",") if z and z != "none"]
    cloud.set_steps_variables(FLIP_DNS_HOSTED_ZONE_IDS=",".join([*zones, zone]), FLIP_DNS_RECORD_NAMES="*")


def _flip_dns_setup(cloud: Any) -> dict[str, Any]:
    """The flip-dns world's weighted pair (blue 100 / green 0, a fenced health check on each side) in
    a fenced zone of its own; blue's endpoint is down (Route 53's checkers see it fail)."""
    from localcloud.route53 import set_endpoint_health
    from localcloud.worlds import Aws
    from localcloud.worlds.flip_dns import unique_zone

    zone = unique_zone(Aws(client=cloud.client))
    api = zone.weighted("api", params=_FLIP_PACE)
    _flip_dns_scope(cloud, zone.id)
    set_endpoint_health(api.primary, False)  # no alarm watches it here: the event is the benchmark's own
    # "primary": the target, as every scenario's context names it (localcloud.storm reads it)
    return {"zone": zone, "api": api, "primary": api.primary}


def _flip_dns_event(ctx: dict[str, Any]) -> dict[str, Any]:
    """The companion alarm on the primary's HealthCheckStatus going to ALARM
    (events/alarm-route53-health-check.json)."""
    event = copy.deepcopy(load_event("alarm-route53-health-check"))
    hc = ctx["primary"]
    event["id"] = str(uuid.uuid4())
    event["detail"]["alarmName"] = f"selfheal-route53-{hc}"
    event["resources"] = [f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:selfheal-route53-{hc}"]
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "HealthCheckId": hc
    }
    return event


def _flip_dns_healed(cloud: Any, ctx: dict[str, Any]) -> bool:
    return bool(ctx["zone"].weights("api") == {"blue": 0, "green": 100})


FLIP_DNS = Scenario(
    runbook="flip-dns",
    fault="the primary (blue) of a weighted pair fails its Route 53 health check; green is healthy",
    setup=_flip_dns_setup,
    event=_flip_dns_event,
    healed=_flip_dns_healed,
    mutating=frozenset({"route53:ChangeResourceRecordSets"}),
    verify_state="Get the change status",
    verify_call="route53:GetChange",
    minimum={
        "dynamodb:PutItem": Need(
            _AUDIT_ROWS + 1,
            f"{_AUDIT_ROWS} write-once audit rows (received, started, intent, outcome, verified,"
            " succeeded) + the lease",
        ),
        "dynamodb:DeleteItem": Need(1, "release the lease"),
        "dynamodb:Query": Need(
            2, "guard history: this target (cooldown exempt; loop, hold-down) and this runbook (budget)"
        ),
        "ssm:GetParameter": Need(1, "the kill switch, read on every run"),
        "route53:ListTagsForResource": Need(
            2,
            "the health check's tags (fence, selfheal:param: zone, record, tunables; also its existence"
            " check: NoSuchHealthCheck -> UnknownResource); the zone's fence",
        ),
        "route53:ListResourceRecordSets": Need(
            3,
            "resolve: the weighted pair; precheck: unchanged since the plan (the change is an UPSERT);"
            " verify after INSYNC",
        ),
        "route53:GetHealthCheck": Need(
            1, "precheck: the secondary's health check (Disabled/Inverted decide what Route 53 thinks)"
        ),
        "route53:GetHealthCheckStatus": Need(1, "precheck: the secondary's checkers say healthy"),
        "route53:ChangeResourceRecordSets": Need(1, "the repair: the weights"),
        "route53:GetChange": Need(1, "wait for INSYNC"),
        "sns:Publish": Need(1, "tell a human"),
        "events:PutEvents": Need(1, "the outcome event on the bus"),
        "stepfunctions:StartExecution": Need(1, "triage starts the runbook"),
    },
    waits=(
        Wait(
            "verify interval (verifyIntervalSeconds tag, between GetChange polls and verify attempts)",
            configured_s=5,
            benchmark_s=0,
            when="once per GetChange that answers PENDING (the local cloud: the first, as on AWS)",
        ),
        Wait(
            "hold-down (holdDownSeconds) and primary-healthy (primaryHealthySeconds)",
            configured_s=900 + 300,
            benchmark_s=900 + 300,
            when="failback only: not on this failover",
        ),
    ),
)


# ------------------------------------------------------------------------------------- promote-replica

# Set per primary with selfheal:param:* tags (README, "promote-replica": any param can be a tag): the
# DNS name to move, and 1 s between checks of the promotion instead of 10 s. The local cloud's
# promotion takes 2 s (LOCALCLOUD_RDS_PROMOTION_SECONDS, the emulated reboot), so it is polled.
_PROMOTE_PACE = {"verifyIntervalSeconds": "1"}
_REPLICA_LAG_SECONDS = 2.0  # under the 60 s default maxLagSeconds: no approval


def _promote_replica_setup(cloud: Any) -> dict[str, Any]:
    """A primary tagged with its DNS name, a fenced read replica 2 s behind (ReplicaLag), a fenced
    private zone with the application's CNAME on the primary (as tests/e2e/test_promote_replica.py)."""
    aws, name = Aws.of(cloud), unique("orders")
    zone = promote_replica.private_zone(aws, f"{name}.internal.")
    # The stack's DatabaseHostedZoneId and DatabaseRecordNames: the zone exists only now.
    cloud.set_steps_variables(DATABASE_HOSTED_ZONE_ID=zone.id, DATABASE_RECORD_NAMES="db.*.internal")
    db = promote_replica.database(
        aws, name, zone, f"db.{zone.name}", params=_PROMOTE_PACE, lag=_REPLICA_LAG_SECONDS
    )
    # The primary names the fault's target (localcloud.storm reads it too).
    return {"primary": db.primary, "database": db}


def _promote_replica_event(ctx: dict[str, Any]) -> dict[str, Any]:
    """RDS says the primary failed (events/rds-instance-failure.json, RDS-EVENT-0031)."""
    event = copy.deepcopy(load_event("rds-instance-failure"))
    arn = f"arn:aws:rds:us-east-1:123456789012:db:{ctx['primary']}"
    event["id"] = str(uuid.uuid4())
    event["resources"] = [arn]
    event["detail"]["SourceArn"] = arn
    event["detail"]["SourceIdentifier"] = ctx["primary"]
    return event


def _promote_replica_healed(cloud: Any, ctx: dict[str, Any]) -> bool:
    db: promote_replica.Database = ctx["database"]
    return db.replica_state(cloud) == ("available", None) and db.record_value(cloud) == db.replica_endpoint


PROMOTE_REPLICA = Scenario(
    runbook="promote-replica",
    fault="RDS reports the primary failed (RDS-EVENT-0031); its fenced read replica is 2 s behind",
    setup=_promote_replica_setup,
    event=_promote_replica_event,
    healed=_promote_replica_healed,
    mutating=frozenset({"rds:PromoteReadReplica"}),
    verify_state="Describe the promoted instance",
    verify_call="rds:DescribeDBInstances",
    minimum={
        "dynamodb:PutItem": Need(
            10,
            "9 write-once audit rows (received, started, intent + outcome of PromoteReadReplica, verified"
            " standalone writer, intent + outcome of ChangeResourceRecordSets, verified DNS name,"
            " succeeded) + the lease",
        ),
        "dynamodb:DeleteItem": Need(1, "release the lease"),
        "dynamodb:Query": Need(2, "guard history: this target (cooldown, loop) and this runbook (budget)"),
        "ssm:GetParameter": Need(1, "the kill switch, read on every run"),
        "rds:DescribeDBInstances": Need(
            3,
            "resolve: the primary (its tags carry the params and DNS name, its status says whether AWS is"
            " already recovering it, its replicas); the replica (tags for the fence, status, still"
            " replicating the primary, endpoint); verify once after the promotion",
        ),
        "route53:ListTagsForResource": Need(1, "the hosted zone's fence"),
        "cloudwatch:GetMetricStatistics": Need(1, "precheck: the replica's ReplicaLag (approval or not)"),
        "route53:ListResourceRecordSets": Need(
            2,
            "precheck: where the name points now (before, trafficMove, howToGoBack: the change is an"
            " UPSERT); verify: read it back after the change",
        ),
        "rds:PromoteReadReplica": Need(1, "the repair: the replica becomes a standalone writer"),
        "route53:ChangeResourceRecordSets": Need(1, "the repair: move the application's name to it"),
        "sns:Publish": Need(1, "tell a human"),
        "events:PutEvents": Need(1, "the outcome event on the bus"),
        "stepfunctions:StartExecution": Need(1, "triage starts the runbook"),
    },
    waits=(
        Wait(
            "verify interval (verifyIntervalSeconds tag on the primary, between DescribeDBInstances"
            " checks of the promotion and between DNS read-backs)",
            configured_s=10,
            benchmark_s=1,
            when="once per check that still sees the replica modifying: twice here (the local cloud's"
            " promotion takes 2 s, LOCALCLOUD_RDS_PROMOTION_SECONDS; on AWS it takes minutes: a reboot);"
            " the DNS read-back sees the new value at once",
        ),
        Wait(
            "approval (approvalTimeoutSeconds)",
            configured_s=1800,
            benchmark_s=1800,
            when="only when ReplicaLag is over maxLagSeconds (60) or unknown: not here (2 s)",
        ),
    ),
)

SCENARIOS: dict[str, Scenario] = {
    s.runbook: s for s in (REMAP_EIP, REPLACE_INSTANCE, REDRIVE_DLQ, FLIP_DNS, PROMOTE_REPLICA)
}
