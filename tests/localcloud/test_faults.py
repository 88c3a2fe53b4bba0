"""localcloud.faults: a chosen call answers with an AWS error in its service's protocol, as many
times as asked, then works again; botocore reads the error as it would read AWS's."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from localcloud.faults import TERMINAL, Fault, hang, step_raises, terminal
from localcloud.harness import DeployedCloud

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def client(local: DeployedCloud, service: str, config: Config = NO_RETRIES) -> Any:
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    ).client(service, endpoint_url=local.endpoint, config=config)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "service,operation,call,code",
    [
        ("ec2", "DescribeInstances", lambda c: c.describe_instances(), "RequestLimitExceeded"),  # ec2
        ("rds", "DescribeDBInstances", lambda c: c.describe_db_instances(), "Throttling"),  # query
        (
            "autoscaling",
            "DescribeAutoScalingGroups",
            lambda c: c.describe_auto_scaling_groups(),
            "Throttling",
        ),
        ("route53", "ListHostedZones", lambda c: c.list_hosted_zones(), "Throttling"),  # rest-xml
        ("sqs", "ListQueues", lambda c: c.list_queues(), "RequestThrottled"),  # json, query-compatible
    ],
)
def test_an_injected_throttle_reads_as_the_service_s_own(local, service, operation, call, code) -> None:
    # Given a throttle on one call, twice
    fault = local.cloud.faults.add(Fault(service, operation, times=2))
    try:
        aws = client(local, service)
        # When the call is made, Then the first two answers are the service's throttling error
        for _ in range(2):
            with pytest.raises(ClientError) as raised:
                call(aws)
            assert raised.value.response["Error"]["Code"] == code
        # And the third is the real answer; the fault saw exactly its two requests
        call(aws)
        assert len(fault.hits) == 2 and {h.operation for h in fault.hits} == {operation}
    finally:
        local.cloud.faults.clear()


def test_botocore_standard_retries_absorb_a_short_throttle(local) -> None:
    fault = local.cloud.faults.throttle("ec2", "DescribeRegions", times=2)
    try:
        aws = client(local, "ec2", Config(retries={"total_max_attempts": 3, "mode": "standard"}))
        assert aws.describe_regions()["Regions"]
        assert len(fault.hits) == 2
    finally:
        local.cloud.faults.clear()


def test_a_fault_can_be_narrowed_to_some_requests(local) -> None:
    fault = local.cloud.faults.add(
        Fault(
            "ssm", "GetParameter", code="ParameterNotFound", where=lambda r: r.parameters.get("Name") == "/x"
        )
    )
    try:
        ssm = client(local, "ssm")
        with pytest.raises(ClientError, match="ParameterNotFound"):
            ssm.get_parameter(Name="/x")
        ssm.put_parameter(Name="/y", Value="1", Type="String", Overwrite=True)
        assert ssm.get_parameter(Name="/y")["Parameter"]["Value"] == "1"
        assert len(fault.hits) == 1
    finally:
        local.cloud.faults.clear()


def test_a_terminal_fault_is_the_service_s_refusal_and_no_retry_absorbs_it(local) -> None:
    # Given a terminal fault on one EC2 call, and a client that retries as the steps function's do
    fault = local.cloud.faults.add(terminal("ec2", "DescribeRegions"))
    try:
        aws = client(local, "ec2", Config(retries={"total_max_attempts": 3, "mode": "standard"}))
        # When it is called, Then the refusal reaches the caller after one request: not retried
        with pytest.raises(ClientError) as raised:
            aws.describe_regions()
        assert raised.value.response["Error"]["Code"] == TERMINAL["ec2"][0]
        assert len(fault.hits) == 1
    finally:
        local.cloud.faults.clear()


def test_a_hung_call_outlasts_its_caller_and_never_reaches_the_service(local) -> None:
    # Given a call held longer than its caller waits (1 s read timeout, one attempt)
    name = f"/faults/{uuid.uuid4().hex[:8]}"
    fault = local.cloud.faults.add(hang("ssm", "PutParameter", seconds=30))
    impatient = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=1)
    ssm = client(local, "ssm", impatient)
    try:
        started = time.monotonic()
        # When it is made, Then the caller times out (in about its read timeout, not the hold)
        with pytest.raises(ReadTimeoutError):
            ssm.put_parameter(Name=name, Value="1", Type="String")
        assert time.monotonic() - started < 10
    finally:
        # And clearing the faults frees the held request at once
        local.cloud.faults.clear()
    # And the service never acted on it
    with pytest.raises(ClientError, match="ParameterNotFound"):
        client(local, "ssm").get_parameter(Name=name)
    assert len(fault.hits) == 1


def _invoke(local: DeployedCloud, payload: dict[str, Any]) -> dict[str, Any]:
    answer = client(local, "lambda").invoke(
        FunctionName=local.stack.outputs["EchoFunctionName"], Payload=json.dumps(payload).encode()
    )
    return {"error": answer.get("FunctionError"), "payload": json.loads(answer["Payload"].read())}


def _echoed(local: DeployedCloud, ident: str) -> bool:
    item = client(local, "dynamodb").get_item(
        TableName=local.stack.outputs["AuditTableName"],
        Key={"pk": {"S": f"echo#{ident}"}, "at": {"S": "2026-01-01T00:00:00Z"}},
    )
    return "Item" in item


@pytest.mark.parametrize("after_running", [False, True])
def test_a_step_raises_as_lambda_reports_an_unhandled_error(local, after_running) -> None:
    # Given the function raises when the state "Act" invokes it (before or after doing its work)
    fault = local.cloud.faults.add(step_raises("Act", after_running=after_running))
    try:
        ident = uuid.uuid4().hex
        # When another state invokes it, Then it works
        assert _invoke(local, {"id": f"{ident}-other", "state": {"name": "Other"}})["error"] is None
        # When "Act" invokes it, Then Lambda's unhandled-error answer names the error
        answer = _invoke(local, {"id": ident, "state": {"name": "Act"}})
        assert answer["error"] == "Unhandled"
        assert answer["payload"]["errorType"] == "RuntimeError"
        # And its work happened only when it raised after running
        assert _echoed(local, ident) is after_running
        assert len(fault.hits) == 1
    finally:
        local.cloud.faults.clear()
