"""Per runbook, on the local cloud: AWS calls vs the minimum, transitions, invocations, audit writes,
cost per 1,000 remediations, and time to heal.

The fault is reported the way AWS reports it (an event on the default bus); everything after that is
the deployed stack's own doing. The benchmark waits by looking at the Step Functions backend in this
process, so its own waiting makes no AWS requests and every recorded request is the system's.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.cost import Invocation, Usage, billed_ms, cost_per_1000, dynamodb_units
from benchmarks.scenarios import ROOT, SCENARIOS, Scenario
from localcloud import compat

TEMPLATE = ROOT / "template.yaml"
NOT_CALLS = {"lambda:Invoke"}  # reported as invocations
# enforce: the benchmark measures real repairs. The budget is raised so repeated runs are not skipped.
PARAMETERS = {
    "Mode": "enforce",
    "BudgetPerHour": "1000",
    "MaxFailedRunsPerHour": "1000",
    "MaxConcurrentActions": "50",
}


@dataclass(frozen=True)
class InvocationRecord:
    function: str
    memory_mb: int
    start: float
    end: float


class InvocationLog(compat.InvocationTap):
    """Every invocation the local cloud runs in this process: its function and its time."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[InvocationRecord] = []
        self._lock = threading.Lock()

    def around(
        self, call: Callable[..., Any], backend: Any, function_name: str, qualifier: str | None, body: Any
    ) -> Any:
        fn = backend.get_function(function_name, qualifier)
        start = time.time()
        try:
            return call(backend, function_name, qualifier, body)
        finally:
            record = InvocationRecord(fn.function_name, int(fn.memory_size), start, time.time())
            with self._lock:
                self.records.append(record)

    def take(self) -> list[InvocationRecord]:
        with self._lock:
            records, self.records = self.records, []
        return records


def _sfn_backend(cloud: Any) -> Any:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.responses import get_backend

    return get_backend(DEFAULT_ACCOUNT_ID, cloud.cloud.region)


def _executions(cloud: Any) -> dict[str, Any]:
    return {e.execution_arn: e for sm in _sfn_backend(cloud).state_machines for e in sm.executions}


