"""AWS errors leave a step with a stable name: retryable for throttling/5xx/timeouts, terminal otherwise."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError, ReadTimeoutError

from selfheal.aws_errors import from_botocore_error, from_client_error, named_aws_errors
from selfheal.errors import (
    AccessDenied,
    AwsCallFailed,
    AwsCallRejected,
    InvalidRequest,
    RetryableError,
    UnknownResource,
)


def client_error(code: str, status: int = 400, operation: str = "DescribeInstances") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@pytest.mark.parametrize(
    "code,status,named",
    [
        ("RequestLimitExceeded", 503, AwsCallFailed),  # EC2
        ("Throttling", 400, AwsCallFailed),  # RDS, Auto Scaling, Route 53, CloudWatch
        ("ThrottlingException", 400, AwsCallFailed),
        ("RequestThrottled", 403, AwsCallFailed),  # SQS
        ("PriorRequestNotComplete", 400, AwsCallFailed),  # Route 53
        ("ProvisionedThroughputExceededException", 400, AwsCallFailed),  # DynamoDB
        ("SomethingBroke", 500, AwsCallFailed),  # any 5xx
        ("InvalidInstanceID.NotFound", 400, UnknownResource),
        ("DBInstanceNotFound", 404, UnknownResource),
        ("NoSuchHostedZone", 404, UnknownResource),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, UnknownResource),
        ("AccessDenied", 403, AccessDenied),
        ("UnauthorizedOperation", 403, AccessDenied),
        ("InvalidParameterValue", 400, InvalidRequest),
        ("ValidationError", 400, InvalidRequest),
        ("IncorrectInstanceState", 400, AwsCallRejected),
    ],
)
def test_from_client_error_names_each_kind(code: str, status: int, named: type) -> None:
    error = from_client_error(client_error(code, status))
    assert type(error) is named
    assert error.details["code"] == code and error.details["operation"] == "DescribeInstances"
    assert code in error.message


def test_only_transient_errors_are_retryable() -> None:
    assert isinstance(from_client_error(client_error("Throttling")), RetryableError)
    assert not isinstance(from_client_error(client_error("AccessDenied", 403)), RetryableError)
    assert isinstance(from_botocore_error(EndpointConnectionError(endpoint_url="http://x")), AwsCallFailed)
    assert isinstance(from_botocore_error(ReadTimeoutError(endpoint_url="http://x")), AwsCallFailed)
    assert isinstance(from_botocore_error(ParamValidationError(report="bad")), InvalidRequest)


def test_named_aws_errors_wraps_with_the_original_as_cause() -> None:
    original = client_error("Throttling")
    with pytest.raises(AwsCallFailed) as raised, named_aws_errors():
        raise original
    assert raised.value.__cause__ is original


def test_named_aws_errors_leaves_other_errors_alone() -> None:
    with pytest.raises(KeyError), named_aws_errors():
        raise KeyError("x")
