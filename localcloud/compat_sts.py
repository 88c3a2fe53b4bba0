"""STS GetCallerIdentity that checks the request's signature, as AWS does.

moto 5.2.5 answers GetCallerIdentity with the user that owns the access key id in the Authorization
header and never checks the signature: anyone who knows a key id (it is not a secret) would be taken
for its owner. selfheal's authenticated paths (``selfheal.identity``) rest on STS verifying a
signed GetCallerIdentity request, so the local cloud must refuse a forged one: for a key moto issued
(an IAM user's access key, an assumed role's credentials) the SigV4 signature is computed again with
that key's secret and must match; a mismatch is ``SignatureDoesNotMatch`` (403), as from AWS.

A key moto did not issue (the local cloud's ``testing`` key) keeps moto's answer, the default user
``arn:aws:sts::<account>:user/moto``: the local administrator, not anyone in particular.
Pinned to moto 5.2.5 with every patch (localcloud.patches).
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from localcloud.patches import patch

_CREDENTIAL = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[^,]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


def _secret_of(access_key_id: str, account_id: str, partition: str) -> tuple[str, str | None] | None:
    """(secret, session token) of a key moto issued, else None."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    sts = sts_backends[account_id][partition]
    role = sts.get_assumed_role_from_access_key(access_key_id)
    if role is not None:
        return role.secret_access_key, role.session_token
    for backends in iam_backends.values():
        iam = backends.get(partition)
        if iam is None:
            continue
        user = iam.get_user_from_access_key_id(access_key_id)
        if user is not None:
            for key in user.access_keys:
                if key.access_key_id == access_key_id:
                    return key.secret_access_key, None
    return None


def expected_signature(
    method: str, url: str, headers: dict[str, str], body: bytes, secret: str, token: str | None
) -> str | None:
    """The SigV4 signature AWS would compute for this request, over the headers it says it signed."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    lowered = {k.lower(): v for k, v in headers.items()}
    match = _CREDENTIAL.match(lowered.get("authorization", ""))
    if match is None or "x-amz-date" not in lowered:
        return None
    signed = match["signed"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: lowered[name] for name in signed if name in lowered}
    )
    request.context["timestamp"] = lowered["x-amz-date"]
    auth = SigV4Auth(Credentials(match["key"], secret, token), match["service"], match["region"])
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def _body(response: Any) -> bytes:
    """The request body as signed. The server has parsed a form body into ``querystring`` (and left
    ``body`` empty): put it back in the order it came, as botocore encoded it."""
    from urllib.parse import quote, urlencode

    raw = response.body if isinstance(response.body, bytes) else (response.body or "").encode()
    if raw:
        return raw
    pairs = [(k, v) for k, values in response.querystring.items() for v in values]
    return urlencode(pairs, quote_via=quote, safe="-_.~").encode()


@patch("sts-caller-identity-signature")
def patch_get_caller_identity_signature() -> None:
    """moto's GetCallerIdentity never checks the signature: check it for keys moto issued."""
    from moto.sts import responses as sts_responses

    TokenResponse: Any = sts_responses.TokenResponse
    original = TokenResponse.get_caller_identity

    def get_caller_identity(self: Any) -> Any:
        headers = dict(self.headers.items())
        match = _CREDENTIAL.match(str(headers.get("Authorization") or headers.get("authorization") or ""))
        if match is not None:
            partition = "aws"
            issued = _secret_of(match["key"], self.current_account, partition)
            if issued is not None:
                secret, token = issued
                body = _body(self)
                # The scheme is not signed (the host is); the local server speaks http.
                url = f"http://{headers.get('Host', headers.get('host', ''))}{self.path}"
                wanted = expected_signature(self.method, url, headers, body, secret, token)
                if wanted is None or not hmac.compare_digest(wanted, match["signature"]):
                    from moto.sts.exceptions import STSClientError

                    raise STSClientError(
                        "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature you provided.",
                    )
        return original(self)

    TokenResponse.get_caller_identity = get_caller_identity
