"""A started local cloud with the stack deployed: what the e2e fixture, the CLI and the demo hand around."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from localcloud import ops
from localcloud.cloud import LocalCloud
from localcloud.deploy import Stack, deploy
from localcloud.recording import RecordedRequest

LOCAL_STACK_NAME = "selfheal-local"


class DeployedCloud:
    """The local cloud plus the deployed stack, with the waits tests need."""

    def __init__(self, cloud: LocalCloud, stack: Stack) -> None:
        self.cloud = cloud
        self.stack = stack
        self._clients: dict[str, Any] = {}

    @property
    def endpoint(self) -> str:
        return self.cloud.endpoint

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.cloud.client(service)
        return self._clients[service]

    def state_machine_arn(self, ref: str) -> str:
        """An ARN, a logical id of the stack, or a runbook name (``remap-eip``)."""
        if ref.startswith("arn:"):
            return ref
        if ref in self.stack.physical_ids:
            return self.stack.physical_ids[ref]
        return ops.state_machine_arn(self.stack.outputs, ref)

    def start_and_wait(
        self, state_machine: str, execution_input: Any, name: str | None = None, timeout: float = 60.0
    ) -> ops.ExecutionResult:
        arn = self.state_machine_arn(state_machine)
        return ops.start_and_wait(
            self.client("stepfunctions"), arn, execution_input, name=name, timeout=timeout
        )

    def start(self, state_machine: str, execution_input: Any, name: str | None = None) -> str:
        return ops.start(
            self.client("stepfunctions"), self.state_machine_arn(state_machine), execution_input, name
        )

    def wait(self, execution_arn: str, timeout: float = 60.0) -> ops.ExecutionResult:
        return ops.wait_for_execution(self.client("stepfunctions"), execution_arn, timeout=timeout)

    def wait_for_state(self, execution_arn: str, state: str, timeout: float = 60.0) -> None:
        ops.wait_for_state(self.client("stepfunctions"), execution_arn, state, timeout=timeout)

    def set_steps_variables(self, **variables: str) -> dict[str, str]:
        """Set stack parameters the steps function reads (FLIP_DNS_HOSTED_ZONE_IDS, ...) once the
        resources they name exist, as a stack update would; returns the variables it had."""
        lam = self.client("lambda")
        name = self.stack.outputs["RunbookStepsFunctionArn"]
        configured = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
        previous = {k: str(v) for k, v in configured.items()}  # the local cloud keeps numbers as ints
        lam.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**previous, **variables}}
        )
        return previous

    def send_event_and_wait(self, event: Mapping[str, Any], timeout: float = 60.0) -> ops.SendSummary:
        return ops.send_event_and_wait(self.client, self.stack.name, event, timeout=timeout)

    def recorded_requests(self) -> list[RecordedRequest]:
        return self.cloud.recorded_requests()

    def reset_recording(self) -> None:
        self.cloud.reset_recording()


def start_deployed_cloud(
    template: Path,
    parameters: Mapping[str, str] | None = None,
    stack_name: str = LOCAL_STACK_NAME,
    port: int = 0,
    before_deploy: Callable[[LocalCloud], Mapping[str, str]] | None = None,
) -> DeployedCloud:
    """Start a LocalCloud, deploy ``template`` into it; the caller stops ``result.cloud``.

    ``before_deploy`` builds what the stack's parameters name (a world's hosted zone, say) in the
    started cloud and returns those parameters; ``parameters`` win over them, as an operator's
    ``--parameter-overrides`` would."""
    cloud = LocalCloud(port=port).start()
    try:
        found = dict(before_deploy(cloud)) if before_deploy is not None else {}
        stack = deploy(
            cloud.client("cloudformation"),
            cloud.client("s3"),
            template,
            stack_name,
            {**found, **(parameters or {})},
            cloud.region,
        )
    except BaseException:
        cloud.stop()
        raise
    return DeployedCloud(cloud, stack)
