"""A storm: many faults at once, through the local cloud's real pipeline, with figures from the run.

Fenced resources for all five runbooks (the benchmarks' world builders, ``benchmarks.scenarios``),
then a mixed stream of signals put where AWS would put them: the EventBridge bus (rules -> triage ->
state machines), the alarm topic, triage invoked as a CloudWatch alarm action. The mix:

- each resource's fault event, and the same event delivered again (EventBridge is at-least-once);
- the same alarm transition through EventBridge, the alarm topic and a Lambda alarm action;
- an OK sent before its ALARM (out of order);
- several signals for one incident (a status-check alarm and an EC2 "stopped" for one instance);
- two incidents for one target at the same moment (the alarm and an operator's remap-eip request
  in one PutEvents call): only the lease keeps the second run from acting while the first does;
- one AWS Health event naming many instances at once, sent first, so that its runs reach their
  guards together (what the atomic budget is for);
- alarms about instances nobody fenced, and events no rule should act on (the samples' OK,
  INSUFFICIENT_DATA, configuration changes);
- the rest: the same events again, half sent again by their sender (PutEvents: a new id), half
  re-delivered as EventBridge's at-least-once delivery does (the same event, the same id, handed to
  triage again).

Near the end of the acting the kill switch (the mode parameter) is set to off, as a run passes
its guards (``KillSwitch``); the figures say which mutating calls came after it.

Everything reported is computed from the run: triage's own answers (captured as the local cloud
runs it), the audit table, the executions, the local cloud's record of every AWS request and the
notifications. The stack runs with the production guard defaults (budget, breaker, concurrency) so
the storm also shows them holding. ``python -m localcloud.storm --resources 100 --events 1000``;
``--weaken NAME`` (localcloud.weaken) removes one safety mechanism, only to prove the figures see it.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from localcloud import compat, ops

ROOT = Path(__file__).parents[1]
TEMPLATE = ROOT / "template.yaml"
STACK = "selfheal-storm"
ACCOUNT, REGION = "123456789012", "us-east-1"
# The guards as deployed by default (template.yaml), so the storm tests them; only the flip-dns
# hold-down is shortened (the storm does not wait 5 minutes) and Mode is enforce.
PARAMETERS = {"Mode": "enforce", "FlipDnsMinHoldDownSeconds": "0", "BusRequestsMode": "enforce"}
SHARES = {
    "remap-eip": 0.3,
    "replace-instance": 0.2,
    "redrive-dlq": 0.2,
    "flip-dns": 0.2,
    "promote-replica": 0.1,
}
# service (botocore name) -> IAM prefix, for matching recorded calls to audit rows' actions.
IAM_PREFIX = {"elbv2": "elasticloadbalancing"}


@dataclass
class Delivery:
    """One signal as the storm sends it."""

    how: str  # eventbridge | alarm-topic | alarm-action | redelivery (triage handed the same event again)
    kind: str  # fault | sent-again | re-delivery | other-envelope | out-of-order-ok | same-incident
    # | same-moment | health-many | unfenced | not-a-fault
    body: dict[str, Any]
    target: str | None = None
    put_seconds: float = 0.0
    event_id: str | None = None  # the id EventBridge gave it
    original: Delivery | None = None  # a re-delivery: the delivery it repeats
    # same-moment: the fault this signal is put with, in one PutEvents call
    partner: Delivery | None = None


@dataclass
class World:
    resources: list[tuple[str, dict[str, Any]]]  # (runbook, scenario context)
    unfenced: list[str] = field(default_factory=list)  # instance ids nobody tagged


# ------------------------------------------------------------------------------ triage's answers


class TriageTap(compat.InvocationTap):
    """Every triage invocation's event and answer, as the local cloud runs the real handler."""

    def __init__(self, function_name: str) -> None:
        super().__init__()
        self.function_name = function_name
        self.answers: list[dict[str, Any]] = []
        self.errors = 0
        self._lock = threading.Lock()

    def around(
        self, call: Callable[..., Any], backend: Any, function_name: str, qualifier: str | None, body: Any
    ) -> Any:
        payload, failed = call(backend, function_name, qualifier, body)
        if backend.get_function(function_name, qualifier).function_name == self.function_name:
            with self._lock:
                if failed:
                    self.errors += 1
                else:
                    self.answers.append(json.loads(payload))
        return payload, failed

    def outcomes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [o for answer in self.answers for o in answer.get("outcomes", [])]


