"""flip-dns: move traffic from a primary endpoint to a healthy secondary (and back) in Route 53.

Three record kinds, detected from the record set itself:

- **weighted**: two records with the same name and type and different ``SetIdentifier``. Failover
  gives the primary weight 0 and the secondary the total weight; failback does the reverse.
- **simple**: one record without ``SetIdentifier``. Failover UPSERTs the secondary value (IPs or an
  alias), failback the primary value; both values come from params or tags.
- **failover**: ``Failover: PRIMARY/SECONDARY`` records. Route 53 routes by health already; the runbook
  forces the secondary (e.g. on an ALB 5xx alarm while the primary's health check still passes) by
  setting the primary's health check ``Disabled`` and ``Inverted``: a disabled check counts as
  healthy, and inverting that makes it unhealthy whatever the endpoint answers. Failback restores
  ``Disabled=false, Inverted=false`` (Route 53's own health routing takes over again, so it never
  sends traffic to a primary that is really down).

The mutating call (``ChangeResourceRecordSets`` or ``UpdateHealthCheck``), the ``GetChange`` wait and
the verification loop run in the workflow (``tools/asl/runbooks/flip_dns.py``); this module decides
what to change and checks it is safe: never flip onto a side whose own health check is not healthy.

State across executions (hold-down, failback) lives in the audit trail: see ``steps.guards``.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from selfheal.config import listed
from selfheal.dns import bare_zone_id, iam_record_name, normalise_name, record_name_allowed
from selfheal.errors import (
    NotApplicable,
    PreconditionFailed,
    PrimaryUnhealthy,
    SecondaryUnhealthy,
    UnknownResource,
)
from selfheal.models import StrictModel
from selfheal.runbooks.base import Call, CallSpec, Plan, Runbook, register

IAM_ACTIONS = (
    "route53:GetHealthCheck",
    "route53:GetHealthCheckStatus",
    "route53:ListResourceRecordSets",
    "route53:ListTagsForResource",
    "route53:GetChange",
    "route53:ChangeResourceRecordSets",
    "route53:UpdateHealthCheck",
)

# Route 53 considers an endpoint healthy when more than 18% of its checkers report it healthy.
HEALTHY_FRACTION = 0.18
ALIAS_PREFIX = "alias:"

Kind = Literal["weighted", "simple", "failover"]
Direction = Literal["failover", "failback"]


class FlipDnsTarget(StrictModel):
    """The failing primary's health check (records from its tags), or the record itself."""

    health_check_id: str | None = Field(default=None, alias="healthCheckId", pattern=r"^[0-9a-fA-F-]{8,64}$")
    hosted_zone_id: str | None = Field(
        default=None, alias="hostedZoneId", pattern=r"^(/hostedzone/)?[A-Z0-9]{1,32}$"
    )
    record_name: str | None = Field(default=None, alias="recordName", min_length=1, max_length=255)
    record_type: str = Field(default="A", alias="recordType", pattern=r"^[A-Z]{1,10}$")

    @model_validator(mode="after")
    def _health_check_or_record(self) -> Self:
        record = self.hosted_zone_id is not None or self.record_name is not None
        if record and not (self.hosted_zone_id and self.record_name):
            raise ValueError("a record target needs both hostedZoneId and recordName")
        if not record and not self.health_check_id:
            raise ValueError("target needs healthCheckId, or hostedZoneId and recordName")
        return self

    @property
    def key(self) -> str:
        """The audit/lease key: the record when named, else the health check."""
        if self.hosted_zone_id and self.record_name:
            return f"{bare_zone_id(self.hosted_zone_id)}/{normalise_name(self.record_name)}{self.record_type}"
        return self.health_check_id or ""


