"""Local-cloud tests: one LocalCloud per package, with the small fixture stack deployed from a copy.

The stack is deployed from a temporary copy of ``fixtures/app`` so tests may edit function code (the
in-process runtime runs the working tree, edits need no redeploy) without touching the repository.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.harness import DeployedCloud, start_deployed_cloud

FIXTURE_APP = Path(__file__).parent / "fixtures" / "app"
FIXTURE_STACK = "localcloud-fixture"


@pytest.fixture(scope="package")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("fixture-app") / "app"
    shutil.copytree(FIXTURE_APP, target)
    return target


@pytest.fixture(scope="package")
def local(fixture_app: Path) -> Iterator[DeployedCloud]:
    deployed = start_deployed_cloud(
        fixture_app / "template.yaml", {"Mode": "enforce"}, stack_name=FIXTURE_STACK
    )
    try:
        yield deployed
    finally:
        deployed.cloud.stop()
