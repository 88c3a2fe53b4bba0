"""Least privilege for the two roles that move data or launch instances (issue #12, item 10).

redrive-dlq: the move task's receive/delete (and the role's start, poll, cancel, depth reads) only
on fenced queues declared DLQs (selfheal:dlq=true); its SendMessage only on fenced queues that are
not. replace-instance: RunInstances only from the launch templates or images the stack declares.
The statements are resolved with chosen parameter values (tools/lint_iam.py's Resolver) and
evaluated the way IAM does for the operators they use; moto does not enforce IAM, so this is where
the statements are proven.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from selfheal.config import Settings
from selfheal.runbooks.redrive_dlq import DLQ_TAG, DLQ_TAG_VALUE
from tools import lint_iam
from tools.lint_iam import Resolver, load_template

TEMPLATE = load_template(Path(__file__).parents[2] / "template.yaml")
REGION, ACCOUNT = "us-east-1", "123456789012"
FENCE = "selfheal:managed"
DECLARED_TEMPLATE, OTHER_TEMPLATE = "lt-0aaaaaaaaaaaaaaa1", "lt-0bbbbbbbbbbbbbbb2"
DECLARED_IMAGE, OTHER_IMAGE = "ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb2"
PARAMS = {"ReplaceInstanceLaunchTemplateIds": DECLARED_TEMPLATE, "ReplaceInstanceImageIds": DECLARED_IMAGE}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(role: str, parameters: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every statement of the AWS::IAM::Policy documents attached to ``role``, resolved."""
    template = copy.deepcopy(TEMPLATE)
    for name, value in (parameters or {}).items():
        template["Parameters"][name]["Default"] = value
    resolver = Resolver(template)
    found = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props.get("Roles", []):
            # the lint's example values stand in for a "none" default: the values chosen here win
            with mock.patch.dict(lint_iam.PARAMETER_EXAMPLES, parameters or {}):
                document = resolver.resolve(props["PolicyDocument"])
            if isinstance(document, str):  # a Fn::Sub'd JSON string
                document = json.loads(document)
            found += [s for s in document["Statement"] if s["Effect"] == "Allow"]
    return found


def allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """Does any Allow statement grant this request (only the operators these statements use)? A key
    missing from ``context`` is absent from the request, as IAM treats it."""
    for statement in statements:
        if action not in _as_list(statement["Action"]):
            continue
        if not any(fnmatch.fnmatchcase(resource, r) for r in _as_list(statement["Resource"])):
            continue
        ok = True
        for operator, keys in statement.get("Condition", {}).items():
            for key, wanted in keys.items():
                values, value = _as_list(wanted), context.get(key)
                if operator in ("StringEquals", "Bool"):
                    ok &= value is not None and value in values
                elif operator == "StringNotEquals":
                    ok &= value is None or value not in values
                elif operator in ("StringLike", "ArnLike"):
                    ok &= value is not None and any(fnmatch.fnmatchcase(value, w) for w in values)
                else:
                    pytest.fail(f"unexpected operator {operator}")
        if ok:
            return True
    return False


# ------------------------------------------------------------------------------------ redrive-dlq
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders"
DLQ_SIDE = (
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
)
FENCED = {f"aws:ResourceTag/{FENCE}": "true"}
FENCED_DLQ = {**FENCED, f"aws:ResourceTag/{DLQ_TAG}": DLQ_TAG_VALUE}


@pytest.mark.parametrize("action", DLQ_SIDE)
def test_redrive_role_takes_messages_only_out_of_fenced_declared_dlqs(action):
    statements = role_statements("RedriveDlqStateMachineRole")
    assert allowed(statements, action, QUEUE, FENCED_DLQ)
    assert not allowed(statements, action, QUEUE, FENCED)  # a source queue, or an undeclared DLQ
    assert not allowed(statements, action, QUEUE, {f"aws:ResourceTag/{DLQ_TAG}": DLQ_TAG_VALUE})
    assert not allowed(statements, action, QUEUE, {**FENCED_DLQ, f"aws:ResourceTag/{DLQ_TAG}": "yes"})


def test_redrive_role_sends_only_to_fenced_queues_that_are_not_declared_dlqs():
    statements = role_statements("RedriveDlqStateMachineRole")
    assert allowed(statements, "sqs:SendMessage", QUEUE, FENCED)
    assert allowed(statements, "sqs:SendMessage", QUEUE, {**FENCED, f"aws:ResourceTag/{DLQ_TAG}": "no"})
    assert not allowed(statements, "sqs:SendMessage", QUEUE, FENCED_DLQ)
    assert not allowed(statements, "sqs:SendMessage", QUEUE, {})
    # and nothing else of the move reaches the destination side
    for action in DLQ_SIDE:
        assert not allowed(statements, action, QUEUE, FENCED)


