"""Signals: every real event shape that can mean "something broke", parsed into one typed `Signal`.

Shapes (from the AWS user guides):

- EventBridge ``CloudWatch Alarm State Change`` (single metric, metric math, anomaly detection band,
  composite alarm);
- the payload CloudWatch sends when an alarm action invokes a Lambda function directly
  (``alarmArn`` + ``alarmData``; no event id);
- an SNS-wrapped alarm notification (Lambda SNS event, ``Records[].Sns.Message`` holding the classic
  alarm JSON: ``AlarmName``, ``NewStateValue``, ``Trigger``...);
- EventBridge ``AWS Health Event``, old schema (no scope, no status) and current schema (scope, status,
  per-entity status, pagination, string-typed numbers);
- EventBridge ``EC2 Instance State-change Notification``;
- EventBridge ``RDS DB Instance Event`` / ``RDS DB Cluster Event``;
- manual requests: EventBridge ``source: selfheal.manual``, ``detail-type: Remediation Requested``.

`parse_event` never raises: anything it cannot read becomes `Unrecognised` with a reason a human
understands, so triage can audit it as ``ignored`` instead of crashing (and being retried forever).

Parsing is hand-written dict access rather than a pydantic model per raw shape: triage must handle
thousands of signals per second per core, and the raw shapes have many fields we never read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SignalKind(StrEnum):
    ALARM = "alarm"
    HEALTH = "health"
    EC2_STATE = "ec2-state"
    RDS_EVENT = "rds-event"
    MANUAL = "manual"
    # An answer to a runbook waiting for a human (selfheal approve): not a fault, never a decision.
    APPROVAL_ANSWER = "approval-answer"


class Envelope(StrEnum):
    """How the signal reached us: it decides where the id and time come from."""

    EVENTBRIDGE = "eventbridge"
    LAMBDA_ALARM_ACTION = "lambda-alarm-action"
    SNS = "sns"


class AlarmState(StrEnum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class AlarmType(StrEnum):
    METRIC = "metric"
    METRIC_MATH = "metric-math"
    ANOMALY_DETECTION = "anomaly-detection"
    COMPOSITE = "composite"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricRef(_Frozen):
    """One entry of an alarm's metric list: a metric, or an expression over metrics."""

    id: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str | None = None
    period: int | None = None
    expression: str | None = None


class AlarmInfo(_Frozen):
    name: str
    arn: str | None = None
    state: AlarmState
    previous_state: AlarmState | None = None
    reason: str = ""
    changed_at: datetime | None = None  # when the alarm entered `state`
    alarm_type: AlarmType
    # The metric the alarm is "about": the single metric; for math and anomaly bands, what all
    # referenced metrics share (namespace, metric name, dimensions with the same value everywhere).
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    metrics: tuple[MetricRef, ...] = ()
    alarm_rule: str | None = None


class AffectedEntity(_Frozen):
    value: str
    status: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return resource_id(self.value)


class HealthInfo(_Frozen):
    event_arn: str
    service: str
    event_type_code: str
    category: str
    scope: str | None = None  # old schema: absent
    status: str | None = None  # old schema: absent
    event_region: str | None = None
    affected_account: str | None = None
    communication_id: str | None = None
    page: int = 1
    total_pages: int = 1
    start_time: datetime | None = None
    description: str = ""
    affected_entities: tuple[AffectedEntity, ...] = ()


class Ec2StateInfo(_Frozen):
    instance_id: str
    state: str


class RdsEventInfo(_Frozen):
    source_type: str | None = None
    source_id: str
    source_arn: str | None = None
    rds_event_id: str | None = None
    categories: tuple[str, ...] = ()
    message: str = ""


class ManualRequest(_Frozen):
    runbook: str
    # The runbook input as the operator wrote it: {"target", "params", "dryRun", "reason"}.
    input: dict[str, Any]
    requested_by: str | None = None
    # A proof of who sent it (selfheal.identity), bound to {"runbook", **input}; checked by triage.
    proof: Any = None

    def bound_body(self) -> dict[str, Any]:
        return {"runbook": self.runbook, **self.input}


