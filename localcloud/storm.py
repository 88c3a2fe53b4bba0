"""A storm: many faults at once, through the local cloud's real pipeline, with figures from the run.

Fenced resources for all five runbooks (the benchmarks' world builders, ``benchmarks.scenarios``),
then a mixed stream of signals put where AWS would put them: the EventBridge bus (rules -> triage ->
state machines), the alarm topic, triage invoked as a CloudWatch alarm action. The mix:

- each resource's fault event, and the same event delivered again (EventBridge is at-least-once);
- the same alarm transition through EventBridge, the alarm topic and a Lambda alarm action;
- an OK sent before its ALARM (out of order);
- several signals for one incident (a status-check alarm and an EC2 "stopped" for one instance);
- one AWS Health event naming many instances at once;
- alarms about instances nobody fenced, and events no rule should act on (the samples' OK,
  INSUFFICIENT_DATA, configuration changes);
- the rest: the same events again, half sent again by their sender (PutEvents: a new id), half
  re-delivered as EventBridge's at-least-once delivery does (the same event, the same id, handed to
  triage again).

Everything reported is computed from the run: triage's own answers (captured as the local cloud
runs it), the audit table, the executions, the local cloud's record of every AWS request and the
notifications. The stack runs with the production guard defaults (budget, breaker, concurrency) so
the storm also shows them holding. ``python -m localcloud.storm --resources 100 --events 1000``.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from localcloud import ops

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
    # | health-many | unfenced | not-a-fault
    body: dict[str, Any]
    target: str | None = None
    put_seconds: float = 0.0
    event_id: str | None = None  # the id EventBridge gave it
    original: Delivery | None = None  # a re-delivery: the delivery it repeats


@dataclass
class World:
    resources: list[tuple[str, dict[str, Any]]]  # (runbook, scenario context)
    unfenced: list[str] = field(default_factory=list)  # instance ids nobody tagged


# ------------------------------------------------------------------------------ triage's answers


class TriageTap:
    """Every triage invocation's event and answer, as the local cloud runs the real handler."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.answers: list[dict[str, Any]] = []
        self.errors = 0
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def install(self) -> None:
        from localcloud import compat

        original = compat.invoke_in_process
        self._original = original

        def invoke_in_process(backend: Any, function_name: str, qualifier: str | None, body: Any) -> Any:
            payload, failed = original(backend, function_name, qualifier, body)
            if backend.get_function(function_name, qualifier).function_name == self.function_name:
                with self._lock:
                    if failed:
                        self.errors += 1
                    else:
                        self.answers.append(json.loads(payload))
            return payload, failed

        compat.invoke_in_process = invoke_in_process

    def uninstall(self) -> None:
        from localcloud import compat

        if self._original is not None:
            compat.invoke_in_process = self._original

    def outcomes(self) -> list[dict[str, Any]]:
        with self._lock:
            return [o for answer in self.answers for o in answer.get("outcomes", [])]


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
        else:
            ordered.append(d)
    return ordered


# --------------------------------------------------------------------------------------- sending


def send(cloud: Any, deliveries: Iterable[Delivery]) -> None:
    events, sns, lam = cloud.client("events"), cloud.client("sns"), cloud.client("lambda")
    topic = cloud.stack.outputs["AlarmTopicArn"]
    triage = cloud.stack.outputs["TriageFunctionArn"]
    for d in deliveries:
        start = time.perf_counter()
        if d.how == "eventbridge":
            entry = {
                "Source": d.body["source"],
                "DetailType": d.body["detail-type"],
                "Detail": json.dumps(d.body["detail"]),
                "Resources": d.body.get("resources", []),
            }
            answer = events.put_events(Entries=[entry])
            d.event_id = answer["Entries"][0]["EventId"]
        elif d.how == "redelivery":
            assert d.original is not None and d.original.event_id is not None
            delivered = ops.event_as_delivered(d.original.body, ACCOUNT, REGION, d.original.event_id)
            lam.invoke(FunctionName=triage, Payload=json.dumps(delivered).encode())
        elif d.how == "alarm-topic":
            sns.publish(TopicArn=topic, Message=_as_sns_message(d.body))
        else:
            lam.invoke(FunctionName=triage, Payload=json.dumps(_as_alarm_action(d.body)).encode())
        # The local cloud delivers before it answers: this is the time to triage's decision.
        d.put_seconds = time.perf_counter() - start


# -------------------------------------------------------------------------------------- figures


def _mutating_actions() -> set[str]:
    from selfheal.runbooks import RUNBOOKS

    return {spec.action for runbook in RUNBOOKS.values() for spec in runbook.calls}


def unlogged_calls(requests: list[Any], rows: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """(mutating calls recorded, those without an intent row before and an outcome row after)."""
    mutating = _mutating_actions()
    calls = [r for r in requests if f"{IAM_PREFIX.get(r.service, r.service)}:{r.operation}" in mutating]
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
    unlogged: list[str] = []
    for call in calls:
        action = f"{IAM_PREFIX.get(call.service, call.service)}:{call.operation}"
        # Logged: an intent row for this very call (same action, the same values for the parameters
        # both name) before it, and an outcome row of that remediation after it. A call the state
        # machine retried is bracketed by the same pair.
        logged = any(
            i["_t"] <= call.time + 0.001
            and _same_values(i.get("parameters") or {}, call.parameters)
            and any(t >= call.time - 0.001 for t in outcomes[(i["requestId"], action)])
            for i in intents[action]
        )
        if not logged:
            unlogged.append(f"{action} {json.dumps(call.parameters, sort_keys=True, default=str)[:300]}")
    return len(calls), unlogged


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
        "scope",
        "already",
    ):
        if word in reason:
            return word
    return "other"


def figures(
    cloud: Any,
    world: World,
    deliveries: list[Delivery],
    tap: TriageTap,
    executions: list[Any],
    seconds: float,
    escalations: list[dict[str, Any]],
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
    acted: dict[str, set[str]] = defaultdict(set)  # target -> remediations that changed it
    acted_by_runbook: Counter[str] = Counter()
    for request, its_rows in by_request.items():
        changed = [r for r in its_rows if r.get("phase") == "action" and r.get("outcome") == "ok"]
        if changed:
            acted[changed[0]["targetKey"]].add(request)
            acted_by_runbook[changed[0]["runbook"]] += 1
    calls, unlogged = unlogged_calls(cloud.recorded_requests(), rows)
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
) -> dict[str, Any]:
    from localcloud.cloud import point_boto3_at
    from localcloud.harness import start_deployed_cloud

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
        tap = TriageTap(cloud.stack.physical_id("TriageFunction"))
        tap.install()
        cloud.reset_recording()
        log(f"storm: sending {len(deliveries)} signals ...")
        start = time.perf_counter()
        try:
            send(cloud, deliveries)
            executions = ops.wait_for_new_executions(sfn, machines, before, timeout=900)
        finally:
            tap.uninstall()
        seconds = time.perf_counter() - start
        result = figures(cloud, world, deliveries, tap, executions, seconds, inbox())
        log(json.dumps(result, indent=2))
        return result
    finally:
        cloud.cloud.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.storm", description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--budget-per-hour", type=int, help="the stack's BudgetPerHour (default: the template's)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    result = run(
        args.resources,
        args.events,
        args.seed,
        args.budget_per_hour,
        log=lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    clean = result["unaccounted"] == result["unlogged"] == result["doubleActions"] == 0
    return 0 if clean and not result["overBudget"] and not result["chainProblems"] else 1


if __name__ == "__main__":
    sys.exit(main())