class StepsTap(compat.InvocationTap):
    """When each run took its lease, passed its guards and began to finish, as the local cloud runs
    the steps function (its answers, not the product's own word in the audit trail: a run that
    should have been refused its lease and was not shows here)."""

    def __init__(
        self, function_name: str, guards_passed: Callable[[StepsTap], None] = lambda _: None
    ) -> None:
        super().__init__()
        self.function_name = function_name
        self.guards_passed = guards_passed  # called before the run's next state is entered
        self.lease_taken: dict[str, tuple[float, str]] = {}  # execution -> (when, target key)
        self.passed_guards: dict[str, float] = {}
        self.finishing: dict[str, float] = {}
        self._lock = threading.Lock()

    def around(
        self, call: Callable[..., Any], backend: Any, function_name: str, qualifier: str | None, body: Any
    ) -> Any:
        if backend.get_function(function_name, qualifier).function_name != self.function_name:
            return call(backend, function_name, qualifier, body)
        raw = body.decode() if isinstance(body, bytes) else body
        event = json.loads(raw) if raw else {}
        arn = str((event.get("execution") or {}).get("arn"))
        step = event.get("step")
        if step == "finish":
            with self._lock:
                self.finishing.setdefault(arn, time.time())
        payload, failed = call(backend, function_name, qualifier, body)
        if failed:
            return payload, failed
        answer = json.loads(payload)
        if step == "acquire-lease":
            with self._lock:
                self.lease_taken.setdefault(arn, (time.time(), str(answer.get("targetKey"))))
        elif step == "guards":
            decision = answer.get("decision") or {}
            if decision.get("proceed") and not answer.get("dryRun"):
                with self._lock:
                    self.passed_guards.setdefault(arn, time.time())
                self.guards_passed(self)
        return payload, failed


class KillSwitch:
    """The mode parameter set to off during the storm, near the end of the acting: as a run passes
    its guards in enforce (before that run's next state), when four fifths of the runs the budgets
    allow (per runbook, the fewer of its resources and BudgetPerHour) have passed theirs. That run,
    and those behind it, are between the guards' read of the mode and their mutating calls: the
    moment the re-read before each call exists for. A storm in which that moment never comes flips
    it once every run has ended (the report then says nothing was in flight)."""

    def __init__(self, ssm: Any, parameter: str, world: World, budget_per_hour: int) -> None:
        self._ssm = ssm
        self.parameter = parameter
        per_runbook = Counter(rb for rb, _ in world.resources)
        allowed = sum(min(n, budget_per_hour) for n in per_runbook.values())
        self.after_runs = max(1, math.ceil(allowed * 4 / 5))
        self.passed = 0
        self.at: float | None = None
        self.trigger: str | None = None
        self._lock = threading.Lock()

    def run_passed_its_guards(self, _: StepsTap) -> None:
        with self._lock:
            self.passed += 1
            if self.passed != self.after_runs:
                return
        self.flip(f"run {self.passed} to pass its guards had just passed them")

    def flip(self, trigger: str) -> None:
        with self._lock:
            if self.at is not None:
                return
            self._ssm.put_parameter(Name=self.parameter, Value="off", Type="String", Overwrite=True)
            # Taken once the parameter says off: every read from here on sees it.
            self.at = time.time()
            self.trigger = trigger


# ------------------------------------------------------------------------------------ the world


def build_world(cloud: Any, resources: int) -> World:
    from benchmarks.scenarios import SCENARIOS

    counts = {runbook: max(1, round(resources * share)) for runbook, share in SHARES.items()}
    built: list[tuple[str, dict[str, Any]]] = []
    for runbook, count in counts.items():
        for _ in range(count):
            built.append((runbook, SCENARIOS[runbook].setup(cloud)))
    ec2 = cloud.client("ec2")
    image = ops.any_image_id(ec2)
    unfenced = [
        i["InstanceId"]
        for i in ec2.run_instances(ImageId=image, MinCount=5, MaxCount=5)["Instances"]  # no fence tag
    ]
    return World(built, unfenced)


