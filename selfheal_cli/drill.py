"""``selfheal drill RUNBOOK``: a game day on the operator's own drill resources, against any stack.

A drill names its *trigger*: the drill alarm the policy routes to the runbook (remap-eip,
replace-instance, redrive-dlq, promote-replica) or the primary's Route 53 health check (flip-dns).
The trigger and the resource the run acts on must carry ``selfheal:drill=true`` besides the fence
tag: a drill refuses anything else, so it never touches a production resource.

Dry-run (the default) makes no fault: it sends a signed request with ``dryRun`` for the very target
the fault would give (through the bus and triage, as ``selfheal trigger`` does) and passes when the
run records the would-do rows the runbook's heal is made of. Nothing changes (redrive-dlq's test
message, which gives the run something to plan, is taken out of the DLQ again).

``--enforce`` makes a safe fault real through AWS APIs only: SetAlarmState ALARM on the drill alarm
(redrive-dlq: a test message dead-lettered first), ``Inverted=true`` on the health check. It then
watches the audit trail of the target for the run the fault causes, and passes when the run healed
and the resource is whole again. The fault is always restored (alarm to OK, health check
un-inverted), pass or fail.

Either way the run's audit chain must verify (selfheal.chain, as ``selfheal audit verify``), and,
as ARC's practice runs, a drill does not start while a declared blocking alarm is in ALARM or inside
a declared blocked window, and stops (restoring its fault) when a declared outcome alarm fires.
Exit: 0 pass, 1 fail (or stopped), 2 usage (a resource that is no drill resource included), 3 not
started (blocked).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from selfheal_cli import ops, outcomes
from selfheal_cli.errors import CliError, InvalidArgument
from selfheal_cli.options import (
    add_remote_options,
    load_json_argument,
    remote_clients,
    resolve_stack_name,
)
from selfheal_cli.terminal import print_json

DRILL_TAG = ("selfheal:drill", "true")
DEFAULT_FENCE = ("selfheal:managed", "true")
Clients = Callable[[str], Any]

PASS, FAIL, STOPPED, BLOCKED, REFUSED = "pass", "fail", "stopped", "blocked", "refused"
EXIT_CODES = {PASS: 0, FAIL: 1, STOPPED: 1, REFUSED: 2, BLOCKED: 3}
FINAL_PHASES = {"succeeded", "failed", "skipped", "rejected"}
_ALARM_POLL_SECONDS = 1.0


class NotADrillResource(InvalidArgument):
    """The trigger or the target is not the operator's drill resource (tags, shape, existence)."""


class Blocked(CliError):
    """A declared blocking alarm, blocked window or outcome alarm says not now: exit 3."""

    exit_status = 3


class OutcomeAlarm(RuntimeError):
    """A declared outcome alarm went to ALARM while the drill ran."""


# --- blocked windows ---------------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(
    r"^\s*(?:(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+)?"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Window:
    """A weekly window in UTC: ``Sat 00:00-06:00``, ``Mon-Fri 09:00-17:00``, ``22:00-02:00`` (every
    day; a window past midnight runs into the next day). The end minute is not in the window."""

    text: str
    days: frozenset[int]  # the days it starts on (0 = Monday)
    start: int  # minutes after midnight
    end: int

    def holds(self, now: datetime.datetime) -> bool:
        now = now.astimezone(datetime.UTC)
        minute = now.hour * 60 + now.minute
        today, yesterday = now.weekday(), (now.weekday() - 1) % 7
        if self.start < self.end:
            return today in self.days and self.start <= minute < self.end
        # Past midnight: the evening part on its own day, the morning part on the day after.
        return (today in self.days and minute >= self.start) or (yesterday in self.days and minute < self.end)