def test_redrive_role_sqs_statements_are_split_by_queue_role():
    """No statement mixes the DLQ side with SendMessage: each side carries its own condition."""
    for statement in role_statements("RedriveDlqStateMachineRole"):
        actions = set(_as_list(statement["Action"]))
        assert not (actions & set(DLQ_SIDE) and "sqs:SendMessage" in actions), statement["Sid"]


# ------------------------------------------------------------------------------- replace-instance
def _image(image: str) -> str:
    return f"arn:aws:ec2:{REGION}::image/{image}"


def _template(template: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:launch-template/{template}"


def test_run_instances_from_an_image_only_when_the_stack_declares_it():
    statements = role_statements("ReplaceInstanceStateMachineRole", PARAMS)
    assert allowed(statements, "ec2:RunInstances", _image(DECLARED_IMAGE), {"ec2:ImageID": DECLARED_IMAGE})
    assert not allowed(statements, "ec2:RunInstances", _image(OTHER_IMAGE), {"ec2:ImageID": OTHER_IMAGE})


def test_run_instances_from_a_launch_template_only_when_the_stack_declares_it():
    statements = role_statements("ReplaceInstanceStateMachineRole", PARAMS)
    declared = {"ec2:LaunchTemplate": _template(DECLARED_TEMPLATE)}
    other = {"ec2:LaunchTemplate": _template(OTHER_TEMPLATE)}
    assert allowed(statements, "ec2:RunInstances", _template(DECLARED_TEMPLATE), declared)
    assert not allowed(statements, "ec2:RunInstances", _template(OTHER_TEMPLATE), other)
    # the image a declared template names, as it names it; not one the request swapped in
    from_template = {**declared, "ec2:ImageID": OTHER_IMAGE, "ec2:IsLaunchTemplateResource": "true"}
    assert allowed(statements, "ec2:RunInstances", _image(OTHER_IMAGE), from_template)
    overridden = {**from_template, "ec2:IsLaunchTemplateResource": "false"}
    assert not allowed(statements, "ec2:RunInstances", _image(OTHER_IMAGE), overridden)
    undeclared = {**other, "ec2:ImageID": OTHER_IMAGE, "ec2:IsLaunchTemplateResource": "true"}
    assert not allowed(statements, "ec2:RunInstances", _image(OTHER_IMAGE), undeclared)


def test_run_instances_with_the_default_none_launches_from_no_template_and_no_image():
    defaults = {name: "none" for name in PARAMS}
    statements = role_statements("ReplaceInstanceStateMachineRole", defaults)
    # ("none" is no launch template or image id: lt-/ami- and hex, so it matches nothing real)
    context = {"ec2:LaunchTemplate": _template(DECLARED_TEMPLATE), "ec2:IsLaunchTemplateResource": "true"}
    assert not allowed(statements, "ec2:RunInstances", _template(DECLARED_TEMPLATE), context)
    assert not allowed(statements, "ec2:RunInstances", _image(DECLARED_IMAGE), context)
    assert not allowed(
        statements, "ec2:RunInstances", _image(DECLARED_IMAGE), {"ec2:ImageID": DECLARED_IMAGE}
    )


def test_run_instances_wildcards_match_as_the_guard_matches_them():
    statements = role_statements(
        "ReplaceInstanceStateMachineRole",
        {"ReplaceInstanceLaunchTemplateIds": "lt-0aaa*", "ReplaceInstanceImageIds": "ami-0aaa*"},
    )
    assert allowed(statements, "ec2:RunInstances", _image(DECLARED_IMAGE), {"ec2:ImageID": DECLARED_IMAGE})
    assert not allowed(statements, "ec2:RunInstances", _image(OTHER_IMAGE), {"ec2:ImageID": OTHER_IMAGE})
    context = {"ec2:LaunchTemplate": _template(DECLARED_TEMPLATE)}
    assert allowed(statements, "ec2:RunInstances", _template(DECLARED_TEMPLATE), context)


def test_run_instances_on_an_image_or_a_launch_template_is_always_conditioned():
    for statement in role_statements("ReplaceInstanceStateMachineRole", PARAMS):
        if "ec2:RunInstances" not in _as_list(statement["Action"]):
            continue
        sources = [r for r in _as_list(statement["Resource"]) if ":image/" in r or ":launch-template/" in r]
        if sources:
            assert statement.get("Condition"), statement["Sid"]


def test_launch_scope_parameters_reach_the_steps_function():
    variables = TEMPLATE["Resources"]["RunbookStepsFunction"]["Properties"]["Environment"]["Variables"]
    for parameter, variable in (
        ("ReplaceInstanceLaunchTemplateIds", "REPLACE_INSTANCE_LAUNCH_TEMPLATE_IDS"),
        ("ReplaceInstanceImageIds", "REPLACE_INSTANCE_IMAGE_IDS"),
    ):
        assert variables[variable] == {"Fn::Join": [",", {"Ref": parameter}]}
        assert TEMPLATE["Parameters"][parameter]["Default"] == "none"
        assert variable in {f.alias for f in Settings.model_fields.values()}