def _wait_for_new_executions(cloud: Any, before: set[str], timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {arn: e for arn, e in _executions(cloud).items() if arn not in before}
        if new and all(e.status != "RUNNING" for e in new.values()):
            return sorted(new)
        time.sleep(0.02)
    raise TimeoutError(f"no finished execution within {timeout}s")


def _index_keys(cloud: Any) -> dict[str, list[frozenset[str]]]:
    """Physical table name -> the key attributes of each of its GSIs, from the deployed template."""
    from localcloud.deploy import load_template

    resources = load_template(TEMPLATE)["Resources"]
    indexes = {}
    for logical, resource in resources.items():
        if resource.get("Type") == "AWS::DynamoDB::Table":
            gsis = resource.get("Properties", {}).get("GlobalSecondaryIndexes", [])
            keys = [frozenset(k["AttributeName"] for k in g["KeySchema"]) for g in gsis]
            indexes[cloud.stack.physical_ids[logical]] = keys
    return indexes


def _name(request: Any) -> str:
    return f"{request.service}:{request.operation}"


def _is_injection(request: Any, event: dict[str, Any]) -> bool:
    if _name(request) != "events:PutEvents":
        return False
    entries = request.parameters.get("Entries") or []
    return any(e.get("Source") == event["source"] for e in entries)


def _audit_phase(request: Any) -> str | None:
    if _name(request) != "dynamodb:PutItem":
        return None
    return (request.parameters.get("Item", {}).get("phase") or {}).get("S")


def run_once(
    cloud: Any, scenario: Scenario, invocations: InvocationLog, index_keys: dict[str, Any]
) -> dict[str, Any]:
    from localcloud import ops

    ctx = scenario.setup(cloud)
    event = scenario.event(ctx)
    before = set(_executions(cloud))
    invocations.take()
    cloud.reset_recording()
    ops.put_event(cloud.client("events"), event)
    arns = _wait_for_new_executions(cloud, before)
    recorded = cloud.recorded_requests()
    runs = invocations.take()

    injection = next(r for r in recorded if _is_injection(r, event))
    calls = [r for r in recorded if r is not injection and _name(r) not in NOT_CALLS]
    sfn = cloud.client("stepfunctions")
    histories = [ops.execution_history(sfn, arn) for arn in arns]
    statuses = [sfn.describe_execution(executionArn=arn)["status"] for arn in arns]
    entered = [e for h in histories for e in h if e["type"].endswith("StateEntered")]
    verify_entries = sum(
        1 for e in entered if e.get("stateEnteredEventDetails", {}).get("name") == scenario.verify_state
    )
    counted = Counter(_name(r) for r in calls)
    minimum = {op: need.count for op, need in scenario.minimum.items()}
    polls = max(0, verify_entries - scenario.verify_entries_in_minimum)
    allowed = Counter(minimum)
    for op in (scenario.verify_call, *scenario.poll_calls):
        allowed[op] += polls
    excess = {op: n - allowed.get(op, 0) for op, n in counted.items() if n > allowed.get(op, 0)}

    t0 = injection.time
    first_mutation = next((r.time for r in calls if _name(r) in scenario.mutating), None)
    verified = next((r.time for r in calls if _audit_phase(r) == "verified"), None)
    done = max(r.time for r in recorded)

    def aws_calls_during(run: InvocationRecord) -> int:
        return sum(1 for r in calls if run.start <= r.time <= run.end)

    usage = Usage(
        transitions=len(entered),
        invocations=[
            Invocation(r.function, r.memory_mb, billed_ms((r.end - r.start) * 1000, aws_calls_during(r)))
            for r in runs
        ],
        sns_publishes=counted["sns:Publish"],
        eventbridge_custom_events=counted["events:PutEvents"],
        xray_traces=1,  # Tracing Active: one trace per remediation (the header flows triage -> SFN -> Lambda)
    )
    usage.dynamodb_wru, usage.dynamodb_rru = dynamodb_units(
        [(r.operation, r.parameters) for r in calls if r.service == "dynamodb"], index_keys
    )
    # What the same writes would cost without the table's GSIs (each ALL-projection index repeats them).
    wru_without_indexes, _ = dynamodb_units(
        [(r.operation, r.parameters) for r in calls if r.service == "dynamodb"], {}
    )
    functions = Counter(r.function.split("-")[-2] if r.function.count("-") >= 2 else r.function for r in runs)
    return {
        "healed": scenario.healed(cloud, ctx),
        "statuses": statuses,
        "calls": dict(sorted(counted.items())),
        "callsTotal": sum(counted.values()),
        "minimumTotal": sum(minimum.values()),
        "verifyPolls": polls,
        "excess": excess,
        "transitions": len(entered),
        "lambdaInvocations": len(runs),
        "lambdaByFunction": dict(functions),
        "lambdaLocalMs": round(sum((r.end - r.start) * 1000 for r in runs), 1),
        "lambdaBilledMs": sum(i.billed_ms for i in usage.invocations),
        "auditWrites": sum(1 for r in calls if _audit_phase(r) is not None),
        "dynamodbWru": usage.dynamodb_wru,
        "dynamodbRru": usage.dynamodb_rru,
        "dynamodbWruWithoutIndexes": wru_without_indexes,
        "costPer1000Usd": cost_per_1000(usage),
        "timeToFirstMutationMs": round((first_mutation - t0) * 1000, 1) if first_mutation else None,
        "timeToVerifiedMs": round((verified - t0) * 1000, 1) if verified else None,
        "timeToDoneMs": round((done - t0) * 1000, 1),
    }


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def run(quick: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every runbook of the registry that has a scenario; a runbook without one is reported, not skipped."""
    from localcloud.harness import start_deployed_cloud
    from selfheal.runbooks import RUNBOOKS

    repeats = 2 if quick else 5
    invocations = InvocationLog()
    invocations.install()
    started = time.monotonic()
    cloud = start_deployed_cloud(TEMPLATE, PARAMETERS, stack_name="selfheal-bench")
    log(f"  local cloud up, stack deployed in {time.monotonic() - started:.1f}s")
    results: dict[str, Any] = {"missingScenarios": sorted(set(RUNBOOKS) - set(SCENARIOS)), "runbooks": {}}
    # The handlers' own logs (one JSON line per audit row) would drown the table: they go nowhere.
    # One sink for the whole run: a logger set up during one scenario keeps writing to it later.
    sink = open(os.devnull, "w")  # noqa: SIM115 (closed in finally, after the cloud has stopped)
    try:
        index_keys = _index_keys(cloud)
        for name in sorted(RUNBOOKS):
            scenario = SCENARIOS.get(name)
            if scenario is None:
                log(f"  {name}: no scenario in benchmarks/scenarios.py")
                continue
            with contextlib.redirect_stdout(sink):
                runs = [run_once(cloud, scenario, invocations, index_keys) for _ in range(repeats + 1)][1:]
            first = runs[0]
            results["runbooks"][name] = {
                "fault": scenario.fault,
                "repeats": repeats,
                "allHealed": all(r["healed"] for r in runs),
                "callsVary": len({str(r["calls"]) for r in runs}) > 1,
                **{k: v for k, v in first.items() if not k.startswith("time")},
                "timeToFirstMutationMs": _median([r["timeToFirstMutationMs"] for r in runs]),
                "timeToVerifiedMs": _median([r["timeToVerifiedMs"] for r in runs]),
                "timeToDoneMs": _median([r["timeToDoneMs"] for r in runs]),
                "minimum": {op: {"count": n.count, "why": n.why} for op, n in scenario.minimum.items()},
                "waits": [w.__dict__ for w in scenario.waits],
            }
            log(f"  {name}: {repeats} runs (+1 warm-up) healed={results['runbooks'][name]['allHealed']}")
    finally:
        cloud.cloud.stop()
        invocations.uninstall()
        sink.close()
    return results