def _minutes(text: str, window: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise InvalidArgument(f"--blocked-window {window!r}: {text} is no time of day (HH:MM, UTC)")
    return hours * 60 + minutes


def parse_window(text: str) -> Window:
    match = _WINDOW.match(text)
    if not match:
        raise InvalidArgument(
            f"--blocked-window {text!r}: write [DAY[-DAY]] HH:MM-HH:MM in UTC, e.g. 'Sat 00:00-06:00'"
        )
    first, last = (match["first"] or "").lower(), (match["last"] or "").lower()
    for day in (first, last):
        if day and day not in DAYS:
            raise InvalidArgument(f"--blocked-window {text!r}: no day {day!r} (one of {', '.join(DAYS)})")
    if not first:
        days = frozenset(range(7))
    else:
        begin, finish = DAYS.index(first), DAYS.index(last or first)
        days = frozenset((begin + i) % 7 for i in range((finish - begin) % 7 + 1))
    start, end = _minutes(match["start"], text), _minutes(match["end"], text)
    if start == end:
        raise InvalidArgument(f"--blocked-window {text!r}: it starts where it ends")
    return Window(text.strip(), days, start, end % (24 * 60) if end == 24 * 60 else end)


def blocking_window(windows: Iterable[Window], now: datetime.datetime) -> Window | None:
    return next((w for w in windows if w.holds(now)), None)


# --- declarations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    """What the operator declared for a drill: on the command line, in a drill file, or both."""

    runbook: str
    trigger: str
    enforce: bool = False
    blocking_alarms: tuple[str, ...] = ()
    blocked_windows: tuple[Window, ...] = ()
    outcome_alarms: tuple[str, ...] = ()
    timeout: float = 300.0


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(f"the drill file's {what} must be a string or a list of strings")


def declared(args: argparse.Namespace) -> Declared:
    """The command line and the drill file (``--file``: JSON with ``targets`` {runbook: trigger},
    ``blockingAlarms``, ``blockedWindows``, ``outcomeAlarms``); the command line adds to the file."""
    file: dict[str, Any] = {}
    if args.file:
        loaded = load_json_argument(args.file, "--file")
        if not isinstance(loaded, dict):
            raise InvalidArgument("--file: a drill file is a JSON object")
        unknown = set(loaded) - {"targets", "blockingAlarms", "blockedWindows", "outcomeAlarms"}
        if unknown:
            raise InvalidArgument(f"--file: unknown key(s) {', '.join(sorted(unknown))}")
        file = loaded
    targets = file.get("targets") or {}
    if not isinstance(targets, dict):
        raise InvalidArgument("the drill file's targets must map runbook names to triggers")
    trigger = args.target or targets.get(args.runbook)
    if not trigger or not isinstance(trigger, str):
        raise InvalidArgument(
            f"name the drill's trigger: --target (the drill alarm; flip-dns: the health check id),"
            f" or targets.{args.runbook} in --file"
        )
    if args.timeout <= 0:
        raise InvalidArgument("--timeout must be more than 0 seconds")
    windows = [*_strings(file.get("blockedWindows"), "blockedWindows"), *args.blocked_window]
    return Declared(
        runbook=args.runbook,
        trigger=trigger,
        enforce=args.enforce,
        blocking_alarms=(*_strings(file.get("blockingAlarms"), "blockingAlarms"), *args.blocking_alarm),
        blocked_windows=tuple(parse_window(w) for w in windows),
        outcome_alarms=(*_strings(file.get("outcomeAlarms"), "outcomeAlarms"), *args.outcome_alarm),
        timeout=args.timeout,
    )


# --- what a drill is about --------------------------------------------------------------------


@dataclass
class Subject:
    """What the trigger leads to: the run's target as the policy derives it, and what the drill
    captured before (to tell later whether the resource is whole)."""

    trigger: str
    target: dict[str, Any]
    target_key: str
    params: dict[str, Any] = field(default_factory=dict)
    before: dict[str, Any] = field(default_factory=dict)


def _has(tags: Mapping[str, str], pair: tuple[str, str]) -> bool:
    return tags.get(pair[0]) == pair[1]


def require_drill_tags(what: str, tags: Mapping[str, str], fence: tuple[str, str] | None) -> None:
    """A drill resource carries the drill tag (and, for what the run acts on, the fence tag)."""
    missing = [f"{k}={v}" for k, v in (DRILL_TAG, *((fence,) if fence else ())) if not _has(tags, (k, v))]
    if missing:
        raise NotADrillResource(
            f"{what} is not a drill resource (no {' and no '.join(missing)} tag): a drill only touches"
            " resources its operator marked for drills"
        )


def _tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or ()}


def _alarm(cloudwatch: Any, name: str) -> dict[str, Any] | None:
    found = cloudwatch.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    alarms = [*found.get("MetricAlarms", []), *found.get("CompositeAlarms", [])]
    return dict(alarms[0]) if alarms else None


