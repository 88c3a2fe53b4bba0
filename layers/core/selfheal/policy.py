"""Policy: which runbook, with which target and params, for which signal.

The policy is a versioned YAML document (``policy.yaml``, shipped inside this package so every Lambda
function has it). Rules are evaluated in order; the first matching rule decides, unless it says
``continue: true``. Anything unmatched, and by default any alarm transition other than to ALARM,
gives `NoMatch` with the reason. The vocabulary is documented in ``policy.yaml`` itself.

Targets and params are templates: ``"{alarm.dimensions.InstanceId}"`` is filled from the signal.
A string that is exactly one placeholder keeps the value's type (``"{manual.target}"`` is a dict);
otherwise placeholders are formatted into the string. For Health events, a rule whose templates use
``{entity.*}`` gives one decision per affected entity (``{entity.id}`` is the ARN reduced to its id).

Validation (`validate_file`, also run by `load_policy`) reports every problem at once: YAML syntax,
schema, unsupported version, unknown runbooks, unknown placeholders, and targets/params that do not
fit the runbook's pydantic models (templated fields are checked for presence, not value).

    python -m selfheal.policy [path]     # validate a policy file; exit 1 with the problems
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from selfheal.errors import PolicyError
from selfheal.models import Actor, RunbookInput
from selfheal.runbooks import RUNBOOKS
from selfheal.signals import AffectedEntity, AlarmState, AlarmType, Signal, SignalKind

POLICY_VERSION = 1
DEFAULT_POLICY_PATH = Path(__file__).with_name("policy.yaml")
ANY_VALUE = "*"

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_MAX_REASON = 1024


class _Doc(BaseModel):
    """Policy document models: unknown keys are errors (a typo must not silently widen a rule)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------------------- matchers


class AlarmMatch(_Doc):
    name: list[str] | None = None
    name_prefix: list[str] | None = Field(default=None, alias="namePrefix")
    namespace: list[str] | None = None
    metric: list[str] | None = None
    # name -> "*" (present, any value), a value, or a list of values.
    dimensions: dict[str, str | list[str]] | None = None
    # Default: only transitions to ALARM act; OK is for failback/"healed" rules that ask for it.
    state: list[AlarmState] = Field(default_factory=lambda: [AlarmState.ALARM])
    previous_state: list[AlarmState] | None = Field(default=None, alias="previousState")
    type: list[AlarmType] | None = None


class HealthMatch(_Doc):
    service: list[str] | None = None
    event_type_code: list[str] | None = Field(default=None, alias="eventTypeCode")
    event_type_code_prefix: list[str] | None = Field(default=None, alias="eventTypeCodePrefix")
    category: list[str] | None = None
    scope: list[str] | None = None
    status: list[str] | None = None
    # Entity filters (one decision per remaining entity). The old schema has no entity status:
    # such entities count as UNKNOWN.
    entity_status: list[str] | None = Field(default=None, alias="entityStatus")
    entity_id_prefix: list[str] | None = Field(default=None, alias="entityIdPrefix")


class Ec2StateMatch(_Doc):
    state: list[str] | None = None


class RdsMatch(_Doc):
    event_id: list[str] | None = Field(default=None, alias="eventId")
    category: list[str] | None = None
    source_type: list[str] | None = Field(default=None, alias="sourceType")
    source_id_prefix: list[str] | None = Field(default=None, alias="sourceIdPrefix")


class ManualMatch(_Doc):
    runbook: list[str] | None = None


_KIND_OF_MATCH_KEY = {
    "alarm": SignalKind.ALARM,
    "health": SignalKind.HEALTH,
    "ec2_state": SignalKind.EC2_STATE,
    "rds": SignalKind.RDS_EVENT,
    "manual": SignalKind.MANUAL,
}


class Match(_Doc):
    """Exactly one key, naming the signal kind; its value holds the conditions (all must hold)."""

    alarm: AlarmMatch | None = None
    health: HealthMatch | None = None
    ec2_state: Ec2StateMatch | None = Field(default=None, alias="ec2State")
    rds: RdsMatch | None = None
    manual: ManualMatch | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        present = [key for key in _KIND_OF_MATCH_KEY if getattr(self, key) is not None]
        if len(present) != 1:
            raise ValueError("match needs exactly one of alarm, health, ec2State, rds, manual")
        return self

    @property
    def kind(self) -> SignalKind:
        return next(kind for key, kind in _KIND_OF_MATCH_KEY.items() if getattr(self, key) is not None)