class ApprovalAnswerInfo(_Frozen):
    # The answer as sent (checked by triage against selfheal.approvals.ApprovalAnswer), and its proof.
    answer: dict[str, Any]
    proof: Any = None


_PAYLOAD_FOR_KIND = {
    SignalKind.ALARM: "alarm",
    SignalKind.HEALTH: "health",
    SignalKind.EC2_STATE: "ec2_state",
    SignalKind.RDS_EVENT: "rds",
    SignalKind.MANUAL: "manual",
    SignalKind.APPROVAL_ANSWER: "approval_answer",
}


class Signal(_Frozen):
    kind: SignalKind
    # EventBridge id; for Lambda-action and SNS payloads a hash of the alarm ARN, new state and
    # state-change time, so a duplicate delivery gets the same id (and the same execution name).
    event_id: str
    source: str
    envelope: Envelope
    detail_type: str
    time: datetime
    account: str | None = None
    region: str | None = None
    resources: tuple[str, ...] = ()
    alarm: AlarmInfo | None = None
    health: HealthInfo | None = None
    ec2_state: Ec2StateInfo | None = None
    rds: RdsEventInfo | None = None
    manual: ManualRequest | None = None
    approval_answer: ApprovalAnswerInfo | None = None

    @property
    def dedupe_id(self) -> str:
        """The same for every delivery of one fault, whatever the envelope.

        One alarm transition can arrive by EventBridge, by SNS and as a Lambda action, each with a
        different (or no) id; keyed on alarm, new state and transition time they agree. Use it for
        the execution name. Other kinds only arrive by EventBridge: their event id.
        """
        alarm = self.alarm
        if alarm is not None and alarm.changed_at is not None:
            return alarm_event_id(alarm.arn or alarm.name, alarm.state, alarm.changed_at)
        return self.event_id

    @model_validator(mode="after")
    def _exactly_one_payload(self) -> Self:
        present = [name for name in _PAYLOAD_FOR_KIND.values() if getattr(self, name) is not None]
        expected = _PAYLOAD_FOR_KIND[self.kind]
        if present != [expected]:
            raise ValueError(f"a {self.kind} signal carries exactly {expected!r}, got {present}")
        return self


class Unrecognised(_Frozen):
    """An event we cannot (or need not) act on, and why. Triage audits it as ``ignored``."""

    reason: str
    event_id: str | None = None
    source: str | None = None
    detail_type: str | None = None


ParseResult = Signal | Unrecognised

ALARM_STATE_CHANGE = "CloudWatch Alarm State Change"


class _Bad(Exception):
    """Internal: the event is not readable; the message is the human reason."""


# ------------------------------------------------------------------------------------ public API


def parse_event(raw: object) -> ParseResult:
    """One event (EventBridge, Lambda alarm action, or a single-record SNS event) -> Signal.

    An SNS event with several records is refused with a reason pointing to `parse_records`: Lambda
    delivers SNS one record per invocation, so a batch here means a caller bug, and silently taking
    the first record would drop the others.
    """
    try:
        event = _as_object(raw, "event")
        if "Records" in event:
            records = _records(event)
            if len(records) != 1:
                return Unrecognised(
                    reason=f"SNS event with {len(records)} records: use parse_records() for batches"
                )
            return _safe(_parse_sns_record, records[0])
        if "alarmData" in event or "alarmArn" in event:
            return _parse_lambda_alarm_action(event)
        if "detail-type" in event or "source" in event:
            return _parse_eventbridge(event)
        keys = ", ".join(sorted(str(k) for k in event)[:8]) or "none"
        return Unrecognised(
            reason=f"unknown event shape (not EventBridge, SNS or alarm action); keys: {keys}"
        )
    except _Bad as exc:
        return Unrecognised(reason=str(exc), **_envelope_ids(raw))
    except Exception as exc:
        # The contract is "never raises": a crash here would make Lambda retry a poison event.
        return Unrecognised(reason=f"unreadable event ({type(exc).__name__}: {exc})", **_envelope_ids(raw))


