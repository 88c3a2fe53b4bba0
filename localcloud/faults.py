"""Faults the local cloud injects into chosen AWS calls, answered as AWS would answer them.

A fault names a service and an operation (and may narrow it with a test on the decoded parameters);
the next ``times`` matching requests get an AWS error in that service's protocol instead of an
answer: throttling by default. Every caller goes through the same server (a test, an in-process
Lambda step, the Step Functions interpreter's SDK tasks), so a fault hits whoever makes the call,
and botocore's retries see it as they would see AWS's.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast
from xml.sax.saxutils import escape

import botocore.session

from localcloud.recording import RecordedRequest, decode_request, read_body

# A throttling answer per service, as each sends it (code, HTTP status).
THROTTLING = {
    "ec2": ("RequestLimitExceeded", 503),
    "sqs": ("RequestThrottled", 400),
    "dynamodb": ("ThrottlingException", 400),
}
DEFAULT_THROTTLING = ("Throttling", 400)


@dataclass(eq=False)
class Fault:
    service: str  # botocore's name: ec2, autoscaling, rds, route53, sqs, elbv2...
    operation: str  # DescribeInstances
    code: str = ""  # default: the service's throttling code
    status: int = 0
    message: str = "Rate exceeded (injected by the local cloud)"
    times: int = 1
    where: Callable[[RecordedRequest], bool] | None = None
    hits: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        throttled = THROTTLING.get(self.service, DEFAULT_THROTTLING)
        self.code = self.code or throttled[0]
        self.status = self.status or throttled[1]

    def matches(self, request: RecordedRequest) -> bool:
        return (
            len(self.hits) < self.times
            and request.service == self.service
            and request.operation == self.operation
            and (self.where is None or self.where(request))
        )


@dataclass(eq=False)
class FaultInjector:
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def throttle(self, service: str, operation: str, times: int = 1) -> Fault:
        return self.add(Fault(service, operation, times=times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def armed(self) -> bool:
        with self._lock:
            return any(len(f.hits) < f.times for f in self._faults)

    def take(self, request: RecordedRequest) -> Fault | None:
        """The fault this request meets (counted), or None."""
        with self._lock:
            fault = next((f for f in self._faults if f.matches(request)), None)
            if fault is not None:
                fault.hits.append(request)
            return fault


@cache
def _protocol(service: str) -> str:
    try:
        return str(botocore.session.get_session().get_service_model(service).protocol)
    except Exception:  # unknown to botocore: answer in the most common protocol
        return "query"


def error_response(service: str, fault: Fault) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of an AWS error answer in ``service``'s protocol."""
    request_id = str(uuid.uuid4())
    code, message = escape(fault.code), escape(fault.message)
    protocol = _protocol(service)
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
        return fault.status, {"Content-Type": "text/xml"}, body
    if protocol in ("query", "rest-xml"):
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return fault.status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": fault.code,
        # SQS (AWS query compatible): botocore takes the code from this header.
        "x-amzn-query-error": f"{fault.code};Sender",
    }
    return fault.status, headers, json.dumps({"__type": fault.code, "message": fault.message})


_injectors: list[FaultInjector] = []
_patched = False


def install(injector: FaultInjector) -> None:
    """Answer matching requests with their fault before moto sees them (moto serves every request of
    the process through ``convert_to_flask_response``)."""
    global _patched
    from moto.core import utils as moto_utils

    if not _patched:
        original: Callable[..., Any] = moto_utils.convert_to_flask_response.__call__

        def __call__(self: Any, args: Any = None, **kwargs: Any) -> Any:
            injectors = [i for i in _injectors if i.armed()]
            if injectors:
                from flask import Response
                from flask import request as flask_request

                # moto's own call does the same cast: its Flask app's request class is moto's Request.
                request = moto_utils.normalize_request(cast(Any, flask_request))
                if not request.raw_path.startswith("/moto-api"):
                    headers = dict(request.headers.items())
                    entry = decode_request(
                        request.method, request.raw_url, headers, read_body(request), time.time()
                    )
                    for injector in injectors:
                        fault = injector.take(entry)
                        if fault is not None:
                            status, answer_headers, body = error_response(entry.service, fault)
                            return Response(response=body, status=status, headers=answer_headers)
            return original(self, args, **kwargs)

        moto_utils.convert_to_flask_response.__call__ = __call__  # type: ignore[method-assign]
        _patched = True
    if injector not in _injectors:
        _injectors.append(injector)


def uninstall(injector: FaultInjector) -> None:
    if injector in _injectors:
        _injectors.remove(injector)
