"""`make demo`, the README's main command, heals every fault it injects (a process of its own: the
demo starts its own local cloud, and moto's state is per process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.long


def test_the_demo_heals_every_fault_it_injects():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    done = subprocess.run(
        [sys.executable, "-m", "selfheal_cli", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    healed = re.search(r"(\d+)/(\d+) faults healed", done.stdout)
    assert done.returncode == 0 and healed, done.stdout[-3000:] + done.stderr[-3000:]
    assert healed[1] == healed[2] and int(healed[2]) >= 6, healed[0]
    # A demo people read: no raw metric lines, no interpreter logs, nothing wider than a terminal.
    lines = done.stdout.splitlines()
    assert not [line for line in lines if line.startswith('{"_aws"') or "Exception=" in line]
    assert max(len(line) for line in lines) <= 160
    said = [m[1] for m in (re.match(r"\[\s*[\d.]+s\] (\S+)", line) for line in lines) if m]
    assert said.count("verified") == said.count("HEALED") >= 6, "one verified per run"
