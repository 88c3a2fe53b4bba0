"""Integration tier: core code and handlers against moto (in-process), tables shaped by template.yaml."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws

from localcloud.worlds import FENCE, Aws, image, remap_eip, replace_instance, unique
from selfheal.clients import Clients
from selfheal.config import Settings

ROOT = Path(__file__).parents[2]


def template_resources() -> dict[str, Any]:
    template, errors = decode(str(ROOT / "template.yaml"))
    assert not errors and template is not None, errors
    return dict(template["Resources"])


def create_table_like_template(client: Any, logical_id: str) -> str:
    """Create the table with the key schema and indexes the template declares (no drift)."""
    props = template_resources()[logical_id]["Properties"]
    kwargs: dict[str, Any] = {
        "TableName": logical_id,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if "GlobalSecondaryIndexes" in props:
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    client.create_table(**kwargs)
    return logical_id


@pytest.fixture
def aws() -> Iterator[None]:
    # moto's own configuration: a local cloud started earlier in this process (tests/localcloud on the
    # same xdist worker) turns on executing state machines, and this tier's executions must stay RUNNING.
    from moto.core.config import default_user_config

    saved = default_user_config["stepfunctions"]
    default_user_config["stepfunctions"] = {"execute_state_machine": False}
    try:
        with mock_aws():
            yield
    finally:
        default_user_config["stepfunctions"] = saved


@pytest.fixture
def clients(aws: None) -> Clients:
    return Clients(boto3.Session(region_name="us-east-1"))


@pytest.fixture
def settings(clients: Clients) -> Settings:
    audit = create_table_like_template(clients.dynamodb, "AuditTable")
    lease = create_table_like_template(clients.dynamodb, "LeaseTable")
    clients.ssm.put_parameter(Name="/selfheal/test/mode", Value="enforce", Type="String")
    topic = clients.sns.create_topic(Name="selfheal")["TopicArn"]
    return Settings(
        AUDIT_TABLE=audit,
        LEASE_TABLE=lease,
        MODE_PARAMETER="/selfheal/test/mode",
        TOPIC_ARN=topic,
        FENCE_TAG_KEY=FENCE["Key"],
        FENCE_TAG_VALUE=FENCE["Value"],
    )


class Ec2World:
    """The EC2 worlds' parts (localcloud.worlds.remap_eip and replace_instance), each of its own."""

    def __init__(self, aws: Aws) -> None:
        self.aws = aws
        self.ec2 = aws.client("ec2")
        self.image = image(aws)

    def instance(self, fenced: bool = True) -> str:
        return remap_eip.instance(self.aws, unique("web"), fenced=fenced)

    def eip(self, on: str | None = None, standby: str | None = None, fenced: bool = True) -> str:
        return remap_eip.address(self.aws, unique("web"), on=on, standby=standby, fenced=fenced).allocation

    def holder(self, allocation: str) -> str | None:
        return remap_eip.holder(self.aws, allocation)

    def group(self, size: int = 2) -> replace_instance.Group:
        return replace_instance.group(self.aws, unique("g"), size=size)

    def standalone(self, profile: str | None = None) -> str:
        """In its VPC's default security group, so a replacement can be launched from its image."""
        return replace_instance.standalone(self.aws, unique("s"), security_group=True, profile=profile)

    def target_groups(self, instance: str, ports: tuple[int, ...], fenced: bool = True) -> list[str]:
        return [
            replace_instance.target_group(self.aws, unique("tg"), instance, port=port, fenced=fenced)
            for port in ports
        ]

    def instance_profile(self) -> replace_instance.Profile:
        return replace_instance.instance_profile(self.aws, unique("r"))


@pytest.fixture
def world(clients: Clients) -> Ec2World:
    # In-process moto: no server, so no control API.
    return Ec2World(Aws(client=functools.cache(clients.client)))


WAITING_MACHINE = json.dumps(
    {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
)


def running_execution(clients: Clients, runbook: str, name: str | None = None) -> dict[str, str]:
    """A running execution of this stack's state machine for ``runbook`` (the steps function acts
    only for those), started once per name: the ``execution`` of a step's payload."""
    machine_name = f"selfheal-{runbook}"
    machines = {
        m["name"]: m["stateMachineArn"] for m in clients.stepfunctions.list_state_machines()["stateMachines"]
    }
    arn = (
        machines.get(machine_name)
        or clients.stepfunctions.create_state_machine(
            name=machine_name, definition=WAITING_MACHINE, roleArn="arn:aws:iam::123456789012:role/sfn"
        )["stateMachineArn"]
    )
    existing = [
        e["executionArn"]
        for e in clients.stepfunctions.list_executions(stateMachineArn=arn)["executions"]
        if e["name"] == name
    ]
    execution_arn = (
        existing[0]
        if existing
        else clients.stepfunctions.start_execution(stateMachineArn=arn, name=name or uuid.uuid4().hex)[
            "executionArn"
        ]
    )
    return {"arn": execution_arn, "name": execution_arn.rsplit(":", 1)[-1]}


def approve(
    clients: Clients,
    settings: Settings,
    execution: dict[str, str],
    plan: dict[str, Any],
    approver: str = "arn:aws:iam::123456789012:user/alice",
    requester: str | None = None,
) -> Any:
    """A question asked for ``plan`` and answered yes by ``approver`` (as triage takes an answer).
    The run's request id is its execution's name, as for every run."""
    from datetime import timedelta

    from selfheal.approvals import ApprovalAnswer, Approvals, PendingApproval, plan_hash
    from selfheal.models import utcnow

    approvals = Approvals(clients.dynamodb, settings.lease_table)
    now = utcnow()
    approvals.ask(
        PendingApproval(
            request_id=execution["name"],
            execution_arn=execution["arn"],
            runbook=execution["arn"].split(":")[6].removeprefix("selfheal-"),
            target_key="t",
            task_token="token-" + execution["name"],
            plan_hash=plan_hash(plan),
            why="test",
            summary="test",
            asked_at=now,
            expires_at=now + timedelta(minutes=30),
            requester=requester,
        )
    )
    answer = ApprovalAnswer(execution_arn=execution["arn"], decision="approve", plan_hash=plan_hash(plan))
    return approvals.answer(answer, approver, now)