class Rule(_Doc):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    description: str = ""
    match: Match
    runbook: str
    target: dict[str, Any] | str
    params: dict[str, Any] | str = Field(default_factory=dict)
    dry_run: bool = Field(default=False, alias="dryRun")
    continue_: bool = Field(default=False, alias="continue")
    # Ask the runbook (read-only) whether it applies to the target before deciding; when it says no,
    # the rule is passed over for that target and later rules are tried (see `decide`).
    when_applicable: bool = Field(default=False, alias="whenApplicable")
    # The longest a heal this rule starts should take, from the fault to verified (overrides the
    # runbook's in `recoveryObjectives`); a run over it is flagged in its succeeded row and escalated.
    recovery_objective_seconds: int | None = Field(default=None, alias="recoveryObjectiveSeconds", gt=0)

    @property
    def kind(self) -> SignalKind:
        return self.match.kind


class Policy(_Doc):
    version: int
    description: str = ""
    # Request kinds (automatic, manual, direct) that always ask a human before a runbook acts, per
    # runbook; only runbooks whose workflow has an approval step may be named.
    approvals: dict[str, list[Literal["automatic", "manual", "direct"]]] = Field(default_factory=dict)
    # Recovery time objective per runbook, in seconds from the fault to verified (a rule may set its own).
    recovery_objectives: dict[str, Annotated[int, Field(gt=0)]] = Field(
        default_factory=dict, alias="recoveryObjectives"
    )
    rules: list[Rule]

    def asks_approval(self, runbook: str, kind: str) -> bool:
        return kind in self.approvals.get(runbook, [])

    def recovery_objective(self, runbook: str, rule: str | None) -> int | None:
        """The objective a run of ``runbook`` started by ``rule`` (None: by hand) is held to."""
        by_rule = next((r.recovery_objective_seconds for r in self.rules if rule and r.name == rule), None)
        return by_rule or self.recovery_objectives.get(runbook)


# ---------------------------------------------------------------------------------------- results


class Decision(_Doc):
    rule: str
    runbook: str
    target: dict[str, Any]
    params: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False
    reason: str

    def runbook_input(self, actor: Actor | None = None) -> RunbookInput:
        """What the runbook's state machine receives."""
        return RunbookInput(
            target=self.target,
            params=self.params,
            dry_run=self.dry_run,
            reason=self.reason,
            actor=actor.model_dump(mode="json", by_alias=True, exclude_none=True) if actor else None,
        )


class NoMatch(_Doc):
    reason: str


# ------------------------------------------------------------------------------------ placeholders

_COMMON_PLACEHOLDERS = {
    "signal.account": lambda s, e: s.account,
    "signal.region": lambda s, e: s.region,
    "signal.eventId": lambda s, e: s.event_id,
    "signal.source": lambda s, e: s.source,
}
_PLACEHOLDERS: dict[SignalKind, dict[str, Any]] = {
    SignalKind.ALARM: {
        "alarm.name": lambda s, e: s.alarm.name,
        "alarm.arn": lambda s, e: s.alarm.arn,
        "alarm.state": lambda s, e: str(s.alarm.state),
        "alarm.namespace": lambda s, e: s.alarm.namespace,
        "alarm.metricName": lambda s, e: s.alarm.metric_name,
    },
    SignalKind.HEALTH: {
        "health.service": lambda s, e: s.health.service,
        "health.eventTypeCode": lambda s, e: s.health.event_type_code,
        "health.eventArn": lambda s, e: s.health.event_arn,
        "health.eventRegion": lambda s, e: s.health.event_region,
        "health.affectedAccount": lambda s, e: s.health.affected_account,
        "entity.id": lambda s, e: e.resource_id if e else None,
        "entity.value": lambda s, e: e.value if e else None,
        "entity.status": lambda s, e: e.status if e else None,
    },
    SignalKind.EC2_STATE: {
        "ec2.instanceId": lambda s, e: s.ec2_state.instance_id,
        "ec2.state": lambda s, e: s.ec2_state.state,
    },
    SignalKind.RDS_EVENT: {
        "rds.sourceId": lambda s, e: s.rds.source_id,
        "rds.sourceArn": lambda s, e: s.rds.source_arn,
        "rds.sourceType": lambda s, e: s.rds.source_type,
        "rds.eventId": lambda s, e: s.rds.rds_event_id,
    },
    SignalKind.MANUAL: {
        "manual.runbook": lambda s, e: s.manual.runbook,
        "manual.target": lambda s, e: _manual_object(s, "target"),
        "manual.params": lambda s, e: _manual_object(s, "params"),
        "manual.requestedBy": lambda s, e: s.manual.requested_by,
    },
}


