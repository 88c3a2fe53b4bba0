"""What a command prints besides its tables: JSON, and a progress line while it waits (on a terminal
only: a pipe gets the result and nothing else)."""

from __future__ import annotations

import json
import sys
from typing import Any

from selfheal_cli import ops


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


def progress(what: str) -> ops.Progress | None:
    """A progress line while waiting, on a terminal only (a pipe gets the summary and nothing else)."""
    if not sys.stderr.isatty():
        return None

    def show(seconds: float) -> None:
        print(f"\rwaiting for {what}: {seconds:.0f} s", end="", file=sys.stderr, flush=True)

    return show


def done_waiting() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)
