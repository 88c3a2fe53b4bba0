#!/usr/bin/env python3
"""Validate the state machines' ASL files and their wiring to template.yaml.

For every ``statemachines/*.asl.json`` (or the files/directories given):

1. JSON schema: the ASL schema bundled with cfn-lint (the one its rule E3601 uses). cfn-lint itself
   no longer looks inside SAM ``AWS::Serverless::StateMachine`` definitions, so nothing else runs it.
2. Semantics the schema cannot express: ``StartAt`` and every ``Next``/``Default``/``Catch`` target
   exists, exactly one of ``Next``/``End`` on non-terminal states, no ``Next``/``End`` on Choice,
   Succeed and Fail states, every state reachable; recursing into Parallel ``Branches`` and Map
   ``ItemProcessor``/``Iterator``.
3. Substitutions: every ``${Placeholder}`` in the file has an entry in the ``DefinitionSubstitutions``
   of the template's state machine whose ``DefinitionUri`` is that file, and every entry there is used.

Prints one line per file (``OK`` or the error count, then the errors) and exits 1 on any error.

Usage: tools/validate_asl.py [--template template.yaml] [PATH ...]   (default PATH: statemachines)
       tools/validate_asl.py --print-substituted FILE   (the definition as asl-validator should see it)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cfnlint.data.schemas.other.step_functions as _sf_schemas
from cfnlint.decode import decode
from jsonschema import Draft7Validator

PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")
STATE_MACHINE_TYPES = ("AWS::Serverless::StateMachine",)
TERMINAL_TYPES = ("Succeed", "Fail")
# Placeholders conventionally bound to pseudo parameters (e.g. Partition: !Ref AWS::Partition).
PSEUDO_VALUES = {
    "Partition": "aws",
    "AWS::Partition": "aws",
    "Region": "us-east-1",
    "AWS::Region": "us-east-1",
    "AccountId": "123456789012",
    "AWS::AccountId": "123456789012",
}


@dataclass
class StateMachineRef:
    """A state machine in the template and what it substitutes into its definition."""

    logical_id: str
    substitutions: set[str]
    definition_uri: Path | None = None
    inline_definition: dict[str, Any] | None = None


@dataclass
class FileResult:
    label: str
    errors: list[str] = field(default_factory=list)


def load_schema_validator() -> Draft7Validator:
    schema_path = Path(_sf_schemas.__file__).parent / "statemachine.json"
    schema = json.loads(schema_path.read_text())
    # The schema only uses local "#/definitions/..." references, so no resolver is needed.
    return Draft7Validator(schema)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def substitute(text: str) -> str:
    """Replace ${Name} by a value of a plausible shape so the schema sees a realistic definition."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PSEUDO_VALUES:
            return PSEUDO_VALUES[name]
        if name.endswith("StateMachineArn"):
            return f"arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
        if name.endswith("Arn"):
            return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        return name

    return PLACEHOLDER.sub(value, text)


def schema_errors(validator: Draft7Validator, definition: Any) -> list[str]:
    errors = sorted(validator.iter_errors(definition), key=lambda e: list(map(str, e.absolute_path)))
    return [f"schema: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def _transitions(state: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    if "Next" in state:
        yield "Next", state["Next"]
    if "Default" in state:
        yield "Default", state["Default"]
    for i, choice in enumerate(state.get("Choices") or []):
        if isinstance(choice, Mapping) and "Next" in choice:
            yield f"Choices[{i}].Next", choice["Next"]
    for i, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, Mapping) and "Next" in catcher:
            yield f"Catch[{i}].Next", catcher["Next"]


def semantic_errors(definition: Any, where: str = "$") -> list[str]:
    """Checks the schema cannot make: transition targets, Next/End, reachability; recursive."""
    if not isinstance(definition, Mapping):
        return [f"{where}: definition is not a JSON object"]
    errors: list[str] = []
    states = definition.get("States")
    if not isinstance(states, Mapping) or not states:
        return [f"{where}: States is missing or empty"]
    start = definition.get("StartAt")
    if start not in states:
        errors.append(f"{where}: StartAt {start!r} is not a state")

    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        here = f"{where}.States[{name!r}]"
        if not isinstance(state, Mapping):
            errors.append(f"{here}: state is not a JSON object")
            continue
        kind = state.get("Type")
        edges[name] = set()
        for key, target in _transitions(state):
            if not isinstance(target, str) or target not in states:
                errors.append(f"{here}: {key} -> unknown state {target!r}")
            else:
                edges[name].add(target)
        has_next, has_end = "Next" in state, bool(state.get("End"))
        if kind in TERMINAL_TYPES or kind == "Choice":
            if has_next or "End" in state:
                errors.append(f"{here}: a {kind} state must have neither Next nor End")
        elif has_next == has_end:
            errors.append(
                f"{here}: exactly one of Next or End is required (has {'both' if has_next else 'neither'})"
            )
        for i, branch in enumerate(state.get("Branches") or []):
            errors += semantic_errors(branch, f"{here}.Branches[{i}]")
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                errors += semantic_errors(state[key], f"{here}.{key}")

    if start in states:
        seen: set[str] = set()
        todo: list[str] = [str(start)]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(edges.get(current, ()))
        errors += [
            f"{where}.States[{name!r}]: unreachable from StartAt" for name in states if name not in seen
        ]
    return errors