# ------------------------------------------------------------------------------------ the signals


def _iso_ms(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _alarm_transition(event: dict[str, Any], state: str, previous: str, at: datetime) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["id"] = str(uuid.uuid4())
    changed["time"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    changed["detail"]["state"] = {**changed["detail"]["state"], "value": state, "timestamp": _iso_ms(at)}
    changed["detail"]["previousState"] = {**changed["detail"].get("previousState", {}), "value": previous}
    return changed


def _as_sns_message(event: dict[str, Any]) -> str:
    """The CloudWatch alarm notification SNS carries for the same transition (events/alarm-sns.json)."""
    from benchmarks.scenarios import load_event

    message = json.loads(load_event("alarm-sns")["Records"][0]["Sns"]["Message"])
    detail = event["detail"]
    metric = detail["configuration"]["metrics"][0]["metricStat"]["metric"]
    message.update(
        AlarmName=detail["alarmName"],
        AlarmArn=event["resources"][0],
        NewStateValue=detail["state"]["value"],
        OldStateValue=detail["previousState"]["value"],
        StateChangeTime=detail["state"]["timestamp"],
    )
    message["Trigger"].update(
        MetricName=metric["name"],
        Namespace=metric["namespace"],
        Dimensions=[{"name": k, "value": v} for k, v in metric["dimensions"].items()],
    )
    return json.dumps(message)


def _as_alarm_action(event: dict[str, Any]) -> dict[str, Any]:
    """What CloudWatch sends a Lambda alarm action for the same transition
    (events/alarm-lambda-action.json)."""
    from benchmarks.scenarios import load_event

    action = load_event("alarm-lambda-action")
    action["alarmArn"] = event["resources"][0]
    action["time"] = event["detail"]["state"]["timestamp"]
    action["alarmData"] = copy.deepcopy(event["detail"])
    return action


def _is_alarm(event: Mapping[str, Any]) -> bool:
    return event.get("source") == "aws.cloudwatch" and "alarmName" in event.get("detail", {})


def plan_signals(world: World, events: int, rng: random.Random) -> list[Delivery]:
    from benchmarks.scenarios import SCENARIOS, load_event

    now = datetime.now(UTC)
    deliveries: list[Delivery] = []
    faults: list[Delivery] = []
    for n, (runbook, ctx) in enumerate(world.resources):
        event = SCENARIOS[runbook].event(ctx)
        if _is_alarm(event):
            # A transition of its own per resource, at a time of its own (the dedupe key is the alarm,
            # its new state and the time it changed).
            event = _alarm_transition(event, "ALARM", "OK", now - timedelta(seconds=n + 1))
        fault = Delivery("eventbridge", "fault", event, target=ctx.get("primary") or ctx.get("sick"))
        faults.append(fault)
        if _is_alarm(event) and runbook == "remap-eip":
            # Out of order: the OK of this very alarm, one second after its ALARM, sent first.
            ok = _alarm_transition(event, "OK", "ALARM", now - timedelta(seconds=n) + timedelta(seconds=1))
            deliveries.append(Delivery("eventbridge", "out-of-order-ok", ok))
        deliveries.append(fault)
        if _is_alarm(event):
            deliveries.append(Delivery("alarm-topic", "other-envelope", event))
            deliveries.append(Delivery("alarm-action", "other-envelope", event))
        if runbook == "remap-eip":
            # The same incident, seen again: the instance stopped.
            stopped = copy.deepcopy(load_event("ec2-state-stopped"))
            stopped["id"] = str(uuid.uuid4())
            stopped["detail"]["instance-id"] = ctx["primary"]
            deliveries.append(Delivery("eventbridge", "same-incident", stopped, target=ctx["primary"]))
            # Two incidents for one target at the same moment: an operator asks for the move the
            # alarm asks for, in the same PutEvents call. Triage starts both (two signals, two
            # execution names); only the lease keeps the second from acting while the first does.
            deliveries.append(
                Delivery(
                    "eventbridge",
                    "same-moment",
                    _manual_request(load_event("manual-remap-eip"), ctx["primary"]),
                    target=ctx["primary"],
                    partner=fault,
                )
            )
    # One AWS Health event naming every group member the storm made sick, and the unfenced instances.
    sick = [ctx["sick"] for runbook, ctx in world.resources if runbook == "replace-instance"]
    health = copy.deepcopy(load_event("health-ec2-retirement"))
    health["id"] = str(uuid.uuid4())
    instances = [*sick, *world.unfenced]
    health["resources"] = instances
    template = health["detail"]["affectedEntities"][0]
    health["detail"]["affectedEntities"] = [{**template, "entityValue": i} for i in instances]
    deliveries.append(Delivery("eventbridge", "health-many", health))
    # Alarms about instances nobody fenced.
    for instance in world.unfenced:
        alarm = SCENARIOS["remap-eip"].event({"primary": instance})
        deliveries.append(Delivery("eventbridge", "unfenced", _alarm_transition(alarm, "ALARM", "OK", now)))
    # Events the rules deliver but no runbook should act on.
    for name in ("alarm-insufficient-data", "alarm-ok-from-insufficient-data", "health-public-no-entities"):
        sample = copy.deepcopy(load_event(name))
        sample["id"] = str(uuid.uuid4())
        deliveries.append(Delivery("eventbridge", "not-a-fault", sample))
    # Up to the number asked: the same events again, sent again or re-delivered with their id.
    eventbridge = [d for d in deliveries if d.how == "eventbridge"]
    repeats: list[Delivery] = []
    while len(deliveries) + len(repeats) < events:
        again = rng.choice(eventbridge)
        if rng.random() < 0.5:
            deliveries.append(Delivery("eventbridge", "sent-again", again.body, target=again.target))
        else:
            repeats.append(
                Delivery("redelivery", "re-delivery", again.body, target=again.target, original=again)
            )
    rng.shuffle(deliveries)
    rng.shuffle(repeats)
    # A re-delivery comes after the delivery it repeats.
    deliveries += repeats
    # Keep each out-of-order OK before its ALARM (the point of sending it).
    ordered: list[Delivery] = []
    for d in deliveries:
        if d.kind == "out-of-order-ok":
            ordered.insert(0, d)
        elif d.partner is None:
            ordered.append(d)
    # The Health event first: its runs (one per instance it names) start together and reach their
    # guards together, before any of them has acted, as a real burst does: what the atomic budget
    # is for, the guards' count of audit rows being read by all of them at once.
    ordered.sort(key=lambda d: d.kind != "health-many")
    # A same-moment signal goes right after its fault: send() puts the two in one call.
    twins = {id(d.partner): d for d in deliveries if d.partner is not None}
    return [x for d in ordered for x in ([d, twins[id(d)]] if id(d) in twins else [d])]


def _manual_request(sample: dict[str, Any], instance: str) -> dict[str, Any]:
    """A remap-eip request on the bus (events/manual-remap-eip.json) for this instance; the standby
    comes from the EIP's tag, as for the alarm."""
    request = copy.deepcopy(sample)
    request["id"] = str(uuid.uuid4())
    request["detail"]["target"] = {"instanceId": instance}
    request["detail"]["params"] = {}
    request["detail"]["reason"] = f"{instance} unreachable (storm): move its Elastic IP to the standby"
    request["detail"]["requestedBy"] = "storm"
    return request


# --------------------------------------------------------------------------------------- sending


def _entry(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Source": body["source"],
        "DetailType": body["detail-type"],
        "Detail": json.dumps(body["detail"]),
        "Resources": body.get("resources", []),
    }


def send(cloud: Any, deliveries: list[Delivery]) -> None:
    events, sns, lam = cloud.client("events"), cloud.client("sns"), cloud.client("lambda")
    topic = cloud.stack.outputs["AlarmTopicArn"]
    triage = cloud.stack.outputs["TriageFunctionArn"]
    for n, d in enumerate(deliveries):
        if d.partner is not None and n > 0 and deliveries[n - 1] is d.partner:
            continue  # sent with its fault
        start = time.perf_counter()
        if d.how == "eventbridge":
            together = [d]
            if n + 1 < len(deliveries) and deliveries[n + 1].partner is d:
                together.append(deliveries[n + 1])
            answer = events.put_events(Entries=[_entry(x.body) for x in together])
            for x, sent in zip(together, answer["Entries"], strict=True):
                x.event_id = sent["EventId"]
        elif d.how == "redelivery":
            assert d.original is not None and d.original.event_id is not None
            delivered = ops.event_as_delivered(d.original.body, ACCOUNT, REGION, d.original.event_id)
            lam.invoke(FunctionName=triage, Payload=json.dumps(delivered).encode())
        elif d.how == "alarm-topic":
            sns.publish(TopicArn=topic, Message=_as_sns_message(d.body))
        else:
            lam.invoke(FunctionName=triage, Payload=json.dumps(_as_alarm_action(d.body)).encode())
        # The local cloud delivers before it answers: this is the time to triage's decision (for a
        # same-moment pair, to both decisions).
        d.put_seconds = time.perf_counter() - start
        if n + 1 < len(deliveries) and deliveries[n + 1].partner is d:
            deliveries[n + 1].put_seconds = d.put_seconds


# -------------------------------------------------------------------------------------- figures


def _mutating_actions() -> set[str]:
    from selfheal.runbooks import RUNBOOKS

    return {spec.action for runbook in RUNBOOKS.values() for spec in runbook.calls}


def _action(call: Any) -> str:
    return f"{IAM_PREFIX.get(call.service, call.service)}:{call.operation}"


def _action_rows(
    rows: list[dict[str, Any]],
) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, str], list[float]]]:
    """Intent rows by action (with their time as ``_t``), and outcome times by (request, action)."""
    intents: dict[str, list[dict[str, Any]]] = defaultdict(list)
    outcomes: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row.get("phase") != "action" or not row.get("action"):
            continue
        at = datetime.fromisoformat(str(row["at"]).replace("Z", "+00:00")).timestamp()
        if row.get("outcome") == "pending":
            intents[row["action"]].append({**row, "_t": at})
        else:
            outcomes[(row["requestId"], row["action"])].append(at)
    return intents, outcomes


