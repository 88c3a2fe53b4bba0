"""The dashboard in template.yaml and the metrics the code emits agree.

Every Selfheal metric the dashboard names is one a handler emits, with the dimensions it is emitted
with (CloudWatch keeps a metric per dimension set: a graph that names one dimension too many or too
few stays empty); every metric a handler emits is on the dashboard or in DELIBERATELY_ABSENT. What
the handlers emit is read from their source (``add_metric`` and ``single_metric`` calls, whose names
are constants or values of the handler's own tables, such as METRIC_OF_OUTCOME), not from a copy.
The AWS metrics on it are those of this template's functions, state machines and dead-letter queue.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
NAMESPACE = "Selfheal"

# Metrics the code emits that the dashboard does not show: name -> why.
DELIBERATELY_ABSENT: dict[str, str] = {}

# The AWS metrics the dashboard shows of this stack's resources: (namespace, dimension) -> the kind
# of resource whose Ref (or attribute) names it, and the metrics each such resource must have.
AWS_DIMENSIONS = {
    ("AWS/Lambda", "FunctionName"): ("AWS::Serverless::Function", None, {"Errors", "Throttles"}),
    ("AWS/States", "StateMachineArn"): (
        "AWS::Serverless::StateMachine",
        None,
        {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"},
    ),
    ("AWS/SQS", "QueueName"): ("AWS::SQS::Queue", "QueueName", {"ApproximateNumberOfMessagesVisible"}),
}
PSEUDO = {"AWS::Region", "AWS::StackName", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix"}
_SUB = re.compile(r"\$\{(!?)([^}]*)\}")
_REF = re.compile(r"^@ref:([^@]+)@$")
_SEARCH = re.compile(r"SEARCH\(\s*'\{([^}]*)\}\s*([^']*)'")


@dataclass(frozen=True)
class Metric:
    name: str
    dimensions: frozenset[str]
    where: str


# ------------------------------------------------------------------------------- the template


@cache
def _template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE))
    assert not matches, f"template.yaml does not parse: {matches}"
    loaded: dict[str, Any] = json.loads(json.dumps(template))
    return loaded


def _dashboard_resource() -> dict[str, Any]:
    dashboards = [r for r in _template()["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    assert len(dashboards) == 1, "template.yaml holds one dashboard"
    return dashboards[0]


def _dashboard() -> tuple[dict[str, Any], list[str]]:
    """The dashboard body, each ${X} of its Fn::Sub kept as the marker "@ref:X@" (${!X} is a literal
    ${X}); and the X's."""
    sub = _dashboard_resource()["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(sub, str), "DashboardBody: a !Sub of the JSON, without a variable map"
    refs: list[str] = []

    def marker(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        refs.append(match.group(2))
        return f"@ref:{match.group(2)}@"

    return json.loads(_SUB.sub(marker, sub)), refs


def _metric_widgets() -> list[dict[str, Any]]:
    body, _ = _dashboard()
    return [w["properties"] for w in body["widgets"] if w["type"] == "metric"]


def _shown() -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(namespace, metric, dimensions, widget title) of every metric the dashboard shows. A SEARCH
    gives the dimension names only (its values are whatever CloudWatch finds)."""
    for widget in _metric_widgets():
        for entry in widget["metrics"]:
            title = widget["title"]
            if isinstance(entry[0], dict):
                expression = entry[0]["expression"]
                for schema, terms in _SEARCH.findall(expression):
                    namespace, *dimensions = (part.strip() for part in schema.split(","))
                    found = re.fullmatch(r'MetricName="([A-Za-z0-9]+)"', terms.strip())
                    assert found, f'{title}: {expression}: name the metric exactly, MetricName="..."'
                    yield namespace, found.group(1), dict.fromkeys(dimensions), title
                assert _SEARCH.search(expression), f"{title}: {expression}: only SEARCH is understood here"
                continue
            namespace, name, *rest = entry
            pairs = [part for part in rest if not isinstance(part, dict)]
            yield namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), title


# ---------------------------------------------------------------------------- what is emitted


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"dashboard_{path.parent.name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _service_dimension() -> set[str]:
    """Powertools adds a ``service`` dimension to every metric when POWERTOOLS_SERVICE_NAME is set."""
    variables = _template()["Globals"]["Function"]["Environment"]["Variables"]
    return {"service"} if variables.get("POWERTOOLS_SERVICE_NAME") else set()


def _names(call: ast.Call, module: ModuleType, where: str) -> set[str]:
    """The metric names a call can emit: a constant, or any value of the table it indexes."""
    node = next((k.value for k in call.keywords if k.arg == "name"), call.args[0] if call.args else None)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        table = getattr(module, node.value.id)
        assert isinstance(table, dict) and table, f"{where}: {node.value.id} is no table of names"
        return {str(name) for name in table.values()}
    raise AssertionError(
        f"{where}: a metric name that is neither a constant nor a value of a table: the dashboard"
        " test cannot tell what it emits"
    )


def _dimension_names(body: list[ast.stmt], variable: str | None, where: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "add_dimension" and isinstance(node.func.value, ast.Name):
            if node.func.value.id != variable:
                continue
            name = next(
                (k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None
            )
            assert isinstance(name, ast.Constant), f"{where}: a dimension name must be a constant"
            names.add(str(name.value))
    return names


def _emitted_by(path: Path) -> list[Metric]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module = _module(path)
    service = _service_dimension()
    metrics: list[Metric] = []
    in_with: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "single_metric":
                in_with.add(id(call))
                where = f"{path.relative_to(ROOT)}:{call.lineno}"
                variable = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else None
                dimensions = frozenset(_dimension_names(node.body, variable, where) | service)
                metrics += [Metric(name, dimensions, where) for name in _names(call, module, where)]
    shared = frozenset(service)  # the module's Metrics object: no add_dimension on it (checked below)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if getattr(node.func, "id", None) == "single_metric":
            assert id(node) in in_with, f"{where}: single_metric outside a with statement"
        if isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric":
            metrics += [Metric(name, shared, where) for name in _names(node, module, where)]
        if isinstance(node.func, ast.Attribute) and node.func.attr in (
            "add_dimension",
            "set_default_dimensions",
        ):
            receiver = node.func.value
            assert not (isinstance(receiver, ast.Name) and receiver.id == "metrics"), (
                f"{where}: a dimension on the shared Metrics object: every metric of the flush gets it"
            )
    return metrics


@cache
def _emitted() -> dict[str, frozenset[str]]:
    """Every metric a handler emits -> its dimension names (one set: a metric emitted with two would
    need two graphs)."""
    emitted: dict[str, frozenset[str]] = {}
    for path in HANDLERS:
        for metric in _emitted_by(path):
            known = emitted.setdefault(metric.name, metric.dimensions)
            assert known == metric.dimensions, f"{metric.where}: {metric.name} with two dimension sets"
    return emitted


# -------------------------------------------------------------------------------------- tests


def test_dashboard_every_selfheal_metric_it_shows_is_emitted_with_those_dimensions() -> None:
    emitted = _emitted()
    service = _template()["Globals"]["Function"]["Environment"]["Variables"].get("POWERTOOLS_SERVICE_NAME")
    shown = [(name, dims, title) for namespace, name, dims, title in _shown() if namespace == NAMESPACE]
    assert shown, "the dashboard shows no Selfheal metric"
    for name, dimensions, title in shown:
        assert name in emitted, f"{title}: {name} is not emitted by any handler"
        assert set(dimensions) == set(emitted[name]), (
            f"{title}: {name} is emitted with dimensions {sorted(emitted[name])}, shown with {sorted(dimensions)}"
        )
        if dimensions.get("service") is not None:
            assert dimensions["service"] == service, f"{title}: {name}: service is {service!r} (Globals)"


def test_dashboard_shows_every_metric_the_code_emits_or_says_why_not() -> None:
    shown = {name for namespace, name, _, _ in _shown() if namespace == NAMESPACE}
    missing = set(_emitted()) - shown - set(DELIBERATELY_ABSENT)
    assert not missing, (
        f"emitted but not on the dashboard (add a widget, or DELIBERATELY_ABSENT): {sorted(missing)}"
    )
    stale = set(DELIBERATELY_ABSENT) - set(_emitted())
    assert not stale, f"DELIBERATELY_ABSENT names metrics nobody emits: {sorted(stale)}"
    assert not shown & set(DELIBERATELY_ABSENT), "a metric both shown and listed as absent"


def test_dashboard_emitted_metrics_come_from_the_codes_tables() -> None:
    # Given the handlers' own tables and the decisions triage makes
    from selfheal.steps import RUN_OUTCOMES
    from selfheal.triage import TRIAGE_DECISIONS

    emitted = set(_emitted())
    # Then every run outcome and every triage decision has its metric among those the test found
    steps, triage = (_module(ROOT / "functions" / name / "app.py") for name in ("runbook_steps", "triage"))
    assert {steps.METRIC_OF_OUTCOME[o] for o in RUN_OUTCOMES} <= emitted
    assert {triage.METRIC_OF_DECISION[d] for d in TRIAGE_DECISIONS} <= emitted
    assert all(re.fullmatch(r"[A-Za-z]+", name) for name in emitted), sorted(emitted)


def test_dashboard_limit_metrics_are_keyed_by_the_names_the_steps_give_stops() -> None:
    # The budget and breaker graph counts skips whose reason is a guard's or an error's name: a key
    # that no stop carries would leave its line empty for ever.
    from selfheal.steps import ONCE_AN_HOUR

    steps = _module(ROOT / "functions" / "runbook_steps" / "app.py")
    assert set(steps.METRIC_OF_LIMIT) <= set(ONCE_AN_HOUR)


def test_dashboard_references_resolve_to_this_templates_resources_and_parameters() -> None:
    template = _template()
    resources, parameters = template["Resources"], template.get("Parameters") or {}
    _, refs = _dashboard()
    for ref in refs:
        logical_id = ref.split(".", 1)[0]
        assert ref in PSEUDO or logical_id in resources or ref in parameters, f"${{{ref}}} names nothing"
    for widget in _metric_widgets():
        assert widget["region"] == "@ref:AWS::Region@", f"{widget['title']}: the stack's region"
    name = _dashboard_resource()["Properties"]["DashboardName"]
    assert "${AWS::StackName}" in json.dumps(name), "the dashboard is named from the stack"


def _dead_letter_queues(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        arn = (
            (node.get("DeadLetterConfig") or {}).get("Arn")
            if isinstance(node.get("DeadLetterConfig"), dict)
            else None
        )
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            target = arn["Fn::GetAtt"]
            yield (target.split(".")[0] if isinstance(target, str) else target[0])
        for value in node.values():
            yield from _dead_letter_queues(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dead_letter_queues(value)


def test_dashboard_aws_metrics_are_those_of_this_stacks_functions_machines_and_dead_letter_queue() -> None:
    resources = _template()["Resources"]
    found: dict[tuple[str, str], dict[str, set[str]]] = {key: {} for key in AWS_DIMENSIONS}
    for namespace, name, dimensions, title in _shown():
        if namespace == NAMESPACE:
            continue
        assert len(dimensions) == 1 and (namespace, *dimensions) in AWS_DIMENSIONS, (
            f"{title}: {namespace} {name} {dimensions}: not a metric this test knows how to check"
        )
        ((dimension, value),) = dimensions.items()
        kind, attribute, _ = AWS_DIMENSIONS[(namespace, dimension)]
        ref = _REF.match(str(value))
        assert ref, f"{title}: {name} {dimension}={value!r}: name it with ${{LogicalId}}, not by hand"
        logical_id, _, used = ref.group(1).partition(".")
        assert resources.get(logical_id, {}).get("Type") == kind, f"{title}: {logical_id} is no {kind}"
        assert (used or None) == attribute, (
            f"{title}: {dimension} of {logical_id} is {attribute or 'its Ref'}"
        )
        found[(namespace, dimension)].setdefault(name, set()).add(logical_id)
    dead_letters = set(_dead_letter_queues(resources))
    assert dead_letters, "the template names a dead-letter queue"
    for (namespace, dimension), (kind, _, wanted) in AWS_DIMENSIONS.items():
        expected = (
            dead_letters
            if kind == "AWS::SQS::Queue"
            else {k for k, r in resources.items() if r["Type"] == kind}
        )
        for name in wanted:
            shown = found[(namespace, dimension)].get(name, set())
            assert shown == expected, (
                f"{namespace} {name}: shown for {sorted(shown)}, the stack has {sorted(expected)}"
            )