class FlipDnsParams(StrictModel):
    """Every field can also come from a tag ``selfheal:param:<field>`` on the target health check."""

    direction: Direction = Field(default="failover", description="failover: to the secondary; failback: back")
    hosted_zone_id: str | None = Field(
        default=None,
        alias="hostedZoneId",
        pattern=r"^(/hostedzone/)?[A-Z0-9]{1,32}$",
        description="The record's hosted zone, when the target is a health check",
    )
    record_name: str | None = Field(
        default=None,
        alias="recordName",
        min_length=1,
        max_length=255,
        description="The record's name, when the target is a health check",
    )
    record_type: str | None = Field(
        default=None,
        alias="recordType",
        pattern=r"^[A-Z]{1,10}$",
        description="The record's type (default A)",
    )
    primary_set_identifier: str | None = Field(
        default=None,
        alias="primarySetIdentifier",
        description="Weighted: the primary's record; default: the one whose HealthCheckId is the target",
    )
    secondary_set_identifier: str | None = Field(
        default=None,
        alias="secondarySetIdentifier",
        description="Weighted: the secondary's record; default: the other one",
    )
    primary_health_check_id: str | None = Field(
        default=None,
        alias="primaryHealthCheckId",
        description="Default: the primary record's own; needed for simple records",
    )
    secondary_health_check_id: str | None = Field(
        default=None,
        alias="secondaryHealthCheckId",
        description="Default: the secondary record's own; needed for simple records",
    )
    # simple records: comma-separated values, or "alias:<hosted zone id>:<dns name>"
    primary_value: str | None = Field(
        default=None,
        alias="primaryValue",
        description="Simple records: a check, must be what the primary's health check watches",
    )
    secondary_value: str | None = Field(
        default=None,
        alias="secondaryValue",
        description="Simple records: a check, must be what the secondary's health check watches",
    )
    # Tunables default to None so a tag on the health check can set them (parse_request dumps every
    # default, which would otherwise always win over the tags); effective defaults in DEFAULTS.
    hold_down_seconds: int | None = Field(
        default=None,
        alias="holdDownSeconds",
        ge=0,
        le=86400,
        description="no failback sooner after a flip (900)",
    )
    primary_healthy_seconds: int | None = Field(
        default=None,
        alias="primaryHealthySeconds",
        ge=0,
        le=3600,
        description="failback only if the primary is healthy at the start and after this long (300)",
    )
    change_attempts: int | None = Field(
        default=None,
        alias="changeAttempts",
        ge=1,
        le=120,
        description="Polls of GetChange for INSYNC before the run fails",
    )
    verify_attempts: int | None = Field(
        default=None,
        alias="verifyAttempts",
        ge=1,
        le=60,
        description="Reads of the record set (or health check) after INSYNC",
    )
    verify_interval_seconds: int | None = Field(
        default=None, alias="verifyIntervalSeconds", ge=0, le=300, description="Seconds between those reads"
    )


DEFAULTS = {
    "hold_down_seconds": 900,
    "primary_healthy_seconds": 300,
    "change_attempts": 30,
    "verify_attempts": 10,
    "verify_interval_seconds": 5,
}


def _tunable(params: FlipDnsParams, name: str) -> int:
    value = getattr(params, name)
    return int(DEFAULTS[name] if value is None else value)


class FlipPlan(Plan):
    """What changes, the exact call, its undo, and what verification must observe."""

    kind: Kind
    direction: Direction
    hosted_zone_id: str = Field(alias="hostedZoneId")
    record_name: str = Field(alias="recordName")
    record_type: str = Field(alias="recordType")
    to_health_check_id: str | None = Field(alias="toHealthCheckId")
    # The exact ChangeResourceRecordSets / UpdateHealthCheck parameters (one of them), and the undo.
    change: dict[str, Any] | None = None
    health_check_update: dict[str, Any] | None = Field(default=None, alias="healthCheckUpdate")
    undo: dict[str, Any]
    expected: dict[str, Any]
    # Read by steps.guards (generic): a failback waits out the hold-down (never below the stack's
    # minimum), on top of the cooldown every runbook has.
    hold_down_seconds: int | None = Field(alias="holdDownSeconds")
    primary_healthy_seconds: int = Field(alias="primaryHealthySeconds")
    change_attempts: int = Field(alias="changeAttempts")
    verify_attempts: int = Field(alias="verifyAttempts")
    verify_interval_seconds: int = Field(alias="verifyIntervalSeconds")


