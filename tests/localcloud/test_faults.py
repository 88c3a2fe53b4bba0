"""localcloud.faults: a chosen call answers with an AWS error in its service's protocol, as many
times as asked, then works again; botocore reads the error as it would read AWS's."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from localcloud.faults import Fault
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
