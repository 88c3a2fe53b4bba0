"""e2e tier: the real template.yaml deployed into one LocalCloud for the whole session.

The fixture does not set AWS_ENDPOINT_URL for the test process (integration tests in the same session
use moto's in-process mock, which only intercepts AWS hostnames): use ``cloud.client(service)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.harness import LOCAL_STACK_NAME, DeployedCloud, start_deployed_cloud

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "template.yaml"
# One stack serves every e2e test of every runbook: the default budget (10 actions per runbook per
# hour) would open the breaker part-way through the session and skip later tests.
PARAMETERS = {"Mode": "enforce", "BudgetPerHour": "1000"}


@pytest.fixture(scope="session")
def cloud() -> Iterator[DeployedCloud]:
    """LocalCloud with the stack deployed: client(), stack, start_and_wait(), send_event_and_wait(),
    recorded_requests(), reset_recording()."""
    deployed = start_deployed_cloud(TEMPLATE, PARAMETERS, stack_name=LOCAL_STACK_NAME)
    try:
        yield deployed
    finally:
        deployed.cloud.stop()
