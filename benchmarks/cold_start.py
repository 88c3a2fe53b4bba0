"""Cold start: a fresh process per sample that does what Lambda's init phase does.

Init = import the handler module (and everything it builds at import). Timed inside the child from
its first line to the end of the import (wall clock, and the child's CPU time: on a shared machine
the CPU time is the steadier of the two), so the interpreter's own start-up (the same for every
subject) is left out; the whole process's wall time is reported too. Peak memory is the child's
peak RSS (VmHWM). Subjects are run round-robin so a noisy neighbour hurts them all alike.

References, measured in the same run:
- floor: ``import boto3`` plus one client (dynamodb, the client every selfheal function creates first)
- peer:  Cloud Custodian's Lambda entry point, ``import c7n.handler``, from PyPI ``c7n`` in its own
  venv (benchmarks/.venv-c7n, made by ``ensure_peer_venv``).

"First use" (building the clients an invocation needs) happens on Lambda in the first invocation, not
in init: it is reported separately, per function, from FIRST_USE.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scenarios import ROOT

PEER_PACKAGE = "c7n==0.9.53"
PEER_VENV = ROOT / "benchmarks" / ".venv-c7n"
FLOOR_CLIENT = "dynamodb"

# Per function: the cached builder its first invocation calls, and the clients that invocation creates.
# A function missing here still gets its init measured.
FIRST_USE: dict[str, tuple[str, tuple[str, ...]]] = {
    "TriageFunction": ("_triage", ("dynamodb", "stepfunctions")),
    "RunbookStepsFunction": ("_steps", ("dynamodb", "ssm", "ec2", "sns", "events")),
}

# What Lambda's runtime sets; the function's own variables come from the template.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
}

_CHILD = """
import time
_t0, _c0 = time.perf_counter(), time.process_time()
import json, sys
def _hwm():
    # VmHWM, not ru_maxrss: Linux keeps the forking parent's ru_maxrss across exec.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
{body}
_t1, _c1 = time.perf_counter(), time.process_time()
_rss_init = _hwm()
{first_use}
_t2, _c2 = time.perf_counter(), time.process_time()
print(json.dumps({{"initMs": (_t1 - _t0) * 1000, "firstUseMs": (_t2 - _t1) * 1000,
  "initCpuMs": (_c1 - _c0) * 1000, "firstUseCpuMs": (_c2 - _c1) * 1000,
  "rssKb": _rss_init, "rssAfterFirstUseKb": _hwm()}}))
