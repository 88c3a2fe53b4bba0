"""Every runbook declares what it is (models), what it may do (permissions) and the calls its
workflow makes, as Cloud Custodian's actions declare their schema and permissions."""

from __future__ import annotations

import re

import pytest

from selfheal.runbooks import RUNBOOKS, Plan, Runbook
from selfheal.runbooks.base import Call, CallSpec, placeholder

IAM_ACTION = re.compile(r"^[a-z0-9-]+:[A-Z][A-Za-z0-9]+$")


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_runbook_declares_its_models_permissions_and_calls(name: str) -> None:
    runbook = RUNBOOKS[name]
    assert issubclass(runbook, Runbook) and runbook.name == name
    assert isinstance(getattr(runbook.target_model, "key", None), property), "the target names the lease key"
    assert issubclass(runbook.plan_model, Plan)
    assert runbook.permissions, f"{name} declares no IAM permissions"
    assert all(IAM_ACTION.match(a) and "*" not in a for a in runbook.permissions), runbook.permissions
    assert len(set(runbook.permissions)) == len(runbook.permissions)
    assert runbook.calls, f"{name} declares no calls: a runbook that changes nothing heals nothing"
    names = [c.name for c in runbook.calls]
    assert len(set(names)) == len(names), names
    for call in runbook.calls:
        assert call.action in runbook.permissions, f"{name}: {call.action} not among its permissions"
        assert call.shapes and all(call.shapes.values()), call.name


def test_call_spec_fills_runtime_values_only_where_it_declares_them() -> None:
    spec = CallSpec(
        "attach", "ec2:AssociateAddress", {"default": ("InstanceId", "Tag")}, {"InstanceId": "new"}
    )
    call = Call(
        name="attach",
        action="ec2:AssociateAddress",
        parameters={"InstanceId": placeholder("new"), "Tag": placeholder("new")},
    )
    rendered = spec.render(call, {"new": "i-1"})
    # A tag (say) that happens to read like a placeholder is left as it is.
    assert rendered == {"InstanceId": "i-1", "Tag": "(the new)"}
    assert call.parameters["InstanceId"] == "(the new)", "the plan's call is not changed"
    assert spec.shape_of(rendered) == "default" and spec.shape_of({"InstanceId": "i-1"}) is None


def test_call_spec_names_its_step_functions_resource() -> None:
    assert CallSpec("r", "elasticloadbalancing:RegisterTargets", {}).sdk_resource == (
        "aws-sdk:elasticloadbalancingv2:registerTargets"
    )
    assert CallSpec("f", "rds:FailoverDBCluster", {}).sdk_resource == "aws-sdk:rds:failoverDBCluster"