def alarm_states(cloudwatch: Any, names: Sequence[str]) -> dict[str, str]:
    """name -> state of each alarm named; an alarm that does not exist is a usage error (an operator
    who declared it meant it to guard the drill)."""
    if not names:
        return {}
    states: dict[str, str] = {}
    for start in range(0, len(names), 100):
        chunk = list(names[start : start + 100])
        found = cloudwatch.describe_alarms(AlarmNames=chunk, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        for alarm in [*found.get("MetricAlarms", []), *found.get("CompositeAlarms", [])]:
            states[str(alarm["AlarmName"])] = str(alarm["StateValue"])
    missing = [n for n in names if n not in states]
    if missing:
        raise InvalidArgument(f"no alarm {', '.join(missing)} (declared to guard the drill)")
    return states


class Drill:
    """One runbook's drill: what its trigger is, its fault, what its heal looks like."""

    runbook = ""
    trigger_kind = ""
    # The mutating actions a heal of this runbook is made of: a dry run must plan one of them.
    heal_actions: frozenset[str] = frozenset()

    def subject(self, clients: Clients, trigger: str, fence: tuple[str, str]) -> Subject:
        raise NotImplementedError

    def prepare(self, clients: Clients, subject: Subject, drill_id: str) -> None:
        """What a run needs to have something to do, dry-run or not (redrive-dlq: a test message)."""

    def inject(self, clients: Clients, subject: Subject, drill_id: str) -> None:
        raise NotImplementedError

    def restore(self, clients: Clients, subject: Subject, drill_id: str) -> str:
        """Undo the fault (and anything prepare left); what was done, in words."""
        raise NotImplementedError

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        raise NotImplementedError


class AlarmDrill(Drill):
    """A drill whose fault is its alarm set to ALARM (SetAlarmState), as the policy routes it."""

    trigger_kind = "alarm"
    dimension = ""
    name_prefix = ""

    def subject(self, clients: Clients, trigger: str, fence: tuple[str, str]) -> Subject:
        cloudwatch = clients("cloudwatch")
        alarm = _alarm(cloudwatch, trigger)
        if alarm is None:
            raise NotADrillResource(f"no alarm {trigger} (the {self.runbook} drill's trigger)")
        tags = _tag_dict(cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"]).get("Tags"))
        require_drill_tags(f"the alarm {trigger}", tags, None)
        if self.name_prefix and not trigger.startswith(self.name_prefix):
            raise NotADrillResource(
                f"the alarm {trigger}: the policy routes alarms named {self.name_prefix}* to {self.runbook}"
            )
        dimensions = {str(d["Name"]): str(d["Value"]) for d in alarm.get("Dimensions") or []}
        value = dimensions.get(self.dimension)
        if not value:
            raise NotADrillResource(f"the alarm {trigger} has no {self.dimension} dimension: no target")
        subject = Subject(trigger=trigger, target=self.target(value), target_key=value)
        require_drill_tags(self.describe_target(value), self.target_tags(clients, value), fence)
        subject.before = {"alarmState": alarm["StateValue"], **self.capture(clients, value)}
        return subject

    def target(self, value: str) -> dict[str, Any]:
        raise NotImplementedError

    def describe_target(self, value: str) -> str:
        return value

    def target_tags(self, clients: Clients, value: str) -> dict[str, str]:
        raise NotImplementedError

    def capture(self, clients: Clients, value: str) -> dict[str, Any]:
        return {}

    def inject(self, clients: Clients, subject: Subject, drill_id: str) -> None:
        cloudwatch = clients("cloudwatch")
        reason = f"selfheal drill {drill_id}: a game day's fault (SetAlarmState)"
        cloudwatch.set_alarm_state(AlarmName=subject.trigger, StateValue="ALARM", StateReason=reason)

    def restore(self, clients: Clients, subject: Subject, drill_id: str) -> str:
        cloudwatch = clients("cloudwatch")
        alarm = _alarm(cloudwatch, subject.trigger)
        if alarm is None or alarm["StateValue"] == "OK":
            return f"alarm {subject.trigger} is OK"
        reason = f"selfheal drill {drill_id}: the game day is over, fault restored"
        cloudwatch.set_alarm_state(AlarmName=subject.trigger, StateValue="OK", StateReason=reason)
        return f"alarm {subject.trigger} set back to OK"


def _instance(clients: Clients, instance_id: str) -> dict[str, Any]:
    ec2 = clients("ec2")
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except ec2.exceptions.ClientError as exc:
        raise NotADrillResource(f"no instance {instance_id}: {exc}") from exc
    found = [i for r in reservations for i in r["Instances"]]
    if not found:
        raise NotADrillResource(f"no instance {instance_id}")
    return dict(found[0])


class InstanceAlarmDrill(AlarmDrill):
    dimension = "InstanceId"

    def target(self, value: str) -> dict[str, Any]:
        return {"instanceId": value}

    def describe_target(self, value: str) -> str:
        return f"the instance {value}"

    def target_tags(self, clients: Clients, value: str) -> dict[str, str]:
        return _tag_dict(_instance(clients, value).get("Tags"))


class RemapEipDrill(InstanceAlarmDrill):
    runbook = "remap-eip"
    heal_actions = frozenset({"ec2:AssociateAddress"})

    def capture(self, clients: Clients, value: str) -> dict[str, Any]:
        addresses = clients("ec2").describe_addresses(Filters=[{"Name": "instance-id", "Values": [value]}])
        found = addresses["Addresses"]
        if not found:
            raise NotADrillResource(
                f"the instance {value} holds no Elastic IP: nothing for remap-eip to move"
            )
        return {"allocationId": found[0]["AllocationId"], "publicIp": found[0].get("PublicIp")}

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        allocation = subject.before["allocationId"]
        address = clients("ec2").describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        standby = _tag_dict(address.get("Tags")).get("selfheal:param:standbyInstanceId")
        holder = address.get("InstanceId")
        moved = holder is not None and holder != subject.target_key and (standby is None or holder == standby)
        return moved, f"{address.get('PublicIp')} is on {holder} (was on {subject.target_key})"


class ReplaceInstanceDrill(InstanceAlarmDrill):
    runbook = "replace-instance"
    heal_actions = frozenset(
        {"autoscaling:SetInstanceHealth", "ec2:StopInstances", "ec2:StartInstances", "ec2:RunInstances"}
    )

    def capture(self, clients: Clients, value: str) -> dict[str, Any]:
        found = clients("autoscaling").describe_auto_scaling_instances(InstanceIds=[value])
        members = found.get("AutoScalingInstances") or []
        return {"group": members[0]["AutoScalingGroupName"]} if members else {}

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        instance = subject.target_key
        group_name = subject.before.get("group")
        if group_name:
            groups = clients("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
            group = groups["AutoScalingGroups"][0]
            members = {
                m["InstanceId"]: f"{m['LifecycleState']}/{m['HealthStatus']}" for m in group["Instances"]
            }
            serving = [i for i, state in members.items() if state == "InService/Healthy" and i != instance]
            whole = instance not in members and len(serving) >= group["DesiredCapacity"]
            return whole, f"{group_name}: {members} (replaced {instance})"
        status = clients("ec2").describe_instance_status(InstanceIds=[instance], IncludeAllInstances=True)
        statuses = status.get("InstanceStatuses") or [{}]
        state = statuses[0].get("InstanceState", {}).get("Name")
        checks = (
            statuses[0].get("SystemStatus", {}).get("Status"),
            statuses[0].get("InstanceStatus", {}).get("Status"),
        )
        return state == "running" and checks == ("ok", "ok"), f"{instance} is {state}, status checks {checks}"


def _queue_url(clients: Clients, name: str) -> str:
    sqs = clients("sqs")
    try:
        return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except sqs.exceptions.ClientError as exc:
        raise NotADrillResource(f"no queue {name}: {exc}") from exc


def _depth(clients: Clients, url: str) -> int:
    attributes = clients("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def drill_message(drill_id: str) -> str:
    return json.dumps(
        {"selfheal:drill": drill_id, "note": "a selfheal drill's test message: safe to discard"}
    )


class RedriveDlqDrill(AlarmDrill):
    runbook = "redrive-dlq"
    dimension = "QueueName"
    name_prefix = "dlq-"
    heal_actions = frozenset({"sqs:StartMessageMoveTask"})

    def target(self, value: str) -> dict[str, Any]:
        return {"queueName": value}

    def describe_target(self, value: str) -> str:
        return f"the queue {value}"

    def target_tags(self, clients: Clients, value: str) -> dict[str, str]:
        return dict(clients("sqs").list_queue_tags(QueueUrl=_queue_url(clients, value)).get("Tags") or {})

    def capture(self, clients: Clients, value: str) -> dict[str, Any]:
        url = _queue_url(clients, value)
        waiting = _depth(clients, url)
        if waiting:
            # A drill adds one message it can tell apart; a DLQ with others in it is a real fault.
            raise Blocked(
                f"the drill DLQ {value} holds {waiting} message(s) already: a real fault? not drilling"
            )
        return {"url": url}

    def prepare(self, clients: Clients, subject: Subject, drill_id: str) -> None:
        """A test message dead-lettered: sent to the DLQ itself, as SQS would move a failed one."""
        clients("sqs").send_message(QueueUrl=subject.before["url"], MessageBody=drill_message(drill_id))

    def restore(self, clients: Clients, subject: Subject, drill_id: str) -> str:
        said = super().restore(clients, subject, drill_id)
        removed = self._remove_test_message(clients, subject.before["url"], drill_id)
        return f"{said}; {removed}"

    @staticmethod
    def _remove_test_message(clients: Clients, url: str, drill_id: str) -> str:
        """The drill's message out of the DLQ if it is still there (a dry run, a failed redrive). Only
        the DLQ is read: receiving from a source queue would count against its messages' receives."""
        sqs, body = clients("sqs"), drill_message(drill_id)
        for _ in range(5):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=5).get(
                "Messages", []
            )
            for message in messages:
                if message["Body"] == body:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    return "test message taken out of the DLQ"
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
            if not messages:
                break
        return "no test message left in the DLQ"

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        waiting = _depth(clients, subject.before["url"])
        return waiting == 0, f"{subject.target_key} holds {waiting} message(s) (the test message went back)"


class PromoteReplicaDrill(AlarmDrill):
    runbook = "promote-replica"
    dimension = "DBInstanceIdentifier"
    name_prefix = "selfheal-db-primary-"
    heal_actions = frozenset({"rds:PromoteReadReplica"})

    def target(self, value: str) -> dict[str, Any]:
        return {"dbInstanceIdentifier": value}

    def describe_target(self, value: str) -> str:
        return f"the DB instance {value}"

    def _db(self, clients: Clients, identifier: str) -> dict[str, Any]:
        rds = clients("rds")
        try:
            return dict(rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])
        except rds.exceptions.ClientError as exc:
            raise NotADrillResource(f"no DB instance {identifier}: {exc}") from exc

    def target_tags(self, clients: Clients, value: str) -> dict[str, str]:
        arn = self._db(clients, value)["DBInstanceArn"]
        return _tag_dict(clients("rds").list_tags_for_resource(ResourceName=arn).get("TagList"))

    def capture(self, clients: Clients, value: str) -> dict[str, Any]:
        primary = self._db(clients, value)
        named = self.target_tags(clients, value).get("selfheal:param:replicaIdentifier")
        replicas = [named] if named else list(primary.get("ReadReplicaDBInstanceIdentifiers") or [])
        if len(replicas) != 1:
            raise NotADrillResource(
                f"{value} has {len(replicas)} read replicas: tag selfheal:param:replicaIdentifier"
            )
        replica = replicas[0].rsplit(":", 1)[-1]
        arn = self._db(clients, replica)["DBInstanceArn"]
        tags = _tag_dict(clients("rds").list_tags_for_resource(ResourceName=arn).get("TagList"))
        require_drill_tags(f"the replica {replica}", tags, None)
        return {"replica": replica}

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        replica = self._db(clients, subject.before["replica"])
        standalone = not replica.get("ReadReplicaSourceDBInstanceIdentifier")
        state = str(replica.get("DBInstanceStatus"))
        return (
            standalone and state == "available",
            f"{subject.before['replica']} is {state},"
            f" {'a standalone writer' if standalone else 'still a replica'}",
        )


class FlipDnsDrill(Drill):
    """The fault: the primary's health check inverted (UpdateHealthCheck), so Route 53 calls it
    unhealthy and its HealthCheckStatus alarm fires; restored by un-inverting it."""

    runbook = "flip-dns"
    trigger_kind = "health check"
    heal_actions = frozenset({"route53:ChangeResourceRecordSets", "route53:UpdateHealthCheck"})

    def _config(self, clients: Clients, health_check: str) -> dict[str, Any]:
        route53 = clients("route53")
        try:
            found = route53.get_health_check(HealthCheckId=health_check)["HealthCheck"]
        except route53.exceptions.ClientError as exc:
            raise NotADrillResource(f"no health check {health_check}: {exc}") from exc
        return dict(found["HealthCheckConfig"])

    def _tags(self, clients: Clients, health_check: str) -> dict[str, str]:
        found = clients("route53").list_tags_for_resource(ResourceType="healthcheck", ResourceId=health_check)
        return _tag_dict(found["ResourceTagSet"].get("Tags"))

    def subject(self, clients: Clients, trigger: str, fence: tuple[str, str]) -> Subject:
        config = self._config(clients, trigger)
        tags = self._tags(clients, trigger)
        require_drill_tags(f"the health check {trigger}", tags, fence)
        if config.get("Inverted") or config.get("Disabled"):
            raise Blocked(f"the health check {trigger} is already inverted or disabled: not drilling over it")
        return Subject(
            trigger=trigger,
            target={"healthCheckId": trigger},
            target_key=trigger,
            params={"direction": "failover"},
            before={"tags": tags},
        )

    def inject(self, clients: Clients, subject: Subject, drill_id: str) -> None:
        clients("route53").update_health_check(HealthCheckId=subject.trigger, Inverted=True)

    def restore(self, clients: Clients, subject: Subject, drill_id: str) -> str:
        config = self._config(clients, subject.trigger)
        if config.get("Disabled"):
            # flip-dns forced it (failover records): its own failback undoes that, not the drill.
            return f"health check {subject.trigger} left as flip-dns forced it (disabled, inverted)"
        if not config.get("Inverted"):
            return f"health check {subject.trigger} is not inverted"
        clients("route53").update_health_check(HealthCheckId=subject.trigger, Inverted=False)
        return f"health check {subject.trigger} un-inverted (the failback follows, after its hold-down)"

    def whole(self, clients: Clients, subject: Subject) -> tuple[bool, str]:
        tags, hc = subject.before["tags"], subject.trigger
        zone, name = tags.get("selfheal:param:hostedZoneId"), tags.get("selfheal:param:recordName")
        if not zone or not name:
            return False, f"the health check {hc} names no record (selfheal:param:hostedZoneId/recordName)"
        name = name.rstrip(".") + "."
        page = clients("route53").list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, MaxItems="100"
        )
        records = [r for r in page["ResourceRecordSets"] if r["Name"] == name]
        mine = [r for r in records if r.get("HealthCheckId") == hc]
        if any("Weight" in r for r in mine):
            weight = sum(int(r["Weight"]) for r in mine)
            return weight == 0, f"{name} weights { ({r['SetIdentifier']: r['Weight'] for r in records}) }"
        if any("Failover" in r for r in mine):
            config = self._config(clients, hc)
            forced = bool(config.get("Disabled")) and bool(config.get("Inverted"))
            return (
                forced,
                f"{name}: the primary's health check {hc} is"
                f" {'forced unhealthy' if forced else 'not forced'}",
            )
        values = [v["Value"] for r in records for v in r.get("ResourceRecords", [])]
        secondary = tags.get("selfheal:param:secondaryValue")
        return bool(secondary) and values == [secondary], f"{name} answers {values}"


DRILLS: dict[str, Drill] = {
    drill.runbook: drill
    for drill in (
        RemapEipDrill(),
        ReplaceInstanceDrill(),
        RedriveDlqDrill(),
        PromoteReplicaDrill(),
        FlipDnsDrill(),
    )
}


# --- the result -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillResult:
    verdict: str  # pass | fail | stopped | blocked | refused
    runbook: str
    target: str
    mode: str  # dry-run | enforce
    reason: str
    seconds: float | None = None
    execution_arn: str | None = None
    restored: str | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def line(self) -> str:
        took = f" in {self.seconds:.1f} s" if self.seconds is not None else ""
        return f"{self.verdict.upper():<8} {self.runbook} {self.target} ({self.mode}){took}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "runbook": self.runbook,
            "target": self.target,
            "mode": self.mode,
            "reason": self.reason,
            "timeToHealSeconds": self.seconds,
            "executionArn": self.execution_arn,
            "restored": self.restored,
        }


