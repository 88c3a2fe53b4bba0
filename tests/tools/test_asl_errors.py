"""Error names in the state machines match the code: Step Functions matches them exactly, so a name
no class defines never matches, and a Catch on a base class must list its subclasses itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import selfheal.runbooks  # noqa: F401  (registers the runbooks' own errors)
from localcloud.compat import sfn_error_names
from selfheal.errors import SelfhealError

ROOT = Path(__file__).parents[2]
FILES = sorted((ROOT / "statemachines").glob("*.asl.json"))
# Step Functions' own names, and what the Lambda integration reports about the service itself.
STATES_ERRORS = {"States.ALL", "States.Timeout", "States.TaskFailed", "States.Runtime"}
LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
# aws-sdk prefixes -> (botocore service, Step Functions service name)
SDK_SERVICES = {
    "Ec2": ("ec2", "ec2"),
    "Rds": ("rds", "rds"),
    "Route53": ("route53", "route53"),
    "Sqs": ("sqs", "sqs"),
    "AutoScaling": ("autoscaling", "autoscaling"),
    "ElasticLoadBalancingV2": ("elbv2", "elasticloadbalancingv2"),
}


def _classes(cls: type[SelfhealError]) -> Iterator[type[SelfhealError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _classes(sub)


CLASSES = {c.__name__: c for c in _classes(SelfhealError)}


def _states(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        yield name, state
        if "ItemProcessor" in state:
            yield from _states(state["ItemProcessor"])


def _all_states() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in FILES:
        for name, state in _states(json.loads(path.read_text())):
            yield path.name, name, state


def _known(name: str) -> bool:
    if name in STATES_ERRORS or name in LAMBDA_ERRORS or name in CLASSES:
        return True
    prefix = name.split(".", 1)[0]
    return prefix in SDK_SERVICES and name in sfn_error_names(*SDK_SERVICES[prefix])


def test_every_error_the_asl_names_is_defined() -> None:
    """Catch and Retry names: a selfheal class, an SDK error the service can report, or Step
    Functions' own. A typo, or a name no code raises, would silently never match."""
    unknown = [
        f"{file}: {state}: {error}"
        for file, state, body in _all_states()
        for rule in [*body.get("Catch", []), *body.get("Retry", [])]
        for error in rule["ErrorEquals"]
        if not _known(error)
    ]
    assert not unknown, unknown


def test_every_error_the_asl_raises_is_a_class() -> None:
    """The errors the workflows set themselves (a timeout, a refill) are named errors too."""
    raised = [
        (file, state, body["Parameters"]["Error"])
        for file, state, body in _all_states()
        if body["Type"] == "Pass" and "Error" in body.get("Parameters", {})
    ]
    assert raised, "expected workflow-made errors"
    assert [r for r in raised if r[2] not in CLASSES] == []


def test_a_catch_on_a_base_class_lists_each_subclass() -> None:
    """Step Functions does not know Python's inheritance: ``NotApplicable`` must come with
    ``AlreadyRecovering`` and ``ModeChanged`` (unless an earlier catcher of the state takes them)."""
    missing = []
    for file, state, body in _all_states():
        earlier: set[str] = set()
        for rule in body.get("Catch", []):
            names = set(rule["ErrorEquals"])
            for name in names & CLASSES.keys():
                subclasses = {c.__name__ for c in _classes(CLASSES[name])}
                missing += [f"{file}: {state}: {name} without {s}" for s in subclasses - names - earlier]
            earlier |= names
    assert not missing, missing


@pytest.mark.parametrize("error", sorted(CLASSES))
def test_every_named_error_has_a_docstring(error: str) -> None:
    """The class is the contract with the ASL and the operator: it says what the name means."""
    assert (CLASSES[error].__doc__ or "").strip()
