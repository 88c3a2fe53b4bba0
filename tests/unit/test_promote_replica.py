"""promote-replica pure logic: input models, reader ranking, the exact calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from selfheal.clients import Clients
from selfheal.config import Settings
from selfheal.runbooks.promote_replica import (
    PromoteReplica,
    PromoteReplicaParams,
    PromoteReplicaTarget,
    PromotionPlan,
    best_reader,
    size_rank,
)

EXAMPLE = json.loads((Path(__file__).parents[2] / "events/runbooks/promote-replica.json").read_text())


def test_target_console_example_is_valid() -> None:
    assert PromoteReplicaTarget.model_validate(EXAMPLE["target"]).key == "orders-db"
    assert PromoteReplicaParams.model_validate(EXAMPLE["params"]).max_lag_seconds == 30


@pytest.mark.parametrize(
    "target",
    [{}, {"dbInstanceIdentifier": "a", "dbClusterIdentifier": "b"}, {"dbInstanceIdentifier": "1bad"}],
)
def test_target_needs_exactly_one_valid_identifier(target: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        PromoteReplicaTarget.model_validate(target)


def test_params_unknown_field_is_an_error_and_defaults_apply_when_unset() -> None:
    with pytest.raises(ValidationError):
        PromoteReplicaParams.model_validate({"maxLag": 5})
    params = PromoteReplicaParams()
    assert (params.value("max_lag_seconds"), params.value("verify_interval_seconds")) == (60.0, 10)


def test_size_rank_orders_instance_classes_by_size() -> None:
    classes = ["db.r6g.large", "db.t3.micro", "db.r6g.16xlarge", "db.r6g.xlarge", "db.r6g.2xlarge"]
    assert sorted(classes, key=size_rank) == [
        "db.t3.micro",
        "db.r6g.large",
        "db.r6g.xlarge",
        "db.r6g.2xlarge",
        "db.r6g.16xlarge",
    ]


def test_best_reader_prefers_promotion_tier_then_size() -> None:
    readers = [
        {"DBInstanceIdentifier": "big-tier1", "PromotionTier": 1, "DBInstanceClass": "db.r6g.8xlarge"},
        {"DBInstanceIdentifier": "small-tier0", "PromotionTier": 0, "DBInstanceClass": "db.r6g.large"},
        {"DBInstanceIdentifier": "large-tier0", "PromotionTier": 0, "DBInstanceClass": "db.r6g.2xlarge"},
    ]
    assert best_reader(readers)["DBInstanceIdentifier"] == "large-tier0"  # type: ignore[index]
    assert best_reader([]) is None


def _plan(**kw: object) -> PromotionPlan:
    base = {"targetKey": "g", "resourceTags": {}, "verifyAttempts": 1, "verifyIntervalSeconds": 0}
    return PromotionPlan.model_validate({**base, **kw})


def test_exact_calls_global_failover_allows_data_loss_and_switchover_does_not() -> None:
    runbook = PromoteReplica(Clients(), Settings(AUDIT_TABLE="audit"))  # exact_calls needs no AWS
    common = {"kind": "aurora-global", "globalClusterIdentifier": "g", "targetClusterArn": "arn:c"}
    (failover,) = runbook.exact_calls(_plan(**common, globalAction="failover"))
    (switchover,) = runbook.exact_calls(_plan(**common, globalAction="switchover"))
    assert failover.action == "rds:FailoverGlobalCluster" and failover.parameters["AllowDataLoss"] is True
    assert switchover.action == "rds:SwitchoverGlobalCluster" and "AllowDataLoss" not in switchover.parameters
