"""e2e tier: the real template.yaml deployed into one LocalCloud for the whole session.

The fixture does not set AWS_ENDPOINT_URL for the test process (integration tests in the same session
use moto's in-process mock, which only intercepts AWS hostnames): use ``cloud.client(service)``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.faults import FaultInjector
from localcloud.harness import LOCAL_STACK_NAME, DeployedCloud, start_deployed_cloud

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
# One session runs many remediations per runbook within the hour: a budget the tests never reach
# unless they mean to (the budget guard itself is unit-tested in tests/unit/test_guards.py).
# flip-dns tests wait hold-downs of seconds, not the stack's default minimum of 300.
PARAMETERS = {
    "Mode": "enforce",
    "BudgetPerHour": "1000",
    "FlipDnsMinHoldDownSeconds": "0",
    "BusRequestsMode": "enforce",
    # Tests of failure paths fail runs on purpose; tests run side by side with their waits.
    "MaxFailedRunsPerHour": "1000",
    "MaxConcurrentActions": "50",
    # replace-instance tests build their launch templates and images per test: every one of this
    # account is declared; a test that needs a narrower scope sets the steps function's variables.
    "ReplaceInstanceLaunchTemplateIds": "*",
    "ReplaceInstanceImageIds": "*",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "long: a test that takes tens of seconds on its own (a storm or the demo in a process of its"
        " own, a burst of runs): collected first, so that it never is the last test a worker runs",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``long`` tests first, each followed by another test, so that pytest-xdist's first chunks
    (two tests a worker with ``--maxschedchunk 1``) give each worker at most one long test and the
    rest start as workers free up: a long test started last would run on after every other worker
    has finished (the e2e tier's wall time is its slowest worker's). Collection order otherwise."""
    long = [item for item in items if item.get_closest_marker("long")]
    rest = [item for item in items if not item.get_closest_marker("long")]
    ordered: list[pytest.Item] = []
    for item in long:
        ordered.append(item)
        if rest:
            ordered.append(rest.pop(0))
    items[:] = ordered + rest


@pytest.fixture(scope="session")
def cloud() -> Iterator[DeployedCloud]:
    """LocalCloud with the stack deployed: client(), stack, start_and_wait(), send_event_and_wait(),
    recorded_requests(), reset_recording()."""
    deployed = start_deployed_cloud(TEMPLATE, PARAMETERS, stack_name=LOCAL_STACK_NAME)
    try:
        yield deployed
    finally:
        deployed.cloud.stop()


@pytest.fixture
def faults(cloud: DeployedCloud) -> Iterator[FaultInjector]:
    """Inject faults into the local cloud's AWS calls for one test; none are left for the next."""
    yield cloud.cloud.faults
    cloud.cloud.faults.clear()


@pytest.fixture
def steps_env(cloud: DeployedCloud) -> Iterator[Callable[..., None]]:
    """Change the steps function's variables (the stack parameters behind them) for one test."""
    original = cloud.set_steps_variables()

    def set_variables(**variables: str) -> None:
        cloud.set_steps_variables(**variables)

    yield set_variables
    cloud.set_steps_variables(**original)


@pytest.fixture
def mode(cloud: DeployedCloud) -> Iterator[Callable[[str], None]]:
    """Set the kill switch for one test; always back to enforce afterwards."""
    ssm, name = cloud.client("ssm"), cloud.stack.outputs["ModeParameterName"]

    def set_mode(value: str) -> None:
        ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True)

    yield set_mode
    set_mode("enforce")


@pytest.fixture
def outcome_inbox(cloud: DeployedCloud) -> Iterator[Any]:
    """An SQS queue subscribed to the notification topic and to the stack's outcome events."""
    sqs, sns, events = cloud.client("sqs"), cloud.client("sns"), cloud.client("events")
    name = f"inbox-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=cloud.stack.outputs["NotificationTopicArn"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    events.put_rule(Name=name, EventPattern=json.dumps({"source": ["selfheal"]}))
    events.put_targets(Rule=name, Targets=[{"Id": "inbox", "Arn": arn}])

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    yield read
    events.remove_targets(Rule=name, Ids=["inbox"])
    events.delete_rule(Name=name)


class LocalUser:
    """An IAM user of the local cloud with an access key: clients signed as them (``user("sts")``).
    Who signs a request or an approval is who the stack records (the local STS checks signatures)."""

    def __init__(self, cloud: DeployedCloud, name: str) -> None:
        import boto3

        iam = cloud.client("iam")
        user = f"{name}-{uuid.uuid4().hex[:6]}"
        self.arn = str(iam.create_user(UserName=user)["User"]["Arn"])
        key = iam.create_access_key(UserName=user)["AccessKey"]
        self.access_key_id, self.secret = str(key["AccessKeyId"]), str(key["SecretAccessKey"])
        self._session = boto3.session.Session(
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret, region_name="us-east-1"
        )
        self._endpoint = cloud.endpoint
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, endpoint_url=self._endpoint)  # type: ignore[call-overload]
        return self._clients[service]


@pytest.fixture
def local_user(cloud: DeployedCloud) -> Callable[[str], LocalUser]:
    return lambda name: LocalUser(cloud, name)
