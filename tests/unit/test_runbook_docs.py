"""docs/runbooks/: one page per runbook, its generated parts what tools/docs.py renders from the code
now (a stale part or a missing page fails, and says to run `make docs`), its example a valid input,
its hand-written list of named errors made of real error classes and naming every one its code uses."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from pydantic import Field

from selfheal import errors
from selfheal.runbooks import RUNBOOKS
from selfheal.runbooks.remap_eip import RemapEip, RemapEipParams
from selfheal.steps import parse_request
from tools import docs

PAGES = docs.OUT
ERRORS_SECTION = re.compile(r"^## Named errors\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
ERROR_ITEM = re.compile(r"^- `([A-Za-z]+)`", re.MULTILINE)
JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)
# Bases that name a kind of error, not one a run ends with.
ABSTRACT = {errors.SelfhealError, errors.RetryableError, errors.TerminalError}


def page(name: str) -> str:
    return (PAGES / f"{name}.md").read_text()


def generated(text: str, block: str) -> str:
    return next(m.group(3) for m in docs.BLOCK.finditer(text) if m.group(2) == block)


def named_errors(name: str) -> list[str]:
    section = ERRORS_SECTION.search(page(name))
    assert section, f"docs/runbooks/{name}.md has no '## Named errors' section"
    return ERROR_ITEM.findall(section.group(1))


def modules_of(name: str) -> list[object]:
    """The runbook's module and its workflow's (tools/asl/runbooks/): where its named errors come from."""
    module = importlib.import_module(RUNBOOKS[name].__module__)
    workflow = importlib.import_module(f"tools.asl.runbooks.{module.__name__.rsplit('.', 1)[1]}")
    return [module, workflow]


def error_class(name: str, runbook: str) -> type[errors.SelfhealError] | None:
    for module in [errors, *modules_of(runbook)]:
        value = vars(module).get(name)
        if inspect.isclass(value) and issubclass(value, errors.SelfhealError):
            return value
    return None


def test_runbook_docs_generated_parts_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    # Every runbook has a page and the index exists; each generated part is what the code renders now.
    assert docs.main(["--check"]) == 0, capsys.readouterr().err


def test_runbook_docs_a_stale_part_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the pages, one generated line edited by hand
    out = tmp_path / "runbooks"
    shutil.copytree(PAGES, out)
    edited = out / "redrive-dlq.md"
    text = edited.read_text()
    assert "| `maxMessagesPerSecond` | integer | `50` |" in text
    edited.write_text(
        text.replace(
            "| `maxMessagesPerSecond` | integer | `50` |", "| `maxMessagesPerSecond` | integer | `5` |"
        )
    )
    # When checked, Then the check fails, names the page and says how to fix it
    assert docs.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "redrive-dlq.md: a generated part is stale" in err and "make docs" in err


def test_runbook_docs_a_changed_default_makes_the_page_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given remap-eip's verifyAttempts default changed in the code (not in its page)
    class Changed(RemapEipParams):
        verify_attempts: int = Field(default=11, alias="verifyAttempts", ge=1, le=60)

    monkeypatch.setattr(RemapEip, "params_model", Changed)
    # When the pages are checked, Then remap-eip's is stale, and only it
    found = docs.problems()
    assert found and all(p.startswith("remap-eip.md: a generated part is stale") for p in found), found
    assert "+| `verifyAttempts` | integer | `11` |" in found[0]


def test_runbook_docs_a_missing_page_or_part_fails_the_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the pages without flip-dns's, and remap-eip's without its params part
    out = tmp_path / "runbooks"
    shutil.copytree(PAGES, out)
    (out / "flip-dns.md").unlink()
    remap = out / "remap-eip.md"
    remap.write_text(
        docs.BLOCK.sub(lambda m: "" if m.group(2) == "params" else m.group(0), remap.read_text())
    )
    # When checked, Then both are reported
    assert docs.main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "flip-dns.md: missing" in err and "remap-eip.md: no generated part 'params'" in err
    # And `make docs` writes a skeleton for the missing page, whose generated parts are then current
    assert docs.main(["--out", str(out)]) == 1, "the part without markers cannot be put back by itself"
    assert "TODO" in (out / "flip-dns.md").read_text()
    assert not [p for p in docs.problems(out) if p.startswith("flip-dns.md")]


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_runbook_docs_example_is_a_valid_console_input(name: str) -> None:
    # Given the example and the JSON Schema on the runbook's page
    example_text, schema_text = JSON_BLOCK.findall(generated(page(name), "input"))
    example = json.loads(example_text)
    # Then the runbook's own input check takes the example, and so does the schema
    request = parse_request(example, name, "req-docs", None)
    assert request.runbook == name and request.reason == example["reason"]
    jsonschema.validate(example, json.loads(schema_text))
    # And the schema refuses what the models refuse: an unknown param
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "params": {"noSuchParam": 1}}, json.loads(schema_text))


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_runbook_docs_named_errors_are_real_and_complete(name: str) -> None:
    named = named_errors(name)
    assert named, f"docs/runbooks/{name}.md lists no named errors"
    # Every error the page names is an error class (selfheal.errors, or the runbook's own)
    unknown = [e for e in named if error_class(e, name) is None]
    assert not unknown, f"docs/runbooks/{name}.md names errors that do not exist: {unknown}"
    # And every error class the runbook's code (its module, its workflow) uses or defines is on the page
    used = {
        value.__name__
        for module in modules_of(name)
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, errors.SelfhealError) and value not in ABSTRACT
    }
    missing = sorted(used - set(named))
    assert not missing, (
        f"docs/runbooks/{name}.md: its code uses these errors, the page does not say: {missing}"
    )


@pytest.mark.parametrize("name", [*sorted(RUNBOOKS), "README"])
def test_runbook_docs_prose_is_written(name: str) -> None:
    assert "TODO" not in page(name), f"docs/runbooks/{name}.md still has a skeleton's TODO"