# --- running a drill -------------------------------------------------------------------------------


def _fence(cloudformation: Any, stack: str) -> tuple[str, str]:
    """The stack's fence tag (its FenceTagKey / FenceTagValue parameters; the defaults otherwise)."""
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Parameters") or []
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in found}
    return parameters.get("FenceTagKey") or DEFAULT_FENCE[0], parameters.get(
        "FenceTagValue"
    ) or DEFAULT_FENCE[1]


def _mode(clients: Clients, outputs: Mapping[str, str]) -> str:
    name = outputs.get("ModeParameterName")
    if not name:
        return "enforce"
    try:
        return str(clients("ssm").get_parameter(Name=name)["Parameter"]["Value"]).strip()
    except clients("ssm").exceptions.ClientError as exc:
        raise Blocked(f"the kill switch {name} cannot be read ({exc}): not drilling") from exc


def preflight(clients: Clients, plan: Declared, now: datetime.datetime) -> None:
    """Blocked windows, blocking alarms and outcome alarms already firing: Blocked, saying which."""
    window = blocking_window(plan.blocked_windows, now)
    if window is not None:
        raise Blocked(f"inside the blocked window {window.text} (UTC; now {now:%a %H:%M})")
    cloudwatch = clients("cloudwatch")
    for kind, names in (("blocking", plan.blocking_alarms), ("outcome", plan.outcome_alarms)):
        firing = [n for n, state in alarm_states(cloudwatch, names).items() if state == "ALARM"]
        if firing:
            raise Blocked(f"the {kind} alarm {', '.join(firing)} is in ALARM")


