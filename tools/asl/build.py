"""Write statemachines/<runbook>.asl.json from the builder (``--check``: fail when a file differs).

python -m tools.asl.build            # regenerate (make asl)
python -m tools.asl.build --check    # what make validate runs: exit 1 on any difference
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

from tools.asl.frame import build
from tools.asl.runbooks import WORKFLOWS

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "statemachines"


def render(definition: dict[str, Any]) -> str:
    """Deterministic text: the same builder always writes the same bytes."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def outputs(out: Path = OUT) -> dict[Path, str]:
    return {out / f"{w.runbook}.asl.json": render(build(w)) for w in WORKFLOWS}


def _diff(path: Path, current: str, wanted: str) -> str:
    lines = difflib.unified_diff(
        current.splitlines(),
        wanted.splitlines(),
        f"{path.name} (checked in)",
        f"{path.name} (builder)",
        lineterm="",
    )
    return "\n".join(list(lines)[:40])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    parser.add_argument("--out", type=Path, default=OUT, help="the directory of the .asl.json files")
    args = parser.parse_args(argv)
    wanted = outputs(args.out)
    problems = [
        f"{p.name}: no workflow in tools/asl/runbooks builds it"
        for p in args.out.glob("*.asl.json")
        if p not in wanted
    ]
    for path, text in wanted.items():
        current = path.read_text() if path.is_file() else ""
        if current == text:
            continue
        if args.check:
            problems.append(f"{path.name} differs from the builder's output:\n{_diff(path, current, text)}")
        else:
            path.write_text(text)
            print(f"wrote {path.name}")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("statemachines/*.asl.json are generated: change tools/asl, then `make asl`", file=sys.stderr)
        return 1
    if args.check:
        print(f"asl: the {len(wanted)} state machines are the builder's output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