# --------------------------------------------------------------------------------------- reading


def _tags(route53: Any, kind: str, resource_id: str) -> dict[str, str]:
    """The resource's tags; UnknownResource when it does not exist (Route 53 answers NoSuch*)."""
    try:
        tag_set = route53.list_tags_for_resource(ResourceType=kind, ResourceId=resource_id)["ResourceTagSet"]
    except route53.exceptions.NoSuchHealthCheck as exc:
        raise UnknownResource(f"no health check {resource_id}", healthCheck=resource_id) from exc
    except route53.exceptions.NoSuchHostedZone as exc:
        raise UnknownResource(f"no hosted zone {resource_id}", hostedZone=resource_id) from exc
    return {t["Key"]: t["Value"] for t in tag_set.get("Tags", [])}


def _health_check(route53: Any, health_check_id: str) -> dict[str, Any]:
    try:
        return dict(route53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"])
    except route53.exceptions.NoSuchHealthCheck as exc:
        raise UnknownResource(f"no health check {health_check_id}", healthCheck=health_check_id) from exc


def health(route53: Any, health_check_id: str) -> dict[str, Any]:
    """How Route 53 sees a health check now: status healthy | unhealthy | unknown, and the evidence."""
    config = _health_check(route53, health_check_id)["HealthCheckConfig"]
    if config.get("Disabled"):
        # Route 53 no longer checks the endpoint: a disabled check says nothing about it.
        return {"healthCheckId": health_check_id, "status": "unknown", "why": "the health check is disabled"}
    observations = route53.get_health_check_status(HealthCheckId=health_check_id)["HealthCheckObservations"]
    reports = [o.get("StatusReport", {}).get("Status", "") for o in observations]
    passing = sum(r.startswith("Success") for r in reports)
    if not reports:
        return {"healthCheckId": health_check_id, "status": "unknown", "why": "no checker has reported yet"}
    endpoint_healthy = passing / len(reports) > HEALTHY_FRACTION
    healthy = endpoint_healthy != bool(config.get("Inverted"))
    return {
        "healthCheckId": health_check_id,
        "status": "healthy" if healthy else "unhealthy",
        "checkersPassing": f"{passing}/{len(reports)}",
        "inverted": bool(config.get("Inverted")),
        "sample": reports[0][:200],
    }


def _record_sets(route53: Any, zone: str, name: str, record_type: str) -> list[dict[str, Any]]:
    try:
        page = route53.list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, StartRecordType=record_type, MaxItems="100"
        )
    except route53.exceptions.NoSuchHostedZone as exc:
        raise UnknownResource(f"no hosted zone {zone}", hostedZone=zone) from exc
    return [
        dict(r)
        for r in page["ResourceRecordSets"]
        if normalise_name(r["Name"]) == name and r["Type"] == record_type
    ]


def _values(record: dict[str, Any]) -> str:
    """A record's answer in the params' notation: "1.2.3.4,5.6.7.8" or "alias:<zone>:<dns name>"."""
    alias = record.get("AliasTarget")
    if alias:
        return f"{ALIAS_PREFIX}{alias['HostedZoneId']}:{normalise_name(alias['DNSName'])}"
    return ",".join(sorted(r["Value"] for r in record.get("ResourceRecords", [])))


def _same_value(record: dict[str, Any], value: str) -> bool:
    if value.startswith(ALIAS_PREFIX):
        zone, _, dns = value[len(ALIAS_PREFIX) :].partition(":")
        return _values(record) == f"{ALIAS_PREFIX}{zone}:{normalise_name(dns)}"
    return _values(record) == ",".join(sorted(v.strip() for v in value.split(",") if v.strip()))


