"""Hostile input, generated: every input ends in a named error or an ignored/rejected outcome, never
an unhandled exception, and nothing acts.

Inputs are arbitrary JSON and the real AWS samples of events/ broken the ways real senders break
them: placeholder times ("yyyy-mm-ddThh:mm:ssZ"), an event that is a list, ``detail`` as a string,
underscores for dashes, fields dropped or replaced by anything. Examples per property: the
``HYPOTHESIS_PROFILE`` (``ci``, the default, in make test; ``trust``: 5,000 each).
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.errors import SelfhealError
from selfheal.policy import DEFAULT_POLICY_PATH, decide, load_policy, parse_policy
from selfheal.runbooks import RUNBOOKS
from selfheal.signals import Signal, Unrecognised, parse_records
from selfheal.steps import parse_request

ROOT = Path(__file__).parents[2]
SAMPLES = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "events").glob("*.json"))}
MANUAL = {name: body for name, body in SAMPLES.items() if name.startswith("manual-")}

settings.register_profile(
    "ci", max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "trust", max_examples=5_000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
# 5,000 inputs of a whole policy document take minutes, not the suite's 120 s a test.
pytestmark = pytest.mark.timeout(1800 if PROFILE == "trust" else 120)

# Inputs each property was given in this run: written for `make trust`'s report.
TRIED: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_how_many_inputs() -> Iterator[None]:
    yield
    results = os.environ.get("SELFHEAL_TRUST_RESULTS")
    if results:
        (Path(results) / "hostile.json").write_text(json.dumps(dict(TRIED), indent=2))


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=16)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=16,
)
PLACEHOLDER_TIMES = ["yyyy-mm-ddThh:mm:ssZ", "", "2026-13-45T99:99:99Z", "now", "1e12"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    for step in path[:-1]:
        value = value[step]
    value[path[-1]] = new


def _delete(value: Any, path: tuple[Any, ...]) -> None:
    for step in path[:-1]:
        value = value[step]
    del value[path[-1]]


@st.composite
def broken(draw: Any, samples: dict[str, Any]) -> Any:
    """A real sample, broken a few of the ways real senders break events."""
    event = copy.deepcopy(samples[draw(st.sampled_from(sorted(samples)))])
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(event)
        how = draw(st.sampled_from(["replace", "delete", "underscores", "time", "detail-string", "list"]))
        if how == "list":
            event = [event]
            break
        if how == "detail-string" and isinstance(event, dict) and "detail" in event:
            event["detail"] = json.dumps(event["detail"])
        elif how == "time" and isinstance(event, dict):
            event["time"] = draw(st.sampled_from(PLACEHOLDER_TIMES))
        elif how == "underscores" and isinstance(event, dict):
            event = {str(k).replace("-", "_"): v for k, v in event.items()}
        elif paths and how in ("replace", "delete"):
            path = draw(st.sampled_from(paths))
            if how == "replace":
                _set(event, path, draw(json_values))
            else:
                _delete(event, path)
    return event


EVENTS = (
    broken(SAMPLES)
    | json_values
    | st.builds(lambda d: {"detail-type": "x", "source": "y", "detail": d}, json_values)
)


@given(EVENTS)
def test_any_event_parses_to_signals_or_named_reasons_and_decides_without_error(event):
    TRIED["signal parsing and policy decisions"] += 1
    policy = load_policy()
    results = parse_records(event)
    assert results and all(isinstance(r, Signal | Unrecognised) for r in results)
    for result in results:
        if isinstance(result, Unrecognised):
            assert result.reason
            continue
        # The policy decides (or says why not) for whatever parsed: never an exception.
        decide(policy, result, applies=lambda decision: None)


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
@given(raw=json_values | broken(MANUAL).map(lambda e: e.get("detail") if isinstance(e, dict) else e))
def test_any_runbook_input_is_a_request_or_a_named_error(runbook, raw):
    TRIED[f"{runbook} input model"] += 1
    try:
        request = parse_request(raw, runbook, "request-1", None)
    except SelfhealError as exc:
        assert exc.name == "InvalidInput" and exc.message
    else:
        assert request.reason and request.target_key


def _policy_document() -> Any:
    import yaml

    return yaml.safe_load(DEFAULT_POLICY_PATH.read_text())


@given(st.data())
def test_any_policy_document_is_valid_or_every_problem_is_named(data):
    TRIED["policy validator"] += 1
    document = data.draw(broken({"policy": _policy_document()}) | json_values)
    try:
        parse_policy(document)
    except SelfhealError as exc:
        assert exc.name == "PolicyError" and exc.details["problems"]


@given(broken(MANUAL))
def test_any_manual_request_on_the_bus_is_started_rejected_or_ignored_never_an_error(event):
    from benchmarks.triage_throughput import FakeClients
    from selfheal.config import Settings
    from selfheal.triage import Triage

    TRIED["manual bus path (triage)"] += 1
    clients = FakeClients()
    machines = {
        f"STATE_MACHINE_{name.upper().replace('-', '_')}": f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
        for name in RUNBOOKS
    }
    triage = Triage(Settings.from_env({"AUDIT_TABLE": "audit", **machines}), clients, load_policy())  # type: ignore[arg-type]
    outcomes = triage.handle(event)
    assert outcomes
    for outcome in outcomes:
        assert outcome.decision in {"started", "duplicate", "ignored", "rejected"}
        # Every outcome left its row; a refusal names why.
        assert outcome.request_id in clients.dynamodb.by_request
        if outcome.decision != "started":
            assert outcome.reason