"""


@dataclass
class Subject:
    name: str
    kind: str  # function | floor | peer
    python: str
    body: str
    first_use: str = "pass"
    env: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, float]] = field(default_factory=list)


def _template_functions() -> dict[str, dict[str, Any]]:
    """Logical id -> {code, handler, env, memory} for every AWS::Serverless::Function in template.yaml."""
    from localcloud.deploy import load_template

    template = load_template(ROOT / "template.yaml")
    globals_fn = template.get("Globals", {}).get("Function", {})
    global_env = globals_fn.get("Environment", {}).get("Variables", {})
    parameters = template.get("Parameters", {})

    def value(key: str, raw: Any) -> str:
        if isinstance(raw, dict) and raw.get("Ref") in parameters:
            return str(parameters[raw["Ref"]].get("Default", ""))
        # Other !Ref / !GetAtt values have no value outside a stack: a plausible string stands in.
        return str(raw) if isinstance(raw, str | int) else f"bench-{key.lower()}"

    functions = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
        functions[logical] = {
            "code": ROOT / props["CodeUri"],
            "handler": props.get("Handler", globals_fn.get("Handler", "app.lambda_handler")),
            "env": {k: value(k, v) for k, v in env.items()},
            "memory": props.get("MemorySize", globals_fn.get("MemorySize", 128)),
            "architectures": props.get("Architectures", globals_fn.get("Architectures", ["x86_64"])),
        }
    return functions


def ensure_peer_venv(log: Any = print) -> Path | None:
    """benchmarks/.venv-c7n with PEER_PACKAGE, made once (stamp file); None if it cannot be made."""
    python = PEER_VENV / "bin" / "python"
    stamp = PEER_VENV / f".stamp-{PEER_PACKAGE}"
    if stamp.exists() and python.exists():
        return python
    log(f"  installing the peer {PEER_PACKAGE} into {PEER_VENV.relative_to(ROOT)} (once)")
    try:
        # The same interpreter version as the functions, so the comparison is about the code.
        subprocess.run(
            [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--clear", str(PEER_VENV)],
            check=True,
        )
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PEER_PACKAGE],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log(f"  peer not installed ({exc}): its column is left empty\n{detail[-1500:]}")
        return None
    stamp.touch()
    return python


def _subjects(peer_python: Path | None) -> list[Subject]:
    subjects = [
        Subject(
            "floor: import boto3 + 1 client",
            "floor",
            sys.executable,
            f"import boto3\nboto3.client({FLOOR_CLIENT!r})",
            env=dict(LAMBDA_ENV),
        )
    ]
    if peer_python is not None:
        subjects.append(
            Subject("peer: c7n.handler", "peer", str(peer_python), "import c7n.handler", env=dict(LAMBDA_ENV))
        )
    for logical, fn in sorted(_template_functions().items()):
        module, _, _handler = fn["handler"].rpartition(".")
        paths = [str(ROOT / "layers" / "core"), str(fn["code"])]
        builder, clients = FIRST_USE.get(logical, ("", ()))
        first_use = "pass"
        if builder:
            first_use = f"_built = _m.{builder}()\n" + "".join(f"_built.clients.{c}\n" for c in clients)
        subjects.append(
            Subject(
                logical,
                "function",
                sys.executable,
                f"sys.path[:0] = {paths!r}\nimport importlib\n_m = importlib.import_module({module!r})",
                first_use=first_use,
                env={**LAMBDA_ENV, **{k: str(v) for k, v in fn["env"].items()}},
            )
        )
    return subjects


def _sample(subject: Subject) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(subject.env)
    code = _CHILD.format(body=subject.body, first_use=subject.first_use)
    start = time.perf_counter()
    out = subprocess.run([subject.python, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = (time.perf_counter() - start) * 1000
    if out.returncode != 0:
        raise RuntimeError(f"{subject.name}: child failed:\n{out.stderr[-2000:]}")
    sample: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    sample["processMs"] = wall
    return sample


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
        "stdev": round(statistics.stdev(ordered), 1) if len(ordered) > 1 else 0.0,
    }


def run(quick: bool = False, log: Any = print) -> dict[str, Any]:
    rounds = 7 if quick else 21
    subjects = _subjects(ensure_peer_venv(log))
    for subject in subjects:  # warm-up: byte-compile, fill the page cache; not counted
        _sample(subject)
    for _ in range(rounds):
        for subject in subjects:
            subject.samples.append(_sample(subject))
    by_kind = {s.kind: s for s in subjects if s.kind != "function"}
    results: dict[str, Any] = {
        "rounds": rounds,
        "floorClient": FLOOR_CLIENT,
        "peerPackage": PEER_PACKAGE if "peer" in by_kind else None,
        "subjects": {},
    }
    for subject in subjects:
        init = _summary([s["initMs"] for s in subject.samples])
        entry: dict[str, Any] = {
            "kind": subject.kind,
            "initMs": init,
            # CPU time of the child (user + system): what a busy neighbour cannot inflate much
            "initCpuMs": _summary([s["initCpuMs"] for s in subject.samples]),
            # the whole child process, interpreter start-up and (functions) first use included
            "processMs": _summary([s["processMs"] for s in subject.samples]),
            "peakRssMb": round(statistics.median(s["rssKb"] for s in subject.samples) / 1024, 1),
        }
        if subject.kind == "function":
            entry["firstUseMs"] = _summary([s["firstUseMs"] for s in subject.samples])
            entry["peakRssAfterFirstUseMb"] = round(
                statistics.median(s["rssAfterFirstUseKb"] for s in subject.samples) / 1024, 1
            )
            for ref in ("floor", "peer"):
                if ref in by_kind:
                    other = statistics.median(s["initMs"] for s in by_kind[ref].samples)
                    entry[f"ratioTo{ref.capitalize()}"] = round(init["median"] / other, 2)
                    other_cpu = statistics.median(s["initCpuMs"] for s in by_kind[ref].samples)
                    entry[f"cpuRatioTo{ref.capitalize()}"] = round(
                        entry["initCpuMs"]["median"] / other_cpu, 2
                    )
            if "floor" in by_kind:
                # The whole first invocation's set-up (init + first use) against the floor: the floor
                # creates its client, selfheal's functions defer theirs to the first invocation.
                floor = statistics.median(s["initMs"] for s in by_kind["floor"].samples)
                total = statistics.median(s["initMs"] + s["firstUseMs"] for s in subject.samples)
                entry["initPlusFirstUseMs"] = round(total, 1)
                entry["ratioToFloorWithFirstUse"] = round(total / floor, 2)
        results["subjects"][subject.name] = entry
    return results
