"""Faults the local cloud injects into chosen AWS calls, answered as AWS would answer them.

A fault names a service and an operation (and may narrow it with a test on the decoded parameters);
the next ``times`` matching requests get an AWS error in that service's protocol instead of an
answer: throttling by default. Every caller goes through the same server (a test, an in-process
Lambda step, the Step Functions interpreter's SDK tasks), so a fault hits whoever makes the call,
and botocore's retries see it as they would see AWS's.

The kinds (constructors below): ``throttling``; ``terminal`` (an error that says the call was refused
and trying again will not help); ``hang`` (a call that never answers); ``step_raises`` (the steps
function's handler raises, as Lambda reports an unhandled error). An execution stopped half-way is
no fault of a call: ``localcloud.ops.stop_at`` stops it while it waits at a chosen state.
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
# A refusal per service that no retry absorbs: the call was not made (code, HTTP status).
TERMINAL = {
    "ec2": ("UnauthorizedOperation", 403),
    "autoscaling": ("ValidationError", 400),
    "elbv2": ("InvalidTarget", 400),
    "rds": ("InvalidDBInstanceState", 400),
    "route53": ("InvalidChangeBatch", 400),
    "sqs": ("AccessDenied", 403),
}
DEFAULT_TERMINAL = ("AccessDenied", 403)
# botocore's name -> the signing name a request is recorded under, where the two differ.
SIGNED_AS = {"elbv2": "elasticloadbalancing"}
# What a held request answers once its hold is over: its caller gave up long before (a read timeout, a
# state's TimeoutSeconds), so nobody reads it; it must only not be a success.
HANG_ANSWER = ("RequestTimeout", 504)


@dataclass(eq=False)
class Fault:
    service: str  # botocore's name: ec2, autoscaling, rds, route53, sqs, elbv2...
    operation: str  # DescribeInstances
    code: str = ""  # default: the service's throttling code
    status: int = 0
    message: str = "Rate exceeded (injected by the local cloud)"
    times: int = 1
    where: Callable[[RecordedRequest], bool] | None = None
    # Seconds the server holds the request before it answers: longer than the caller waits, it is a
    # call that never answers. What is emulated: the request never reaches moto (the service did not
    # act) and the held answer is the error above; a call that acts and answers too late is not.
    hold: float = 0.0
    # Lambda Invoke only: answer as Lambda does when the handler raised (200, X-Amz-Function-Error:
    # Unhandled, the error as the payload), errorType ``code``.
    function_error: bool = False
    # Serve the request first (its effects happen), then answer the fault: a step that raised after
    # it had written its row, a call that acted but whose answer was lost.
    serve_first: bool = False
    hits: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        throttled = THROTTLING.get(self.service, DEFAULT_THROTTLING)
        self.code = self.code or throttled[0]
        self.status = self.status or throttled[1]

    def matches(self, request: RecordedRequest) -> bool:
        return (
            len(self.hits) < self.times
            and request.service == SIGNED_AS.get(self.service, self.service)
            and request.operation == self.operation
            and (self.where is None or self.where(request))
        )


def throttling(service: str, operation: str, times: int = 1, **narrow: Any) -> Fault:
    return Fault(service, operation, times=times, **narrow)


def terminal(service: str, operation: str, times: int = 1, **narrow: Any) -> Fault:
    """The service's refusal (``TERMINAL``): the call was not made, and asking again will not help."""
    code, status = TERMINAL.get(service, DEFAULT_TERMINAL)
    message = "Refused (injected by the local cloud)"
    return Fault(service, operation, code=code, status=status, message=message, times=times, **narrow)


def hang(service: str, operation: str, seconds: float, times: int = 1, **narrow: Any) -> Fault:
    """No answer for ``seconds`` (then an error nobody waits for). To read as "never answers", make
    it longer than the caller waits: a Step Functions state's TimeoutSeconds (moto's interpreter gives
    its SDK clients no read timeout of their own), or a botocore client's read timeout times its
    attempts (the steps function's clients: ``selfheal.clients``, 3 x 10 s)."""
    code, status = HANG_ANSWER
    message = "No answer (injected by the local cloud)"
    return Fault(
        service, operation, code=code, status=status, message=message, times=times, hold=seconds, **narrow
    )


def step_raises(
    state: str, *, after_running: bool = False, error: str = "RuntimeError", times: int = 1
) -> Fault:
    """The steps function raises when a state machine's ``state`` invokes it (the Lambda Invoke whose
    payload names that state): before its handler ran (nothing it would do happens), or, with
    ``after_running``, once it has done its work (its row written, then a crash)."""

    def invoked_by(request: RecordedRequest) -> bool:
        payload = request.parameters.get("Payload")
        return isinstance(payload, dict) and (payload.get("state") or {}).get("name") == state

    return Fault(
        "lambda",
        "Invoke",
        code=error,
        status=200,
        message=f"injected by the local cloud in {state!r}",
        times=times,
        where=invoked_by,
        function_error=True,
        serve_first=after_running,
    )


@dataclass(eq=False)
class FaultInjector:
    _faults: list[Fault] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set by clear(): requests still held by a hang answer at once (a test's end frees its threads).
    _released: threading.Event = field(default_factory=threading.Event)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._released.clear()
            self._faults.append(fault)
        return fault

    def throttle(self, service: str, operation: str, times: int = 1) -> Fault:
        return self.add(Fault(service, operation, times=times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self._released.set()

    def hold(self, fault: Fault) -> None:
        """Wait out the fault's hold (or until the faults are cleared)."""
        if fault.hold > 0:
            self._released.wait(fault.hold)

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
    if fault.function_error:
        headers = {"Content-Type": "application/json", "X-Amz-Function-Error": "Unhandled"}
        payload = {"errorMessage": fault.message, "errorType": fault.code, "stackTrace": []}
        return 200, {**headers, "x-amzn-RequestId": request_id}, json.dumps(payload)
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
                            if fault.serve_first:
                                original(self, args, **kwargs)
                            injector.hold(fault)
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