def _with_value(record: dict[str, Any], value: str) -> dict[str, Any]:
    updated = {k: v for k, v in record.items() if k not in ("ResourceRecords", "AliasTarget", "TTL")}
    if value.startswith(ALIAS_PREFIX):
        zone, _, dns = value[len(ALIAS_PREFIX) :].partition(":")
        evaluate = bool(record.get("AliasTarget", {}).get("EvaluateTargetHealth", False))
        updated["AliasTarget"] = {"HostedZoneId": zone, "DNSName": dns, "EvaluateTargetHealth": evaluate}
    else:
        updated["TTL"] = record.get("TTL", 60)
        updated["ResourceRecords"] = [{"Value": v.strip()} for v in value.split(",") if v.strip()]
    return updated


def _upsert(zone: str, comment: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "HostedZoneId": zone,
        "ChangeBatch": {
            "Comment": comment[:256],
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in records],
        },
    }


# --------------------------------------------------------------------------------------- resolve


def _merged_params(
    route53: Any, target: FlipDnsTarget, params: FlipDnsParams
) -> tuple[FlipDnsParams, dict[str, str]]:
    """Explicit params win; tags ``selfheal:param:*`` on the target health check fill the rest.

    Reading the tags is also the existence check: UnknownResource for a health check that is gone.
    """
    if not target.health_check_id:
        return params, {}
    tags = _tags(route53, "healthcheck", target.health_check_id)
    from_tags = {
        k.removeprefix("selfheal:param:"): v for k, v in tags.items() if k.startswith("selfheal:param:")
    }
    explicit = params.model_dump(by_alias=True, exclude_unset=True)
    try:
        merged = FlipDnsParams.model_validate({**from_tags, **explicit})
    except ValueError as exc:
        raise PreconditionFailed(
            f"health check {target.health_check_id} has invalid selfheal:param tags: {exc}"
        ) from exc
    return merged, tags


def resolve(
    route53: Any, target: FlipDnsTarget, params: FlipDnsParams, fence_key: str, fence_value: str
) -> FlipPlan:
    """Which record moves from which side to which. NotApplicable when it is already there."""
    params, target_tags = _merged_params(route53, target, params)
    zone = bare_zone_id(target.hosted_zone_id or params.hosted_zone_id or "")
    raw_name = target.record_name or params.record_name
    if not zone or not raw_name:
        raise PreconditionFailed(
            f"no record for health check {target.health_check_id}: tag it selfheal:param:hostedZoneId and"
            " selfheal:param:recordName, or pass them in params"
        )
    name = normalise_name(raw_name)
    record_type = params.record_type or target.record_type
    records = _record_sets(route53, zone, name, record_type)
    if not records:
        raise UnknownResource(f"no {record_type} record {name} in hosted zone {zone}", hostedZone=zone)
    zone_tags = _tags(route53, "hostedzone", zone)
    primary_hc = params.primary_health_check_id or target.health_check_id
    common = {
        "direction": params.direction,
        "hosted_zone_id": zone,
        "record_name": name,
        "record_type": record_type,
        "hold_down_seconds": _tunable(params, "hold_down_seconds")
        if params.direction == "failback"
        else None,
        "primary_healthy_seconds": (
            _tunable(params, "primary_healthy_seconds") if params.direction == "failback" else 0
        ),
        "change_attempts": _tunable(params, "change_attempts"),
        "verify_attempts": _tunable(params, "verify_attempts"),
        "verify_interval_seconds": _tunable(params, "verify_interval_seconds"),
    }
    resource_tags: dict[str, dict[str, str]] = {f"hostedzone/{zone}": zone_tags}
    if target.health_check_id:
        # The health check that carries the parameters is part of what we act on: fenced too.
        resource_tags[f"healthcheck/{target.health_check_id}"] = target_tags
    if any(r.get("Failover") for r in records):
        return _failover_plan(route53, records, params, primary_hc, common, resource_tags)
    if any(r.get("SetIdentifier") for r in records):
        return _weighted_plan(route53, records, params, primary_hc, common, resource_tags)
    return _simple_plan(route53, records[0], params, primary_hc, common, resource_tags)


