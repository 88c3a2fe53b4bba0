"""LocalCloud: moto in server mode on 127.0.0.1, patched, executing ASL, recording every request."""

from __future__ import annotations

import logging
import os
import socket
from types import TracebackType
from typing import Any

import boto3

from localcloud import compat, control, faults, patches, recording

DEFAULT_REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Step Functions really runs ASL; Lambda must not look for Docker (compat runs handlers in-process).
MOTO_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}


def boto3_environment(endpoint: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """The variables that make any boto3/AWS CLI in a process talk to the local cloud."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **FAKE_CREDENTIALS,
    }


def point_boto3_at(endpoint: str, region: str = DEFAULT_REGION) -> None:
    """Point this process's boto3 at ``endpoint`` (env vars, read by every client created afterwards)."""
    os.environ.update(boto3_environment(endpoint, region))
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    boto3.DEFAULT_SESSION = None  # a cached session may hold other credentials or region


class PortInUse(RuntimeError):
    """The port asked for is taken on 127.0.0.1."""


def _check_port_free(port: int) -> None:
    """moto's server binds in its own thread and, when the bind fails, waits for ever for a server
    that never comes: so the port is tried here first (as the server will bind it, SO_REUSEADDR on:
    only a port something listens on is refused)."""
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on 127.0.0.1 is in use ({exc.strerror}): stop what holds it, or pick"
                " another --port (0: a free one)"
            ) from exc


def _server_with_control_api(region: str, port: int) -> Any:
    """moto's threaded server on 127.0.0.1, its app behind localcloud.control's API. (Built here
    because moto is imported only when a cloud starts.)"""
    from moto.server import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        ThreadedMotoServer,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            # ThreadedMotoServer._server_entry of moto 5.2.5, with the app wrapped.
            app = control.ControlApi(DomainDispatcherApplication(create_backend_app), region)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return Server(ip_address="127.0.0.1", port=port, verbose=False)


class LocalCloud:
    """One simulated AWS account per process (moto's backends are process-global)."""

    def __init__(self, port: int = 0, region: str = DEFAULT_REGION) -> None:
        self._requested_port = port
        self.region = region
        self._server: Any = None
        self._log = recording.RequestLog()
        # Faults to answer chosen calls with (throttling, errors), as AWS would: localcloud.faults.
        self.faults = faults.FaultInjector()
        self._previous: tuple[str | None, dict[str, str]] = (None, {})

    def start(self) -> LocalCloud:
        from moto.moto_api._internal.models import moto_api_backend

        # moto's gaps closed (localcloud.compat*), and what AWS services do by themselves emulated:
        # service events, Route 53 health checkers, Auto Scaling replacements (localcloud.patches).
        patches.apply_all()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
        # The ASL interpreter logs, at ERROR, every exception it handles itself (an IsPresent on a
        # missing path among them). Kept for whoever configures logging (pytest shows them with a
        # failure); never printed by Python's last-resort handler into a user's terminal.
        interpreter_log = logging.getLogger("moto.stepfunctions.parser")
        if not interpreter_log.handlers:
            interpreter_log.addHandler(logging.NullHandler())
        moto_api_backend.set_config(MOTO_CONFIG)  # moto's config API, applied in this (server) process
        recording.install(self._log)
        faults.install(self.faults)
        _check_port_free(self._requested_port)
        self._server = _server_with_control_api(self.region, self._requested_port)
        self._server.start()
        # The Step Functions interpreter sends its SDK calls to localhost:$MOTO_PORT. Both settings are
        # process-wide (so is moto's state): remember them to hand back to an outer LocalCloud on stop.
        self._previous = (os.environ.get("MOTO_PORT"), compat.lambda_runtime_environment())
        os.environ["MOTO_PORT"] = str(self.port)
        compat.set_lambda_runtime_environment(boto3_environment(self.endpoint, self.region))
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.stop()
        self._server = None
        recording.uninstall(self._log)
        faults.uninstall(self.faults)
        self.faults.clear()
        port, runtime = self._previous
        if port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = port
        compat.set_lambda_runtime_environment(runtime)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("LocalCloud is not started")
        return int(self._server.get_host_and_port()[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        """Variables for another process (e.g. a shell's ``export``) to use this cloud."""
        return boto3_environment(self.endpoint, self.region)

    def use_in_this_process(self) -> None:
        point_boto3_at(self.endpoint, self.region)

    def client(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=self.region,
        ).client(service, endpoint_url=self.endpoint)  # type: ignore[call-overload]

    def recorded_requests(self) -> list[recording.RecordedRequest]:
        return self._log.entries()

    def reset_recording(self) -> None:
        self._log.reset()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
