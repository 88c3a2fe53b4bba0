"""selfheal.identity: a proof of who sent a request (a signed GetCallerIdentity), no network."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from selfheal.errors import Unauthenticated
from selfheal.identity import BINDING_HEADER, BODY, MANUAL_REQUEST, binding, check_shape, prove, verify
from selfheal.models import utcnow

ARN = "arn:aws:iam::123456789012:user/alice"
ENDPOINT = "https://sts.us-east-1.amazonaws.com"


def _sts() -> Any:
    session = boto3.Session(aws_access_key_id="AKIAEXAMPLEKEY123456", aws_secret_access_key="s3cr3t")
    return session.client("sts", region_name="us-east-1", endpoint_url=ENDPOINT)


class FakeHttp:
    """What urllib3 would return from STS; records the one request selfheal sends."""

    def __init__(self, status: int = 200, body: str | None = None) -> None:
        self.status = status
        self.body = body or (
            "<GetCallerIdentityResponse><GetCallerIdentityResult>"
            f"<Arn>{ARN}</Arn><UserId>AIDA</UserId><Account>123456789012</Account>"
            "</GetCallerIdentityResult></GetCallerIdentityResponse>"
        )
        self.sent: list[dict[str, Any]] = []

    def request(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
        self.sent.append({"method": method, "url": url, "body": body, "headers": headers})
        return SimpleNamespace(status=self.status, data=self.body.encode())


def test_a_proof_is_signed_without_being_sent_and_names_what_it_is_for():
    bound = binding(MANUAL_REQUEST, {"runbook": "remap-eip", "target": {"instanceId": "i-1"}})
    proof = prove(_sts(), bound)
    assert set(proof) == {"Authorization", "X-Amz-Date", BINDING_HEADER}
    assert proof[BINDING_HEADER] == bound
    assert "x-selfheal-request" in proof["Authorization"] and "s3cr3t" not in str(proof)


def test_verify_sends_the_proof_only_to_the_stacks_sts_and_returns_whom_sts_names():
    bound = binding(MANUAL_REQUEST, {"a": 1})
    http = FakeHttp()
    assert verify(prove(_sts(), bound), bound, ENDPOINT, utcnow(), http=http) == ARN
    [sent] = http.sent
    assert (sent["method"], sent["url"], sent["body"]) == ("POST", ENDPOINT + "/", BODY)


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda p: {**p, BINDING_HEADER: binding(MANUAL_REQUEST, {"a": 2})}, "signed for another request"),
        (lambda p: {**p, "Host": "evil.example"}, "may only carry"),
        (lambda p: {k: v for k, v in p.items() if k != "X-Amz-Date"}, "lacks X-Amz-Date"),
        (
            lambda p: {**p, "Authorization": p["Authorization"].replace("x-selfheal-request", "x-other")},
            "sign",
        ),
        (lambda p: {**p, "Authorization": "Bearer x"}, "not a SigV4 signature"),
        (lambda p: {**p, "X-Amz-Date": "yyyy-mm-ddThh:mm:ssZ"}, "not a SigV4 date"),
        (lambda p: "not a mapping", "must be an object"),
        (lambda p: {**p, "X-Amz-Date": p["X-Amz-Date"] + "\r\nX-Evil: 1"}, "control character"),
    ],
)
def test_a_proof_that_does_not_hold_is_refused_before_sts_is_asked(tamper, why):
    bound = binding(MANUAL_REQUEST, {"a": 1})
    http = FakeHttp()
    with pytest.raises(Unauthenticated, match=why):
        verify(tamper(prove(_sts(), bound)), bound, ENDPOINT, utcnow(), http=http)
    assert http.sent == []


def test_a_stale_proof_is_refused():
    bound = binding(MANUAL_REQUEST, {"a": 1})
    proof = prove(_sts(), bound)
    with pytest.raises(Unauthenticated, match="sign a new one"):
        check_shape(proof, bound, utcnow() + timedelta(minutes=6))


def test_sts_refusing_the_signature_is_a_named_error():
    bound = binding(MANUAL_REQUEST, {"a": 1})
    http = FakeHttp(403, "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>")
    with pytest.raises(Unauthenticated, match=r"STS refused the proof \(SignatureDoesNotMatch\)"):
        verify(prove(_sts(), bound), bound, ENDPOINT, utcnow(), http=http)
    with pytest.raises(Unauthenticated, match="names no caller"):
        verify(prove(_sts(), bound), bound, ENDPOINT, utcnow(), http=FakeHttp(200, "<x><Arn>nope</Arn></x>"))