def _manual_object(signal: Signal, field: str) -> dict[str, Any]:
    """A manual request's target or params; not there (or not an object): empty. The request still
    reaches its runbook, whose input check refuses it (rejected, not ignored)."""
    value = signal.manual.input.get(field) if signal.manual else None
    return dict(value) if isinstance(value, dict) else {}


# Placeholder prefixes followed by a free key (a dimension name, a tag key...).
_PREFIXES: dict[SignalKind, dict[str, Any]] = {
    SignalKind.ALARM: {"alarm.dimensions.": lambda s, e: s.alarm.dimensions},
    SignalKind.HEALTH: {"entity.tags.": lambda s, e: e.tags if e else {}},
    SignalKind.MANUAL: {
        "manual.target.": lambda s, e: _manual_object(s, "target"),
        "manual.params.": lambda s, e: _manual_object(s, "params"),
    },
}
# The only whole-dict templates: a manual request's own target and params.
_DICT_PLACEHOLDERS = {"target": "{manual.target}", "params": "{manual.params}"}


class _Missing(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _resolve(path: str, signal: Signal, entity: AffectedEntity | None) -> Any:
    getter = _COMMON_PLACEHOLDERS.get(path) or _PLACEHOLDERS[signal.kind].get(path)
    if getter is not None:
        value = getter(signal, entity)
    else:
        value = None
        for prefix, container in _PREFIXES.get(signal.kind, {}).items():
            if path.startswith(prefix):
                value = container(signal, entity).get(path[len(prefix) :])
                break
    if value is None or value == "":
        raise _Missing(path)
    return value


def _render(template: Any, signal: Signal, entity: AffectedEntity | None) -> Any:
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return _resolve(whole.group(1), signal, entity)
        return _PLACEHOLDER.sub(lambda m: str(_resolve(m.group(1), signal, entity)), template)
    if isinstance(template, dict):
        return {key: _render(value, signal, entity) for key, value in template.items()}
    if isinstance(template, list):
        return [_render(value, signal, entity) for value in template]
    return template


def _template_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _template_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_strings(item)


def _placeholders(rule: Rule) -> set[str]:
    found: set[str] = set()
    for text in _template_strings([rule.runbook, rule.target, rule.params]):
        found.update(_PLACEHOLDER.findall(text))
    return found


def _known_placeholder(kind: SignalKind, path: str) -> bool:
    if path in _COMMON_PLACEHOLDERS or path in _PLACEHOLDERS[kind]:
        return True
    return any(path.startswith(prefix) and len(path) > len(prefix) for prefix in _PREFIXES.get(kind, {}))


def _uses_entity(rule: Rule) -> bool:
    return any(p.startswith("entity.") for p in _placeholders(rule))


# ---------------------------------------------------------------------------------------- matching


def _in(allowed: list[Any] | None, value: Any) -> bool:
    return allowed is None or value in allowed


def _prefixed(prefixes: list[str] | None, value: str | None) -> bool:
    return prefixes is None or (value is not None and value.startswith(tuple(prefixes)))


def _alarm_matches(m: AlarmMatch, signal: Signal) -> bool:
    alarm = signal.alarm
    assert alarm is not None
    if not (
        _in(m.state, alarm.state)
        and _in(m.previous_state, alarm.previous_state)
        and _in(m.type, alarm.alarm_type)
        and _in(m.name, alarm.name)
        and _prefixed(m.name_prefix, alarm.name)
        and _in(m.namespace, alarm.namespace)
        and _in(m.metric, alarm.metric_name)
    ):
        return False
    for dim, wanted in (m.dimensions or {}).items():
        actual = alarm.dimensions.get(dim)
        if actual is None:
            return False
        if wanted != ANY_VALUE and actual not in (wanted if isinstance(wanted, list) else [wanted]):
            return False
    return True


def _health_matches(m: HealthMatch, signal: Signal) -> bool:
    health = signal.health
    assert health is not None
    return (
        _in(m.service, health.service)
        and _in(m.event_type_code, health.event_type_code)
        and _prefixed(m.event_type_code_prefix, health.event_type_code)
        and _in(m.category, health.category)
        and _in(m.scope, health.scope)
        # The old schema has no statusCode; it only announced events that were open.
        and _in(m.status, health.status or "open")
    )


def _entities(m: HealthMatch, signal: Signal) -> list[AffectedEntity]:
    assert signal.health is not None
    return [
        entity
        for entity in signal.health.affected_entities
        if _in(m.entity_status, entity.status or "UNKNOWN")
        and _prefixed(m.entity_id_prefix, entity.resource_id)
    ]


def _matches(rule: Rule, signal: Signal) -> bool:
    m = rule.match
    if m.alarm is not None:
        return _alarm_matches(m.alarm, signal)
    if m.health is not None:
        return _health_matches(m.health, signal)
    if m.ec2_state is not None:
        assert signal.ec2_state is not None
        return _in(m.ec2_state.state, signal.ec2_state.state)
    if m.rds is not None:
        rds = signal.rds
        assert rds is not None
        return (
            _in(m.rds.event_id, rds.rds_event_id)
            and (m.rds.category is None or bool(set(m.rds.category) & set(rds.categories)))
            and _in(m.rds.source_type, rds.source_type)
            and _prefixed(m.rds.source_id_prefix, rds.source_id)
        )
    assert m.manual is not None and signal.manual is not None
    return _in(m.manual.runbook, signal.manual.runbook)


# ---------------------------------------------------------------------------------------- decide


def describe(signal: Signal) -> str:
    """One line naming the signal, for reasons and notifications."""
    if signal.alarm is not None:
        a = signal.alarm
        metric = " ".join(x for x in (a.namespace, a.metric_name) if x) or str(a.alarm_type)
        return f"alarm {a.name!r} {a.previous_state or '?'} -> {a.state} ({metric})"
    if signal.health is not None:
        h = signal.health
        return f"AWS Health {h.event_type_code} ({h.category}, {len(h.affected_entities)} entities)"
    if signal.ec2_state is not None:
        return f"EC2 instance {signal.ec2_state.instance_id} is {signal.ec2_state.state}"
    if signal.rds is not None:
        r = signal.rds
        return f"RDS {r.rds_event_id or 'event'} on {r.source_id} ({', '.join(r.categories)})"
    if signal.approval_answer is not None:
        return f"an answer to {signal.approval_answer.answer.get('executionArn', 'an approval')}"
    assert signal.manual is not None
    return f"manual request for {signal.manual.runbook} by {signal.manual.requested_by or 'unknown'}"


def _auto_reason(rule: Rule, signal: Signal) -> str:
    reason = f"{rule.name}: {describe(signal)}"
    if signal.alarm is not None and signal.alarm.reason:
        reason += f": {signal.alarm.reason}"
    return reason[:_MAX_REASON]


def _decisions_for(rule: Rule, signal: Signal, only: list[AffectedEntity] | None = None) -> list[Decision]:
    entities: list[AffectedEntity | None] = [None]
    if rule.match.health is not None and _uses_entity(rule):
        entities = list(_entities(rule.match.health, signal) if only is None else only)
    manual = signal.manual
    decisions: list[Decision] = []
    seen: set[str] = set()
    for entity in entities:
        runbook = _render(rule.runbook, signal, entity)
        target = _render(rule.target, signal, entity)
        params = _render(rule.params, signal, entity)
        if not isinstance(runbook, str) or not isinstance(target, dict) or not isinstance(params, dict):
            raise _Missing("a runbook name, target object or params object")
        key = f"{runbook}|{sorted(target.items())!r}"
        if key in seen:  # two entities reduced to the same id: one decision
            continue
        seen.add(key)
        decisions.append(
            Decision(
                rule=rule.name,
                runbook=runbook,
                target=target,
                params=params,
                dry_run=rule.dry_run or bool(manual and manual.input.get("dryRun")),
                reason=str(manual.input.get("reason") or "-")[:_MAX_REASON]
                if manual
                else _auto_reason(rule, signal),
            )
        )
    return decisions


# Whether a decision's runbook applies to its target: None (yes) or the reason it does not.
Applicability = Callable[[Decision], str | None]


def _candidates(rule: Rule, signal: Signal, settled: set[str]) -> list[AffectedEntity | None]:
    """One entry per subject the rule decides on: each affected entity not yet decided, or the signal."""
    if rule.match.health is None or not _uses_entity(rule):
        return [None]
    unique: dict[str, AffectedEntity] = {}
    for entity in _entities(rule.match.health, signal):
        if entity.resource_id not in settled:
            unique.setdefault(entity.resource_id, entity)
    return list(unique.values())


def decide(policy: Policy, signal: Signal, applies: Applicability | None = None) -> list[Decision] | NoMatch:
    """The decisions for one signal, in rule order; `NoMatch` says why there are none.

    A rule with ``whenApplicable`` asks ``applies`` about each decision it makes (without ``applies``,
    e.g. in pure tests, every decision applies). A target its runbook does not apply to is passed over:
    the rule does not stop the evaluation for it, and later rules may decide it. For Health events the
    subject is the affected entity: once an entity is decided, later rules skip it.
    """
    decisions: list[Decision] = []
    notes: list[str] = []
    settled: set[str] = set()
    for rule in policy.rules:
        if rule.kind != signal.kind or not _matches(rule, signal):
            continue
        made: list[Decision] = []
        passed_over = False
        subjects = _candidates(rule, signal, settled)
        try:
            for subject in subjects:
                found = _decisions_for(rule, signal, None if subject is None else [subject])
                unknown = sorted({d.runbook for d in found} - RUNBOOKS.keys())
                if unknown:
                    raise _UnknownRunbook(", ".join(unknown))
                if rule.when_applicable and applies is not None:
                    reasons = [why for why in (applies(d) for d in found) if why]
                    if reasons:
                        notes.append(f"rule {rule.name!r} passed over: {'; '.join(reasons)}")
                        passed_over = True
                        continue
                made += found
                if subject is not None and found:
                    settled.add(subject.resource_id)
        except _Missing as missing:
            notes.append(f"rule {rule.name!r} matched but the signal has no {{{missing.path}}}")
            continue
        except _UnknownRunbook as unknown_runbook:
            notes.append(f"rule {rule.name!r} names unknown runbook {unknown_runbook} (known: {_known()})")
            continue
        if not made:
            if not passed_over:
                notes.append(f"rule {rule.name!r} matched but no affected entity passed its entity filters")
            continue
        decisions.extend(made)
        if not rule.continue_ and not passed_over:
            break
    if decisions:
        return decisions
    return NoMatch(reason=_no_match_reason(signal, notes))


class _UnknownRunbook(Exception):
    pass


def _no_match_reason(signal: Signal, notes: list[str]) -> str:
    if notes:
        return f"{describe(signal)}: " + "; ".join(notes)
    if signal.alarm is not None and signal.alarm.state != AlarmState.ALARM:
        return f"{describe(signal)}: no rule acts on a transition to {signal.alarm.state}"
    return f"no rule matches {describe(signal)}"


def _known() -> str:
    return ", ".join(sorted(RUNBOOKS))


# ---------------------------------------------------------------------------------- load/validate


def _loc(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _schema_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    return [f"{prefix}{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]


def _is_templated(value: Any) -> bool:
    return isinstance(value, str) and bool(_PLACEHOLDER.search(value))


def _value_at(data: Any, loc: tuple[int | str, ...]) -> Any:
    for part in loc:
        found = (isinstance(data, dict) and part in data) or (
            isinstance(data, list) and isinstance(part, int) and part < len(data)
        )
        if not found:
            return None
        data = data[part]
    return data


_SHAPE_ERRORS = {"extra_forbidden", "missing"}


def _fit_problems(model: type[BaseModel], value: dict[str, Any], where: str) -> list[str]:
    """Does a target/params template fit the runbook's model? A templated value can't be checked
    before a signal fills it, so value errors on it are ignored; missing and unknown fields are not."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [
            f"{where}{'.' + _loc(err['loc']) if err['loc'] else ''}: {err['msg']}"
            for err in exc.errors()
            if err["type"] in _SHAPE_ERRORS
            or not (err["loc"] and _is_templated(_value_at(value, err["loc"])))
        ]
    return []


def _rule_problems(index: int, rule: Rule) -> list[str]:
    where = f"rules[{index}] ({rule.name})"
    problems: list[str] = []
    for text in _template_strings([rule.runbook, rule.target, rule.params]):
        if text.count("{") != text.count("}") or "{}" in text:
            problems.append(f"{where}: unbalanced or empty braces in {text!r}")
    for path in sorted(_placeholders(rule)):
        if not _known_placeholder(rule.kind, path):
            problems.append(f"{where}: unknown placeholder {{{path}}} in a rule matching {rule.kind}")
    for field in ("target", "params"):
        value = getattr(rule, field)
        if isinstance(value, str) and not (
            rule.kind == SignalKind.MANUAL and value == _DICT_PLACEHOLDERS[field]
        ):
            problems.append(
                f"{where}.{field}: must be an object (only manual rules may use {_DICT_PLACEHOLDERS[field]})"
            )
    if _is_templated(rule.runbook):
        if not (rule.kind == SignalKind.MANUAL and rule.runbook == "{manual.runbook}"):
            problems.append(f"{where}.runbook: only manual rules may take the runbook from the signal")
        return problems
    spec = RUNBOOKS.get(rule.runbook)
    if spec is None:
        return [*problems, f"{where}.runbook: unknown runbook {rule.runbook!r} (known: {_known()})"]
    if isinstance(rule.target, dict):
        problems += _fit_problems(spec.target_model, rule.target, f"{where}.target")
    if isinstance(rule.params, dict):
        problems += _fit_problems(spec.params_model, rule.params, f"{where}.params")
    return problems


def _document_problems(data: Any) -> tuple[Policy | None, list[str]]:
    if not isinstance(data, dict):
        return None, [f"the policy must be a YAML mapping with version and rules, not {type(data).__name__}"]
    problems: list[str] = []
    if data.get("version") != POLICY_VERSION:
        problems.append(
            f"version: unsupported version {data.get('version')!r} (this selfheal reads {POLICY_VERSION})"
        )
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        return None, problems + _schema_problems(exc)
    names = [rule.name for rule in policy.rules]
    problems += [
        f"rules: duplicate rule name {name!r}" for name in sorted({n for n in names if names.count(n) > 1})
    ]
    for index, rule in enumerate(policy.rules):
        problems += _rule_problems(index, rule)
    for runbook in sorted(policy.recovery_objectives):
        if runbook not in RUNBOOKS:
            problems.append(f"recoveryObjectives.{runbook}: unknown runbook (known: {_known()})")
    for runbook in sorted(policy.approvals):
        spec = RUNBOOKS.get(runbook)
        if spec is None:
            problems.append(f"approvals.{runbook}: unknown runbook (known: {_known()})")
        elif not spec.asks_approval:
            asking = ", ".join(sorted(n for n, r in RUNBOOKS.items() if r.asks_approval))
            problems.append(f"approvals.{runbook}: its workflow has no approval step (only {asking})")
    return policy, problems


def _read(path: Path) -> tuple[Any, list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return None, [f"{path}: cannot read ({exc.strerror or exc})"]
    try:
        return yaml.safe_load(text), []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return None, [f"{path}: YAML error{at}: {problem}"]


def validate_file(path: str | Path) -> list[str]:
    """Every problem in a policy file (empty: valid). Never raises."""
    data, problems = _read(Path(path))
    if problems:
        return problems
    return _document_problems(data)[1]


def parse_policy(data: Any) -> Policy:
    """A policy from already-loaded YAML/JSON data; `PolicyError` lists every problem."""
    policy, problems = _document_problems(data)
    if problems or policy is None:
        raise PolicyError(f"invalid policy: {len(problems)} problem(s)", problems=problems)
    return policy


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at path (default: the packaged policy.yaml), parsed once per process."""
    return _load_cached(str(Path(path) if path is not None else DEFAULT_POLICY_PATH))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> Policy:
    data, problems = _read(Path(path))
    if problems:
        raise PolicyError(f"invalid policy {path}", problems=problems)
    try:
        return parse_policy(data)
    except PolicyError as exc:
        raise PolicyError(
            f"invalid policy {path}: {len(exc.details['problems'])} problem(s)", **exc.details
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_POLICY_PATH
    problems = validate_file(path)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
