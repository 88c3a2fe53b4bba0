"""`make demo`: start the local cloud, build every runbook's world, break them, watch selfheal heal them.

The worlds and faults are localcloud.worlds, the ones `selfheal local serve --world` and `selfheal
local break` give a user by hand. Each fault is injected the way AWS would see it (an alarm goes to
ALARM, AWS Health puts an event on the bus), the event reaches the stack's rules on its own, and the
demo only watches the audit trail and the resources. Exit status 0 only if every fault healed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from localcloud import ops, worlds
from localcloud.cloud import LocalCloud
from localcloud.compat import lambda_runtime_environment, set_lambda_runtime_environment
from localcloud.harness import DeployedCloud, start_deployed_cloud
from localcloud.worlds.breaking import break_and_watch
from selfheal_cli.tables import format_audit_table

ROOT = Path(__file__).resolve().parents[1]
# The demo's faults in order; the DNS fault is followed by its recovery (traffic goes back to blue).
SCRIPT: tuple[tuple[str, ...], ...] = (
    ("api-1-status-check-failed",),
    ("orders-dead-lettered",),
    ("asg-member-status-check-failed",),
    ("batch-1-retirement-scheduled",),
    ("orders-db-failed",),
    ("api-blue-unhealthy", "api-blue-recovers"),
)


class Clock:
    def __init__(self) -> None:
        self.start = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.start


WIDTH = 160  # a demo is read in a terminal: no line wider


def say(clock: Clock, what: str, text: str) -> None:
    _end_progress()
    line = f"[{clock():6.2f}s] {what:<10} {text}"
    print(line if len(line) <= WIDTH else line[: WIDTH - 3] + "...", flush=True)


_progress_shown = False


def _progress(clock: Clock, text: str) -> None:
    """A line that says what the demo waits for, on a terminal only, replaced by the next one."""
    global _progress_shown
    if sys.stdout.isatty():
        print(f"\r[{clock():6.2f}s] {'...':<10} {text}"[: WIDTH + 1], end="", flush=True)
        _progress_shown = True


def _end_progress() -> None:
    global _progress_shown
    if _progress_shown:
        print("\r\033[K", end="", flush=True)
        _progress_shown = False


def _describe_row(row: dict[str, Any]) -> list[tuple[str, str]]:
    lines = _describe(row)
    return lines if isinstance(lines, list) else [lines]


def _describe(row: dict[str, Any]) -> tuple[str, str] | list[tuple[str, str]]:
    phase = row.get("phase", "?")
    runbook, target = row.get("runbook", "-"), row.get("targetKey", "-")
    if phase == "received":
        actor = row.get("actor") or {}
        return [
            ("detected", str(row.get("reason", ""))),
            ("decided", f"run {runbook} on {target} (policy rule {actor.get('rule', '-')})"),
        ]
    if phase == "started":
        return "started", f"execution {row.get('requestId')}: guards passed, lease held"
    if phase in ("action", "compensated"):
        # The call once, as it is about to be made; its outcome row says only what came of it.
        verb = {"pending": "acting", "ok": "done", "error": "failed"}.get(str(row.get("outcome")), phase)
        if row.get("outcome") == "pending":
            return verb, f"{row.get('action')} {row.get('parameters')}"
        return verb, f"{row.get('action')} -> {row.get('after') or row.get('error')}"
    if phase == "would-do":
        return "would do", f"{row.get('action')} {row.get('parameters')} (dry run)"
    if phase == "verified":
        step = str(row.get("step") or "")
        if step != "Record: verified":  # a check on the way (promote-replica reads its DNS change back)
            return "checked", step.removeprefix("Record: ")
        return "verified", f"{runbook} on {target}: the change is visible in AWS"
    if phase == "succeeded":
        return "succeeded", "audited, notified (SNS), outcome event on the bus, lease released"
    return phase, str(row.get("reason") or row.get("error") or "")


def _teller(clock: Clock) -> Callable[[dict[str, Any]], None]:
    """Prints each audit row of the run as it is written."""

    def tell(row: dict[str, Any]) -> None:
        for what, text in _describe_row(row):
            say(clock, what, text)

    return tell


def _waiter(clock: Clock, fault: worlds.Fault) -> Callable[[float], None]:
    return lambda _: _progress(clock, f"waiting for the next audit row about {fault.name}")


def _aws(cloud: LocalCloud | DeployedCloud) -> worlds.Aws:
    return worlds.Aws.of(cloud)


def run(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfheal demo", description=__doc__)
    parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    args = parser.parse_args(argv)

    clock = Clock()
    print("selfheal demo: a local cloud (moto), the real template.yaml and state machines, no AWS account\n")
    # WARNING: the functions' own INFO logs would drown the story; `selfheal audit` has it all.
    # The DNS fault fails back seconds after it failed over: the demo's stack waits no cooldown and
    # no minimum hold-down. A real stack keeps CooldownSeconds (600) and FlipDnsMinHoldDownSeconds
    # (300): its failback comes after them, or by hand.
    parameters = {
        "Mode": "enforce",
        "LogLevel": "WARNING",
        "CooldownSeconds": "0",
        "FlipDnsMinHoldDownSeconds": "0",
    }
    built: list[str] = []

    def build_worlds(cloud: LocalCloud) -> dict[str, str]:
        lines, needed = worlds.build(_aws(cloud), worlds.select(["all"]))
        built.extend(lines)
        return needed

    cloud = start_deployed_cloud(args.template, parameters, before_deploy=build_worlds)
    # The functions' EMF metric lines go to stdout, as in Lambda; here they would drown the story.
    set_lambda_runtime_environment({**lambda_runtime_environment(), "POWERTOOLS_METRICS_DISABLED": "true"})
    try:
        aws = _aws(cloud)
        for line in built:
            say(clock, "built", line)
        say(clock, "ready", f"local cloud at {cloud.endpoint}, stack {cloud.stack.name} deployed")
        results = []
        for number, names in enumerate(SCRIPT, start=1):
            print(f"\nFault {number}: {worlds.fault(names[0]).title}")
            fault_clock = Clock()
            healed = True
            for name in names:
                fault = worlds.fault(name)
                say(fault_clock, "injected" if name == names[0] else "next", fault.injected)
                verdict = break_and_watch(
                    aws,
                    fault,
                    cloud.stack.outputs,
                    on_row=_teller(fault_clock),
                    on_wait=_waiter(fault_clock, fault),
                )
                say(fault_clock, "HEALED" if verdict.healed else "NOT HEALED", verdict.evidence)
                healed = healed and verdict.healed
            results.append(healed)

        table = cloud.stack.outputs["AuditTableName"]
        print("\nAudit trail (selfheal audit):")
        print(format_audit_table(ops.scan_audit(cloud.client("dynamodb"), table)))
        print(f"\n{sum(results)}/{len(results)} faults healed in {clock():.1f}s")
        return 0 if all(results) else 1
    finally:
        cloud.cloud.stop()


def main(argv: Sequence[str] | None = None) -> int:
    return run(argv)