def _intents_for(call: Any, intents: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Intent rows for this very call: same action, the same values for the parameters both name,
    written before it."""
    return [
        i
        for i in intents[_action(call)]
        if i["_t"] <= call.time + 0.001 and _same_values(i.get("parameters") or {}, call.parameters)
    ]


def _mutating_calls(requests: list[Any]) -> list[Any]:
    mutating = _mutating_actions()
    return [r for r in requests if _action(r) in mutating]


def unlogged_calls(requests: list[Any], rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(mutating calls recorded, those without an intent row before and an outcome row after)."""
    calls = _mutating_calls(requests)
    intents, outcomes = _action_rows(rows)
    unlogged: list[str] = []
    for call in calls:
        action = _action(call)
        # Logged: an intent row for this very call before it, and an outcome row of that
        # remediation after it. A call the state machine retried is bracketed by the same pair.
        logged = any(
            any(t >= call.time - 0.001 for t in outcomes[(i["requestId"], action)])
            for i in _intents_for(call, intents)
        )
        if not logged:
            unlogged.append(f"{action} {json.dumps(call.parameters, sort_keys=True, default=str)[:300]}")
    return len(calls), unlogged


def kill_switch_figures(
    requests: list[Any], rows: list[dict[str, Any]], switch: KillSwitch, tap: StepsTap, started: float
) -> dict[str, Any]:
    """What the mutating calls did once the kill switch said off.

    The contract (DESIGN.md, Safety: Mode): the mode is read again right before every mutating
    call, in the call's intent step. A call the local cloud received after the flip is *in flight*
    when its intent step began before the flip (that read may have seen enforce: the contract
    allows it); any other call after the flip (its intent step began after the flip, or it has no
    intent row at all) is one the kill switch should have stopped: ``mutationsAfterKillSwitch``.
    Intent steps are dated by the time Step Functions entered them, before they read the mode, so
    a doubtful call counts as in flight, never against the product."""
    if switch.at is None:
        return {"killSwitch": None, "mutationsAfterKillSwitch": 0, "mutationsInFlightAtKillSwitch": 0}
    flipped = switch.at
    intents, _ = _action_rows(rows)
    in_flight, after = 0, []
    for call in _mutating_calls(requests):
        if call.time <= flipped:
            continue
        own = max(_intents_for(call, intents), key=lambda i: i["_t"], default=None)
        if own is not None and own["_t"] < flipped:
            in_flight += 1
        else:
            after.append(f"{_action(call)} {json.dumps(call.parameters, sort_keys=True, default=str)[:300]}")
    acting = [
        arn
        for arn, passed in tap.passed_guards.items()
        if passed < flipped and tap.finishing.get(arn, float("inf")) > flipped
    ]
    return {
        "killSwitch": {
            "flippedAfterSeconds": round(flipped - started, 1),
            "trigger": switch.trigger,
            # Runs past their guards and not yet finishing at the flip: what the flip tested.
            "runsActing": len(acting),
        },
        "mutationsAfterKillSwitch": len(after),
        "mutationsAfterKillSwitchCalls": after[:20],
        "mutationsInFlightAtKillSwitch": in_flight,
    }


def concurrent_runs(tap: StepsTap, executions: list[Any]) -> list[str]:
    """Targets on which two runs were past the lease at the same time (from taking it until they
    began to finish, or ended): the lease's contract is one runbook per target at a time."""
    ended = {
        e.arn: e.description["stopDate"].timestamp()
        for e in executions
        if isinstance(e.description.get("stopDate"), datetime)
    }
    held: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for arn, (taken, target) in tap.lease_taken.items():
        held[target].append((taken, tap.finishing.get(arn) or ended.get(arn) or float("inf")))
    twice = []
    for target, spans in held.items():
        spans.sort()
        latest_end = float("-inf")
        for start, end in spans:
            if start < latest_end:
                twice.append(target)
                break
            latest_end = max(latest_end, end)
    return sorted(twice)


def _same_values(logged: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """The scalar parameters both name agree (a query protocol sends True as "true")."""
    shared = [k for k in logged if k in sent and isinstance(logged[k], str | int | float | bool)]
    return all(str(logged[k]).lower() == str(sent[k]).lower() for k in shared)


def _skip_reason(row: Mapping[str, Any]) -> str:
    error = (row.get("error") or {}).get("error")
    if error:
        return str(error)
    reason = str(row.get("reason") or "").lower()
    for word in (
        "budget",
        "breaker",
        "cooldown",
        "loop",
        "lease",
        "fence",
        "kill switch",
        "switched off",
        "scope",
        "already",
    ):
        if word in reason:
            return "kill switch" if word == "switched off" else word
    return "other"


def figures(
    cloud: Any,
    world: World,
    deliveries: list[Delivery],
    tap: TriageTap,
    executions: list[Any],
    seconds: float,
    escalations: list[dict[str, Any]],
    steps: StepsTap,
    switch: KillSwitch,
    started: float,
) -> dict[str, Any]:
    from selfheal.chain import verify

    rows = ops.scan_audit(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])
    outcomes = tap.outcomes()
    decisions = Counter(o["decision"] for o in outcomes)
    # Accounted: every event triage answered for has a row of its request (a duplicate's is the
    # first delivery's), and triage answered for every event it was handed.
    request_ids = {r["requestId"] for r in rows}
    unaccounted = sum(1 for o in outcomes if o["request_id"] not in request_ids) + tap.errors
    answered = len(tap.answers)
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_request[row["requestId"]].append(row)
    skipped = Counter(_skip_reason(r) for r in rows if r.get("phase") == "skipped")
    # Runs the kill switch stopped: at their guards (mode off) or at an intent step (ModeChanged).
    stopped = Counter(
        r["runbook"]
        for r in rows
        if r.get("phase") == "skipped" and _skip_reason(r) in ("kill switch", "ModeChanged")
    )
    acted: dict[str, set[str]] = defaultdict(set)  # target -> remediations that changed it
    acted_by_runbook: Counter[str] = Counter()
    for request, its_rows in by_request.items():
        changed = [r for r in its_rows if r.get("phase") == "action" and r.get("outcome") == "ok"]
        if changed:
            acted[changed[0]["targetKey"]].add(request)
            acted_by_runbook[changed[0]["runbook"]] += 1
    requests = cloud.recorded_requests()
    calls, unlogged = unlogged_calls(requests, rows)
    twice = concurrent_runs(steps, executions)
    failures = [
        {
            "execution": e.name,
            "error": e.error,
            "cause": (e.cause or "")[:300],
            "signal": next(
                (r.get("reason") for r in by_request.get(e.name, []) if r.get("phase") == "received"), None
            ),
        }
        for e in executions
        if e.status != "SUCCEEDED"
    ]
    settings = cloud.set_steps_variables()
    budget = int(settings.get("BUDGET_PER_HOUR", 10))
    statuses = Counter(e.status for e in executions)
    puts = sorted(d.put_seconds for d in deliveries)
    escalated = Counter(
        (
            e["detail"]["runbook"],
            _skip_reason({"reason": e["detail"].get("reason"), "error": e["detail"].get("error")}),
        )
        for e in escalations
        if e["detail"].get("escalate") and e["detail"].get("outcome") == "skipped"
    )
    return {
        "eventsIn": len(deliveries),
        "eventsByKind": dict(Counter(d.kind for d in deliveries)),
        "eventsByEnvelope": dict(Counter(d.how for d in deliveries)),
        "fencedResources": len(world.resources),
        "resourcesByRunbook": dict(Counter(rb for rb, _ in world.resources)),
        "triageInvocations": answered,
        "triageErrors": tap.errors,
        "decisions": dict(decisions),
        "skippedByReason": dict(skipped),
        "stoppedByKillSwitch": dict(stopped),
        "executions": len(executions),
        "executionStatus": dict(statuses),
        "mutatingCalls": calls,
        "remediationsThatActed": dict(acted_by_runbook),
        "budgetPerHour": budget,
        "overBudget": {rb: n for rb, n in acted_by_runbook.items() if n > budget},
        "escalationsSent": sum(1 for e in escalations if e["detail"].get("escalate")),
        "guardStopEscalations": {f"{rb}/{why}": n for (rb, why), n in escalated.items()},
        "breakerOpenings": sum(
            1 for r in rows if r.get("phase") == "skipped" and _skip_reason(r) == "breaker"
        ),
        "eventToDecisionSeconds": {
            "p50": round(statistics.median(puts), 3) if puts else None,
            "max": round(puts[-1], 3) if puts else None,
        },
        "unaccounted": unaccounted,
        "unlogged": len(unlogged),
        "unloggedCalls": unlogged[:20],
        "failedRuns": failures[:20],
        "doubleActions": sum(1 for requests in acted.values() if len(requests) > 1),
        "concurrentRuns": len(twice),
        "concurrentRunTargets": twice[:20],
        **kill_switch_figures(requests, rows, switch, steps, started),
        "chainProblems": len(verify(rows)),
        "seconds": round(seconds, 1),
        "eventsPerSecond": round(len(deliveries) / seconds, 1) if seconds else None,
    }


# ------------------------------------------------------------------------------------------ run


def _escalation_inbox(cloud: Any) -> Callable[[], list[dict[str, Any]]]:
    """An SQS queue fed by the stack's outcome events (source selfheal)."""
    sqs, events = cloud.client("sqs"), cloud.client("events")
    url = sqs.create_queue(QueueName="storm-outcomes")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="storm-outcomes", EventPattern=json.dumps({"source": ["selfheal"]}))
    events.put_targets(Rule="storm-outcomes", Targets=[{"Id": "inbox", "Arn": arn}])

    def read_all() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            found += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )

    return read_all


