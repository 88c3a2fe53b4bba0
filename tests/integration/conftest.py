"""Integration tier: core code and handlers against moto (in-process), tables shaped by template.yaml."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import decode
from moto import mock_aws

from localcloud import ops
from selfheal.clients import Clients
from selfheal.config import Settings

ROOT = Path(__file__).parents[2]
FENCE = {"Key": "selfheal:managed", "Value": "true"}


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
    """A primary with a managed EIP and a standby, as the remap-eip runbook expects them."""

    def __init__(self, ec2: Any) -> None:
        self.ec2 = ec2
        image = ops.any_image_id(ec2)
        self.image = image

    def instance(self, fenced: bool = True, name: str = "web") -> str:
        tags = [{"Key": "Name", "Value": name}] + ([FENCE] if fenced else [])
        return str(
            self.ec2.run_instances(
                ImageId=self.image,
                MinCount=1,
                MaxCount=1,
                InstanceType="t3.micro",
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"][0]["InstanceId"]
        )

    def eip(self, on: str | None = None, standby: str | None = None, fenced: bool = True) -> str:
        tags = ([FENCE] if fenced else []) + (
            [{"Key": "selfheal:param:standbyInstanceId", "Value": standby}] if standby else []
        )
        allocation = self.ec2.allocate_address(
            Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": tags}] if tags else []
        )["AllocationId"]
        if on:
            self.ec2.associate_address(AllocationId=allocation, InstanceId=on)
        return str(allocation)

    def holder(self, allocation: str) -> str | None:
        address = self.ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        return address.get("InstanceId")


@pytest.fixture
def world(clients: Clients) -> Ec2World:
    return Ec2World(clients.ec2)


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
