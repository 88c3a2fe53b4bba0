"""The local cloud's control API: what only AWS can do to a resource, asked for over HTTP.

Most faults are caused through AWS APIs (an alarm set to ALARM, messages dead-lettered by receiving
them), but two have no API: a Route 53 health checker seeing its endpoint fail, and an RDS instance
whose storage fails. Their emulations live in the server process (``localcloud.route53``,
``localcloud.compat_rds``), and ``selfheal local break`` runs in another process, so the server
answers ``POST /_localcloud/<action>`` (a JSON body) on its own port, 127.0.0.1 only. Not an AWS
API; never deployed. The demo and the tests use the same path, so there is one way to break things.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

PREFIX = "/_localcloud/"


class ControlError(RuntimeError):
    """The local cloud refused a control request (unknown action, unknown resource, bad body)."""


# --- server side ------------------------------------------------------------------------------------


def _field(body: dict[str, Any], name: str) -> Any:
    if name not in body:
        raise ValueError(f"the body needs {name!r}")
    return body[name]


def _endpoint_health(body: dict[str, Any], region: str) -> str:
    from localcloud import route53

    health_check, healthy = str(_field(body, "healthCheckId")), _field(body, "healthy")
    if not isinstance(healthy, bool):
        raise ValueError("healthy must be true or false")
    route53.set_endpoint_health(health_check, healthy)
    return f"the checkers of {health_check} now see its endpoint {'healthy' if healthy else 'failing'}"


def _db_instance_status(body: dict[str, Any], region: str) -> str:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    from localcloud import compat_rds

    identifier, status = str(_field(body, "identifier")), str(_field(body, "status"))
    if identifier not in rds_backends[DEFAULT_ACCOUNT_ID][region].databases:
        raise KeyError(f"no DB instance {identifier} in the local cloud")
    compat_rds.inject_instance_status(DEFAULT_ACCOUNT_ID, region, identifier, status)
    return f"{identifier} is now {status}"


ACTIONS: dict[str, Callable[[dict[str, Any], str], str]] = {
    "endpoint-health": _endpoint_health,
    "db-instance-status": _db_instance_status,
}


class ControlApi:
    """WSGI middleware in front of moto's app: ``/_localcloud/...`` here, everything else to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]], region: str) -> None:
        self._app = app
        self._region = region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if not path.startswith(PREFIX):
            return self._app(environ, start_response)
        status, answer = self._answer(path.removeprefix(PREFIX), environ)
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def _answer(self, action: str, environ: dict[str, Any]) -> tuple[str, dict[str, str]]:
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", {"error": "POST a JSON body"}
        handler = ACTIONS.get(action)
        if handler is None:
            return "404 Not Found", {"error": f"no action {action!r}; known: {', '.join(sorted(ACTIONS))}"}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            return "200 OK", {"done": handler(body, self._region)}
        except KeyError as exc:  # a resource the cloud does not hold
            return "404 Not Found", {"error": str(exc).strip("'\"")}
        except ValueError as exc:
            return "400 Bad Request", {"error": str(exc)}


# --- client side ------------------------------------------------------------------------------------


class Control:
    """The control API of the local cloud at ``endpoint``."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._timeout = timeout

    def set_endpoint_health(self, health_check_id: str, healthy: bool) -> str:
        """What every Route 53 checker of this health check now observes at its endpoint."""
        return self._post("endpoint-health", {"healthCheckId": health_check_id, "healthy": healthy})

    def set_db_instance_status(self, identifier: str, status: str) -> str:
        """Put a DB instance in a status only AWS can cause (``failed``, ``storage-full``, ...)."""
        return self._post("db-instance-status", {"identifier": identifier, "status": status})

    def _post(self, action: str, body: dict[str, Any]) -> str:
        request = urllib.request.Request(
            f"{self.endpoint}{PREFIX}{action}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return str(json.loads(response.read())["done"])
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                reason = exc.reason
            raise ControlError(f"the local cloud refused {action}: {reason}") from exc
        except urllib.error.URLError as exc:
            raise ControlError(
                f"nothing answers at {self.endpoint} ({exc.reason}): is `selfheal local serve` running?"
            ) from exc