def run(
    resources: int,
    events: int,
    seed: int = 7,
    budget_per_hour: int | None = None,
    log: Callable[[str], None] = print,
    weaken: str | None = None,
) -> dict[str, Any]:
    """The storm; ``weaken`` names a safety mechanism to remove for it (localcloud.weaken), only to
    prove that the figures see it."""
    from localcloud.cloud import point_boto3_at
    from localcloud.harness import start_deployed_cloud
    from localcloud.weaken import weakening

    weakened = weakening(weaken) if weaken else None
    parameters = {
        **PARAMETERS,
        **({"BudgetPerHour": str(budget_per_hour)} if budget_per_hour is not None else {}),
    }
    cloud = start_deployed_cloud(TEMPLATE, parameters, stack_name=STACK)
    try:
        point_boto3_at(cloud.endpoint, cloud.cloud.region)
        log(f"storm: building {resources} fenced resources ...")
        world = build_world(cloud, resources)
        deliveries = plan_signals(world, events, random.Random(seed))
        inbox = _escalation_inbox(cloud)
        sfn = cloud.client("stepfunctions")
        machines = ops.stack_state_machines(cloud.client("cloudformation"), cloud.stack.name)
        before = ops.execution_arns(sfn, machines)
        # A client of its own: the switch is flipped from a Lambda's thread while the storm sends.
        budget = int(cloud.set_steps_variables().get("BUDGET_PER_HOUR", 10))
        switch = KillSwitch(
            cloud.cloud.client("ssm"),
            cloud.stack.outputs["ModeParameterName"],
            world,
            budget,
        )
        tap = TriageTap(cloud.stack.physical_id("TriageFunction"))
        steps = StepsTap(cloud.stack.physical_id("RunbookStepsFunction"), switch.run_passed_its_guards)
        tap.install()
        steps.install()
        if weakened is not None:
            log(f"storm: WEAKENED for proving the report only: {weakened.removes}")
            weakened.apply()
        cloud.reset_recording()
        log(f"storm: sending {len(deliveries)} signals ...")
        start, started_at = time.perf_counter(), time.time()
        try:
            send(cloud, deliveries)
            executions = ops.wait_for_new_executions(sfn, machines, before, timeout=900)
            # No run passed its guards after the last fault was sent: flipped with nothing in
            # flight, which the report says (runsActing 0) rather than pass it off as a test.
            switch.flip(f"every run had ended ({switch.passed} had passed their guards)")
        finally:
            if weakened is not None:
                weakened.undo()
            steps.uninstall()
            tap.uninstall()
        seconds = time.perf_counter() - start
        result = figures(
            cloud, world, deliveries, tap, executions, seconds, inbox(), steps, switch, started_at
        )
        if weakened is not None:
            result["weakened"] = weakened.summary()
        log(json.dumps(result, indent=2))
        return result
    finally:
        cloud.cloud.stop()


# The figures a storm must hold at zero (localcloud.trust's verdict holds them too).
ZEROES = (
    "unaccounted",
    "unlogged",
    "doubleActions",
    "concurrentRuns",
    "mutationsAfterKillSwitch",
    "chainProblems",
    "triageErrors",
)


def holds(result: Mapping[str, Any]) -> bool:
    return not any(result.get(name) for name in ZEROES) and not result["overBudget"]


def main(argv: list[str] | None = None) -> int:
    from localcloud.weaken import WEAKENINGS

    parser = argparse.ArgumentParser(prog="python -m localcloud.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--budget-per-hour", type=int, help="the stack's BudgetPerHour (default: the template's)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--weaken",
        choices=sorted(WEAKENINGS),
        help="FOR PROVING THE REPORT ONLY: remove one safety mechanism for this storm (localcloud.weaken)"
        " to show that its figure and the verdict change; never evidence about the product",
    )
    args = parser.parse_args(argv)
    result = run(
        args.resources,
        args.events,
        args.seed,
        args.budget_per_hour,
        log=lambda line: print(line, file=sys.stderr),
        weaken=args.weaken,
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if holds(result) else 1


if __name__ == "__main__":
    sys.exit(main())