def load_state_machines(template_path: Path) -> tuple[list[StateMachineRef], list[str]]:
    """State machines in the template (decoded with cfn-lint's YAML/JSON loader: short-form tags)."""
    template, matches = decode(str(template_path))
    if matches or template is None:
        return [], [f"{template_path}: cannot be parsed: {m.message}" for m in matches] or [
            f"{template_path}: cannot be parsed"
        ]
    found: list[StateMachineRef] = []
    errors: list[str] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, Mapping) or resource.get("Type") not in STATE_MACHINE_TYPES:
            continue
        props = resource.get("Properties") or {}
        subs = props.get("DefinitionSubstitutions") or {}
        ref = StateMachineRef(logical_id, set(subs) if isinstance(subs, Mapping) else set())
        uri = props.get("DefinitionUri")
        if isinstance(uri, str):
            ref.definition_uri = (template_path.parent / uri).resolve()
            if not ref.definition_uri.is_file():
                errors.append(f"{template_path}: {logical_id}: DefinitionUri {uri!r} does not exist")
        elif isinstance(props.get("Definition"), Mapping):
            ref.inline_definition = dict(props["Definition"])
        found.append(ref)
    return found, errors


def check_substitutions(text: str, owners: list[StateMachineRef]) -> list[str]:
    used = placeholders(text)
    errors: list[str] = []
    for owner in owners:
        for name in sorted(used - owner.substitutions):
            errors.append(
                f"substitution: ${{{name}}} has no entry in {owner.logical_id}.DefinitionSubstitutions"
            )
        for name in sorted(owner.substitutions - used):
            errors.append(f"substitution: {owner.logical_id}.DefinitionSubstitutions.{name} is never used")
    return errors


def check_definition_text(
    text: str, validator: Draft7Validator, owners: list[StateMachineRef] | None
) -> list[str]:
    try:
        definition = json.loads(substitute(text))
    except json.JSONDecodeError as exc:
        return [f"invalid JSON: {exc}"]
    errors = schema_errors(validator, definition) + semantic_errors(definition)
    if owners is not None:
        errors += check_substitutions(text, owners)
    return errors


def expand(paths: Iterable[str]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        files += sorted(path.glob("*.asl.json")) if path.is_dir() else [path]
    return files


def run(paths: list[str], template: Path | None) -> list[FileResult]:
    validator = load_schema_validator()
    machines: list[StateMachineRef] = []
    results: list[FileResult] = []
    if template is not None:
        machines, template_errors = load_state_machines(template)
        if template_errors:
            results.append(FileResult(str(template), template_errors))
    for path in expand(paths):
        result = FileResult(str(path))
        results.append(result)
        if not path.is_file():
            result.errors.append("file not found")
            continue
        owners: list[StateMachineRef] | None = None
        if template is not None:
            owners = [m for m in machines if m.definition_uri == path.resolve()]
            if not owners:
                result.errors.append(f"not the DefinitionUri of any state machine in {template}")
        result.errors += check_definition_text(path.read_text(), validator, owners)
    for machine in machines:
        if machine.inline_definition is not None:
            label = f"{template}: {machine.logical_id}.Definition"
            text = json.dumps(machine.inline_definition)
            results.append(FileResult(label, check_definition_text(text, validator, [machine])))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("paths", nargs="*", default=["statemachines"], help="ASL files or directories")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"), help="SAM template")
    parser.add_argument(
        "--no-template", action="store_true", help="skip the DefinitionSubstitutions cross-check"
    )
    parser.add_argument(
        "--print-substituted",
        action="store_true",
        help="print the first file with placeholders replaced by plausible values (for asl-validator)",
    )
    args = parser.parse_args(argv)
    if args.print_substituted:
        files = expand(args.paths)
        if len(files) != 1 or not files[0].is_file():
            print("--print-substituted takes exactly one existing file", file=sys.stderr)
            return 2
        print(substitute(files[0].read_text()))
        return 0
    template: Path | None = None if args.no_template else args.template
    if template is not None and not template.is_file():
        print(f"{template}: not found (use --no-template to check the ASL files alone)", file=sys.stderr)
        return 2

    results = run(args.paths, template)
    if not results:
        print(f"no *.asl.json files found in: {' '.join(args.paths)}", file=sys.stderr)
        return 2
    failed = 0
    for result in results:
        status = "OK" if not result.errors else f"{len(result.errors)} error(s)"
        print(f"{result.label}: {status}")
        for error in result.errors:
            print(f"    {error}")
        failed += bool(result.errors)
    print(f"validate_asl: {len(results) - failed} OK, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