class _OutcomeWatch:
    """Polls the outcome alarms, at most once a second; raises OutcomeAlarm when one fires."""

    def __init__(self, cloudwatch: Any, names: Sequence[str]) -> None:
        self.cloudwatch, self.names, self.next = cloudwatch, list(names), 0.0

    def __call__(self, _waited: float = 0.0) -> None:
        if not self.names or time.monotonic() < self.next:
            return
        self.next = time.monotonic() + _ALARM_POLL_SECONDS
        firing = [n for n, s in alarm_states(self.cloudwatch, self.names).items() if s == "ALARM"]
        if firing:
            raise OutcomeAlarm(f"the outcome alarm {', '.join(firing)} went to ALARM")


def _chain(rows: list[dict[str, Any]]) -> list[str]:
    from selfheal.chain import verify

    return verify(rows)


def _heal_seconds(rows: list[dict[str, Any]], measured: float) -> float:
    succeeded = next((r for r in rows if r.get("phase") == "succeeded"), {})
    seconds = (succeeded.get("timeToHeal") or {}).get("seconds")
    return float(seconds) if isinstance(seconds, int | float) else measured


def _dry_run(
    clients: Clients,
    outputs: Mapping[str, str],
    drill: Drill,
    subject: Subject,
    plan: Declared,
    drill_id: str,
) -> DrillResult:
    """A signed dryRun request for the target the fault would give: pass = the would-do rows of a heal."""
    request = {
        "target": subject.target,
        "params": subject.params,
        "dryRun": True,
        "reason": f"selfheal drill {drill_id}: a game day, dry run",
    }
    watch = _OutcomeWatch(clients("cloudwatch"), plan.outcome_alarms)
    began = time.monotonic()
    result = ops.request_and_wait(
        clients, outputs, drill.runbook, request, timeout=plan.timeout, progress=watch
    )
    took = time.monotonic() - began
    run = outcomes.summarize(result, drill.runbook, request)
    table = outputs[ops.AUDIT_TABLE_OUTPUT]
    rows = ops.audit_for_request(clients("dynamodb"), table, result.name)
    planned = sorted({str(r.get("action")) for r in rows if r.get("phase") == "would-do"})
    base = {
        "runbook": drill.runbook,
        "target": subject.target_key,
        "mode": "dry-run",
        "execution_arn": result.arn,
    }
    if run.outcome != "dry-run":
        return DrillResult(FAIL, reason=f"the run ended {run.outcome}: {run.reason}", seconds=took, **base)
    if not set(planned) & drill.heal_actions:
        wanted = " or ".join(sorted(drill.heal_actions))
        return DrillResult(
            FAIL, reason=f"would do {planned or 'nothing'}, not {wanted}", seconds=took, **base
        )
    broken = _chain(ops.audit_for_target(clients("dynamodb"), table, subject.target_key))
    if broken:
        return DrillResult(FAIL, reason=f"audit chain broken: {broken[0]}", seconds=took, **base)
    reason = f"would do {', '.join(planned)}; {len(rows)} audit rows, chain holds"
    return DrillResult(PASS, reason=reason, seconds=_heal_seconds(rows, took), **base)


