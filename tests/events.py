"""The one loader for the sample events in events/ (real-shaped, hand-written from the AWS docs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def load_event(name: str) -> dict[str, Any]:
    """`load_event("alarm-ok")` or `load_event("runbooks/remap-eip.json")`: a fresh dict every call."""
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    with path.open(encoding="utf-8") as handle:
        event: dict[str, Any] = json.load(handle)
    return event


def event_names(folder: str = "") -> list[str]:
    """Names (without .json) of the samples directly in events/ (or in a subfolder of it)."""
    return sorted(path.stem for path in (EVENTS_DIR / folder).glob("*.json"))
