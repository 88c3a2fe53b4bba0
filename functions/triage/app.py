"""Triage: the target of the EventBridge rules, the alarm topic and CloudWatch alarm actions."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.policy import load_policy
from selfheal.triage import TRIAGE_DECISIONS, Triage

logger = Logger()
metrics = Metrics()

# One metric per decision (the dashboard's "Signals triaged" widget names each).
METRIC_OF_DECISION = {decision: f"Triage{decision.capitalize()}" for decision in TRIAGE_DECISIONS}


@cache
def _triage() -> Triage:
    # Built on the first invocation, not at import: config errors surface as a named error per event.
    return Triage(Settings.from_env(os.environ), Clients(), load_policy())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = _triage().handle(event)
    for outcome in outcomes:
        metrics.add_metric(name=METRIC_OF_DECISION[outcome.decision], unit=MetricUnit.Count, value=1)
    logger.info("triaged", extra={"outcomes": [o.model_dump() for o in outcomes]})
    return {"outcomes": [o.model_dump(mode="json") for o in outcomes]}
