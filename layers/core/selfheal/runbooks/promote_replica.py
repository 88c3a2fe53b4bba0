"""promote-replica: fail a database over to its replica, safely.

Three shapes, one runbook (the plan's ``kind`` tells the state machine which path to take):

- ``rds-replica``: an RDS read replica of the failed primary is promoted to a standalone writer and the
  DNS name the application uses (a Route 53 record) is repointed at it. The old primary is never
  touched; the audit rows say where traffic went and how to go back.
- ``aurora-cluster``: the cluster fails over to a named reader, or the best one (promotion tier, then
  size).
- ``aurora-global``: managed switchover (or failover) of a global database to a named secondary.

This module resolves what to act on, checks that acting is safe (fence, state, replica lag) and
declares the exact calls; the calls themselves run as direct SDK integrations in the workflow
(``tools/asl/runbooks/promote_replica.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal, Self

from pydantic import Field, ValidationError, model_validator

from selfheal.config import listed
from selfheal.dns import iam_record_name, record_name_allowed
from selfheal.errors import (
    InvalidInput,
    NotApplicable,
    PreconditionFailed,
    TerminalError,
    UnknownResource,
    VerificationFailed,
)
from selfheal.models import StrictModel, utcnow
from selfheal.runbooks.base import Call, CallSpec, Plan, Runbook, register
from selfheal.tags import tag_dict, tag_params

IAM_ACTIONS = (
    "rds:DescribeDBInstances",
    "rds:DescribeDBClusters",
    "rds:DescribeGlobalClusters",
    "rds:ListTagsForResource",
    "cloudwatch:GetMetricStatistics",
    "route53:ListResourceRecordSets",
    "route53:ListTagsForResource",
    "rds:PromoteReadReplica",
    "rds:FailoverDBCluster",
    "rds:SwitchoverGlobalCluster",
    "rds:FailoverGlobalCluster",
    "route53:ChangeResourceRecordSets",
)

# RDS is already doing something to these instances (a Multi-AZ failover reboots the primary;
# a modification may be one): acting now would fight AWS's own recovery.
AWS_BUSY_STATES = frozenset(
    {"rebooting", "modifying", "failing-over", "starting", "upgrading", "maintenance", "renaming"}
)
# ReplicaLag below 0 means replication is not running (AWS/RDS docs): as good as unknown.
LAG_LOOKBACK_MINUTES = 10
# Instance class sizes, smallest first, for "the best reader" (promotion tier first, then size).
_SIZES = ("nano", "micro", "small", "medium", "large", "xlarge")


def size_rank(instance_class: str) -> int:
    """db.r6g.2xlarge -> larger than db.r6g.xlarge -> larger than db.r6g.large. Unknown sizes rank 0."""
    size = instance_class.rsplit(".", 1)[-1]
    if size in _SIZES:
        return _SIZES.index(size)
    if size.endswith("xlarge"):
        multiple = size.removesuffix("xlarge")
        return len(_SIZES) - 1 + (int(multiple) if multiple.isdigit() else 0)
    if size == "metal":
        return 1000
    return 0


class PromoteReplicaTarget(StrictModel):
    """The failed database: an RDS instance (its read replica is promoted), an Aurora cluster or a
    global database."""

    db_instance_identifier: str | None = Field(
        default=None, alias="dbInstanceIdentifier", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$"
    )
    db_cluster_identifier: str | None = Field(
        default=None, alias="dbClusterIdentifier", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,62}$"
    )
    global_cluster_identifier: str | None = Field(
        default=None, alias="globalClusterIdentifier", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,254}$"
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [
            v
            for v in (self.db_instance_identifier, self.db_cluster_identifier, self.global_cluster_identifier)
            if v
        ]
        if len(given) != 1:
            raise ValueError(
                "target needs exactly one of dbInstanceIdentifier, dbClusterIdentifier,"
                " globalClusterIdentifier"
            )
        return self

    @property
    def key(self) -> str:
        return (
            self.db_instance_identifier or self.db_cluster_identifier or self.global_cluster_identifier or ""
        )


class PromoteReplicaParams(StrictModel):
    # rds-replica
    replica_identifier: str | None = Field(
        default=None,
        alias="replicaIdentifier",
        description="The read replica to promote; default: the primary's selfheal:param:replicaIdentifier"
        " tag, else its only fenced replica",
    )
    hosted_zone_id: str | None = Field(
        default=None,
        alias="hostedZoneId",
        pattern=r"^(/hostedzone/)?[A-Z0-9]{1,32}$",
        description="rds-replica: the hosted zone of the application's DNS name",
    )
    record_name: str | None = Field(
        default=None,
        alias="recordName",
        min_length=1,
        max_length=255,
        description="rds-replica: the DNS name (a plain CNAME) repointed at the replica",
    )
    # Tunables default to None so a resource's selfheal:param: tag can fill them in (the request
    # carries every set field, so a non-None default would always win over the tag); see DEFAULTS.
    record_ttl: int | None = Field(
        default=None, alias="recordTtl", ge=0, le=86400, description="TTL of the repointed CNAME"
    )
    max_lag_seconds: float | None = Field(
        default=None,
        alias="maxLagSeconds",
        ge=0,
        description="Replica lag over this, or unknown: a human approves first (at most the stack's limit)",
    )
    approval_timeout_seconds: int | None = Field(
        default=None,
        alias="approvalTimeoutSeconds",
        ge=1,
        le=86400,
        description="How long an approval may take; unanswered: nothing is done",
    )
    # "don't fight AWS": set by the policy from an RDS event saying AWS is already recovering
    recovering_event: str | None = Field(
        default=None,
        alias="recoveringEvent",
        description="Set by the policy from an RDS event saying AWS is already recovering: skip",
    )
    # aurora-cluster
    target_instance_identifier: str | None = Field(
        default=None,
        alias="targetInstanceIdentifier",
        description="aurora-cluster: the reader to fail over to; default: the best available one",
    )
    # aurora-global
    target_cluster_identifier: str | None = Field(
        default=None,
        alias="targetClusterIdentifier",
        description="aurora-global: the secondary cluster (id or ARN) that becomes the primary",
    )
    global_action: Literal["switchover", "failover"] = Field(
        default="switchover",
        alias="globalAction",
        description="aurora-global: switchover (no data loss) or failover (AllowDataLoss: approved first)",
    )
    # verification
    verify_attempts: int | None = Field(
        default=None,
        alias="verifyAttempts",
        ge=1,
        le=360,
        description="Checks of the result before the run fails",
    )
    verify_interval_seconds: int | None = Field(
        default=None, alias="verifyIntervalSeconds", ge=0, le=300, description="Seconds between those checks"
    )

    def value(self, name: str) -> Any:
        """The param, or its default when neither the request nor a tag set it."""
        given = getattr(self, name)
        return DEFAULTS[name] if given is None else given


DEFAULTS: dict[str, Any] = {
    "record_ttl": 30,
    "max_lag_seconds": 60.0,
    "approval_timeout_seconds": 1800,
    "verify_attempts": 60,
    "verify_interval_seconds": 10,
}


class DnsRecordNow(StrictModel):
    """A plain CNAME record set as Route 53 holds it (what an undo of the repoint writes back)."""

    ttl: int = Field(ge=0, le=2147483647)
    values: list[str] = Field(min_length=1)


class PromotionPlan(Plan):
    kind: Literal["rds-replica", "aurora-cluster", "aurora-global"]
    target_key: str = Field(alias="targetKey")
    verify_attempts: int = Field(alias="verifyAttempts")
    verify_interval_seconds: int = Field(alias="verifyIntervalSeconds")
    # rds-replica
    primary_identifier: str | None = Field(default=None, alias="primaryIdentifier")
    primary_endpoint: str | None = Field(default=None, alias="primaryEndpoint")
    replica_identifier: str | None = Field(default=None, alias="replicaIdentifier")
    replica_endpoint: str | None = Field(default=None, alias="replicaEndpoint")
    # What resolve read (one DescribeDBInstances serves the fence and the precheck; PromoteReadReplica
    # itself refuses an instance that stopped being an available read replica since).
    replica_status: str | None = Field(default=None, alias="replicaStatus")
    replica_source: str | None = Field(default=None, alias="replicaSource")
    hosted_zone_id: str | None = Field(default=None, alias="hostedZoneId")
    record_name: str | None = Field(default=None, alias="recordName")
    record_ttl: int | None = Field(default=None, alias="recordTtl")
    # The record as resolve found it: what the undo writes back when the promotion (after the
    # repoint) does not happen.
    record_now: DnsRecordNow | None = Field(default=None, alias="recordNow")
    max_lag_seconds: float | None = Field(default=None, alias="maxLagSeconds")
    approval_timeout_seconds: int | None = Field(default=None, alias="approvalTimeoutSeconds")
    # aurora-cluster
    cluster_identifier: str | None = Field(default=None, alias="clusterIdentifier")
    current_writer: str | None = Field(default=None, alias="currentWriter")
    target_instance_identifier: str | None = Field(default=None, alias="targetInstanceIdentifier")
    # aurora-global
    global_cluster_identifier: str | None = Field(default=None, alias="globalClusterIdentifier")
    target_cluster_arn: str | None = Field(default=None, alias="targetClusterArn")
    current_writer_cluster_arn: str | None = Field(default=None, alias="currentWriterClusterArn")
    global_action: str | None = Field(default=None, alias="globalAction")


# ------------------------------------------------------------------------------------------ reads


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return "NotFound" in code


def _describe_one(describe: Any, result_key: str, **identifier: str) -> dict[str, Any] | None:
    """The one resource a Describe* call names, or None when RDS says it does not exist."""
    try:
        found = describe(**identifier)[result_key]
    except Exception as exc:
        if _not_found(exc):
            return None
        raise
    return dict(found[0]) if found else None


def describe_instance(rds: Any, identifier: str) -> dict[str, Any] | None:
    return _describe_one(rds.describe_db_instances, "DBInstances", DBInstanceIdentifier=identifier)


def _instance_tags(rds: Any, instance: dict[str, Any]) -> dict[str, str]:
    if "TagList" in instance:
        return tag_dict(instance["TagList"])
    return tag_dict(rds.list_tags_for_resource(ResourceName=instance["DBInstanceArn"])["TagList"])


def _zone_tags(route53: Any, zone_id: str) -> dict[str, str]:
    try:
        found = route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=bare_zone_id(zone_id))
    except Exception as exc:
        if "NoSuchHostedZone" in str(exc) or _not_found(exc):
            raise UnknownResource(f"no hosted zone {zone_id}", hostedZoneId=zone_id) from exc
        raise
    return tag_dict(found.get("ResourceTagSet", {}).get("Tags"))


def bare_zone_id(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


def fqdn(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def replica_lag(cloudwatch: Any, replica: str, now: datetime | None = None) -> float | None:
    """The latest ReplicaLag datapoint (seconds) in the last minutes; None when unknown.

    Negative values mean replication is not running (AWS/RDS metric docs): reported as unknown.
    """
    now = now or utcnow()
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": replica}],
        StartTime=now - timedelta(minutes=LAG_LOOKBACK_MINUTES),
        EndTime=now + timedelta(minutes=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    if not points:
        return None
    latest = max(points, key=lambda p: p["Timestamp"])
    value = float(latest["Maximum"])
    return None if value < 0 else value


def current_record(route53: Any, zone_id: str, name: str) -> dict[str, Any] | None:
    """The CNAME (or A) record set named ``name`` in the zone, or None."""
    found = route53.list_resource_record_sets(
        HostedZoneId=bare_zone_id(zone_id), StartRecordName=fqdn(name), MaxItems="2"
    )["ResourceRecordSets"]
    for record in found:
        if record["Name"].lower() == fqdn(name).lower() and record["Type"] in ("CNAME", "A"):
            return dict(record)
    return None


def _cname_now(route53: Any, zone_id: str, name: str) -> DnsRecordNow:
    """The plain CNAME the repoint replaces (and its undo puts back). A missing name, or another kind
    of record there (an A record, an alias), is refused before anything changes: the repoint could
    not be undone by an UPSERT (the only change the role may make), or would be refused."""
    record = current_record(route53, zone_id, name)
    if record is None:
        raise PreconditionFailed(
            f"there is no CNAME {name} in hosted zone {zone_id}: create it (pointing at the primary's"
            " endpoint) so the repoint has a record to move, and to put back",
            record=name,
        )
    values = [r["Value"] for r in record.get("ResourceRecords") or []]
    if record["Type"] != "CNAME" or "AliasTarget" in record or not values:
        kind = "an alias" if "AliasTarget" in record else f"a record of type {record['Type']}"
        raise PreconditionFailed(f"{name} is {kind}, not a plain CNAME: it cannot be repointed", record=name)
    return DnsRecordNow(ttl=int(record.get("TTL", 0)), values=values)


# ----------------------------------------------------------------------------------------- resolve


def with_tag_params(
    params: PromoteReplicaParams, tags: dict[str, str], resource: str
) -> PromoteReplicaParams:
    """Params the request (or policy rule) did not set come from the resource's selfheal:param: tags."""
    known = {field.alias or name for name, field in PromoteReplicaParams.model_fields.items()}
    from_tags = {k: v for k, v in tag_params(tags).items() if k in known}
    try:
        return PromoteReplicaParams.model_validate(
            {**from_tags, **params.model_dump(by_alias=True, exclude_unset=True)}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise PreconditionFailed(
            f"bad selfheal:param: tag on {resource}: {problems}", resource=resource
        ) from exc


def _skip_if_aws_is_recovering(identifier: str, status: str | None, params: PromoteReplicaParams) -> None:
    if params.recovering_event:
        raise NotApplicable(
            f"RDS is already recovering {identifier} ({params.recovering_event}): not fighting AWS;"
            " recorded and skipped"
        )
    if status in AWS_BUSY_STATES:
        raise NotApplicable(
            f"{identifier} is {status}: RDS is already working on it; not fighting AWS, recorded and skipped"
        )


def _resolve_replica(
    clients: Any, target: PromoteReplicaTarget, params: PromoteReplicaParams
) -> PromotionPlan:
    rds = clients.rds
    primary_id = target.db_instance_identifier or ""
    primary = describe_instance(rds, primary_id)
    primary_tags = _instance_tags(rds, primary) if primary else {}
    if primary is not None:
        _skip_if_aws_is_recovering(primary_id, primary.get("DBInstanceStatus"), params)
        if primary.get("ReadReplicaSourceDBInstanceIdentifier"):
            raise PreconditionFailed(
                f"{primary_id} is itself a read replica: target the primary it replicates",
                primary=primary_id,
            )
    elif params.recovering_event:
        _skip_if_aws_is_recovering(primary_id, None, params)
    params = with_tag_params(params, primary_tags, primary_id)
    replica_id = params.replica_identifier
    if not replica_id:
        candidates = list((primary or {}).get("ReadReplicaDBInstanceIdentifiers") or [])
        if len(candidates) != 1:
            raise PreconditionFailed(
                f"{primary_id} has {len(candidates)} read replicas"
                f" ({', '.join(candidates) or 'none'}): name one in params.replicaIdentifier"
                " or tag the primary selfheal:param:replicaIdentifier",
                primary=primary_id,
            )
        replica_id = candidates[0]
    replica = describe_instance(rds, replica_id)
    if replica is None:
        raise UnknownResource(
            f"no DB instance {replica_id} (the replica of {primary_id})", replica=replica_id
        )
    source = replica.get("ReadReplicaSourceDBInstanceIdentifier")
    if not source:
        raise NotApplicable(f"{replica_id} is not a read replica (already promoted?): nothing to promote")
    if source.rsplit(":", 1)[-1] != primary_id:
        raise PreconditionFailed(
            f"{replica_id} replicates {source}, not {primary_id}", replica=replica_id, source=source
        )
    zone, record = params.hosted_zone_id, params.record_name
    if not zone or not record:
        raise PreconditionFailed(
            f"no DNS name to repoint for {primary_id}: pass params.hostedZoneId and params.recordName"
            " (or tag the primary selfheal:param:hostedZoneId / selfheal:param:recordName)",
            primary=primary_id,
        )
    zone = bare_zone_id(zone)
    record_now = _cname_now(clients.route53, zone, fqdn(record))
    replica_tags = _instance_tags(rds, replica)
    return PromotionPlan(
        kind="rds-replica",
        target_key=target.key,
        primary_identifier=primary_id,
        primary_endpoint=((primary or {}).get("Endpoint") or {}).get("Address"),
        replica_identifier=replica_id,
        replica_endpoint=(replica.get("Endpoint") or {}).get("Address"),
        replica_status=replica.get("DBInstanceStatus"),
        replica_source=source,
        hosted_zone_id=zone,
        record_name=fqdn(record),
        record_ttl=params.value("record_ttl"),
        record_now=record_now,
        max_lag_seconds=params.value("max_lag_seconds"),
        approval_timeout_seconds=params.value("approval_timeout_seconds"),
        resource_tags={replica_id: replica_tags, zone: _zone_tags(clients.route53, zone)},
        verify_attempts=params.value("verify_attempts"),
        verify_interval_seconds=params.value("verify_interval_seconds"),
    )


def describe_cluster(rds: Any, identifier: str) -> dict[str, Any]:
    cluster = _describe_one(rds.describe_db_clusters, "DBClusters", DBClusterIdentifier=identifier)
    if cluster is None:
        raise UnknownResource(f"no DB cluster {identifier}", cluster=identifier)
    return cluster


def best_reader(readers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Lowest promotion tier first (what RDS itself prefers), then the largest instance class."""
    ranked = sorted(
        readers,
        key=lambda r: (
            r.get("PromotionTier", 15),
            -size_rank(r.get("DBInstanceClass", "")),
            r["DBInstanceIdentifier"],
        ),
    )
    return ranked[0] if ranked else None


def _resolve_cluster(
    clients: Any, target: PromoteReplicaTarget, params: PromoteReplicaParams
) -> PromotionPlan:
    rds = clients.rds
    cluster_id = target.db_cluster_identifier or ""
    cluster = describe_cluster(rds, cluster_id)
    params = with_tag_params(params, tag_dict(cluster.get("TagList")), cluster_id)
    _skip_if_aws_is_recovering(cluster_id, cluster.get("Status"), params)
    members = cluster.get("DBClusterMembers") or []
    writers = [m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")]
    readers = []
    for member in members:
        if member.get("IsClusterWriter"):
            continue
        instance = describe_instance(rds, member["DBInstanceIdentifier"]) or {}
        readers.append({**instance, **member})
    if params.target_instance_identifier:
        chosen = next(
            (r for r in readers if r["DBInstanceIdentifier"] == params.target_instance_identifier), None
        )
        if chosen is None:
            raise PreconditionFailed(
                f"{params.target_instance_identifier} is not a reader of {cluster_id}"
                f" (readers: {', '.join(r['DBInstanceIdentifier'] for r in readers) or 'none'})",
                cluster=cluster_id,
            )
    else:
        chosen = best_reader([r for r in readers if r.get("DBInstanceStatus") == "available"])
        if chosen is None:
            raise PreconditionFailed(
                f"{cluster_id} has no available reader to fail over to", cluster=cluster_id
            )
    return PromotionPlan(
        kind="aurora-cluster",
        target_key=target.key,
        cluster_identifier=cluster_id,
        current_writer=writers[0] if writers else None,
        target_instance_identifier=chosen["DBInstanceIdentifier"],
        approval_timeout_seconds=params.value("approval_timeout_seconds"),
        resource_tags={
            cluster_id: tag_dict(cluster.get("TagList")),
            chosen["DBInstanceIdentifier"]: _instance_tags(rds, chosen) if "DBInstanceArn" in chosen else {},
        },
        verify_attempts=params.value("verify_attempts"),
        verify_interval_seconds=params.value("verify_interval_seconds"),
    )


def describe_global(rds: Any, identifier: str) -> dict[str, Any]:
    found = _describe_one(rds.describe_global_clusters, "GlobalClusters", GlobalClusterIdentifier=identifier)
    if found is None:
        raise UnknownResource(f"no global cluster {identifier}", globalCluster=identifier)
    return found


def _cluster_by_arn(clients: Any, arn: str) -> dict[str, Any]:
    """A member of a global database, usually in another region: ask that region."""
    parts = arn.split(":")
    region = parts[3] if arn.startswith("arn:") and len(parts) > 3 and parts[3] else None
    rds = clients.client("rds", region) if region else clients.rds
    return describe_cluster(rds, arn)


def _resolve_global(
    clients: Any, target: PromoteReplicaTarget, params: PromoteReplicaParams
) -> PromotionPlan:
    rds = clients.rds
    global_id = target.global_cluster_identifier or ""
    glob = describe_global(rds, global_id)
    params = with_tag_params(params, tag_dict(glob.get("TagList")), global_id)
    _skip_if_aws_is_recovering(global_id, glob.get("Status"), params)
    if glob.get("FailoverState"):
        raise NotApplicable(
            f"{global_id} is already {glob['FailoverState'].get('Status', 'failing over')}: not fighting AWS"
        )
    members = glob.get("GlobalClusterMembers") or []
    writer = next((m["DBClusterArn"] for m in members if m.get("IsWriter")), None)
    if not params.target_cluster_identifier:
        raise PreconditionFailed(
            f"name the secondary cluster of {global_id} in params.targetClusterIdentifier",
            globalCluster=global_id,
        )
    wanted = params.target_cluster_identifier
    secondary = next(
        (m for m in members if m["DBClusterArn"] == wanted or m["DBClusterArn"].rsplit(":", 1)[-1] == wanted),
        None,
    )
    if secondary is None:
        raise PreconditionFailed(f"{wanted} is not a member of {global_id}", globalCluster=global_id)
    if secondary.get("IsWriter"):
        raise NotApplicable(f"{wanted} is already the primary of {global_id}")
    cluster = _cluster_by_arn(clients, secondary["DBClusterArn"])
    return PromotionPlan(
        kind="aurora-global",
        target_key=target.key,
        global_cluster_identifier=global_id,
        target_cluster_arn=secondary["DBClusterArn"],
        current_writer_cluster_arn=writer,
        global_action=params.global_action,
        approval_timeout_seconds=params.value("approval_timeout_seconds"),
        resource_tags={
            global_id: tag_dict(glob.get("TagList")),
            secondary["DBClusterArn"]: tag_dict(cluster.get("TagList")),
        },
        verify_attempts=params.value("verify_attempts"),
        verify_interval_seconds=params.value("verify_interval_seconds"),
    )


def resolve(
    clients: Any, target: PromoteReplicaTarget, params: PromoteReplicaParams, fence_key: str, fence_value: str
) -> PromotionPlan:
    """What would be promoted (and which DNS name moves). The fence is checked by the guards on
    ``resourceTags``: the replica (or reader / secondary cluster) and the hosted zone."""
    if target.db_instance_identifier:
        return _resolve_replica(clients, target, params)
    if target.db_cluster_identifier:
        return _resolve_cluster(clients, target, params)
    return _resolve_global(clients, target, params)


# ---------------------------------------------------------------------------------------- precheck


def _precheck_replica(clients: Any, plan: PromotionPlan) -> dict[str, Any]:
    replica_id = plan.replica_identifier or ""
    status = plan.replica_status
    if status != "available":
        raise PreconditionFailed(
            f"replica {replica_id} is {status}, not available: it cannot take over", replica=replica_id
        )
    lag = replica_lag(clients.cloudwatch, replica_id)
    limit = plan.max_lag_seconds if plan.max_lag_seconds is not None else 0
    if lag is None:
        lag_verdict = f"ReplicaLag of {replica_id} is unknown (no datapoint in {LAG_LOOKBACK_MINUTES} min)"
    elif lag > limit:
        lag_verdict = f"ReplicaLag of {replica_id} is {lag:g}s, over the limit of {limit:g}s"
    else:
        lag_verdict = f"ReplicaLag of {replica_id} is {lag:g}s, within the limit of {limit:g}s"
    # The record as resolve read it (a plain CNAME, or the plan was refused): not read a second time.
    record = plan.record_now
    previous = list(record.values) if record else []
    was = previous[0] if previous else (plan.primary_endpoint or "")
    return {
        "primary": {"identifier": plan.primary_identifier, "endpoint": plan.primary_endpoint},
        "replica": {
            "identifier": replica_id,
            "status": status,
            "endpoint": plan.replica_endpoint,
            "replicates": plan.replica_source,
        },
        "replicaLagSeconds": lag,
        "maxLagSeconds": limit,
        "lag": lag_verdict,
        "needsApproval": lag is None or lag > limit,
        "approvalReason": lag_verdict if lag is None or lag > limit else None,
        "record": {
            "hostedZoneId": plan.hosted_zone_id,
            "name": plan.record_name,
            "type": "CNAME",
            "ttl": record.ttl if record else None,
            "values": previous,
        },
        "trafficMove": f"{plan.record_name} CNAME {was or '(none)'} -> {plan.replica_endpoint}",
        "howToGoBack": (
            f"{plan.primary_identifier} was left untouched (not deleted) but it no longer receives"
            f" writes: {plan.replica_identifier} is now the writer. To go back, rebuild"
            f" {plan.primary_identifier} as a read replica of {plan.replica_identifier} (or restore it),"
            f" promote it, then UPSERT {plan.record_name} CNAME {was or '(its endpoint)'} in hosted zone"
            f" {plan.hosted_zone_id}."
        ),
    }


def _precheck_cluster(clients: Any, plan: PromotionPlan) -> dict[str, Any]:
    cluster = describe_cluster(clients.rds, plan.cluster_identifier or "")
    chosen = describe_instance(clients.rds, plan.target_instance_identifier or "")
    status = (chosen or {}).get("DBInstanceStatus")
    if status != "available":
        raise PreconditionFailed(
            f"reader {plan.target_instance_identifier} is {status or 'missing'}, not available",
            reader=plan.target_instance_identifier,
        )
    members = cluster.get("DBClusterMembers") or []
    return {
        "cluster": plan.cluster_identifier,
        "status": cluster.get("Status"),
        # An Aurora failover inside a cluster keeps every committed write (shared storage).
        "needsApproval": False,
        "approvalReason": None,
        "writer": next((m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")), None),
        "newWriter": plan.target_instance_identifier,
        "howToGoBack": (
            f"fail {plan.cluster_identifier} over again with TargetDBInstanceIdentifier"
            f" {plan.current_writer} (the cluster endpoint follows the writer)"
        ),
    }


def _precheck_global(clients: Any, plan: PromotionPlan) -> dict[str, Any]:
    glob = describe_global(clients.rds, plan.global_cluster_identifier or "")
    if glob.get("Status") != "available":
        raise PreconditionFailed(
            f"global cluster {plan.global_cluster_identifier} is {glob.get('Status')}, not available"
        )
    secondary = _cluster_by_arn(clients, plan.target_cluster_arn or "")
    if secondary.get("Status") != "available":
        raise PreconditionFailed(
            f"secondary {plan.target_cluster_arn} is {secondary.get('Status')}, not available"
        )
    data_loss = plan.global_action == "failover"
    return {
        "globalCluster": plan.global_cluster_identifier,
        "writer": plan.current_writer_cluster_arn,
        "newWriter": plan.target_cluster_arn,
        "action": plan.global_action,
        # A failover (AllowDataLoss) drops what the secondary had not replicated yet: never without a
        # human's yes, whoever asked. A switchover waits for replication and loses nothing.
        "needsApproval": data_loss,
        "approvalReason": (
            f"failing {plan.global_cluster_identifier} over to {plan.target_cluster_arn} with"
            " AllowDataLoss may lose the writes not yet replicated"
            if data_loss
            else None
        ),
        "howToGoBack": (
            f"switch {plan.global_cluster_identifier} over again to {plan.current_writer_cluster_arn}"
            " once it is healthy (a failover with data loss needs the old primary re-added first)"
        ),
    }


def precheck(clients: Any, plan: PromotionPlan) -> dict[str, Any]:
    """Refuse to act on a database that cannot take over. Returns ``before`` (what it was, and how
    to go back)."""
    if plan.kind == "rds-replica":
        return _precheck_replica(clients, plan)
    if plan.kind == "aurora-cluster":
        return _precheck_cluster(clients, plan)
    return _precheck_global(clients, plan)


# ----------------------------------------------------------------------------------------- actions


class PromotionTimedOut(VerificationFailed):
    """The replica is not a standalone writer after the verify attempts. The DNS name already points
    at it (a promotion, once started, completes on its own): check it, and the application."""


class FailoverTimedOut(VerificationFailed):
    """The chosen reader (or secondary cluster) is not the writer after the verify attempts."""


class DnsRepointFailed(TerminalError):
    """Route 53 refused to repoint the DNS name (or it was repointed and could not be recorded, and
    was put back): nothing was promoted."""


class PromotionFailed(TerminalError):
    """PromoteReadReplica failed and the replica is still an available replica: the DNS name was put
    back, nothing else was changed."""


class DnsRestoreFailed(TerminalError):
    """The replica was NOT promoted and the DNS name, already repointed at it, could not be put back:
    it points at a read replica. Put it back by hand (the row's ``before.record`` holds the value)."""


# Java-SDK parameter casing (DbInstanceIdentifier): what Step Functions' aws-sdk integration takes.
_GLOBAL = ("GlobalClusterIdentifier", "TargetDbClusterIdentifier")
# The promotion cannot be undone, so it is the last change (a saga's pivot): the name is repointed
# first, and put back (restore-dns) when the promotion is not made. A failed promotion is looked for
# before the name is put back, so sending it again (after a timeout, a throttle) does no harm: a
# second one refused because the first went through is seen as the promotion it is.
_DNS = {"default": ("HostedZoneId", "ChangeBatch")}
REPOINT_DNS = CallSpec("repoint-dns", "route53:ChangeResourceRecordSets", _DNS)
PROMOTE = CallSpec("promote", "rds:PromoteReadReplica", {"default": ("DbInstanceIdentifier",)})
RESTORE_DNS = CallSpec("restore-dns", "route53:ChangeResourceRecordSets", _DNS, undo=True, contingent=True)
# A second failover would fail back: never retried on an error that may hide a first one.
FAILOVER_CLUSTER = CallSpec(
    "failover-cluster",
    "rds:FailoverDBCluster",
    {"default": ("DbClusterIdentifier", "TargetDbInstanceIdentifier")},
    idempotent=False,
)
SWITCHOVER_GLOBAL = CallSpec(
    "switchover-global", "rds:SwitchoverGlobalCluster", {"default": _GLOBAL}, idempotent=False
)
FAILOVER_GLOBAL = CallSpec(
    "failover-global", "rds:FailoverGlobalCluster", {"default": (*_GLOBAL, "AllowDataLoss")}, idempotent=False
)


@register
class PromoteReplica(Runbook):
    name = "promote-replica"
    target_model = PromoteReplicaTarget
    params_model = PromoteReplicaParams
    plan_model = PromotionPlan
    permissions = IAM_ACTIONS
    calls = (REPOINT_DNS, PROMOTE, RESTORE_DNS, FAILOVER_CLUSTER, SWITCHOVER_GLOBAL, FAILOVER_GLOBAL)

    asks_approval = True

    def resolve(self, target: PromoteReplicaTarget, params: PromoteReplicaParams) -> PromotionPlan:
        plan = resolve(self.clients, target, params, *self.fence)
        if plan.max_lag_seconds is None:
            return plan
        # A request or a tag (of the primary, which is not fenced: it is the failed side) may tighten
        # the lag limit, never loosen it past the stack's PromoteReplicaMaxLagSeconds.
        ceiling = self.settings.promote_replica_max_lag_seconds
        return plan.model_copy(update={"max_lag_seconds": min(plan.max_lag_seconds, ceiling)})

    def precheck(self, plan: PromotionPlan) -> dict[str, Any]:
        return precheck(self.clients, plan)

    def out_of_scope(self, plan: PromotionPlan) -> list[str]:
        """The DNS name it would repoint, outside the one zone and the names the stack allows: refused
        before anything is promoted (never found out after, when the record change is denied)."""
        if plan.kind != "rds-replica":
            return []
        zone, names = bare_zone_id(self.settings.database_hosted_zone_id), self.settings.database_record_names
        problems = []
        if plan.hosted_zone_id != zone:
            problems.append(f"hosted zone {plan.hosted_zone_id} (allowed: {zone or 'none'})")
        if not record_name_allowed(plan.record_name or "", names):
            allowed = ", ".join(listed(names)) or "none"
            problems.append(f"record {iam_record_name(plan.record_name or '')} (allowed: {allowed})")
        return problems

    def exact_calls(self, plan: PromotionPlan) -> list[Call]:
        if plan.kind == "rds-replica":
            promote = {"DbInstanceIdentifier": plan.replica_identifier}
            return [
                REPOINT_DNS.call(dns_change(plan)),
                PROMOTE.call(promote),
                RESTORE_DNS.call(dns_restore(plan)),
            ]
        if plan.kind == "aurora-cluster":
            cluster, reader = plan.cluster_identifier, plan.target_instance_identifier
            return [
                FAILOVER_CLUSTER.call({"DbClusterIdentifier": cluster, "TargetDbInstanceIdentifier": reader})
            ]
        parameters = {
            "GlobalClusterIdentifier": plan.global_cluster_identifier,
            "TargetDbClusterIdentifier": plan.target_cluster_arn,
        }
        if plan.global_action == "failover":
            return [FAILOVER_GLOBAL.call({**parameters, "AllowDataLoss": True})]
        return [SWITCHOVER_GLOBAL.call(parameters)]


def dns_restore(plan: PromotionPlan) -> dict[str, Any]:
    """The record as resolve found it, put back (the repoint's undo)."""
    if plan.record_now is None:
        raise InvalidInput("promote-replica plan without the record it would put back")
    return {
        "HostedZoneId": plan.hosted_zone_id,
        "ChangeBatch": {
            "Comment": f"selfheal promote-replica: {plan.record_name} put back ({plan.replica_identifier}"
            " was not promoted)",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": plan.record_name,
                        "Type": "CNAME",
                        "Ttl": plan.record_now.ttl,
                        "ResourceRecords": [{"Value": v} for v in plan.record_now.values],
                    },
                }
            ],
        },
    }


def dns_change(plan: PromotionPlan) -> dict[str, Any]:
    return {
        "HostedZoneId": plan.hosted_zone_id,
        "ChangeBatch": {
            "Comment": f"selfheal promote-replica: {plan.primary_identifier} -> {plan.replica_identifier}",
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": plan.record_name,
                        "Type": "CNAME",
                        "Ttl": plan.record_ttl,
                        "ResourceRecords": [{"Value": plan.replica_endpoint}],
                    },
                }
            ],
        },
    }
