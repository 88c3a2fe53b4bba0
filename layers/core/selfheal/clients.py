"""AWS clients, created lazily and only when first used.

One ``Clients`` per invocation. The target's account and region are carried so a later
cross-account version can hand out clients from an assumed-role session instead.

Every client uses botocore's standard retry mode (throttling and transient errors retried with
backoff and jitter, the same on every service) and timeouts that fit in a step's Lambda timeout:
what still fails reaches ``selfheal.aws_errors`` as a named error.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

# 3 attempts of at most 5 s connect + 10 s read, plus backoff: well inside the steps function's 60 s.
RETRIES = {"mode": "standard", "total_max_attempts": 3}
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 10

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_stepfunctions import SFNClient


class Clients:
    def __init__(self, session: boto3.Session | None = None, region: str | None = None) -> None:
        self._session = session
        self._region = region

    @cached_property
    def session(self) -> boto3.Session:
        import boto3  # on first use: functions that never call AWS don't pay for it at init

        return self._session or boto3.Session(region_name=self._region)

    def client(self, service: str, region: str | None = None) -> Any:
        """A client with the project's retry mode and timeouts (``region``: another region's)."""
        from botocore.config import Config

        config = Config(
            retries=RETRIES,  # type: ignore[arg-type]
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
        )
        return self.session.client(service, region_name=region, config=config)  # type: ignore[call-overload]

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return cast("DynamoDBClient", self.client("dynamodb"))

    @cached_property
    def ec2(self) -> EC2Client:
        return cast("EC2Client", self.client("ec2"))

    @cached_property
    def ssm(self) -> SSMClient:
        return cast("SSMClient", self.client("ssm"))

    @cached_property
    def sts_endpoint(self) -> str:
        """This stack's STS endpoint (its region's, or the local cloud): where proofs are checked."""
        return str(self.client("sts").meta.endpoint_url)

    @cached_property
    def sns(self) -> SNSClient:
        return cast("SNSClient", self.client("sns"))

    @cached_property
    def events(self) -> EventBridgeClient:
        return cast("EventBridgeClient", self.client("events"))

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return cast("SFNClient", self.client("stepfunctions"))

    @cached_property
    def sqs(self) -> SQSClient:
        return cast("SQSClient", self.client("sqs"))

    @cached_property
    def rds(self) -> RDSClient:
        return cast("RDSClient", self.client("rds"))

    # No stubs installed for these (requirements-dev.txt): typed as Any until they are.
    @cached_property
    def route53(self) -> Any:
        return self.client("route53")

    @cached_property
    def autoscaling(self) -> Any:
        return self.client("autoscaling")

    @cached_property
    def elbv2(self) -> Any:
        return self.client("elbv2")

    @cached_property
    def iam(self) -> Any:
        return self.client("iam")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")
