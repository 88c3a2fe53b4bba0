"""Refresh the generated parts of docs/runbooks/*.md (``--check``: fail when one is missing or stale).

python -m tools.docs            # rewrite the generated parts (make docs)
python -m tools.docs --check    # write nothing; exit 1 on a missing page or a stale part

A page is one file that people edit. Between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``
this module writes what it derives from the code: the policy rules that start the runbook, its
console input (JSON Schema from the models, the example from events/runbooks/), its params table, its
IAM actions and mutating calls. Everything outside the markers is hand-written and kept as it is. A
runbook without a page gets a skeleton whose prose says TODO.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selfheal import errors
from selfheal.models import RunbookInput
from selfheal.policy import load_policy
from selfheal.runbooks import RUNBOOKS, Runbook

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "runbooks"
EXAMPLES = ROOT / "events" / "runbooks"
BLOCK = re.compile(r"(<!-- generated: ([a-z-]+) -->\n)(.*?)(<!-- end generated -->)", re.DOTALL)
MANUAL_RUNBOOK = "{manual.runbook}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _cell(text: str) -> str:
    """Text fit for a Markdown table cell (a ``|`` would end the cell, even inside a code span)."""
    return " ".join(text.split()).replace("|", "\\|")


def _doc(obj: Any) -> str:
    return " ".join((inspect.getdoc(obj) or "").split())


def state_machine(name: str) -> str:
    """remap-eip -> RemapEip (the template's RemapEipStateMachine and its ...Arn output)."""
    return "".join(part.capitalize() for part in name.split("-"))


def example(name: str) -> dict[str, Any]:
    """The runbook's console input example: events/runbooks/<name>.json, the file the README names."""
    value: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return value


def defaults_of(runbook: type[Runbook]) -> dict[str, Any]:
    """Effective defaults of params whose field default is None so that a tag can fill them in: the
    runbook module's ``DEFAULTS`` (by field name), when it has one."""
    found = getattr(importlib.import_module(runbook.__module__), "DEFAULTS", {})
    return dict(found) if isinstance(found, dict) else {}


# ----------------------------------------------------------------------------------------- blocks


def signals(runbook: type[Runbook]) -> str:
    policy = load_policy()
    lines = ["In the shipped policy (`layers/core/selfheal/policy.yaml`), tried in this order:", ""]
    for rule in (r for r in policy.rules if r.runbook == runbook.name):
        flags = [
            text
            for text, on in (
                ("`dryRun`", rule.dry_run),
                (
                    "`whenApplicable`: passed over when the runbook says it does not apply",
                    rule.when_applicable,
                ),
                ("`continue`", rule.continue_),
            )
            if on
        ]
        match = rule.match.model_dump(mode="json", by_alias=True, exclude_none=True)
        lines += [
            f"- **`{rule.name}`**{' (' + '; '.join(flags) + ')' if flags else ''}: {rule.description}",
            f"  - match `{_json(match)}`",
            f"  - target `{_json(rule.target)}`, params `{_json(rule.params)}`",
        ]
    manual = ", ".join(f"`{r.name}`" for r in policy.rules if r.runbook == MANUAL_RUNBOOK)
    lines.append(
        f"- manual requests on the bus (`source: selfheal.manual`, rule {manual}) naming `{runbook.name}`,"
        " and direct starts (the Step Functions console, `selfheal trigger --direct`)."
    )
    asking = [kind for kind in ("automatic", "manual", "direct") if policy.asks_approval(runbook.name, kind)]
    if asking:
        lines += ["", f"The policy's `approvals` make it ask a human first for {', '.join(asking)} requests."]
    return "\n".join(lines) + "\n"


def _untitled(node: Any) -> Any:
    """A schema without pydantic's generated titles ("Maxinflight"): noise to a reader."""
    if isinstance(node, list):
        return [_untitled(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {
        key: {k: _untitled(v) for k, v in value.items()}
        if key in ("properties", "$defs")
        else _untitled(value)
        for key, value in node.items()
        if key != "title"
    }


def input_schema(runbook: type[Runbook]) -> dict[str, Any]:
    """The console input (``RunbookInput``) with the runbook's target and params models in place."""
    schema: dict[str, Any] = {"title": f"{runbook.name} input", **_untitled(RunbookInput.model_json_schema())}
    for field, model in (("target", runbook.target_model), ("params", runbook.params_model)):
        sub = _untitled(model.model_json_schema())
        schema.setdefault("$defs", {}).update(sub.pop("$defs", {}))
        schema["properties"][field] = sub
    if not schema["$defs"]:
        del schema["$defs"]
    return schema


def console_input(runbook: type[Runbook]) -> str:
    machine = state_machine(runbook.name)
    return "\n".join(
        [
            f"Step Functions console: the stack's `{machine}StateMachine` (output"
            f" `{machine}StateMachineArn`), *Start execution*, paste (the same file:"
            f" `events/runbooks/{runbook.name}.json`):",
            "",
            "```json",
            json.dumps(example(runbook.name), indent=2, ensure_ascii=False),
            "```",
            "",
            "<details><summary>JSON Schema of the input</summary>",
            "",
            "```json",
            json.dumps(input_schema(runbook), indent=2, ensure_ascii=False),
            "```",
            "",
            "</details>",
            "",
        ]
    )


def _type(prop: dict[str, Any]) -> str:
    kinds = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if any("enum" in k for k in kinds):
        return "one of " + ", ".join(f"`{v}`" for k in kinds for v in k.get("enum", []))
    return " or ".join(str(k.get("type", "any")) for k in kinds)


def _limits(prop: dict[str, Any]) -> str:
    found: list[str] = []
    for p in prop.get("anyOf", [prop]):
        low, high = p.get("minimum"), p.get("maximum")
        if low is not None or high is not None:
            found.append(
                f"{low}-{high}"
                if low is not None and high is not None
                else f"≥ {low}"
                if low is not None
                else f"≤ {high}"
            )
        short, long = p.get("minLength"), p.get("maxLength")
        if short is not None or long is not None:
            found.append(f"{short or 0}-{long} characters" if long is not None else f"≥ {short} characters")
        if "pattern" in p:
            found.append(f"`{p['pattern']}`")
    return ", ".join(found)


def params(runbook: type[Runbook]) -> str:
    schema = runbook.params_model.model_json_schema()
    names = {field.alias or name: name for name, field in runbook.params_model.model_fields.items()}
    effective = defaults_of(runbook)
    lines = ["| param | type | default | limits | what it is |", "| --- | --- | --- | --- | --- |"]
    for alias, prop in schema["properties"].items():
        default = prop.get("default")
        if default is None:
            default = effective.get(names[alias])
        shown = "-" if default is None else f"`{_json(default)}`"
        row = [f"`{alias}`", _type(prop), shown, _limits(prop), prop.get("description", "")]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def iam(runbook: type[Runbook]) -> str:
    calls_of = {a: [c.name for c in runbook.calls if c.action == a] for a in runbook.permissions}
    lines = [
        "IAM actions it uses (`permissions`; tests check template.yaml grants exactly these):",
        "",
        "| IAM action | its mutating calls |",
        "| --- | --- |",
        *(f"| `{a}` | {', '.join(f'`{n}`' for n in calls_of[a]) or '-'} |" for a in runbook.permissions),
        "",
        "Mutating calls (`calls`): each is an intent row, the call, an outcome row. A dry run writes a"
        " `would-do` row for each planned call; calls made only if needed (an undo, an early stop) are"
        " not planned:",
        "",
        "| call | IAM action | undoes another call | made | idempotent (may be retried) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in runbook.calls:
        made = "only if needed" if c.contingent else "as planned"
        undo, again = ("yes" if flag else "no" for flag in (c.undo, c.idempotent))
        lines.append(f"| `{c.name}` | `{c.action}` | {undo} | {made} | {again} |")
    return "\n".join(lines) + "\n"


def _summary(runbook: type[Runbook]) -> str:
    """The runbook module's first docstring line, without its leading ``name:``."""
    first = (importlib.import_module(runbook.__module__).__doc__ or "").strip().splitlines()[0]
    return first.removeprefix(f"{runbook.name}:").strip()


def index() -> str:
    policy = load_policy()
    lines = [
        "| runbook | what it does | started by (policy rules) | asks a human |",
        "| --- | --- | --- | --- |",
    ]
    for name, runbook in sorted(RUNBOOKS.items()):
        rules = ", ".join(f"`{r.name}`" for r in policy.rules if r.runbook == name) or "manual only"
        asks = "approval step" if runbook.asks_approval else "no"
        lines.append(f"| [{name}]({name}.md) | {_cell(_summary(runbook))} | {rules} | {asks} |")
    return "\n".join(lines) + "\n"


def error_classes(module: Any) -> list[type[errors.SelfhealError]]:
    """The named errors a module defines, in source order."""
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, errors.SelfhealError)
        and value.__module__ == module.__name__
    ]


def error_table() -> str:
    lines = ["| error | is a | defined in | what it means |", "| --- | --- | --- | --- |"]
    where = [("`selfheal.errors`", errors)] + [
        (f"[{name}]({name}.md)", importlib.import_module(rb.__module__))
        for name, rb in sorted(RUNBOOKS.items())
    ]
    for by, module in where:
        for cls in error_classes(module):
            base = cls.__mro__[1].__name__ if cls is not errors.SelfhealError else "Exception"
            lines.append(f"| `{cls.__name__}` | `{base}` | {by} | {_cell(_doc(cls))} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ pages

RUNBOOK_BLOCKS: dict[str, Callable[[type[Runbook]], str]] = {
    "signals": signals,
    "input": console_input,
    "params": params,
    "iam": iam,
}
INDEX_BLOCKS: dict[str, Callable[[], str]] = {"runbooks": index, "errors": error_table}


def _generated(name: str, body: str) -> str:
    return f"<!-- generated: {name} -->\n{body}<!-- end generated -->"


def skeleton(name: str, blocks: dict[str, str]) -> str:
    """A new page: the generated parts filled in, the prose to write."""
    if name == "README":
        return (
            f"# Runbooks\n\nTODO: what these pages are.\n\n{_generated('runbooks', blocks['runbooks'])}\n"
            + (f"\n## Named errors\n\n{_generated('errors', blocks['errors'])}\n")
        )
    headings = {"signals": "Signals", "input": "Console input", "params": "Params", "iam": "IAM and calls"}
    parts = [f"# Runbook: {name}\n\nTODO: what it does, and when it does nothing (skipped).\n"]
    parts += [f"## {headings[b]}\n\n{_generated(b, body)}\n" for b, body in blocks.items()]
    parts += [
        '## Named errors\n\n<!-- checked by tests/unit/test_runbook_docs.py: each "- `Name`" item is an error'
        ' class -->\nTODO: "- `ErrorName`: what it means for the operator", one item per error.\n',
        "## Undo\n\nTODO: how to undo what it did.\n",
    ]
    return "\n".join(parts)


def refresh(text: str, blocks: dict[str, str]) -> tuple[str, list[str]]:
    """The page with its generated parts rendered anew; problems: parts missing or unknown."""
    found = [m.group(2) for m in BLOCK.finditer(text)]
    problems = [
        f"no generated part {b!r} (add the markers: {_generated(b, '')!r})" for b in blocks if b not in found
    ]
    problems += [
        f"unknown generated part {b!r} (known: {', '.join(blocks)})" for b in found if b not in blocks
    ]
    problems += [f"generated part {b!r} appears twice" for b in sorted(set(found)) if found.count(b) > 1]

    def render(m: re.Match[str]) -> str:
        return m.group(1) + blocks.get(m.group(2), m.group(3)) + m.group(4)

    return BLOCK.sub(render, text), problems


def pages(out: Path = OUT) -> dict[Path, dict[str, str]]:
    """Every page and the generated parts it holds."""
    found = {
        out / f"{name}.md": {b: render(rb) for b, render in RUNBOOK_BLOCKS.items()}
        for name, rb in sorted(RUNBOOKS.items())
    }
    found[out / "README.md"] = {b: render() for b, render in INDEX_BLOCKS.items()}
    return found


def _diff(path: Path, current: str, wanted: str) -> str:
    lines = difflib.unified_diff(
        current.splitlines(),
        wanted.splitlines(),
        f"{path.name} (checked in)",
        f"{path.name} (generated)",
        lineterm="",
    )
    return "\n".join(list(lines)[:40])


def problems(out: Path = OUT, write: bool = False) -> list[str]:
    """What is missing or stale (with ``write``: refreshed first, so only what cannot be fixed)."""
    found: list[str] = []
    for path, blocks in pages(out).items():
        if not path.is_file():
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(skeleton(path.stem, blocks))
                print(f"wrote {path.name}: a skeleton, write its prose (the TODOs)")
            else:
                found.append(f"{path.name}: missing")
            continue
        current = path.read_text()
        wanted, trouble = refresh(current, blocks)
        found += [f"{path.name}: {t}" for t in trouble]
        if wanted == current:
            continue
        if write:
            path.write_text(wanted)
            print(f"refreshed {path.name}")
        else:
            found.append(f"{path.name}: a generated part is stale:\n{_diff(path, current, wanted)}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="compare, write nothing; exit 1 on a difference")
    parser.add_argument("--out", type=Path, default=OUT, help="the directory of the pages")
    args = parser.parse_args(argv)
    found = problems(args.out, write=not args.check)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print("docs/runbooks/*.md: the generated parts come from the code: run `make docs`", file=sys.stderr)
        return 1
    if args.check:
        print(f"docs: the generated parts of the {len(RUNBOOKS) + 1} pages are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
