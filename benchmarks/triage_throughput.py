"""Triage throughput in-process: signals parsed and decided per second, and per-event latency.

The stream is every sample in events/ (alarms of every shape, SNS-wrapped and Lambda-action alarms,
Health in both schemas, EC2 and RDS events, manual requests), cycled, each copy with a fresh event id
so nothing is a duplicate. Two measurements, one core (this process, one thread):

- ``parse+decide``: ``parse_records`` then ``decide`` with the packaged policy (pure logic).
- ``handle``: the whole ``Triage.handle`` (audit rows built, serialised and logged, the runbook input
  validated, execution names derived) against in-memory clients that answer at once: everything
  triage does except waiting for AWS.

Log lines are formatted and written, as in Lambda, but to /dev/null.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import statistics
import time
import uuid
from collections import Counter
from typing import Any

from benchmarks.scenarios import EVENTS_DIR, load_event


class _ConditionalCheckFailed(Exception):
    pass


class _ExecutionAlreadyExists(Exception):
    pass


class _Exceptions:
    ConditionalCheckFailedException = _ConditionalCheckFailed
    ExecutionAlreadyExists = _ExecutionAlreadyExists


class FakeDynamoDB:
    exceptions = _Exceptions

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_request: dict[str, list[dict[str, Any]]] = {}
        self.by_target: dict[str, list[dict[str, Any]]] = {}

    def put_item(self, TableName: str, Item: dict[str, Any], **_: Any) -> dict[str, Any]:
        key = (Item["requestId"]["S"], Item["sk"]["S"])
        if key in self.items:
            raise _ConditionalCheckFailed()
        self.items[key] = Item
        self.by_request.setdefault(key[0], []).append(Item)
        self.by_target.setdefault(Item["targetKey"]["S"], []).append(Item)
        return {}

    def query(self, **query: Any) -> dict[str, Any]:
        """The two queries the audit trail's chain makes: a remediation's rows, a target's newest."""
        (value,) = query["ExpressionAttributeValues"].values()
        if query.get("IndexName") == "byTarget":
            rows = sorted(self.by_target.get(value["S"], []), key=lambda i: i["at"]["S"], reverse=True)
            return {"Items": rows[: query.get("Limit", len(rows))]}
        return {"Items": list(self.by_request.get(value["S"], []))}


class FakeStepFunctions:
    exceptions = _Exceptions

    def start_execution(self, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        return {"executionArn": stateMachineArn.replace(":stateMachine:", ":execution:") + f":{name}"}


class FakeClients:
    # A request's proof of its sender is checked at STS: here, a loopback port nothing listens on
    # (a proof that got that far would be refused, never sent off the machine).
    sts_endpoint = "http://127.0.0.1:9"

    def __init__(self) -> None:
        self.dynamodb = FakeDynamoDB()
        self.stepfunctions = FakeStepFunctions()


def stream(size: int) -> list[dict[str, Any]]:
    samples = [load_event(p.stem) for p in sorted(EVENTS_DIR.glob("*.json"))]
    events = []
    for i in range(size):
        event = copy.deepcopy(samples[i % len(samples)])
        if "id" in event:
            event["id"] = str(uuid.uuid4())
        for record in event.get("Records", []):
            if "Sns" in record:
                record["Sns"]["MessageId"] = str(uuid.uuid4())
        events.append(event)
    return events


def _percentiles(ns: list[int]) -> dict[str, float]:
    ordered = sorted(ns)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "p50Us": round(q[49] / 1000, 1),
        "p99Us": round(q[98] / 1000, 1),
        "maxUs": round(ordered[-1] / 1000, 1),
    }


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    from selfheal.config import Settings
    from selfheal.policy import decide, load_policy
    from selfheal.signals import Unrecognised, parse_records
    from selfheal.triage import Triage

    size = 2_000 if quick else 20_000
    events = stream(size)
    policy = load_policy()
    settings = Settings.from_env(
        {
            "AUDIT_TABLE": "audit",
            **{
                f"STATE_MACHINE_{name.upper().replace('-', '_')}": (
                    f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
                )
                for name in _runbooks()
            },
        }
    )
    triage = Triage(settings, FakeClients(), policy)  # type: ignore[arg-type]
    results: dict[str, Any] = {"events": size, "samples": len(list(EVENTS_DIR.glob("*.json")))}

    def parse_and_decide(event: dict[str, Any]) -> Any:
        return [decide(policy, s) for s in parse_records(event) if not isinstance(s, Unrecognised)]

    outcomes: Counter[str] = Counter()

    def handle(event: dict[str, Any]) -> Any:
        for outcome in triage.handle(event):
            outcomes[outcome.decision] += 1

    for label, step in (("parseDecide", parse_and_decide), ("handle", handle)):
        for event in events[:200]:  # warm-up: caches, lazily built validators
            step(copy.deepcopy(event))
        outcomes.clear()
        timings: list[int] = []
        gc.collect()
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            started, cpu_started = time.perf_counter_ns(), time.process_time_ns()
            for event in events:
                t = time.perf_counter_ns()
                step(event)
                timings.append(time.perf_counter_ns() - t)
            elapsed = time.perf_counter_ns() - started
            cpu = time.process_time_ns() - cpu_started
        results[label] = {
            "perSecond": round(size / (elapsed / 1e9)),
            # per second of this process's CPU time: "per core", whatever else the machine is running
            "perCpuSecond": round(size / (cpu / 1e9)),
            **_percentiles(timings),
        }
        if label == "handle":
            results[label]["outcomes"] = dict(outcomes)
    return results


def _runbooks() -> list[str]:
    from selfheal.runbooks import RUNBOOKS

    return sorted(RUNBOOKS)