def parse_records(raw: object) -> list[ParseResult]:
    """Like `parse_event`, but an SNS batch gives one result per record (in order)."""
    if isinstance(raw, Mapping) and "Records" in raw:
        try:
            records = _records(raw)
        except _Bad as exc:
            return [Unrecognised(reason=str(exc))]
        if not records:
            return [Unrecognised(reason="SNS event with no records")]
        return [_safe(_parse_sns_record, record) for record in records]
    return [parse_event(raw)]


def resource_id(value: str) -> str:
    """An ARN reduced to the id runbooks want (``arn:...:instance/i-0abc`` -> ``i-0abc``); ids unchanged."""
    if not value.startswith("arn:"):
        return value
    tail = value.split(":", 5)[-1]
    return tail.rsplit("/", 1)[-1] if "/" in tail else tail.rsplit(":", 1)[-1]


def alarm_event_id(alarm_arn: str, state: str, changed_at: datetime) -> str:
    """Stable id for envelopes without one: duplicate deliveries of one transition agree on it."""
    key = f"{alarm_arn}|{state}|{changed_at.astimezone(UTC).isoformat()}"
    return "alarm-" + hashlib.sha256(key.encode()).hexdigest()[:32]


# --------------------------------------------------------------------------------- small readers


def _safe(parse: Callable[[Mapping[str, Any]], ParseResult], record: object) -> ParseResult:
    try:
        return parse(_as_object(record, "SNS record"))
    except _Bad as exc:
        return Unrecognised(reason=str(exc))
    except Exception as exc:
        # One bad record must not hide the others in the batch.
        return Unrecognised(reason=f"unreadable SNS record ({type(exc).__name__}: {exc})")


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _as_object(value: object, what: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str | bytes):
        try:
            decoded = json.loads(value)
        except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for bytes
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise _Bad(f"{what} is a string that is not valid JSON ({detail})") from exc
        if isinstance(decoded, Mapping):
            return decoded
        raise _Bad(f"{what} is JSON {_type_name(decoded)}, not an object")
    raise _Bad(f"{what} is {_type_name(value)}, not a JSON object")


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        missing = "missing" if value is None else f"{_type_name(value)}, not a non-empty string"
        raise _Bad(f"{where}.{key} is {missing}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _Bad(f"{where}.{key} is {_type_name(value)}, not a string")
    return value


def _obj(obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        raise _Bad(f"{where}.{key} is {'missing' if value is None else _type_name(value)}, not an object")
    return value


def _list(obj: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{where}.{key} is {_type_name(value)}, not a list")
    return value


def _str_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(obj, key, where)
    if not all(isinstance(item, str) for item in items):
        raise _Bad(f"{where}.{key} must be a list of strings")
    return tuple(items)


def _time(value: object, where: str) -> datetime:
    """ISO 8601 (``...Z``, ``...+0000``) or RFC 1123 (``Thu, 26 Jan 2023 13:19:03 GMT``, Health)."""
    if not isinstance(value, str) or not value:
        raise _Bad(f"{where} is {'missing' if value is None else _type_name(value)}, not a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError) as exc:
            raise _Bad(f"{where} is not a timestamp: {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _int(value: object, where: str, default: int) -> int:
    """Health sends numbers as strings ("page": "1")."""
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _Bad(f"{where} is {_type_name(value)}, not a number")
    try:
        return int(value)
    except ValueError as exc:
        raise _Bad(f"{where} is not a number: {value!r}") from exc


def _alarm_state(value: object, where: str) -> AlarmState:
    if not isinstance(value, str):
        raise _Bad(f"{where} is {'missing' if value is None else _type_name(value)}, not an alarm state")
    try:
        return AlarmState(value)
    except ValueError as exc:
        raise _Bad(f"{where} is {value!r}, not one of OK, ALARM, INSUFFICIENT_DATA") from exc


def _envelope_ids(raw: object) -> dict[str, str | None]:
    """Best effort ids for an Unrecognised, so the audit row still says which event it was."""
    if not isinstance(raw, Mapping):
        return {}
    ids = {"event_id": raw.get("id"), "source": raw.get("source"), "detail_type": raw.get("detail-type")}
    return {key: value if isinstance(value, str) else None for key, value in ids.items()}


def _region_from_arn(arn: str | None) -> str | None:
    if arn and arn.startswith("arn:"):
        parts = arn.split(":", 5)
        if len(parts) > 4 and parts[3]:
            return parts[3]
    return None


def _account_from_arn(arn: str | None) -> str | None:
    if arn and arn.startswith("arn:"):
        parts = arn.split(":", 5)
        if len(parts) > 4 and parts[4]:
            return parts[4]
    return None


def _alarm_account(claimed: str | None, arn: str | None, where: str) -> str | None:
    """The alarm's account: the one its ARN names. A message that claims another account than its
    alarm's ARN is malformed (a forged account field must not make a foreign alarm look local)."""
    from_arn = _account_from_arn(arn)
    if claimed and from_arn and claimed != from_arn:
        raise _Bad(f"{where} claims account {claimed} but its alarm ARN is in account {from_arn}")
    return from_arn or claimed


# ----------------------------------------------------------------------------------- EventBridge


def _parse_eventbridge(event: Mapping[str, Any]) -> ParseResult:
    source = _str(event, "source", "event")
    detail_type = _str(event, "detail-type", "event")
    parser = _EVENTBRIDGE_PARSERS.get((source, detail_type))
    if parser is None:
        known = _NOT_FAULTS.get((source, detail_type))
        return Unrecognised(
            reason=known or f"no parser for source {source!r} detail-type {detail_type!r}",
            event_id=event.get("id") if isinstance(event.get("id"), str) else None,
            source=source,
            detail_type=detail_type,
        )
    detail = _obj(event, "detail", "event")
    kind, payload = parser(detail)
    resources = _str_list(event, "resources", "event")
    if isinstance(payload, AlarmInfo) and resources and ":alarm:" in resources[0]:
        payload = payload.model_copy(update={"arn": resources[0]})
    return Signal.model_validate(
        {
            "kind": kind,
            "event_id": _str(event, "id", "event"),
            "source": source,
            "envelope": Envelope.EVENTBRIDGE,
            "detail_type": detail_type,
            "time": _time(event.get("time"), "event.time"),
            "account": _opt_str(event, "account", "event"),
            "region": _opt_str(event, "region", "event"),
            "resources": resources,
            _PAYLOAD_FOR_KIND[kind]: payload,
        }
    )


def _eb_alarm(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    return SignalKind.ALARM, _alarm_from_camel(detail, arn=None, where="detail")


def _alarm_from_camel(data: Mapping[str, Any], arn: str | None, where: str) -> AlarmInfo:
    """``detail`` of the EventBridge event and ``alarmData`` of the Lambda action share this shape."""
    state = _obj(data, "state", where)
    previous = _obj(data, "previousState", where, required=False)
    config = _obj(data, "configuration", where, required=False)
    metrics = tuple(
        _camel_metric(m, f"{where}.configuration.metrics[{i}]")
        for i, m in enumerate(_list(config, "metrics", f"{where}.configuration"))
    )
    rule = _opt_str(config, "alarmRule", f"{where}.configuration")
    return _alarm_info(
        name=_str(data, "alarmName", where),
        arn=arn,
        state=_alarm_state(state.get("value"), f"{where}.state.value"),
        previous_state=_alarm_state(previous["value"], f"{where}.previousState.value")
        if "value" in previous
        else None,
        reason=_opt_str(state, "reason", f"{where}.state") or "",
        changed_at=_time(state["timestamp"], f"{where}.state.timestamp") if state.get("timestamp") else None,
        metrics=metrics,
        alarm_rule=rule,
    )


def _camel_metric(item: object, where: str) -> MetricRef:
    metric = _as_object(item, where)
    stat = _obj(metric, "metricStat", where, required=False)
    inner = _obj(stat, "metric", f"{where}.metricStat", required=False)
    dims = _obj(inner, "dimensions", f"{where}.metricStat.metric", required=False)
    return MetricRef(
        id=_opt_str(metric, "id", where),
        namespace=_opt_str(inner, "namespace", where),
        metric_name=_opt_str(inner, "name", where),
        dimensions={str(k): str(v) for k, v in dims.items()},
        stat=_opt_str(stat, "stat", where),
        period=_int(stat.get("period"), f"{where}.metricStat.period", 0) or None,
        expression=_opt_str(metric, "expression", where),
    )


def _alarm_info(
    *,
    name: str,
    arn: str | None,
    state: AlarmState,
    previous_state: AlarmState | None,
    reason: str,
    changed_at: datetime | None,
    metrics: tuple[MetricRef, ...],
    alarm_rule: str | None,
) -> AlarmInfo:
    expressions = [m.expression for m in metrics if m.expression]
    if alarm_rule:
        alarm_type = AlarmType.COMPOSITE
    elif any(e.lstrip().upper().startswith("ANOMALY_DETECTION_BAND") for e in expressions):
        alarm_type = AlarmType.ANOMALY_DETECTION
    elif expressions:
        alarm_type = AlarmType.METRIC_MATH
    else:
        alarm_type = AlarmType.METRIC
    namespace, metric_name, dimensions = _shared_metric(metrics)
    return AlarmInfo(
        name=name,
        arn=arn,
        state=state,
        previous_state=previous_state,
        reason=reason,
        changed_at=changed_at,
        alarm_type=alarm_type,
        namespace=namespace,
        metric_name=metric_name,
        dimensions=dimensions,
        metrics=metrics,
        alarm_rule=alarm_rule,
    )


def _shared_metric(metrics: tuple[MetricRef, ...]) -> tuple[str | None, str | None, dict[str, str]]:
    """What every referenced metric agrees on: a math alarm over one instance is still "about" it."""
    stats = [m for m in metrics if m.metric_name]
    if not stats:
        return None, None, {}
    namespaces = {m.namespace for m in stats}
    names = {m.metric_name for m in stats}
    common = dict(stats[0].dimensions)
    for m in stats[1:]:
        common = {k: v for k, v in common.items() if m.dimensions.get(k) == v}
    return (
        namespaces.pop() if len(namespaces) == 1 else None,
        names.pop() if len(names) == 1 else None,
        common,
    )


def _eb_health(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    where = "detail"
    descriptions = _list(detail, "eventDescription", where)
    description = ""
    if descriptions and isinstance(descriptions[0], Mapping):
        description = str(descriptions[0].get("latestDescription") or "")
    start = detail.get("startTime")
    return SignalKind.HEALTH, HealthInfo(
        event_arn=_str(detail, "eventArn", where),
        service=_str(detail, "service", where),
        event_type_code=_str(detail, "eventTypeCode", where),
        category=_str(detail, "eventTypeCategory", where),
        scope=_opt_str(detail, "eventScopeCode", where),
        status=_opt_str(detail, "statusCode", where),
        event_region=_opt_str(detail, "eventRegion", where),
        affected_account=_opt_str(detail, "affectedAccount", where),
        communication_id=_opt_str(detail, "communicationId", where),
        page=_int(detail.get("page"), f"{where}.page", 1),
        total_pages=_int(detail.get("totalPages"), f"{where}.totalPages", 1),
        start_time=_time(start, f"{where}.startTime") if start else None,
        description=description,
        affected_entities=tuple(
            _entity(e, f"{where}.affectedEntities[{i}]")
            for i, e in enumerate(_list(detail, "affectedEntities", where))
        ),
    )


def _entity(item: object, where: str) -> AffectedEntity:
    entity = _as_object(item, where)
    tags = _obj(entity, "tags", where, required=False)
    return AffectedEntity(
        value=_str(entity, "entityValue", where),
        status=_opt_str(entity, "status", where),
        tags={str(k): str(v) for k, v in tags.items()},
    )


def _eb_ec2_state(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    return SignalKind.EC2_STATE, Ec2StateInfo(
        instance_id=_str(detail, "instance-id", "detail"), state=_str(detail, "state", "detail")
    )


def _eb_rds(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    where = "detail"
    return SignalKind.RDS_EVENT, RdsEventInfo(
        source_type=_opt_str(detail, "SourceType", where),
        source_id=_str(detail, "SourceIdentifier", where),
        source_arn=_opt_str(detail, "SourceArn", where),
        rds_event_id=_opt_str(detail, "EventID", where),
        categories=_str_list(detail, "EventCategories", where),
        message=_opt_str(detail, "Message", where) or "",
    )


def _eb_manual(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    where = "detail"
    runbook = _str(detail, "runbook", where)
    requested_by = _opt_str(detail, "requestedBy", where)
    # The runbook input exactly as the operator wrote it (no default reason, no field dropped): the
    # runbook checks it as it checks a console input, so a missing reason or an unknown field is
    # refused the same way on every path.
    envelope = ("runbook", "requestedBy", "proof")
    runbook_input = {str(k): v for k, v in detail.items() if k not in envelope}
    return SignalKind.MANUAL, ManualRequest(
        runbook=runbook, input=runbook_input, requested_by=requested_by, proof=detail.get("proof")
    )


def _eb_approval_answer(detail: Mapping[str, Any]) -> tuple[SignalKind, BaseModel]:
    answer = {str(k): v for k, v in detail.items() if k != "proof"}
    return SignalKind.APPROVAL_ANSWER, ApprovalAnswerInfo(answer=answer, proof=detail.get("proof"))


_EVENTBRIDGE_PARSERS: dict[tuple[str, str], Callable[[Mapping[str, Any]], tuple[SignalKind, BaseModel]]] = {
    ("aws.cloudwatch", ALARM_STATE_CHANGE): _eb_alarm,
    ("aws.health", "AWS Health Event"): _eb_health,
    ("aws.ec2", "EC2 Instance State-change Notification"): _eb_ec2_state,
    ("aws.rds", "RDS DB Instance Event"): _eb_rds,
    ("aws.rds", "RDS DB Cluster Event"): _eb_rds,
    ("selfheal.manual", "Remediation Requested"): _eb_manual,
    ("selfheal.manual", "Approval Answered"): _eb_approval_answer,
}


# Events a rule may deliver that are known not to be faults: say so rather than "no parser".
_NOT_FAULTS = {
    ("aws.cloudwatch", "CloudWatch Alarm Configuration Change"): (
        "an alarm configuration change (create/update/delete) is not a fault signal"
    ),
}


# --------------------------------------------------------------------------- Lambda alarm action


def _parse_lambda_alarm_action(event: Mapping[str, Any]) -> ParseResult:
    arn = _str(event, "alarmArn", "event")
    data = _obj(event, "alarmData", "event")
    alarm = _alarm_from_camel(data, arn=arn, where="alarmData")
    state = _obj(data, "state", "alarmData")
    changed_at = _time(state.get("timestamp") or event.get("time"), "alarmData.state.timestamp")
    return Signal(
        kind=SignalKind.ALARM,
        event_id=alarm_event_id(arn, alarm.state, changed_at),
        source=_opt_str(event, "source", "event") or "aws.cloudwatch",
        envelope=Envelope.LAMBDA_ALARM_ACTION,
        detail_type=ALARM_STATE_CHANGE,
        time=_time(event.get("time"), "event.time") if event.get("time") else changed_at,
        account=_alarm_account(_opt_str(event, "accountId", "event"), arn, "event"),
        region=_opt_str(event, "region", "event") or _region_from_arn(arn),
        resources=(arn,),
        alarm=alarm,
    )


# ------------------------------------------------------------------------------------------- SNS


def _records(event: Mapping[str, Any]) -> list[Any]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise _Bad(f"event.Records is {_type_name(records)}, not a list")
    return records


def _parse_sns_record(record: Mapping[str, Any]) -> ParseResult:
    sns = _obj(record, "Sns", "record")
    message = _as_object(sns.get("Message"), "Sns.Message")
    if "AlarmName" not in message:
        # The alarm topic takes CloudWatch alarm notifications only: a message shaped like another
        # event (an AWS Health event, say) is never read as one. EventBridge refuses aws.* sources
        # from PutEvents; re-parsing a published body would be a way around that.
        return Unrecognised(reason="SNS message is not a CloudWatch alarm notification (no AlarmName)")
    return _sns_alarm(message, sns)


def _sns_alarm(message: Mapping[str, Any], sns: Mapping[str, Any]) -> Signal:
    where = "Sns.Message"
    arn = _opt_str(message, "AlarmArn", where)
    trigger = _obj(message, "Trigger", where, required=False)
    if trigger.get("MetricName"):
        metrics: tuple[MetricRef, ...] = (
            MetricRef(
                namespace=_opt_str(trigger, "Namespace", f"{where}.Trigger"),
                metric_name=_opt_str(trigger, "MetricName", f"{where}.Trigger"),
                dimensions=_pascal_dimensions(trigger.get("Dimensions"), f"{where}.Trigger.Dimensions"),
                stat=_opt_str(trigger, "Statistic", f"{where}.Trigger")
                or _opt_str(trigger, "ExtendedStatistic", f"{where}.Trigger"),
                period=_int(trigger.get("Period"), f"{where}.Trigger.Period", 0) or None,
            ),
        )
    else:
        metrics = tuple(
            _pascal_metric(m, f"{where}.Trigger.Metrics[{i}]")
            for i, m in enumerate(_list(trigger, "Metrics", f"{where}.Trigger"))
        )
    state = _alarm_state(message.get("NewStateValue"), f"{where}.NewStateValue")
    old = message.get("OldStateValue")
    changed_at = _time(message.get("StateChangeTime") or sns.get("Timestamp"), f"{where}.StateChangeTime")
    name = _str(message, "AlarmName", where)
    alarm = _alarm_info(
        name=name,
        arn=arn,
        state=state,
        previous_state=_alarm_state(old, f"{where}.OldStateValue") if old else None,
        reason=_opt_str(message, "NewStateReason", where) or "",
        changed_at=changed_at,
        metrics=metrics,
        alarm_rule=_opt_str(message, "AlarmRule", where),
    )
    return Signal(
        kind=SignalKind.ALARM,
        event_id=alarm_event_id(arn or name, state, changed_at),
        source="aws.cloudwatch",
        envelope=Envelope.SNS,
        detail_type=ALARM_STATE_CHANGE,
        time=changed_at,
        # "Region" in the message is a display name ("US East (N. Virginia)"): take the code from the ARN.
        account=_alarm_account(_opt_str(message, "AWSAccountId", where), arn, where),
        region=_region_from_arn(arn) or _region_from_arn(_opt_str(sns, "TopicArn", "Sns")),
        resources=(arn,) if arn else (),
        alarm=alarm,
    )


def _pascal_dimensions(value: object, where: str) -> dict[str, str]:
    """Classic alarm JSON: ``[{"name": "InstanceId", "value": "i-..."}]`` (lower-case keys)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise _Bad(f"{where} is {_type_name(value)}, not a list")
    dims: dict[str, str] = {}
    for item in value:
        dim = _as_object(item, where)
        key = dim.get("name", dim.get("Name"))
        val = dim.get("value", dim.get("Value"))
        if not isinstance(key, str) or val is None:
            raise _Bad(f"{where} entries need a name and a value")
        dims[key] = str(val)
    return dims


def _pascal_metric(item: object, where: str) -> MetricRef:
    metric = _as_object(item, where)
    stat = _obj(metric, "MetricStat", where, required=False)
    inner = _obj(stat, "Metric", f"{where}.MetricStat", required=False)
    return MetricRef(
        id=_opt_str(metric, "Id", where),
        namespace=_opt_str(inner, "Namespace", where),
        metric_name=_opt_str(inner, "MetricName", where),
        dimensions=_pascal_dimensions(inner.get("Dimensions"), f"{where}.MetricStat.Metric.Dimensions"),
        stat=_opt_str(stat, "Stat", where),
        period=_int(stat.get("Period"), f"{where}.MetricStat.Period", 0) or None,
        expression=_opt_str(metric, "Expression", where),
    )
