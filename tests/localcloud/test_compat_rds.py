"""RDS and Step Functions callback emulation, against the documented AWS behaviour."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from localcloud import compat_rds, ops
from localcloud.harness import DeployedCloud


def _primary_and_replica(rds: Any) -> tuple[str, str]:
    name = f"db-{uuid.uuid4().hex[:8]}"
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
    )
    rds.create_db_instance_read_replica(DBInstanceIdentifier=f"{name}-r", SourceDBInstanceIdentifier=name)
    return name, f"{name}-r"


def _instance(rds: Any, name: str) -> dict[str, Any]:
    return dict(rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0])


def test_promote_read_replica_detaches_the_replica_and_goes_through_modifying(local: DeployedCloud) -> None:
    # Given a primary with one read replica
    rds = local.client("rds")
    primary, replica = _primary_and_replica(rds)
    # When the replica is promoted
    response = rds.promote_read_replica(DBInstanceIdentifier=replica)["DBInstance"]
    # Then it is modifying, no longer a replica, and the source no longer lists it
    assert response["DBInstanceStatus"] == "modifying"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in _instance(rds, replica)
    assert replica not in _instance(rds, primary).get("ReadReplicaDBInstanceIdentifiers", [])
    # And it becomes available as a standalone instance after the promotion time
    deadline = time.monotonic() + compat_rds.promotion_seconds() + 5
    while _instance(rds, replica)["DBInstanceStatus"] != "available":
        assert time.monotonic() < deadline, "promotion never finished"
        time.sleep(0.2)


def test_promote_read_replica_refuses_an_instance_that_is_not_a_replica(local: DeployedCloud) -> None:
    rds = local.client("rds")
    primary, _ = _primary_and_replica(rds)
    with pytest.raises(ClientError) as raised:
        rds.promote_read_replica(DBInstanceIdentifier=primary)
    assert raised.value.response["Error"]["Code"] == "InvalidDBInstanceState"
    assert "not a read replica" in raised.value.response["Error"]["Message"]


def test_promote_read_replica_of_a_missing_instance_is_not_found(local: DeployedCloud) -> None:
    with pytest.raises(ClientError) as raised:
        local.client("rds").promote_read_replica(DBInstanceIdentifier="no-such-db")
    assert raised.value.response["Error"]["Code"] == "DBInstanceNotFound"


def test_promote_read_replica_refuses_a_replica_that_is_not_available(local: DeployedCloud) -> None:
    rds = local.client("rds")
    _, replica = _primary_and_replica(rds)
    compat_rds.inject_instance_status("123456789012", local.cloud.region, replica, "storage-full")
    with pytest.raises(ClientError) as raised:
        rds.promote_read_replica(DBInstanceIdentifier=replica)
    assert raised.value.response["Error"]["Code"] == "InvalidDBInstanceState"


def _waiting_execution(local: DeployedCloud) -> tuple[str, str]:
    """An execution parked on an SNS publish.waitForTaskToken task, and its task token."""
    sns, sfn = local.client("sns"), local.client("stepfunctions")
    topic = sns.create_topic(Name=f"approvals-{uuid.uuid4().hex[:8]}")["TopicArn"]
    definition = {
        "StartAt": "Ask",
        "States": {
            "Ask": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sns:publish.waitForTaskToken",
                "Parameters": {
                    "TopicArn": topic,
                    "Message": "approve?",
                    "MessageAttributes": {
                        "taskToken": {"DataType": "String", "StringValue.$": "$$.Task.Token"}
                    },
                },
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refused"}],
                "End": True,
            },
            "Refused": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }
    machine = sfn.create_state_machine(
        name=f"approval-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for event in sfn.get_execution_history(executionArn=execution)["events"]:
            details = event.get("taskScheduledEventDetails")
            if details:
                params = json.loads(details["parameters"])
                return execution, params["MessageAttributes"]["taskToken"]["StringValue"]
        time.sleep(0.1)
    raise AssertionError("the task was never scheduled")


def test_send_task_failure_passes_error_and_cause_to_the_waiting_task(local: DeployedCloud) -> None:
    execution, token = _waiting_execution(local)
    local.client("stepfunctions").send_task_failure(
        taskToken=token, error="ApprovalRejected", cause="bob: replica is behind"
    )
    result = ops.wait_for_execution(local.client("stepfunctions"), execution, timeout=20)
    assert (result.status, result.error, result.cause) == (
        "FAILED",
        "ApprovalRejected",
        "bob: replica is behind",
    )


def test_send_task_success_resumes_the_waiting_task_with_its_output(local: DeployedCloud) -> None:
    execution, token = _waiting_execution(local)
    local.client("stepfunctions").send_task_success(
        taskToken=token, output=json.dumps({"approvedBy": "alice"})
    )
    result = ops.wait_for_execution(local.client("stepfunctions"), execution, timeout=20)
    assert result.status == "SUCCEEDED"
    assert result.output == {"approvedBy": "alice"}


# --- Aurora global databases -----------------------------------------------------------------------


def _global(local: DeployedCloud) -> tuple[Any, str, str, str]:
    """A global database: a writer cluster here (us-east-1), a secondary in us-west-2."""
    rds = local.client("rds")
    west = boto3.client(
        "rds",
        region_name="us-west-2",
        endpoint_url=local.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"g-{uuid.uuid4().hex[:8]}"
    primary = rds.create_db_cluster(
        DBClusterIdentifier=f"{name}-east",
        Engine="aurora-postgresql",
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
    )["DBCluster"]["DBClusterArn"]
    rds.create_global_cluster(
        GlobalClusterIdentifier=name, SourceDBClusterIdentifier=primary, Tags=[{"Key": "team", "Value": "db"}]
    )
    secondary = west.create_db_cluster(
        DBClusterIdentifier=f"{name}-west", Engine="aurora-postgresql", GlobalClusterIdentifier=name
    )["DBCluster"]["DBClusterArn"]
    return rds, name, primary, secondary


def _writer(rds: Any, name: str) -> tuple[str, str | None, dict[str, Any] | None]:
    found = rds.describe_global_clusters(GlobalClusterIdentifier=name)["GlobalClusters"]
    assert len(found) == 1  # the identifier filters (moto alone returns every global cluster)
    writer = next((m["DBClusterArn"] for m in found[0]["GlobalClusterMembers"] if m["IsWriter"]), None)
    return found[0]["Status"], writer, found[0].get("FailoverState")


def _settle(rds: Any, name: str) -> tuple[str, str | None, dict[str, Any] | None]:
    deadline = time.monotonic() + compat_rds.global_switch_seconds() + 5
    while (state := _writer(rds, name))[0] != "available":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    return state


def test_create_global_cluster_makes_the_source_the_writer_and_keeps_tags(local: DeployedCloud) -> None:
    rds, name, primary, _ = _global(local)
    assert _writer(rds, name) == ("available", primary, None)
    found = rds.describe_global_clusters(GlobalClusterIdentifier=name)["GlobalClusters"][0]
    assert found["TagList"] == [{"Key": "team", "Value": "db"}]


def test_switchover_global_cluster_swaps_writer_through_switching_over(local: DeployedCloud) -> None:
    rds, name, primary, secondary = _global(local)
    response = rds.switchover_global_cluster(
        GlobalClusterIdentifier=name, TargetDbClusterIdentifier=secondary
    )
    assert response["GlobalCluster"]["Status"] == "switching-over"
    state = response["GlobalCluster"]["FailoverState"]
    assert (state["FromDbClusterArn"], state["ToDbClusterArn"], state["IsDataLossAllowed"]) == (
        primary,
        secondary,
        False,
    )
    # A second operation while the first runs is refused
    with pytest.raises(ClientError) as raised:
        rds.switchover_global_cluster(GlobalClusterIdentifier=name, TargetDbClusterIdentifier=primary)
    assert raised.value.response["Error"]["Code"] == "InvalidGlobalClusterStateFault"
    assert _settle(rds, name) == ("available", secondary, None)


def test_failover_global_cluster_with_data_loss_promotes_the_secondary(local: DeployedCloud) -> None:
    rds, name, _, secondary = _global(local)
    response = rds.failover_global_cluster(
        GlobalClusterIdentifier=name, TargetDbClusterIdentifier=secondary, AllowDataLoss=True
    )
    assert response["GlobalCluster"]["Status"] == "failing-over"
    assert response["GlobalCluster"]["FailoverState"]["IsDataLossAllowed"] is True
    assert _settle(rds, name)[1] == secondary


@pytest.mark.parametrize(
    "call, code",
    [
        ({"GlobalClusterIdentifier": "no-such-global"}, "GlobalClusterNotFoundFault"),
        (
            {"TargetDbClusterIdentifier": "arn:aws:rds:us-west-2:123456789012:cluster:nope"},
            "DBClusterNotFoundFault",
        ),
        ({"AllowDataLoss": True, "Switchover": True}, "InvalidParameterCombination"),
        ({"TargetDbClusterIdentifier": "PRIMARY"}, "InvalidParameterValue"),
    ],
)
def test_failover_global_cluster_errors(local: DeployedCloud, call: dict[str, Any], code: str) -> None:
    rds, name, primary, secondary = _global(local)
    kwargs: dict[str, Any] = {"GlobalClusterIdentifier": name, "TargetDbClusterIdentifier": secondary, **call}
    if kwargs["TargetDbClusterIdentifier"] == "PRIMARY":
        kwargs["TargetDbClusterIdentifier"] = primary
    with pytest.raises(ClientError) as raised:
        rds.failover_global_cluster(**kwargs)
    assert raised.value.response["Error"]["Code"] == code
    assert _writer(rds, name)[:2] == ("available", primary)