def _weighted_plan(
    route53: Any,
    records: list[dict[str, Any]],
    params: FlipDnsParams,
    primary_hc: str | None,
    common: dict[str, Any],
    resource_tags: dict[str, dict[str, str]],
) -> FlipPlan:
    by_id = {r["SetIdentifier"]: r for r in records if "Weight" in r}

    def pick(set_id: str | None, hc: str | None, exclude: str | None) -> dict[str, Any] | None:
        if set_id:
            return by_id.get(set_id)
        if hc:
            found = [r for r in by_id.values() if r.get("HealthCheckId") == hc]
            if len(found) == 1:
                return found[0]
        others = [r for sid, r in by_id.items() if sid != exclude]
        return others[0] if exclude and len(others) == 1 else None

    primary = pick(params.primary_set_identifier, primary_hc, None)
    secondary = pick(
        params.secondary_set_identifier,
        params.secondary_health_check_id,
        primary["SetIdentifier"] if primary else None,
    )
    if primary is None or secondary is None or primary is secondary:
        raise PreconditionFailed(
            f"cannot tell primary and secondary apart among the weighted records {sorted(by_id)} of"
            f" {common['record_name']}: set primarySetIdentifier and secondarySetIdentifier"
        )
    total = int(primary["Weight"]) + int(secondary["Weight"]) or 1
    to, away = (secondary, primary) if common["direction"] == "failover" else (primary, secondary)
    if int(away["Weight"]) == 0 and int(to["Weight"]) > 0:
        raise NotApplicable(f"{common['record_name']} already sends all its weight to {to['SetIdentifier']}")
    to_hc = to.get("HealthCheckId") or (
        params.secondary_health_check_id if to is secondary else params.primary_health_check_id or primary_hc
    )
    if not to_hc:
        raise PreconditionFailed(
            f"record {to['SetIdentifier']} has no health check: give it one (or set"
            f" {'secondary' if to is secondary else 'primary'}HealthCheckId);"
            " never flip onto an unchecked target"
        )
    # The health check that vouches for the destination is part of what the run relies on: fenced.
    resource_tags[f"healthcheck/{to_hc}"] = _tags(route53, "healthcheck", to_hc)
    comment = f"selfheal flip-dns {common['direction']}: {away['SetIdentifier']} -> {to['SetIdentifier']}"
    change = _upsert(common["hosted_zone_id"], comment, [{**away, "Weight": 0}, {**to, "Weight": total}])
    undo = _upsert(common["hosted_zone_id"], f"selfheal flip-dns undo: {comment}", [away, to])
    expected = {"weights": {away["SetIdentifier"]: 0, to["SetIdentifier"]: total}}
    return FlipPlan(
        kind="weighted",
        to_health_check_id=to_hc,
        change=change,
        undo=undo,
        expected=expected,
        resource_tags=resource_tags,
        **common,
    )


def watched_endpoint(route53: Any, health_check_id: str, record_type: str) -> str | None:
    """The value a record of ``record_type`` pointing at what this health check watches would have:
    its IP address (A, AAAA) or its domain name (CNAME); None when it watches no such endpoint."""
    config = _health_check(route53, health_check_id)["HealthCheckConfig"]
    if record_type in ("A", "AAAA"):
        return config.get("IPAddress") or None
    if record_type == "CNAME":
        name = config.get("FullyQualifiedDomainName")
        return normalise_name(name) if name else None
    return None


