"""The Lambda-backed steps of the runbook state machines.

validate, acquire-lease, guards, precheck, audit, finish: see selfheal.steps.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.steps import StepEvent, Steps

logger = Logger()
metrics = Metrics()

# One metric per outcome of a run's output (a metric name takes no hyphen).
METRIC_OF_OUTCOME = {
    "healed": "RemediationHealed",
    "dry-run": "RemediationDryRun",
    "skipped": "RemediationSkipped",
    "rejected": "RemediationRejected",
    "failed": "RemediationFailed",
}
# Skips that say a limit of the stack is spent (the budget and breaker state), by the finish
# step's skipReason: the guard's name, or the error the intent step raised.
METRIC_OF_LIMIT = {
    "budget": "BudgetExhausted",  # the guard: BudgetPerHour runs acted in the last hour
    "BudgetExhausted": "BudgetExhausted",  # the same budget, found spent when taken before a call
    "breaker": "BreakerOpen",  # the guard: MaxFailedRunsPerHour runs failed in the last hour
    "TooManyActionsAtOnce": "TooManyActionsAtOnce",  # MaxConcurrentActions runs acting now
}


@cache
def _steps() -> Steps:
    return Steps(Settings.from_env(os.environ), Clients())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == "aws.states":
        # An execution ended (EventBridge): the end of a run the frame could not finish itself.
        result = _steps().ended(event)
        logger.info("execution ended", extra={"detail": event.get("detail"), "result": result})
        return result
    step = StepEvent.model_validate(event)
    logger.append_keys(runbook=step.runbook, execution=step.execution.name, step=step.step)
    result = _steps().run(step)
    # single_metric prints its metric whatever POWERTOOLS_METRICS_DISABLED says (Powertools 3):
    # honour the switch here, as the shared `metrics` object does.
    if not is_metrics_disabled():
        _count(step, result)
    return result


def _count(step: StepEvent, result: dict[str, Any]) -> None:
    """The step's metrics, each a metric of its own with its dimensions: the shared `metrics`
    object's dimensions would otherwise carry over into other metrics of the same flush."""
    if step.step == "guards":
        # The kill switch as this run read it: CloudWatch cannot graph an SSM parameter's value.
        decision = result["decision"]
        mode = "unreadable" if decision.get("modeProblem") else str(decision["mode"])
        with single_metric(name="RunsByMode", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="mode", value=mode)
    if step.step != "finish":
        return
    with single_metric(
        name=METRIC_OF_OUTCOME[str(result["outcome"])], unit=MetricUnit.Count, value=1
    ) as metric:
        metric.add_dimension(name="runbook", value=step.runbook)
    if "timeToHealSeconds" in result:  # healed: from the fault (or the request) to verified
        with single_metric(
            name="TimeToHeal", unit=MetricUnit.Seconds, value=float(result["timeToHealSeconds"])
        ) as metric:
            metric.add_dimension(name="runbook", value=step.runbook)
    if "skipReason" in result:  # a guard's or an error's name: a handful of values, never free text
        reason = str(result["skipReason"])
        with single_metric(name="RemediationSkippedByReason", unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="reason", value=reason)
        if reason in METRIC_OF_LIMIT:
            with single_metric(name=METRIC_OF_LIMIT[reason], unit=MetricUnit.Count, value=1) as metric:
                metric.add_dimension(name="runbook", value=step.runbook)
