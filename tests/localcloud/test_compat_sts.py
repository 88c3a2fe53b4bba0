"""The local STS checks a GetCallerIdentity signature as AWS does (localcloud.compat_sts)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud.harness import DeployedCloud
from selfheal.errors import Unauthenticated
from selfheal.identity import binding, prove, verify
from selfheal.models import utcnow


def _as(local: DeployedCloud, key_id: str, secret: str) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    )


def _user(local: DeployedCloud, name: str) -> tuple[str, dict[str, str]]:
    iam = local.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    return arn, iam.create_access_key(UserName=name)["AccessKey"]


def test_a_request_signed_with_the_users_secret_is_the_user(local: DeployedCloud) -> None:
    arn, key = _user(local, "sts-alice")
    sts = _as(local, key["AccessKeyId"], key["SecretAccessKey"]).client("sts", endpoint_url=local.endpoint)
    assert sts.get_caller_identity()["Arn"] == arn
    bound = binding("selfheal-request", {"runbook": "remap-eip"})
    assert verify(prove(sts, bound), bound, local.endpoint, utcnow()) == arn


def test_a_known_key_with_the_wrong_secret_is_refused(local: DeployedCloud) -> None:
    _, key = _user(local, "sts-mallory-target")
    forger = _as(local, key["AccessKeyId"], "not-the-secret").client("sts", endpoint_url=local.endpoint)
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        forger.get_caller_identity()
    bound = binding("selfheal-request", {"runbook": "remap-eip"})
    with pytest.raises(Unauthenticated, match="SignatureDoesNotMatch"):
        verify(prove(forger, bound), bound, local.endpoint, utcnow())


def test_the_local_clouds_own_key_is_its_default_user(local: DeployedCloud) -> None:
    assert local.client("sts").get_caller_identity()["Arn"].endswith(":user/moto")