def _simple_plan(
    route53: Any,
    record: dict[str, Any],
    params: FlipDnsParams,
    primary_hc: str | None,
    common: dict[str, Any],
    resource_tags: dict[str, dict[str, str]],
) -> FlipPlan:
    """A simple record moves only to the endpoint a fenced health check watches: the request (or a
    tag) chooses the side by its health check, never a value of its own (Route 53's IAM has no
    condition on record values: this is the only place that can refuse one)."""
    failover = common["direction"] == "failover"
    side, other = ("secondary", "primary") if failover else ("primary", "secondary")
    to_hc = params.secondary_health_check_id if failover else (params.primary_health_check_id or primary_hc)
    away_hc = (params.primary_health_check_id or primary_hc) if failover else params.secondary_health_check_id
    if not to_hc:
        raise PreconditionFailed(
            f"no health check for the {side} of {common['record_name']}: set {side}HealthCheckId;"
            " never flip onto an unchecked target"
        )
    to_value = watched_endpoint(route53, to_hc, common["record_type"])
    if to_value is None:
        raise PreconditionFailed(
            f"health check {to_hc} watches no endpoint a {common['record_type']} record can point at"
            f" (an {'IP address' if common['record_type'] != 'CNAME' else 'domain name'}): not flipping"
            f" {common['record_name']} to the {side}"
        )
    asked = params.secondary_value if failover else params.primary_value
    if asked is not None and not _same_value(_with_value(record, to_value), asked):
        raise PreconditionFailed(
            f"{side}Value {asked} is not the endpoint the {side}'s health check {to_hc} watches"
            f" ({to_value}): a request chooses a side, never a value of its own",
            healthCheck=to_hc,
        )
    # The health check that vouches for the destination is part of what the run relies on: fenced.
    resource_tags[f"healthcheck/{to_hc}"] = _tags(route53, "healthcheck", to_hc)
    away_value = (watched_endpoint(route53, away_hc, common["record_type"]) if away_hc else None) or (
        params.primary_value if failover else params.secondary_value
    )
    if _same_value(record, to_value):
        raise NotApplicable(f"{common['record_name']} already answers {to_value}")
    if away_value and not _same_value(record, away_value):
        raise PreconditionFailed(
            f"{common['record_name']} answers {_values(record)}, not the {other} {away_value}: someone"
            " changed it; not touching it"
        )
    comment = f"selfheal flip-dns {common['direction']}: {_values(record)} -> {to_value}"
    return FlipPlan(
        kind="simple",
        to_health_check_id=to_hc,
        change=_upsert(common["hosted_zone_id"], comment, [_with_value(record, to_value)]),
        undo=_upsert(common["hosted_zone_id"], f"selfheal flip-dns undo: {comment}", [record]),
        expected={"value": to_value},
        resource_tags=resource_tags,
        **common,
    )


def _failover_plan(
    route53: Any,
    records: list[dict[str, Any]],
    params: FlipDnsParams,
    primary_hc: str | None,
    common: dict[str, Any],
    resource_tags: dict[str, dict[str, str]],
) -> FlipPlan:
    by_role = {r.get("Failover"): r for r in records}
    primary, secondary = by_role.get("PRIMARY"), by_role.get("SECONDARY")
    if primary is None or secondary is None:
        raise PreconditionFailed(
            f"{common['record_name']} needs both a PRIMARY and a SECONDARY failover record"
        )
    forced_hc = primary.get("HealthCheckId") or primary_hc
    if not forced_hc:
        raise PreconditionFailed(
            f"the PRIMARY failover record of {common['record_name']} has no health check to force"
        )
    config = _health_check(route53, forced_hc)["HealthCheckConfig"]
    forced = bool(config.get("Disabled")) and bool(config.get("Inverted"))
    failover = common["direction"] == "failover"
    if failover and forced:
        raise NotApplicable(
            f"{common['record_name']}: the primary's health check {forced_hc} is already forced unhealthy"
        )
    if not failover and not forced:
        raise NotApplicable(f"{common['record_name']}: the primary's health check {forced_hc} is not forced")
    resource_tags[f"healthcheck/{forced_hc}"] = _tags(route53, "healthcheck", forced_hc)
    if failover:
        to_hc = secondary.get("HealthCheckId") or params.secondary_health_check_id
        if not to_hc:
            raise PreconditionFailed(
                f"the SECONDARY failover record of {common['record_name']} has no health check: set"
                " secondaryHealthCheckId; never flip onto an unchecked target"
            )
        resource_tags[f"healthcheck/{to_hc}"] = _tags(route53, "healthcheck", to_hc)
        update = {"HealthCheckId": forced_hc, "Disabled": True, "Inverted": True}
        undo = {
            "HealthCheckId": forced_hc,
            "Disabled": bool(config.get("Disabled")),
            "Inverted": bool(config.get("Inverted")),
        }
    else:
        # Un-forcing hands routing back to Route 53, which keeps traffic on the secondary for as long
        # as the primary's real health check fails: no primary health precheck is needed (or possible:
        # the check is disabled).
        to_hc = None
        update = {"HealthCheckId": forced_hc, "Disabled": False, "Inverted": False}
        undo = {"HealthCheckId": forced_hc, "Disabled": True, "Inverted": True}
    return FlipPlan(
        kind="failover",
        to_health_check_id=to_hc,
        health_check_update=update,
        undo=undo,
        expected={"healthCheck": update},
        resource_tags=resource_tags,
        **common,
    )