def _requests(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_request: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_request.setdefault(str(row.get("requestId")), []).append(row)
    return by_request


def _watch_the_run(
    clients: Clients, table: str, subject: Subject, known: set[str], plan: Declared, watch: _OutcomeWatch
) -> tuple[str, list[dict[str, Any]]]:
    """The new request about the target that started a run, once every new request has ended."""
    dynamodb = clients("dynamodb")
    deadline = time.monotonic() + plan.timeout
    while True:
        watch()
        new = {
            request: rows
            for request, rows in _requests(ops.audit_for_target(dynamodb, table, subject.target_key)).items()
            if request not in known
        }
        ended = {r: rows for r, rows in new.items() if any(row.get("phase") in FINAL_PHASES for row in rows)}
        if new and len(ended) == len(new):
            started = [r for r, rows in ended.items() if any(row.get("phase") == "started" for row in rows)]
            request = started[0] if started else next(iter(ended))
            return request, ended[request]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no run about {subject.target_key} ended within {plan.timeout:g} s")
        time.sleep(0.5)


def _enforce(
    clients: Clients,
    outputs: Mapping[str, str],
    drill: Drill,
    subject: Subject,
    plan: Declared,
    drill_id: str,
) -> DrillResult:
    """The fault made real; the run it causes watched; pass = healed, the resource whole, the chain."""
    dynamodb, table = clients("dynamodb"), outputs[ops.AUDIT_TABLE_OUTPUT]
    known = set(_requests(ops.audit_for_target(dynamodb, table, subject.target_key)))
    watch = _OutcomeWatch(clients("cloudwatch"), plan.outcome_alarms)
    base: dict[str, Any] = {"runbook": drill.runbook, "target": subject.target_key, "mode": "enforce"}
    drill.prepare(clients, subject, drill_id)
    began = time.monotonic()
    drill.inject(clients, subject, drill_id)
    request, rows = _watch_the_run(clients, table, subject, known, plan, watch)
    took = time.monotonic() - began
    started = next((r for r in rows if r.get("phase") == "started"), None)
    if started is None:
        final = next(r for r in rows if r.get("phase") in FINAL_PHASES)
        return DrillResult(
            FAIL, reason=f"no run started: {final.get('phase')}: {final.get('reason')}", seconds=took, **base
        )
    runbook = str(started.get("runbook"))
    machine = ops.state_machine_arn(outputs, runbook)
    arn = f"{machine.replace(':stateMachine:', ':execution:')}:{request}"
    base["execution_arn"] = arn
    if runbook != drill.runbook:
        return DrillResult(
            FAIL, reason=f"the policy sent the fault to {runbook}, not {drill.runbook}", seconds=took, **base
        )
    run = outcomes.summarize(ops.wait_for_execution(clients("stepfunctions"), arn, timeout=30), runbook)
    if run.outcome != "healed":
        return DrillResult(FAIL, reason=f"the run ended {run.outcome}: {run.reason}", seconds=took, **base)
    whole, evidence = drill.whole(clients, subject)
    if not whole:
        return DrillResult(
            FAIL, reason=f"the run says healed, the resource does not: {evidence}", seconds=took, **base
        )
    broken = _chain(ops.audit_for_target(dynamodb, table, subject.target_key))
    if broken:
        return DrillResult(FAIL, reason=f"audit chain broken: {broken[0]}", seconds=took, **base)
    reason = f"healed: {run.reason}; {evidence}; chain holds"
    return DrillResult(PASS, reason=reason, seconds=_heal_seconds(rows, took), **base)


def run_drill(
    clients: Clients, stack: str, plan: Declared, now: datetime.datetime | None = None
) -> DrillResult:
    """One drill, start to end; the fault (if one was made) is restored whatever happens."""
    drill = DRILLS.get(plan.runbook)
    mode = "enforce" if plan.enforce else "dry-run"
    if drill is None:
        raise InvalidArgument(f"no drill for runbook {plan.runbook!r} (drills: {', '.join(DRILLS)})")
    outputs = ops.stack_outputs(clients("cloudformation"), stack)
    ops.state_machine_arn(outputs, plan.runbook)  # the stack has the runbook
    try:
        subject = drill.subject(clients, plan.trigger, _fence(clients("cloudformation"), stack))
    except NotADrillResource as exc:
        return DrillResult(REFUSED, plan.runbook, plan.trigger, mode, str(exc))
    except Blocked as exc:  # what the trigger shows: a live fault, a DLQ that holds messages
        return DrillResult(BLOCKED, plan.runbook, plan.trigger, mode, f"not started: {exc}")
    base: dict[str, Any] = {"runbook": plan.runbook, "target": subject.target_key, "mode": mode}
    try:
        preflight(clients, plan, now or datetime.datetime.now(datetime.UTC))
        if subject.before.get("alarmState") == "ALARM":
            raise Blocked(f"the drill alarm {plan.trigger} is in ALARM already: a real fault? not drilling")
        switch = _mode(clients, outputs)
        if switch == "off" or (plan.enforce and switch != "enforce"):
            raise Blocked(
                f"the kill switch says {switch}:"
                f" {'no run acts' if switch == 'off' else 'nothing would heal the fault'}"
            )
    except Blocked as exc:
        return DrillResult(BLOCKED, reason=f"not started: {exc}", **base)
    drill_id = uuid.uuid4().hex[:12]
    restored: str | None = None
    try:
        if plan.enforce:
            result = _enforce(clients, outputs, drill, subject, plan, drill_id)
        else:
            drill.prepare(clients, subject, drill_id)
            result = _dry_run(clients, outputs, drill, subject, plan, drill_id)
    except OutcomeAlarm as exc:
        result = DrillResult(STOPPED, reason=f"stopped: {exc}", **base)
    except (TimeoutError, ops.OpsError) as exc:
        result = DrillResult(FAIL, reason=str(exc), **base)
    finally:
        restored = drill.restore(clients, subject, drill_id)
    return DrillResult(**{**result.__dict__, "restored": restored})


# --- the command ---------------------------------------------------------------------------------------


def cmd_drill(args: argparse.Namespace) -> int:
    plan = declared(args)
    endpoint, clients = remote_clients(args)
    result = run_drill(clients, resolve_stack_name(args.stack_name, endpoint), plan)
    if args.output == "json":
        print_json(result.as_dict())
    else:
        print(result.line())
        if result.restored:
            print(f"{'':9}restored: {result.restored}")
    return result.exit_code


def register(commands: Any) -> None:
    """The ``drill`` subcommand (main.build_parser calls this)."""
    drill = commands.add_parser(
        "drill",
        help="a game day on fenced drill resources: make a safe fault, watch it heal"
        " (dry-run unless --enforce)",
    )
    drill.add_argument("runbook", choices=sorted(DRILLS), help="the runbook to drill")
    drill.add_argument(
        "--target",
        help="the drill's trigger: its alarm (flip-dns: the primary's health check id),"
        " tagged selfheal:drill=true",
    )
    drill.add_argument("--enforce", action="store_true", help="make the fault real and let selfheal heal it")
    drill.add_argument(
        "--file", help="a drill file (JSON): targets, blockingAlarms, blockedWindows, outcomeAlarms"
    )
    drill.add_argument(
        "--blocking-alarm",
        action="append",
        default=[],
        metavar="NAME",
        help="do not start while it is in ALARM",
    )
    drill.add_argument(
        "--blocked-window",
        action="append",
        default=[],
        metavar="WINDOW",
        help="do not start inside it: [DAY[-DAY]] HH:MM-HH:MM in UTC, e.g. 'Sat 00:00-06:00'",
    )
    drill.add_argument(
        "--outcome-alarm",
        action="append",
        default=[],
        metavar="NAME",
        help="stop (restoring the fault) when it goes to ALARM; not started while it is",
    )
    drill.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the run (default 300)"
    )
    drill.add_argument("--output", choices=["text", "json"], default="text")
    add_remote_options(drill)
    drill.set_defaults(handler=cmd_drill)
