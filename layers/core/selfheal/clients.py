"""AWS clients, created lazily and only when first used.

One ``Clients`` per invocation. The target's account and region are carried so a later
cross-account version can hand out clients from an assumed-role session instead.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

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

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self.session.client("dynamodb")

    @cached_property
    def ec2(self) -> EC2Client:
        return self.session.client("ec2")

    @cached_property
    def ssm(self) -> SSMClient:
        return self.session.client("ssm")

    @cached_property
    def sns(self) -> SNSClient:
        return self.session.client("sns")

    @cached_property
    def events(self) -> EventBridgeClient:
        return self.session.client("events")

    @cached_property
    def stepfunctions(self) -> SFNClient:
        return self.session.client("stepfunctions")

    @cached_property
    def sqs(self) -> SQSClient:
        return self.session.client("sqs")

    @cached_property
    def rds(self) -> RDSClient:
        return self.session.client("rds")

    # No stubs installed for these (requirements-dev.txt): typed as Any until they are.
    @cached_property
    def route53(self) -> Any:
        return self.session.client("route53")

    @cached_property
    def autoscaling(self) -> Any:
        return self.session.client("autoscaling")

    @cached_property
    def elbv2(self) -> Any:
        return self.session.client("elbv2")

    @cached_property
    def iam(self) -> Any:
        return self.session.client("iam")

    @cached_property
    def cloudwatch(self) -> Any:
        return self.session.client("cloudwatch")
