"""The README's local-cloud snippets, run exactly as written, so they cannot rot.

- The hand-run section: `selfheal local serve --world all` in one process, then every line of the
  second block, in one shell, in order.
- Every other ``<!-- local-cloud: NAME -->`` block: one shell, a line ending in ``&`` started in the
  background (and waited for until its stack answers), every other line's exit status as its
  ``# exit N`` comment says (0 without one).

Only the port differs (a free one instead of 4566, so a test never meets whatever else listens there).
"""

from __future__ import annotations

import contextlib
import os
import random
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


def local_cloud_blocks() -> dict[str, str]:
    return dict(re.findall(r"<!-- local-cloud: ([\w-]+) -->\n```sh\n(.*?)```", README.read_text(), re.S))


def free_port() -> int:
    """A free port below Linux's ephemeral range (32768-60999). A port the kernel hands out for
    bind(0) can be handed out again, between this probe and `local serve`'s own bind, to another
    worker's cloud: then the snippet talks to that cloud (seen once: a deploy into it failed with
    ParameterAlreadyExists, and the snippet waited on its runs)."""
    for port in random.sample(range(20000, 32000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def test_the_readme_names_a_serve_line_and_a_break_for_every_runbook() -> None:
    from localcloud import worlds

    blocks = hand_run_blocks()
    assert set(blocks) == {"serve", "break"}
    assert blocks["serve"].count("\n") == 1 and "--world all" in blocks["serve"]
    broken = set(re.findall(r"^selfheal local break (\S+)", blocks["break"], re.M))
    assert {worlds.fault(name).runbook for name in broken} == set(worlds.worlds())


@pytest.mark.timeout(600)
def stop_group(group: int) -> None:
    """Ctrl-C to every process of the group, as a user stops `local serve`; a kill after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.killpg(group, 0)  # ProcessLookupError once none is left
            time.sleep(0.2)
        os.killpg(group, signal.SIGKILL)


def user_environment() -> dict[str, str]:
    """A user's shell: no AWS settings of the test process, the venv's bin on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def as_checked_script(block: str, port: str, log: Path) -> str:
    """The block as one bash script that stops at the first line whose exit status is not the one
    its ``# exit N`` comment says; a background line is waited for until its stack answers."""
    script = []
    for number, line in enumerate(block.replace("4566", port).splitlines(), start=1):
        command = line.split("#", 1)[0].strip()
        if not command:
            continue
        if command.endswith("&"):
            script.append(f"{command.removesuffix('&').strip()} >{log} 2>&1 &")
            script.append(
                f"for i in $(seq 180); do selfheal audit --endpoint http://127.0.0.1:{port} >/dev/null 2>&1"
                " && break; sleep 1; done"
            )
            continue
        expected = re.search(r"#\s*exit (\d+)", line)
        want = expected[1] if expected else "0"
        script.append(
            f'{command}; rc=$?; [ "$rc" = {want} ] || {{ echo "line {number} exited $rc, not {want}: {command}"; exit 1; }}'
        )
    return "\n".join(script) + "\n"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(local_cloud_blocks()))
def test_a_readme_local_cloud_snippet_runs_as_written(name: str, tmp_path: Path) -> None:
    log = tmp_path / "background.log"
    script = as_checked_script(local_cloud_blocks()[name], str(free_port()), log)
    shell = subprocess.Popen(
        ["bash", "-c", f"cd {ROOT}\n{script}"],
        cwd=tmp_path,
        env=user_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = shell.communicate(timeout=280)
    finally:
        stop_group(shell.pid)  # the background server, if the snippet started one
    background = log.read_text() if log.exists() else ""
    assert shell.returncode == 0, out[-4000:] + background[-2000:]


def test_the_readme_hand_run_heals_every_runbook() -> None:
    blocks, port = hand_run_blocks(), str(free_port())
    env = user_environment()
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
        stop_group(server.pid)
        server.wait(timeout=10)
