"""RDS behaviour moto 5.2.5 gets wrong or lacks, as the AWS RDS API reference documents it.

``PromoteReadReplica``: moto flips an internal flag only: the instance keeps
``ReadReplicaSourceDBInstanceIdentifier``, the source keeps listing it, the status never leaves
``available``, and promoting an instance that is not a replica "succeeds". Real RDS rejects a
non-replica (``InvalidDBInstanceState``), detaches the replica from its source, and the instance goes
through ``modifying`` (it reboots) before it is ``available`` as a standalone instance. Here the
promotion takes ``promotion_seconds`` (``LOCALCLOUD_RDS_PROMOTION_SECONDS``, default 2 s), so a
workflow can be seen polling, and a too-short verify budget times out as it would in AWS.

Pinned with the rest of localcloud.compat (it replaces moto backend methods).
"""

from __future__ import annotations

import os
import threading
from typing import Any

DEFAULT_PROMOTION_SECONDS = 2.0


def promotion_seconds() -> float:
    return float(os.environ.get("LOCALCLOUD_RDS_PROMOTION_SECONDS", DEFAULT_PROMOTION_SECONDS))


def _finish_promotion(database: Any) -> None:
    if database.status == "modifying":
        database.status = "available"


def patch_rds_promote_read_replica() -> None:
    from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
    from moto.rds.models import RDSBackend

    if getattr(RDSBackend, "_selfheal_promote_patched", False):
        return

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
    RDSBackend._selfheal_promote_patched = True


def apply_all() -> None:
    patch_rds_promote_read_replica()


def inject_instance_status(account: str, region: str, identifier: str, status: str) -> None:
    """Fault injection for tests and the demo: put an instance in a status only AWS can cause
    (``storage-full``, ``incompatible-parameters``, ``rebooting``...). Not an AWS API."""
    from moto.rds.models import rds_backends

    rds_backends[account][region].databases[identifier].status = status