# -------------------------------------------------------------------------------------- precheck


def precheck(route53: Any, plan: FlipPlan) -> dict[str, Any]:
    """Refuse to flip onto a side that is not healthy, or a record that moved since resolve. `before`."""
    records = _record_sets(route53, plan.hosted_zone_id, plan.record_name, plan.record_type)
    before: dict[str, Any] = {
        "kind": plan.kind,
        "direction": plan.direction,
        "record": f"{plan.record_name} {plan.record_type} in {plan.hosted_zone_id}",
        "recordSets": records,
    }
    if plan.change is not None:
        current = {_identity(r): r for r in records}
        changing = [c["ResourceRecordSet"] for c in plan.undo["ChangeBatch"]["Changes"]]
        if any(current.get(_identity(r)) != r for r in changing):
            raise PreconditionFailed(
                f"{plan.record_name} changed since the plan was made: not touching it",
                record=plan.record_name,
            )
    if plan.to_health_check_id is None:
        before["to"] = {
            "status": "not checked",
            "why": "failback of failover records: Route 53 routes by health",
        }
        return before
    side = "secondary" if plan.direction == "failover" else "primary"
    status = health(route53, plan.to_health_check_id)
    before["to"] = status
    if status["status"] != "healthy":
        error = SecondaryUnhealthy if plan.direction == "failover" else PrimaryUnhealthy
        raise error(
            f"the {side} of {plan.record_name} is {status['status']} (health check"
            f" {plan.to_health_check_id}: {status.get('why') or status.get('checkersPassing')}):"
            " not moving traffic onto it",
            healthCheck=plan.to_health_check_id,
        )
    return before


def _identity(record: dict[str, Any]) -> tuple[str, str, str]:
    return (normalise_name(record["Name"]), record["Type"], record.get("SetIdentifier", ""))


# ---------------------------------------------------------------------------------------- verify


def verify(route53: Any, plan: FlipPlan) -> dict[str, Any]:
    """After the change is INSYNC: does the record set (or the forced health check) say what we wanted?"""
    if plan.kind == "failover":
        config = _health_check(route53, plan.expected["healthCheck"]["HealthCheckId"])["HealthCheckConfig"]
        observed = {"Disabled": bool(config.get("Disabled")), "Inverted": bool(config.get("Inverted"))}
        wanted = {k: plan.expected["healthCheck"][k] for k in ("Disabled", "Inverted")}
        return {"done": observed == wanted, "observed": observed, "expected": wanted}
    records = _record_sets(route53, plan.hosted_zone_id, plan.record_name, plan.record_type)
    if plan.kind == "weighted":
        observed_weights = {r.get("SetIdentifier", ""): int(r.get("Weight", -1)) for r in records}
        wanted_weights = plan.expected["weights"]
        done = all(observed_weights.get(k) == v for k, v in wanted_weights.items())
        return {"done": done, "observed": observed_weights, "expected": wanted_weights}
    value = plan.expected["value"]
    done = len(records) == 1 and _same_value(records[0], value)
    return {"done": done, "observed": [_values(r) for r in records], "expected": value}


