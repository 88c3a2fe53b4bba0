"""The operator CLI is installable without the local cloud: it imports neither moto nor localcloud
unless a ``selfheal local ...`` (or ``selfheal demo``) command runs."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "selfheal_cli"
# What an operator's install has: the standard library, boto3 (botocore) and the core package.
ALLOWED = {"boto3", "botocore", "selfheal", "selfheal_cli"}
DEV_ONLY = ("moto", "localcloud", "samtranslator")

# Run in a fresh interpreter: a finder ahead of every other refuses the dev-only packages, as an
# install without them would (ModuleNotFoundError), then the CLI runs and says what it imported.
_WITHOUT_DEV_PACKAGES = """
import importlib.abc, json, pkgutil, sys

BLOCKED = set(sys.argv[1].split(","))

class WithoutDevPackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, WithoutDevPackages())
import selfheal_cli
from selfheal_cli.main import main

if sys.argv[2] == "import-all":
    for module in pkgutil.walk_packages(selfheal_cli.__path__, "selfheal_cli."):
        if module.name != "selfheal_cli.__main__":
            __import__(module.name)
    code = 0
else:
    try:
        code = main(sys.argv[2:])
    except SystemExit as exit:  # --help exits 0 from argparse
        code = exit.code or 0
loaded = sorted({name.split(".")[0] for name in sys.modules} & BLOCKED)
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def _run_without_dev_packages(*argv: str) -> tuple[dict[str, object], str, str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'layers' / 'core'}"}
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DEV_PACKAGES, ",".join(DEV_ONLY), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *said, report = done.stderr.strip().splitlines()
    return json.loads(report), done.stdout, "\n".join(said)


@pytest.mark.parametrize(
    "argv", [["--help"], ["trigger", "--help"], ["audit", "--help"], ["--version"]], ids=" ".join
)
def test_operator_cli_runs_without_moto_or_localcloud(argv: list[str]) -> None:
    # Given an interpreter where moto and localcloud cannot be imported
    # When an operator command runs
    report, out, _ = _run_without_dev_packages(*argv)
    # Then it works, and loaded none of them
    assert report == {"code": 0, "loaded": []}
    assert "usage: selfheal" in out or out.startswith("selfheal ")


def test_every_module_of_the_operator_cli_imports_without_moto_or_localcloud() -> None:
    report, _, _ = _run_without_dev_packages("import-all")
    assert report == {"code": 0, "loaded": []}


def test_selfheal_local_without_the_local_cloud_says_what_is_missing() -> None:
    report, _, said = _run_without_dev_packages("local", "serve", "--help")
    assert report["code"] == 1
    assert said.startswith("selfheal: error: `selfheal local` runs the local cloud"), said
    assert "Traceback" not in said


def test_the_operator_cli_imports_only_the_standard_library_boto3_and_the_core_package() -> None:
    # A static check too: an import inside a function (run only by some command) counts.
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in ALLOWED and top not in sys.stdlib_module_names and top != "__future__":
                    found.setdefault(path.name, set()).add(name)
    # The one way out: the lazily loaded local cloud, behind `selfheal local` and `selfheal demo`.
    assert found == {"main.py": {"moto", "localcloud"}}


def test_selfheal_local_serve_help_works_with_the_local_cloud(capsys: pytest.CaptureFixture[str]) -> None:
    from selfheal_cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["local", "serve", "--help"])
    assert exited.value.code == 0
    assert "usage: selfheal local serve" in capsys.readouterr().out
