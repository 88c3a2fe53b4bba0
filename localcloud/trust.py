"""``make trust``: the storm, the fault-injection table and the hostile-input properties, at full size,
and one report of what they measured: trust-report.json and trust-report.md.

Every figure comes from this run: the storm's own count (``localcloud.storm``), and what the test
modules write to ``SELFHEAL_TRUST_RESULTS`` while they run (faults.json, hostile.json). A part that
fails still reports what it measured, and the command exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The figures a self-healing system must hold at zero whatever the storm: one list, the storm's.
from localcloud.storm import ZEROES

ROOT = Path(__file__).parents[1]


def _start(argv: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], float]:
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, time.perf_counter()


def _wait(started: tuple[subprocess.Popen[bytes], float]) -> tuple[int, float]:
    process, start = started
    return process.wait(), time.perf_counter() - start


def _run(argv: list[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    return _wait(_start(argv, env, log))


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def collect(resources: int, events: int, out: Path) -> dict[str, Any]:
    """Run the three parts and write the report."""
    work = Path(tempfile.mkdtemp(prefix="selfheal-trust-"))
    env = {
        **os.environ,
        "SELFHEAL_TRUST": "1",
        "SELFHEAL_TRUST_RESULTS": str(work),
        "HYPOTHESIS_PROFILE": "trust",
    }
    python = sys.executable
    parts: dict[str, Any] = {}
    # The storm and the properties side by side (a process each: a core each), then the fault table.
    storm_argv = ["-m", "localcloud.storm", "--resources", str(resources), "--events", str(events)]
    storm = _start([python, *storm_argv, "--json", str(work / "storm.json")], env, work / "storm.log")
    hostile = _start(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit/test_hostile_input.py"],
        env,
        work / "hostile.log",
    )
    code, seconds = _wait(storm)
    parts["storm"] = {"exitCode": code, "seconds": round(seconds, 1), "figures": _read(work / "storm.json")}
    code, seconds = _wait(hostile)
    properties = _read(work / "hostile.json")
    parts["hostileInput"] = {"exitCode": code, "seconds": round(seconds, 1), "properties": properties}
    faults = ROOT / "tests" / "e2e" / "test_fault_injection.py"
    if faults.is_file():
        code, seconds = _run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(faults)], env, work / "faults.log"
        )
        parts["faultInjection"] = {
            "exitCode": code,
            "seconds": round(seconds, 1),
            "cases": _read(work / "faults.json"),
        }
    else:
        parts["faultInjection"] = {
            "exitCode": None,
            "missing": "tests/e2e/test_fault_injection.py is not built yet",
        }
    return write(parts, str(work), out)


def from_storm(figures_file: Path, out: Path) -> dict[str, Any]:
    """The report and verdict of a storm already run (``localcloud.storm --json``), the other parts
    not run: how a test proves that the verdict ``make trust`` exits with sees what a storm saw."""
    parts = {
        "storm": {"exitCode": None, "figures": _read(figures_file)},
        "hostileInput": {"exitCode": None, "properties": None},
        "faultInjection": {"exitCode": None, "missing": "not run: a report built from one storm's figures"},
    }
    return write(parts, str(figures_file.parent), out)


def write(parts: dict[str, Any], logs: str, out: Path) -> dict[str, Any]:
    report = {
        "generatedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "logs": logs,
        **parts,
    }
    report["verdict"] = verdict(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "trust-report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "trust-report.md").write_text(markdown(report))
    return report


def exit_code(report: dict[str, Any]) -> int:
    """What ``make trust`` exits with."""
    return 0 if report["verdict"]["holds"] else 1


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """What does not hold, in words (empty: everything measured held)."""
    problems: list[str] = []
    storm = (report.get("storm") or {}).get("figures")
    if not storm:
        problems.append("the storm produced no figures (see its log)")
    else:
        weakened = storm.get("weakened")
        if weakened:
            # A storm run to prove the report (localcloud.weaken) is no evidence about the product.
            problems.append(f"storm: run with a safety mechanism removed on purpose ({weakened['removes']})")
        problems += [f"storm: {name} = {storm[name]} (must be 0)" for name in ZEROES if storm.get(name)]
        problems += [f"storm: {rb} acted {n} times, over its budget" for rb, n in storm["overBudget"].items()]
        if "mutationsAfterKillSwitch" not in storm:
            problems.append("storm: no kill-switch figure (a storm from before the kill switch was measured)")
    # A known gap is an expected failure in the test module, so its exit code is 0: name it here.
    for case in (report.get("faultInjection") or {}).get("cases") or []:
        if "half-way" in str(case.get("targetState")):
            problems.append(
                f"fault injection: {case['runbook']} {case['call']} {case['fault']} left the target"
                f" {case['targetState']}"
            )
    for part in ("storm", "hostileInput", "faultInjection"):
        code = (report.get(part) or {}).get("exitCode")
        if code not in (0, None):
            problems.append(f"{part}: exit code {code}")
    return {"holds": not problems, "problems": problems}


def _undo_cell(undo: dict[str, Any] | None) -> str:
    if not undo:
        return "-"
    return f"{undo['status']} ({undo['error']})" if undo.get("error") else str(undo["status"])


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| figure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# selfheal trust report",
        "",
        f"Generated {report['generatedAt']} on {report['machine']['cpus']} CPUs, Python"
        f" {report['machine']['python']}, by `make trust`. Every figure below was measured in this run.",
        "",
        f"**Verdict: {'holds' if report['verdict']['holds'] else 'does NOT hold'}.**",
        *(f"- {p}" for p in report["verdict"]["problems"]),
        "",
        "## Storm",
        "",
        "The real pipeline: EventBridge, the alarm topic and alarm actions -> triage -> state machines.",
        "",
    ]
    storm = (report.get("storm") or {}).get("figures")
    if storm and storm.get("weakened"):
        w = storm["weakened"]
        lines += [
            f"**This storm ran WEAKENED (`--weaken {w['name']}`): {w['removes']} was removed on purpose"
            f" (bypassed {w['hits']} times), to prove that `{w['showsIn']}` sees it. Not evidence about"
            " selfheal.**",
            "",
        ]
    if storm:
        switch = storm.get("killSwitch") or {}
        lines += _table(
            [
                ("events in", storm["eventsIn"]),
                ("... by kind", json.dumps(storm["eventsByKind"])),
                ("... by envelope", json.dumps(storm["eventsByEnvelope"])),
                ("fenced resources", f"{storm['fencedResources']} {json.dumps(storm['resourcesByRunbook'])}"),
                ("triage decisions", json.dumps(storm["decisions"])),
                ("skipped, by reason", json.dumps(storm["skippedByReason"])),
                ("executions", f"{storm['executions']} {json.dumps(storm['executionStatus'])}"),
                ("mutating AWS calls", storm["mutatingCalls"]),
                ("remediations that acted, per runbook", json.dumps(storm["remediationsThatActed"])),
                ("budget per runbook per hour", storm["budgetPerHour"]),
                ("breaker openings", storm["breakerOpenings"]),
                ("escalations sent", storm["escalationsSent"]),
                ("... for guard stops (once an hour each)", json.dumps(storm["guardStopEscalations"])),
                (
                    "event -> decision, p50 / max (s)",
                    f"{storm['eventToDecisionSeconds']['p50']} / {storm['eventToDecisionSeconds']['max']}",
                ),
                ("**unaccounted** (events with no row saying what became of them)", storm["unaccounted"]),
                ("**unlogged** (mutating calls without intent and outcome rows)", storm["unlogged"]),
                ("**double actions** (targets acted on twice for one incident)", storm["doubleActions"]),
                (
                    "**concurrent runs** (targets two runs were past the lease on at once)",
                    storm.get("concurrentRuns", "not measured"),
                ),
                (
                    "kill switch set to off after (s), and why then",
                    f"{switch.get('flippedAfterSeconds')}: {switch.get('trigger')}",
                ),
                ("... runs past their guards and not finished at that moment", switch.get("runsActing")),
                (
                    "... mutating calls in flight (their mode re-read began before the flip)",
                    storm.get("mutationsInFlightAtKillSwitch", "not measured"),
                ),
                (
                    "**mutations after the kill switch** (calls whose re-read began after the flip)",
                    storm.get("mutationsAfterKillSwitch", "not measured"),
                ),
                ("audit chain problems", storm["chainProblems"]),
                ("events per second through the whole pipeline", storm["eventsPerSecond"]),
                ("storm wall time (s)", storm["seconds"]),
            ]
        )
        lines += [
            "",
            "The kill switch: near the end of the acting (as a run passes its guards, once four fifths"
            " of the runs the budgets allow have passed theirs) the mode parameter is set to `off`."
            " The mode is read again right before every mutating call (DESIGN.md, Safety), so a call"
            " the local cloud receives after the flip may only be one whose intent step (the re-read)"
            " began before it: *in flight*. Any other is a mutation after the kill switch. Concurrent"
            " runs come from the steps function's answers: a run is past the lease from the moment its"
            " lease step answered until it began to finish.",
        ]
    lines += ["", "## Hostile input (hypothesis)", ""]
    hostile = (report.get("hostileInput") or {}).get("properties") or {}
    lines += (
        _table([(name, f"{n} inputs") for name, n in sorted(hostile.items())])
        if hostile
        else ["(none measured)"]
    )
    lines += ["", "## Fault injection", ""]
    faults = report.get("faultInjection") or {}
    cases = faults.get("cases")
    if cases:
        lines += [
            "A run stopped from outside half-way is settled by an undo run (selfheal.undo): its status"
            " and error are in the undo column; the target is read once it ended.",
            "",
            "| runbook | call | fault | status | target | lease released | chain | escalations | undo run"
            " | s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {c['runbook']} | {c['call']} | {c['fault']} | {c['status']} | {c['targetState']} |"
            f" {c['leaseReleased']} | {c['chainOk']} | {c['escalations']} | {_undo_cell(c.get('undoRun'))} |"
            f" {c['seconds']} |"
            for c in cases
        ]
    else:
        lines += [faults.get("missing") or "(no cases measured: see the log)"]
    lines += ["", f"Logs of this run: `{report['logs']}`.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.trust", description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT)
    parser.add_argument(
        "--storm-figures",
        type=Path,
        help="build the report and verdict from this storm's figures (localcloud.storm --json) instead"
        " of running the parts: for tests of the verdict itself",
    )
    args = parser.parse_args(argv)
    if args.storm_figures:
        report = from_storm(args.storm_figures, args.out)
    else:
        report = collect(args.resources, args.events, args.out)
    print((args.out / "trust-report.md").read_text())
    return exit_code(report)


if __name__ == "__main__":
    sys.exit(main())
