"""The README's hand-run section, run exactly as written: `selfheal local serve --world all` in one
process, then every line of the second block, in one shell, in order. Only the port differs (a free
one instead of 4566, so the test never meets whatever else listens there)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent  # the venv's bin: where `selfheal` is, as the README says

pytestmark = pytest.mark.long


def hand_run_blocks() -> dict[str, str]:
    blocks = re.findall(r"<!-- hand-run: (\w+) -->\n```sh\n(.*?)```", README.read_text(), re.S)
    return dict(blocks)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_readme_names_a_serve_line_and_a_break_for_every_runbook() -> None:
    from localcloud import worlds

    blocks = hand_run_blocks()
    assert set(blocks) == {"serve", "break"}
    assert blocks["serve"].count("\n") == 1 and "--world all" in blocks["serve"]
    broken = set(re.findall(r"^selfheal local break (\S+)", blocks["break"], re.M))
    assert {worlds.fault(name).runbook for name in broken} == set(worlds.worlds())


@pytest.mark.timeout(600)
def test_the_readme_hand_run_heals_every_runbook() -> None:
    blocks, port = hand_run_blocks(), str(free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    serve_line = blocks["serve"].strip().replace("4566", port)
    server = subprocess.Popen(
        ["bash", "-c", f"exec {serve_line}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    served: list[str] = []
    try:
        assert server.stdout is not None
        deadline = time.monotonic() + 180
        for line in server.stdout:
            served.append(line)
            if line.startswith("Ctrl-C to stop") or time.monotonic() > deadline:
                break
        assert served and served[-1].startswith("Ctrl-C to stop"), "".join(served)
        # The server goes on writing (its functions' logs): read it all, or it blocks on a full pipe.
        threading.Thread(target=lambda: served.extend(server.stdout or []), daemon=True).start()
        script = "set -euo pipefail\n" + blocks["break"].replace("4566", port)
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        out = done.stdout
        assert done.returncode == 0, out[-4000:] + done.stderr[-2000:] + "".join(served)[-3000:]
        breaks = len(re.findall(r"^selfheal local break ", blocks["break"], re.M))
        assert len(re.findall(r"^healed ", out, re.M)) == breaks, out
        assert out.count("world whole again") == breaks, out
        assert "flip-dns" in out and "succeeded" in out  # the audit and the status printed
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
