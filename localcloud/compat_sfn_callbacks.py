"""Step Functions task-token callbacks: what moto 5.2.5 drops.

``SendTaskFailure`` takes ``error`` and ``cause`` (Step Functions API reference); moto's response
handler forwards only ``error``, so a ``Catch`` sees ``Cause: null`` and an approver's "why not" is
lost. This passes ``cause`` through to the executing (parser) backend, which already supports it.
Pinned to moto 5.2.5 with every patch (localcloud.patches).
"""

from __future__ import annotations

from typing import Any

from localcloud.patches import patch


@patch("sfn-send-task-failure-cause")
def patch_send_task_failure_cause() -> None:
    """moto's SendTaskFailure drops ``cause``: pass it through to the executing backend."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions import responses as sfn_responses

    StepFunctionResponse: Any = sfn_responses.StepFunctionResponse

    original = StepFunctionResponse.send_task_failure

    def send_task_failure(self: Any) -> Any:
        backend = self.stepfunction_backend
        if not hasattr(backend, "send_task_failure") or "cause" not in _parameters(backend.send_task_failure):
            return original(self)
        backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def _parameters(function: Any) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)