# ------------------------------------------------------------------------------------------ scope


def out_of_scope(plan: FlipPlan, hosted_zone_ids: str, record_names: str, health_check_ids: str) -> list[str]:
    """What the plan touches outside the zones / record names / health checks the stack allows
    (the same lists the IAM statements are built from: the guard and IAM agree)."""
    problems = []
    zones = [bare_zone_id(z) for z in listed(hosted_zone_ids)]
    if plan.hosted_zone_id not in zones:
        problems.append(f"hosted zone {plan.hosted_zone_id} (allowed: {', '.join(zones) or 'none'})")
    if not record_name_allowed(plan.record_name, record_names):
        names = ", ".join(n.lower() for n in listed(record_names)) or "none"
        problems.append(f"record {iam_record_name(plan.record_name)} (allowed: {names})")
    if plan.health_check_update is not None:
        checks = listed(health_check_ids)
        hc = plan.health_check_update["HealthCheckId"]
        if hc not in checks:
            problems.append(f"health check {hc} (allowed: {', '.join(checks) or 'none'})")
    return problems


_CHANGE = {"default": ("HostedZoneId", "ChangeBatch")}
_HEALTH_CHECK = {"default": ("HealthCheckId", "Disabled", "Inverted")}
CHANGE = CallSpec("change", "route53:ChangeResourceRecordSets", _CHANGE)
FORCE_HEALTH_CHECK = CallSpec("force-health-check", "route53:UpdateHealthCheck", _HEALTH_CHECK)
# The change did not show: put it back as it was.
UNDO_CHANGE = CallSpec("undo-change", "route53:ChangeResourceRecordSets", _CHANGE, undo=True, contingent=True)
UNDO_HEALTH_CHECK = CallSpec(
    "undo-health-check", "route53:UpdateHealthCheck", _HEALTH_CHECK, undo=True, contingent=True
)


@register
class FlipDns(Runbook):
    name = "flip-dns"
    target_model = FlipDnsTarget
    params_model = FlipDnsParams
    plan_model = FlipPlan
    permissions = IAM_ACTIONS
    calls = (CHANGE, FORCE_HEALTH_CHECK, UNDO_CHANGE, UNDO_HEALTH_CHECK)

    def resolve(self, target: FlipDnsTarget, params: FlipDnsParams) -> FlipPlan:
        plan = resolve(self.clients.route53, target, params, *self.fence)
        if plan.hold_down_seconds is None:
            return plan
        # A request or a tag may lengthen the hold-down, never shorten it past the stack's minimum.
        floor = self.settings.flip_dns_min_hold_down_seconds
        return plan.model_copy(update={"hold_down_seconds": max(plan.hold_down_seconds, floor)})

    def precheck(self, plan: FlipPlan) -> dict[str, Any]:
        return precheck(self.clients.route53, plan)

    def exact_calls(self, plan: FlipPlan) -> list[Call]:
        if plan.health_check_update is not None:
            return [FORCE_HEALTH_CHECK.call(plan.health_check_update), UNDO_HEALTH_CHECK.call(plan.undo)]
        return [CHANGE.call(plan.change or {}), UNDO_CHANGE.call(plan.undo)]

    def verify(self, plan: FlipPlan) -> dict[str, Any]:
        return verify(self.clients.route53, plan)

    def out_of_scope(self, plan: FlipPlan) -> list[str]:
        s = self.settings
        zones, names, checks = (
            s.flip_dns_hosted_zone_ids,
            s.flip_dns_record_names,
            s.flip_dns_health_check_ids,
        )
        return out_of_scope(plan, zones, names, checks)
