"""AWS errors as selfheal's named errors.

Every step runs inside ``named_aws_errors()``: a botocore error that a runbook did not handle itself
leaves the step as one of a few stable names the state machines match exactly. Throttling, 5xx and
timeouts become ``AwsCallFailed``, the one retryable error the ASL's retry policy names; the rest
are terminal: ``UnknownResource``, ``AccessDenied``, ``InvalidRequest``, else ``AwsCallRejected``.
The clients already retried transient errors (botocore's standard retry mode, ``selfheal.clients``);
what reaches this module is what they could not absorb.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    ReadTimeoutError,
)

from selfheal.errors import (
    AccessDenied,
    AwsCallFailed,
    AwsCallRejected,
    ConfigurationError,
    InvalidRequest,
    SelfhealError,
    UnknownResource,
)

# Error codes AWS uses for "slow down" or "try again" (botocore's standard retry mode's list, plus the
# 5xx-style codes services return with a 4xx status).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "UnauthorizedOperation",
        "AuthFailure",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "SignatureDoesNotMatch",
        "NotAuthorized",
    }
)
INVALID_REQUEST_CODES = frozenset(
    {
        "ValidationError",
        "ValidationException",
        "InvalidInput",
        "MissingParameter",
        "InvalidRequest",
        "InvalidAction",
        "MalformedQueryString",
        "SerializationException",
    }
)
_TRANSIENT_BOTOCORE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError)


def _is_not_found(code: str) -> bool:
    return (
        "NotFound" in code
        or code.startswith("NoSuch")
        or "DoesNotExist" in code
        or "NonExistent" in code  # SQS: AWS.SimpleQueueService.NonExistentQueue
    )


def from_client_error(exc: ClientError) -> SelfhealError:
    """The named error for an error AWS answered with (pure)."""
    error: dict[str, Any] = dict(exc.response.get("Error") or {})
    meta: dict[str, Any] = dict(exc.response.get("ResponseMetadata") or {})
    code = str(error.get("Code") or "Unknown")
    status = int(meta.get("HTTPStatusCode") or 0)
    operation = exc.operation_name
    details = {"operation": operation, "code": code, "status": status}
    message = f"{operation}: {code}: {error.get('Message') or exc}"
    if code in TRANSIENT_CODES or status >= 500:
        return AwsCallFailed(f"{message} (retryable)", **details)
    if _is_not_found(code):
        return UnknownResource(message, **details)
    if code in ACCESS_DENIED_CODES:
        return AccessDenied(message, **details)
    if code in INVALID_REQUEST_CODES or code.startswith(("InvalidParameter", "Invalid")):
        return InvalidRequest(message, **details)
    return AwsCallRejected(message, **details)


def from_botocore_error(exc: BotoCoreError) -> SelfhealError:
    """The named error for a failure before AWS answered (pure)."""
    what = type(exc).__name__
    if isinstance(exc, _TRANSIENT_BOTOCORE):
        return AwsCallFailed(f"{what}: {exc} (retryable)", code=what)
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(f"{what}: {exc}", code=what)
    if isinstance(exc, NoCredentialsError | NoRegionError):
        return ConfigurationError(f"{what}: {exc}", code=what)
    return AwsCallRejected(f"{what}: {exc}", code=what)


@contextmanager
def named_aws_errors() -> Iterator[None]:
    """Re-raise botocore errors as named errors (``raise ... from``: the original stays the cause)."""
    try:
        yield
    except ClientError as exc:
        raise from_client_error(exc) from exc
    except BotoCoreError as exc:
        raise from_botocore_error(exc) from exc
