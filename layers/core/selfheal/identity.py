"""Who is asking, as AWS says it: a signed ``sts:GetCallerIdentity`` request, bound to one request.

A request body can claim anything about its author; EventBridge does not say who put an event, and
``SendTaskSuccess`` output is whatever the caller wrote. So an authenticated request carries a
*proof*: the headers of a GetCallerIdentity request its author signed with their own credentials
(SigV4), with one extra signed header, ``X-Selfheal-Request``, naming what the proof is for (a
purpose and the digest of the request body). selfheal sends that request to STS itself: STS checks
the signature and answers with the caller's ARN. This is the scheme of HashiCorp Vault's AWS IAM
auth method and of aws-iam-authenticator.

What a proof cannot be used for:
- another request: the signed ``X-Selfheal-Request`` must equal the digest of the body it comes with;
- another endpoint: selfheal sends it only to its own STS endpoint (the proof carries headers only,
  never a URL);
- later: its ``X-Amz-Date`` must be within ``MAX_AGE`` of now (STS itself allows 15 minutes).

A proof holds no secret key; it may hold the caller's session token (useless without the secret), and
it is never written to the audit trail or logs: only the ARN STS returned is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from selfheal.errors import Unauthenticated
from selfheal.models import input_digest

BINDING_HEADER = "X-Selfheal-Request"
# What a proof may be for: a manual request on the bus, an answer to a pending approval.
MANUAL_REQUEST = "selfheal-request"
APPROVAL_ANSWER = "selfheal-approval"
MAX_AGE = timedelta(minutes=5)
# The only headers a proof may carry (compared case-insensitively); the rest of the request is fixed.
PROOF_HEADERS = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", BINDING_HEADER)
REQUIRED_SIGNED = ("host", "x-amz-date", BINDING_HEADER.lower())
BODY = b"Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
MAX_HEADER_CHARS = 4096
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]{1,128}/\d{8}/[a-z0-9-]{1,32}/sts/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]{1,512}),\s*Signature=[0-9a-f]{64}$"
)
_ARN = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:[\w+=,.@/-]{1,512}$")


def binding(purpose: str, body: Any) -> str:
    """What a proof says it is for: ``<purpose> sha256:<digest of the body>``."""
    return f"{purpose} {input_digest(body)}"


class _Captured(Exception):
    """Raised from botocore's before-send hook: the signed request is kept, never sent."""


def prove(sts: Any, bound_to: str) -> dict[str, str]:
    """Sign a GetCallerIdentity request with ``sts``'s credentials, bound to ``bound_to``, and return
    its headers without sending it (the client side: ``selfheal trigger``, ``selfheal approve``).
    ``sts`` must talk to the endpoint the stack's STS client uses (the same region, or the local cloud)."""
    captured: dict[str, str] = {}

    def add_binding(request: Any, **_: Any) -> None:
        request.headers[BINDING_HEADER] = bound_to  # added before signing: SigV4 then signs it

    def capture(request: Any, **_: Any) -> None:
        for name, value in request.headers.items():
            if name.lower() in {h.lower() for h in PROOF_HEADERS}:
                captured[name] = value.decode() if isinstance(value, bytes) else str(value)
        raise _Captured

    events = sts.meta.events
    events.register_first("before-sign.sts.GetCallerIdentity", add_binding)
    events.register_first("before-send.sts.GetCallerIdentity", capture)
    try:
        sts.get_caller_identity()
    except _Captured:
        pass
    finally:
        events.unregister("before-sign.sts.GetCallerIdentity", add_binding)
        events.unregister("before-send.sts.GetCallerIdentity", capture)
    if "Authorization" not in captured:
        raise Unauthenticated("could not sign the proof: no credentials?")
    return captured


def _headers(proof: Any) -> dict[str, str]:
    if not isinstance(proof, Mapping) or not proof:
        raise Unauthenticated("the proof must be an object of signed request headers")
    allowed = {h.lower(): h for h in PROOF_HEADERS}
    headers: dict[str, str] = {}
    for name, value in proof.items():
        if not isinstance(name, str) or name.lower() not in allowed:
            raise Unauthenticated(f"the proof may only carry {', '.join(PROOF_HEADERS)}; not {name!r}")
        if not isinstance(value, str) or not value or len(value) > MAX_HEADER_CHARS:
            raise Unauthenticated(f"proof header {name} must be a non-empty string")
        if any(c in value for c in "\r\n\0"):
            raise Unauthenticated(f"proof header {name} holds a control character")
        headers[allowed[name.lower()]] = value
    for needed in ("Authorization", "X-Amz-Date", BINDING_HEADER):
        if needed not in headers:
            raise Unauthenticated(f"the proof lacks {needed}")
    return headers


def check_shape(proof: Any, bound_to: str, now: datetime) -> dict[str, str]:
    """Everything about a proof that can be checked without asking STS; returns its headers."""
    headers = _headers(proof)
    if headers[BINDING_HEADER] != bound_to:
        raise Unauthenticated("the proof was signed for another request (its X-Selfheal-Request differs)")
    match = _AUTHORIZATION.match(headers["Authorization"])
    if match is None:
        raise Unauthenticated("the proof's Authorization is not a SigV4 signature for STS")
    signed = set(match["signed"].split(";"))
    missing = [h for h in REQUIRED_SIGNED if h not in signed]
    if "X-Amz-Security-Token" in headers:
        missing += [] if "x-amz-security-token" in signed else ["x-amz-security-token"]
    if missing:
        raise Unauthenticated(f"the proof does not sign {', '.join(missing)}")
    try:
        signed_at = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise Unauthenticated("the proof's X-Amz-Date is not a SigV4 date") from exc
    if abs(now - signed_at) > MAX_AGE:
        raise Unauthenticated(
            f"the proof was signed at {signed_at:%Y-%m-%dT%H:%M:%SZ}, more than"
            f" {int(MAX_AGE.total_seconds())} s from now: sign a new one"
        )
    return headers


def verify(proof: Any, bound_to: str, sts_endpoint: str, now: datetime, http: Any = None) -> str:
    """The ARN of whoever signed ``proof`` for ``bound_to``, as STS answers; ``Unauthenticated``
    otherwise. ``sts_endpoint`` is this stack's own (``clients.sts.meta.endpoint_url``)."""
    headers = check_shape(proof, bound_to, now)
    if http is None:
        import urllib3

        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=3.0, read=5.0), retries=False)
    try:
        response = http.request(
            "POST",
            sts_endpoint.rstrip("/") + "/",
            body=BODY,
            headers={**headers, "Content-Type": CONTENT_TYPE},
        )
    except Exception as exc:  # a network error is not a verdict on the caller: name it, don't guess
        raise Unauthenticated(f"could not reach STS to check the proof: {type(exc).__name__}") from exc
    text = response.data.decode("utf-8", "replace")
    if response.status != 200:
        code = re.search(r"<Code>([^<]{1,64})</Code>", text)
        raise Unauthenticated(f"STS refused the proof ({code[1] if code else response.status})")
    from xml.etree import ElementTree  # only when a proof is checked: not at every cold start

    try:
        arn = next((e.text for e in ElementTree.fromstring(text).iter() if e.tag.endswith("Arn")), None)
    except ElementTree.ParseError as exc:
        raise Unauthenticated("STS's answer could not be read") from exc
    if not arn or not _ARN.match(arn):
        raise Unauthenticated("STS's answer names no caller")
    return arn
