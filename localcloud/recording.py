"""Recording of every AWS request the local cloud serves.

moto already funnels each server-mode request through ``moto.moto_api.recorder._record_request``
(its own file-based recorder, off by default). We hook that single point so requests from the test
process, from in-process Lambda handlers and from the Step Functions interpreter (which calls back
into the server over HTTP) are all seen, then decode them with botocore's service models into
(service, operation, parameters).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import botocore.session
from botocore.model import ServiceModel

# SigV4 signing names that differ from botocore service names (the ones this project talks to).
_SIGNING_NAME_TO_SERVICE = {
    "states": "stepfunctions",
    "monitoring": "cloudwatch",
    "email": "ses",
    "execute-api": "apigateway",
    "tagging": "resourcegroupstaggingapi",
}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True)
class RecordedRequest:
    """One AWS API call as the local cloud received it."""

    service: str
    operation: str
    parameters: dict[str, Any]
    time: float
    method: str = ""
    path: str = ""


@dataclass(eq=False)  # compared by identity: each LocalCloud has its own
class RequestLog:
    """Thread-safe, in-memory sink; server threads append while tests read."""

    _entries: list[RecordedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._entries)

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


@cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _service_model(service: str) -> ServiceModel | None:
    try:
        return _botocore_session().get_service_model(service)
    except Exception:  # unknown to botocore: record the raw path instead of failing the request
        return None


@dataclass(frozen=True)
class _Route:
    method: str
    path: re.Pattern[str]
    query_keys: frozenset[str]  # literal sub-resources such as S3's ``?tagging``
    required_headers: frozenset[str]  # e.g. S3 CopyObject is PutObject plus x-amz-copy-source
    operation: str
    payload_member: str | None  # the body is this one member (Lambda Invoke's Payload), not the params


@cache
def _rest_routes(service: str) -> list[_Route]:
    """Routes of a REST service, most specific first."""
    model = _service_model(service)
    if model is None:
        return []
    routes = []
    for name in model.operation_names:
        op = model.operation_model(name)
        uri, _, query = op.http.get("requestUri", "/").partition("?")
        pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", re.escape(uri))
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
        keys = frozenset(part.split("=", 1)[0] for part in query.split("&") if part)
        shape = op.input_shape
        required = frozenset(
            shape.members[m].serialization.get("name", m).lower()
            for m in (shape.required_members if shape is not None else [])
            if shape is not None and shape.members[m].serialization.get("location") == "header"
        )
        payload = shape.serialization.get("payload") if shape is not None else None
        routes.append(
            _Route(op.http.get("method", "POST"), re.compile(f"^{pattern}/?$"), keys, required, name, payload)
        )
    routes.sort(
        key=lambda r: (-len(r.query_keys), -len(r.required_headers), -len(r.path.pattern), r.operation)
    )
    return routes


def _match_rest(
    service: str, method: str, path: str, query: dict[str, str], headers: dict[str, str]
) -> tuple[_Route, dict[str, str]] | None:
    """The first route the request fits, with its URI parameters."""
    present = {h.lower() for h in headers}
    for route in _rest_routes(service):
        if route.method != method or not route.query_keys.issubset(query):
            continue
        match = route.path.match(path) if route.required_headers.issubset(present) else None
        if match:
            return route, match.groupdict()
    return None


def _service_from_headers(headers: dict[str, str]) -> str:
    match = _CREDENTIAL_SCOPE.search(headers.get("Authorization", ""))
    signing = match.group(1) if match else "unknown"
    return _SIGNING_NAME_TO_SERVICE.get(signing, signing)


def _json_or_empty(body: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {"body": decoded}


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # binary bodies (S3 objects) are summarised, not stored
        return f"<{len(body)} bytes>"


def decode_request(
    method: str, raw_url: str, headers: dict[str, str], body: bytes, now: float
) -> RecordedRequest:
    """Turn one HTTP request into (service, operation, parameters), whatever the AWS protocol."""
    service = _service_from_headers(headers)
    parts = urlsplit(raw_url)
    path = unquote(parts.path) or "/"
    target = headers.get("X-Amz-Target", "")
    if target:  # json protocol: DynamoDB, Step Functions, EventBridge, SQS (json), SSM, Logs...
        return RecordedRequest(service, target.rsplit(".", 1)[-1], _json_or_empty(body), now, method, path)
    form = dict(parse_qsl(body.decode("utf-8", "replace"))) if body else {}
    form.update(parse_qsl(parts.query))
    if "Action" in form:  # query protocol: SNS, IAM, EC2, RDS, CloudFormation, CloudWatch...
        action = form.pop("Action")
        form.pop("Version", None)
        return RecordedRequest(service, action, form, now, method, path)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    matched = _match_rest(service, method, path, query, headers)
    if matched is not None:
        route, uri_params = matched
        params: dict[str, Any] = {**query, **uri_params}
        if route.payload_member and body:
            params[route.payload_member] = _json_or_text(body)
        elif headers.get("Content-Type", "").startswith("application/json"):
            params.update(_json_or_empty(body))
        return RecordedRequest(service, route.operation, params, now, method, path)
    return RecordedRequest(service, f"{method} {path}", dict(parse_qsl(parts.query)), now, method, path)


def read_body(request: Any) -> bytes:
    """Read the WSGI body and put it back, exactly as moto's own recorder does."""
    try:
        size = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return b""
    if size <= 0:
        return b""
    body = request.environ["wsgi.input"].read(size)
    if isinstance(body, str):
        body = body.encode("utf-8")
    request.environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)


_sinks: list[RequestLog] = []
_patched = False


def install(log: RequestLog) -> None:
    """Route moto's recorder hook into ``log`` too (moto serves every request of the process)."""
    global _patched
    from moto.moto_api._internal.recorder.models import Recorder

    if not _patched:
        original: Callable[..., None] = Recorder._record_request

        def _record_request(self: Recorder, request: Any, body: bytes | None = None) -> None:
            sinks = list(_sinks)
            if sinks and not request.raw_path.startswith("/moto-api"):
                raw = body if isinstance(body, bytes) else read_body(request)
                headers = {k: v for k, v in request.headers.items()}
                # Recording must never break the request it observes.
                with contextlib.suppress(Exception):
                    entry = decode_request(request.method, request.raw_url, headers, raw, time.time())
                    for sink in sinks:
                        sink.append(entry)
            original(self, request, body)

        Recorder._record_request = _record_request  # type: ignore[method-assign]
        _patched = True
    if log not in _sinks:
        _sinks.append(log)


def uninstall(log: RequestLog) -> None:
    if log in _sinks:
        _sinks.remove(log)
