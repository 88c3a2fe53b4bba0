"""RDS behaviour moto 5.2.5 gets wrong or lacks, as the AWS RDS API reference documents it.

``PromoteReadReplica``: moto flips an internal flag only: the instance keeps
``ReadReplicaSourceDBInstanceIdentifier``, the source keeps listing it, the status never leaves
``available``, and promoting an instance that is not a replica "succeeds". Real RDS rejects a
non-replica (``InvalidDBInstanceState``), detaches the replica from its source, and the instance goes
through ``modifying`` (it reboots) before it is ``available`` as a standalone instance. Here the
promotion takes ``promotion_seconds`` (``LOCALCLOUD_RDS_PROMOTION_SECONDS``, default 2 s), so a
workflow can be seen polling, and a too-short verify budget times out as it would in AWS.

Aurora global databases: see the block above ``patch_rds_global_clusters``.

Pinned to moto 5.2.5 with every patch (localcloud.patches): it replaces moto backend methods.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from localcloud.patches import patch

DEFAULT_PROMOTION_SECONDS = 2.0


def promotion_seconds() -> float:
    return float(os.environ.get("LOCALCLOUD_RDS_PROMOTION_SECONDS", DEFAULT_PROMOTION_SECONDS))


def _finish_promotion(database: Any) -> None:
    if database.status == "modifying":
        database.status = "available"


@patch("rds-promote-read-replica")
def patch_rds_promote_read_replica() -> None:
    """moto's PromoteReadReplica only flips a flag: refuse a non-replica, detach the replica, and go
    through ``modifying`` before ``available``, as RDS does."""
    from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
    from moto.rds.models import RDSBackend as _RDSBackend

    RDSBackend: Any = _RDSBackend  # patched in place: typed Any, as moto internals are

    def promote_read_replica(self: Any, db_kwargs: dict[str, Any]) -> Any:
        database_id = db_kwargs["db_instance_identifier"]
        database = self.databases.get(database_id)
        if database is None:
            raise DBInstanceNotFoundError(database_id)
        if not database.is_replica:
            raise RDSClientError("InvalidDBInstanceState", "DB Instance is not a read replica.")
        if database.status != "available":
            raise RDSClientError(
                "InvalidDBInstanceState", f"DB instance {database_id} is not in available state."
            )
        source_id = database.source_db_instance_identifier
        source = self.databases.get(str(source_id).rsplit(":", 1)[-1]) if source_id else None
        if source is not None and database_id in source.replicas:
            source.remove_replica(database)
        database.is_replica = False
        database.source_db_instance_identifier = None
        retention = db_kwargs.get("backup_retention_period")
        if retention is not None:
            database.backup_retention_period = retention
        database.status = "modifying"
        timer = threading.Timer(promotion_seconds(), _finish_promotion, args=(database,))
        timer.daemon = True
        timer.start()
        return database

    RDSBackend.promote_read_replica = promote_read_replica


def inject_instance_status(account: str, region: str, identifier: str, status: str) -> None:
    """Fault injection for tests and the demo: put an instance in a status only AWS can cause
    (``storage-full``, ``incompatible-parameters``, ``rebooting``...). Not an AWS API."""
    from moto.rds.models import rds_backends

    rds_backends[account][region].databases[identifier].status = status


# --- Aurora global databases ------------------------------------------------------------------------
# moto 5.2.5: DescribeGlobalClusters ignores GlobalClusterIdentifier (returns every global cluster),
# CreateGlobalCluster drops Tags and does not make the source cluster the writer, and
# SwitchoverGlobalCluster / FailoverGlobalCluster do not exist. Emulated from the RDS API reference:
# - Switchover (planned, no data loss) and Failover(AllowDataLoss=true) take the global cluster out of
#   "available" ("switching-over" / "failing-over") with a FailoverState {Status, FromDbClusterArn,
#   ToDbClusterArn, IsDataLossAllowed}; when done the target is the writer, the old primary a
#   secondary, FailoverState is gone and the status is "available" again.
# - FailoverGlobalCluster without AllowDataLoss is a switchover; AllowDataLoss with Switchover is
#   InvalidParameterCombination.
# - Refused with InvalidGlobalClusterStateFault while another switchover/failover runs or the global
#   cluster is not available; GlobalClusterNotFoundFault / DBClusterNotFoundFault for unknown ids;
#   InvalidParameterValue for a target that is not a secondary of this global cluster.
DEFAULT_GLOBAL_SWITCH_SECONDS = 2.0


def global_switch_seconds() -> float:
    return float(os.environ.get("LOCALCLOUD_RDS_GLOBAL_SWITCH_SECONDS", DEFAULT_GLOBAL_SWITCH_SECONDS))


def _rds_error(code: str, message: str) -> Exception:
    from moto.rds.exceptions import RDSClientError

    return RDSClientError(code, message)


def _find_global(account: str, identifier: str) -> Any:
    from moto.rds.models import rds_backends

    for backend in rds_backends[account].values():
        for key, cluster in backend.global_clusters.items():
            if identifier in (key, cluster.global_cluster_identifier, cluster.global_cluster_arn):
                return cluster
    raise _rds_error("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")


def _finish_switch(global_cluster: Any, target: Any) -> None:
    with _switch_lock:
        for member in global_cluster.members:
            member.is_writer = member is target
        global_cluster.failover_state = None
        global_cluster.status = "available"


_switch_lock = threading.Lock()


def start_global_switch(account: str, identifier: str, target_identifier: str, allow_data_loss: bool) -> Any:
    """The shared core of SwitchoverGlobalCluster and FailoverGlobalCluster."""
    global_cluster = _find_global(account, identifier)
    with _switch_lock:
        if getattr(global_cluster, "failover_state", None) or global_cluster.status != "available":
            raise _rds_error(
                "InvalidGlobalClusterStateFault",
                f"Global cluster {identifier} is {global_cluster.status}: a switchover or failover is"
                " already in progress",
            )
        target = next(
            (
                m
                for m in global_cluster.members
                if target_identifier in (m.db_cluster_arn, m.db_cluster_identifier)
            ),
            None,
        )
        if target is None:
            raise _rds_error(
                "DBClusterNotFoundFault",
                f"DBCluster {target_identifier} is not a member of global cluster {identifier}.",
            )
        if target.is_writer:
            raise _rds_error(
                "InvalidParameterValue",
                f"{target_identifier} is already the primary cluster of global cluster {identifier}.",
            )
        writer = next((m for m in global_cluster.members if m.is_writer), None)
        global_cluster.status = "failing-over" if allow_data_loss else "switching-over"
        global_cluster.failover_state = {
            "Status": "pending",
            "FromDbClusterArn": writer.db_cluster_arn if writer else None,
            "ToDbClusterArn": target.db_cluster_arn,
            "IsDataLossAllowed": allow_data_loss,
        }
    timer = threading.Timer(global_switch_seconds(), _finish_switch, args=(global_cluster, target))
    timer.daemon = True
    timer.start()
    return global_cluster


@patch("rds-global-clusters")
def patch_rds_global_clusters() -> None:
    """moto's Aurora global clusters: DescribeGlobalClusters that filters, CreateGlobalCluster with
    tags and a writer, SwitchoverGlobalCluster and FailoverGlobalCluster (the block above)."""
    from moto.core.responses import ActionResult
    from moto.rds import models as rds_models
    from moto.rds import responses as rds_responses

    GlobalCluster: Any = rds_models.GlobalCluster
    RDSBackend: Any = rds_models.RDSBackend
    RDSResponse: Any = rds_responses.RDSResponse

    GlobalCluster.failover_state = None  # class default: the attribute the serializer reads

    original_create = RDSBackend.create_global_cluster

    def create_global_cluster(self: Any, *args: Any, **kwargs: Any) -> Any:
        cluster = original_create(self, *args, **kwargs)
        for member in cluster.members:  # a global cluster made from a cluster: that cluster writes
            member.is_writer = True
        return cluster

    RDSBackend.create_global_cluster = create_global_cluster

    original_create_response = RDSResponse.create_global_cluster

    def create_global_cluster_response(self: Any) -> Any:
        result = original_create_response(self)
        tags = self.params.get("Tags") or []
        if tags:
            cluster = _find_global(self.current_account, self.params["GlobalClusterIdentifier"])
            cluster.tags = [{"Key": t["Key"], "Value": t.get("Value", "")} for t in tags]
        return result

    def describe_global_clusters(self: Any) -> Any:
        identifier = self.params.get("GlobalClusterIdentifier")
        clusters = self.global_backend.describe_global_clusters()
        if identifier:
            clusters = [_find_global(self.current_account, identifier)]
        return ActionResult({"GlobalClusters": clusters})

    def switchover_global_cluster(self: Any) -> Any:
        cluster = start_global_switch(
            self.current_account,
            self.params["GlobalClusterIdentifier"],
            self.params["TargetDbClusterIdentifier"],
            allow_data_loss=False,
        )
        return ActionResult({"GlobalCluster": cluster})

    def failover_global_cluster(self: Any) -> Any:
        allow = str(self.params.get("AllowDataLoss", "false")).lower() == "true"
        switchover = str(self.params.get("Switchover", "false")).lower() == "true"
        if allow and switchover:
            raise _rds_error(
                "InvalidParameterCombination", "AllowDataLoss and Switchover cannot be specified together."
            )
        cluster = start_global_switch(
            self.current_account,
            self.params["GlobalClusterIdentifier"],
            self.params["TargetDbClusterIdentifier"],
            allow_data_loss=allow,
        )
        return ActionResult({"GlobalCluster": cluster})

    RDSResponse.create_global_cluster = create_global_cluster_response
    RDSResponse.describe_global_clusters = describe_global_clusters
    RDSResponse.switchover_global_cluster = switchover_global_cluster
    RDSResponse.failover_global_cluster = failover_global_cluster
