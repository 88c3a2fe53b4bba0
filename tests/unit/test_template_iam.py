"""IAM in template.yaml grants what the runbooks declare and the state machines call: no more.

Statements are read from the template as written (SAM inline `Policies` and `AWS::IAM::Policy`
documents); tools/lint_iam.py runs parliament on the transformed template on top of this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from selfheal.runbooks import RUNBOOKS
from tools.lint_iam import STAR_RESOURCE_ALLOWLIST, Resolver, load_template

ROOT = Path(__file__).parents[2]
READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|List|Query|Scan|BatchGet)")
TEMPLATE, _ = decode(str(ROOT / "template.yaml"))
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]  # type: ignore[index]
RESOLVER = Resolver(load_template(ROOT / "template.yaml"))


def _document(raw: Any) -> dict[str, Any]:
    """A policy document; a Fn::Sub'd JSON string is rendered with the parameter defaults, the
    intrinsics of a YAML one are resolved as tools/lint_iam.py does (example values for the lists
    whose default is "none")."""
    if isinstance(raw, dict) and "Fn::Sub" in raw:
        text = raw["Fn::Sub"]
        defaults = {k: str(v.get("Default", "")) for k, v in TEMPLATE["Parameters"].items()}
        defaults |= {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
        return json.loads(re.sub(r"\$\{([\w:]+)\}", lambda m: defaults[m.group(1)], text))
    return dict(RESOLVER.resolve(json.loads(json.dumps(raw))))


def _branches(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """A statement, or each statement a ``Fn::If`` may write out (``AWS::NoValue`` writes none)."""
    if "Fn::If" not in statement:
        return [statement]
    _, *chosen = statement["Fn::If"]
    return [s for s in chosen if isinstance(s, dict) and s.get("Ref") != "AWS::NoValue"]


def statements() -> Iterator[tuple[str, dict[str, Any]]]:
    """(owner logical id, statement) for every statement the template may write out."""
    for logical_id, resource in RESOURCES.items():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine"):
            for policy in props.get("Policies", []):
                if isinstance(policy, dict) and "Statement" in policy:
                    for statement in policy["Statement"]:
                        yield from ((logical_id, branch) for branch in _branches(statement))
        if resource["Type"] == "AWS::IAM::Policy":
            owner = props["Roles"][0]["Ref"].removesuffix("Role")
            for statement in _document(props["PolicyDocument"])["Statement"]:
                yield owner, statement


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def granted(owner: str) -> set[str]:
    return {a for o, s in statements() if o == owner and s["Effect"] == "Allow" for a in actions(s)}


def test_template_has_no_wildcard_actions():
    for owner, statement in statements():
        for action in actions(statement):
            assert "*" not in action, f"{owner}: {action}"


def test_template_mutating_actions_name_their_resources():
    for owner, statement in statements():
        for action in actions(statement):
            # (the allowlist: actions IAM gives no resource type, each with its reason)
            if READ_ONLY.match(action) or action in STAR_RESOURCE_ALLOWLIST:
                continue
            resources = statement["Resource"]
            resources = resources if isinstance(resources, list) else [resources]
            assert "*" not in resources, f"{owner}: {action} on *"


def test_template_ec2_mutations_are_fenced_by_tag_condition():
    fence_key = TEMPLATE["Parameters"]["FenceTagKey"]["Default"]
    for owner, statement in statements():
        mutating = [a for a in actions(statement) if a.startswith("ec2:") and not READ_ONLY.match(a)]
        if mutating and _launch_uses_only(statement):
            continue
        if mutating:
            condition = statement.get("Condition", {}).get("StringEquals", {})
            # A resource being created carries no tag yet: the fence is the tag it is created with.
            tag = condition.get(f"aws:ResourceTag/{fence_key}") or condition.get(
                f"aws:RequestTag/{fence_key}"
            )
            assert tag == "true", f"{owner}: {mutating} unfenced"


# What RunInstances reads or creates alongside the (fenced) instance: never changed by it.
LAUNCH_USES = re.compile(
    r":(image|subnet|security-group|key-pair|launch-template|network-interface|volume)/\*$"
)


def _launch_uses_only(statement: dict[str, Any]) -> bool:
    resources = statement["Resource"]
    resources = resources if isinstance(resources, list) else [resources]
    return actions(statement) == ["ec2:RunInstances"] and all(LAUNCH_USES.search(r) for r in resources)


# What the frame itself needs, beside any runbook's permissions (the audit trail, leases, the kill
# switch, notifications, outcome events, starting runbooks, the undelivered-events queue).
FRAME = {
    "RunbookStepsFunction": {
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",  # the budgets (lease table)
        "states:DescribeExecution",  # is a run still running (the runs acting now)
        # undo runs: what a stopped run was doing, and starting the run that undoes it
        "states:GetExecutionHistory",
        "states:DescribeStateMachineForExecution",
        "states:StartExecution",
        "ssm:GetParameter",
        "sns:Publish",
        "events:PutEvents",
        # EscalateToOpsCenter: escalations as OpsItems (tagged on create), and the pause guard
        "ssm:CreateOpsItem",
        "ssm:AddTagsToResource",
        "ssm:DescribeOpsItems",
    },
    "TriageFunction": {
        "dynamodb:PutItem",
        "dynamodb:Query",
        "states:StartExecution",
        "sqs:SendMessage",
        # approval answers: read the question, record the answer, hand the token back
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    },
}
MACHINE_FRAME = {"dynamodb:DeleteItem"}  # release the lease


def _machine(runbook: str) -> str:
    return "".join(part.capitalize() for part in runbook.split("-")) + "StateMachine"


def _runbook_grants(owner: str) -> set[str]:
    return granted(owner) - FRAME.get(owner, MACHINE_FRAME)


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_template_grants_a_state_machine_only_what_its_runbook_declares_and_its_asl_calls(runbook):
    """Its role holds every SDK action its ASL makes, and nothing its runbook does not declare."""
    machine = _machine(runbook)
    definition = json.loads((ROOT / RESOURCES[machine]["Properties"]["DefinitionUri"]).read_text())
    declared = set(RUNBOOKS[runbook].permissions)
    assert set(_sdk_calls(definition)) - {"dynamodb:DeleteItem"} <= _runbook_grants(machine) <= declared


@pytest.mark.parametrize("runbook", sorted(RUNBOOKS))
def test_every_sdk_task_of_a_runbook_is_among_its_declared_permissions(runbook):
    definition = json.loads((ROOT / RESOURCES[_machine(runbook)]["Properties"]["DefinitionUri"]).read_text())
    calls = set(_sdk_calls(definition)) - {"dynamodb:DeleteItem"}  # the frame's lease release
    assert calls <= set(RUNBOOKS[runbook].permissions), calls - set(RUNBOOKS[runbook].permissions)
    assert {c.action for c in RUNBOOKS[runbook].calls} <= calls


def test_template_grants_exactly_the_union_of_the_runbooks_permissions():
    """Steps function, triage and state machines together: every declared action, and no other."""
    declared = set().union(*(set(r.permissions) for r in RUNBOOKS.values()))
    owners = ["RunbookStepsFunction", "TriageFunction", *(_machine(r) for r in RUNBOOKS)]
    together = set().union(*(_runbook_grants(o) for o in owners))
    assert together == declared, {
        "granted, not declared": together - declared,
        "declared, not granted": declared - together,
    }


# Step Functions' SDK service names that differ from the IAM prefix.
SDK_TO_IAM_SERVICE = {"elasticloadbalancingv2": "elasticloadbalancing"}


def _sdk_calls(definition: dict[str, Any]) -> Iterator[str]:
    for state in definition["States"].values():
        for nested in [*state.get("Branches", []), state.get("ItemProcessor") or state.get("Iterator")]:
            if nested:
                yield from _sdk_calls(nested)
        resource = state.get("Resource", "")
        sdk = re.match(r"arn:\$\{Partition\}:states:::aws-sdk:(\w+):(\w+)", resource)
        if sdk:
            service = SDK_TO_IAM_SERVICE.get(sdk.group(1), sdk.group(1))
            yield f"{service}:{sdk.group(2)[0].upper()}{sdk.group(2)[1:]}"
        optimised = re.match(r"arn:\$\{Partition\}:states:::(dynamodb):(\w+)$", resource)
        if optimised:
            yield f"{optimised.group(1)}:{optimised.group(2)[0].upper()}{optimised.group(2)[1:]}"


@pytest.mark.parametrize(
    "logical_id",
    sorted(k for k, v in RESOURCES.items() if v["Type"] == "AWS::Serverless::StateMachine"),
)
def test_template_state_machine_role_allows_every_sdk_call_its_asl_makes(logical_id):
    definition = json.loads((ROOT / RESOURCES[logical_id]["Properties"]["DefinitionUri"]).read_text())
    calls = set(_sdk_calls(definition))
    assert calls, "expected direct SDK integrations"
    assert calls <= granted(logical_id), calls - granted(logical_id)


def test_only_cloudwatch_may_publish_to_the_alarm_topic():
    # Triage reads every message on the alarm topic as an alarm of this account: nobody else publishes
    # (an explicit deny beats any identity policy's sns:Publish).
    policy = RESOURCES["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in policy if s["Effect"] == "Deny"]
    assert deny["Principal"] == "*" and deny["Action"] == "sns:Publish"
    assert deny["Condition"] == {"StringNotEquals": {"aws:PrincipalServiceName": "cloudwatch.amazonaws.com"}}


def _roles_of_the_stack() -> set[str]:
    """Every role the stack makes: SAM names a function's or state machine's role <LogicalId>Role."""
    return {
        f"{logical_id}Role"
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
        and "Role" not in resource.get("Properties", {})
    } | {logical_id for logical_id, resource in RESOURCES.items() if resource["Type"] == "AWS::IAM::Role"}


def test_every_role_of_the_stack_is_denied_editing_or_deleting_audit_rows():
    policy = RESOURCES["AuditTrailWriteOnce"]["Properties"]
    assert {r["Ref"] for r in policy["Roles"]} == _roles_of_the_stack()
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Resource"] == {"Fn::GetAtt": ["AuditTable", "Arn"]}
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= set(deny["Action"])
    # and no role is granted one of them anywhere (a Deny wins anyway; an Allow would say we meant it)
    for owner, statement in statements():
        if statement.get("Effect") == "Allow" and "AuditTable" in json.dumps(statement.get("Resource")):
            assert not set(actions(statement)) & set(deny["Action"]), owner


def test_the_steps_function_may_put_only_its_own_outcome_events_on_the_bus():
    from selfheal.notify import EVENT_SOURCE

    (put,) = [s for o, s in statements() if o == "RunbookStepsFunction" and "events:PutEvents" in actions(s)]
    assert put["Condition"] == {"StringEquals": {"events:source": EVENT_SOURCE}}
