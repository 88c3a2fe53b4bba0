"""``python -m benchmarks [--quick] [--only cold,triage,runbooks]``: run, print markdown tables, write JSON.

Results go to benchmarks/results/<UTC time>.json and benchmarks/results/latest.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmarks import cold_start, prices, runbooks, triage_throughput
from benchmarks.scenarios import ROOT, SCENARIOS

SECTIONS = {"cold": cold_start.run, "triage": triage_throughput.run, "runbooks": runbooks.run}
RESULTS = ROOT / "benchmarks" / "results"
# The targets (#7). Reported, never asserted.
TARGET_FLOOR_RATIO = 1.25
TARGET_TRIAGE_PER_SECOND = 2_000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    cpu = ""
    with open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    with open("/proc/meminfo") as info:
        mem_kb = int(next(line.split()[1] for line in info if line.startswith("MemTotal")))

    def ver(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "-"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memoryGiB": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadAverageAtStart": [round(x, 2) for x in os.getloadavg()],
        "versions": {p: ver(p) for p in ("boto3", "botocore", "aws-lambda-powertools", "pydantic", "moto")},
    }


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    m = results["machine"]
    out.append(
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memoryGiB']} GiB, Python {m['python']},"
        f" load average at start {m['loadAverageAtStart'][0]}; {'quick' if results['quick'] else 'full'} run"
        f" {results['startedAt']}"
    )
    cold = results.get("cold")
    if cold:
        rows = []
        for name, s in cold["subjects"].items():
            init = s["initMs"]
            first = s.get("firstUseMs")
            rows.append(
                [
                    name,
                    init["median"],
                    f"{init['min']}-{init['max']} (sd {init['stdev']})",
                    s["initCpuMs"]["median"],
                    s["peakRssMb"],
                    f"{s['ratioToFloor']} / {s['cpuRatioToFloor']}" if "ratioToFloor" in s else "-",
                    f"{s['ratioToPeer']} / {s['cpuRatioToPeer']}" if "ratioToPeer" in s else "-",
                    f"{first['median']} ({s['peakRssAfterFirstUseMb']} MB)" if first else "-",
                    s.get("ratioToFloorWithFirstUse", "-"),
                ]
            )
        out += [
            "",
            f"### Cold start (init phase: fresh process, import the handler; median of {cold['rounds']})",
            "",
            _table(
                [
                    "subject",
                    "init ms (median)",
                    "min-max",
                    "init CPU ms",
                    "peak RSS MB",
                    "x floor (wall / CPU)",
                    "x peer (wall / CPU)",
                    "first use ms (peak RSS)",
                    "init + first use x floor",
                ],
                rows,
            ),
        ]
    triage = results.get("triage")
    if triage:
        rows = [
            [label, t["perCpuSecond"], t["perSecond"], t["p50Us"], t["p99Us"]]
            for label, t in (("parse + decide", triage["parseDecide"]), ("Triage.handle", triage["handle"]))
        ]
        out += [
            "",
            f"### Triage throughput (one core, in-process, {triage['events']} events from"
            f" {triage['samples']} samples; handle outcomes {triage['handle'].get('outcomes')})",
            "",
            _table(["path", "signals per CPU-second", "signals/s (wall)", "p50 us", "p99 us"], rows),
        ]
    rb = results.get("runbooks")
    if rb:
        rows = []
        for name, r in rb["runbooks"].items():
            cost = r["costPer1000Usd"]
            rows.append(
                [
                    name,
                    f"{r['callsTotal']} / {r['minimumTotal']}"
                    + (f" (+{r['verifyPolls']} polls)" if r["verifyPolls"] else ""),
                    ", ".join(f"{k} +{v}" for k, v in r["excess"].items()) or "none",
                    r["transitions"],
                    r["lambdaInvocations"],
                    r["auditWrites"],
                    f"{r['dynamodbWru']:g}",
                    f"{cost['total']:.3f}",
                    r["timeToFirstMutationMs"],
                    r["timeToVerifiedMs"],
                    "yes" if r["allHealed"] else "NO",
                ]
            )
        out += [
            "",
            f"### Runbooks on the local cloud (enforce mode, alarm event -> healed; median of"
            f" {next(iter(rb['runbooks'].values()))['repeats'] if rb['runbooks'] else 0} runs)",
            "",
            _table(
                [
                    "runbook",
                    "AWS calls / minimum",
                    "over minimum",
                    "transitions",
                    "Lambda inv.",
                    "audit writes",
                    "DynamoDB WRU",
                    "USD / 1,000",
                    "to 1st change ms",
                    "to verified ms",
                    "healed",
                ],
                rows,
            ),
        ]
        for name, r in rb["runbooks"].items():
            cost = r["costPer1000Usd"]
            items = ", ".join(f"{k} {v:.4f}" for k, v in cost.items() if k != "total" and v)
            out.append(f"\n{name}: cost per 1,000 = {items} (USD, prices {prices.AS_OF}, {prices.REGION})")
            out.append(f"{name}: calls {r['calls']}")
        if rb.get("missingScenarios"):
            out.append(f"\nRunbooks without a scenario: {', '.join(rb['missingScenarios'])}")
    return "\n".join(out)


def targets(results: dict[str, Any]) -> list[str]:
    lines = []
    cold = results.get("cold")
    if cold:
        for name, s in cold["subjects"].items():
            if s["kind"] != "function":
                continue
            floor_ok = s.get("ratioToFloor", 99) <= TARGET_FLOOR_RATIO
            peer_ok = s.get("ratioToPeer", 99) < 1
            lines.append(
                f"cold start {name}: x{s.get('ratioToFloor')} floor (target <= {TARGET_FLOOR_RATIO}:"
                f" {'met' if floor_ok else 'NOT met'}), x{s.get('ratioToPeer')} peer"
                f" (target < 1: {'met' if peer_ok else 'NOT met'})"
            )
    triage = results.get("triage")
    if triage:
        rate = triage["handle"]["perCpuSecond"]
        lines.append(
            f"triage: {rate}/CPU-s full handle ({triage['handle']['perSecond']}/s wall),"
            f" {triage['parseDecide']['perCpuSecond']}/CPU-s parse+decide"
            f" (target >= {TARGET_TRIAGE_PER_SECOND}/s/core:"
            f" {'met' if rate >= TARGET_TRIAGE_PER_SECOND else 'NOT met'})"
        )
    rb = results.get("runbooks")
    if rb:
        for name, r in rb["runbooks"].items():
            ok = not r["excess"]
            lines.append(
                f"runbook {name}: {r['callsTotal']} calls,"
                f" minimum {r['minimumTotal']} + {r['verifyPolls']} polls"
                f" (target: {'met' if ok else 'NOT met: ' + str(r['excess'])})"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events (for iterating)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON results")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "startedAt": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": machine(),
        "prices": {
            "asOf": prices.AS_OF,
            "region": prices.REGION,
            "assumedAwsCallMs": prices.ASSUMED_AWS_CALL_MS,
            "items": {k: {**p.__dict__, "unitPrice": p.unit_price} for k, p in prices.ALL.items()},
        },
        "scenarios": sorted(SCENARIOS),
    }
    for section in chosen:
        t = time.monotonic()
        log(f"== {section}")
        results[section] = SECTIONS[section](quick=args.quick, log=log)
        log(f"   {section} took {time.monotonic() - t:.1f}s")
    results["targets"] = targets(results)
    args.out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, default=str)
    path = args.out / f"{started.strftime('%Y%m%dT%H%M%SZ')}{'-quick' if args.quick else ''}.json"
    path.write_text(text)
    (args.out / "latest.json").write_text(text)
    print(render(results))
    print("\nTargets (issue #7):")
    print("\n".join(f"- {line}" for line in results["targets"]))
    print(f"\nJSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
