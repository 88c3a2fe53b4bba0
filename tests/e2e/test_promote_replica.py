"""promote-replica end to end on the local cloud: the real template, rules, functions and ASL.

Each test builds its own primary / replica / DNS record, so tests never share a target.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import boto3
import pytest

from localcloud import compat_rds, ops
from localcloud.faults import terminal
from localcloud.harness import DeployedCloud
from localcloud.worlds import Aws, promote_replica, unique
from localcloud.worlds.promote_replica import Database
from selfheal_cli import outcomes
from selfheal_cli.main import main
from tests.e2e.throttling import THROTTLES_PAST_THE_CLIENT
from tests.events import load_event

FENCE = {"Key": "selfheal:managed", "Value": "true"}
RUNBOOK = "promote-replica"
ACCOUNT, REGION = "123456789012", "us-east-1"


# The record names the stack allows promote-replica to repoint (DatabaseRecordNames): the tests' own.
RECORD_NAMES = "db.*.internal"


@pytest.fixture(autouse=True)
def database_scope(cloud: DeployedCloud) -> Any:
    """Each test's database lives in its own zone: the stack's DatabaseHostedZoneId follows it (set by
    make_database), and is put back after the test."""
    original = cloud.set_steps_variables()
    yield
    cloud.set_steps_variables(**original)


def make_database(cloud: DeployedCloud, lag: float | None = 2.0, **variants: Any) -> Database:
    """A database of its own, in a zone of its own that the stack's scope is pointed at, as an
    operator would redeploy with its zone (variants: promote_replica.database)."""
    aws, name = Aws.of(cloud), unique("orders")
    zone = promote_replica.private_zone(aws, f"{name}.internal.")
    cloud.set_steps_variables(DATABASE_HOSTED_ZONE_ID=zone.id, DATABASE_RECORD_NAMES=RECORD_NAMES)
    return promote_replica.database(aws, name, zone, f"db.{zone.name}", lag=lag, **variants)


def rows_for(cloud: DeployedCloud, target: str) -> list[dict[str, Any]]:
    return ops.audit_for_target(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"], target)


def manual_input(db: Database, **params: Any) -> dict[str, Any]:
    return {
        "target": {"dbInstanceIdentifier": db.primary},
        "params": {"verifyIntervalSeconds": 1, "verifyAttempts": 15, **params},
        "dryRun": False,
        "reason": "e2e test",
    }


def rds_event(db: Database, sample: str = "rds-instance-failure") -> dict[str, Any]:
    event = copy.deepcopy(load_event(sample))
    event["id"] = str(uuid.uuid4())
    arn = f"arn:aws:rds:us-east-1:123456789012:db:{db.primary}"
    event["resources"] = [arn]
    event["detail"]["SourceArn"] = arn
    event["detail"]["SourceIdentifier"] = db.primary
    return event


def test_promote_replica_second_failure_event_after_the_promotion_is_a_skip_not_a_failure(cloud):
    """Found by the storm: RDS reports the failure again (a new event) after the replica was
    promoted; the primary has no replica any more. That is the fault already handled: skipped, no
    page, nothing counted towards the breaker (it failed the run with PreconditionFailed before)."""
    db = make_database(cloud, lag=2.0)
    first = cloud.send_event_and_wait(rds_event(db), timeout=90)
    assert [e.status for e in first.executions] == ["SUCCEEDED"]
    again = cloud.send_event_and_wait(rds_event(db), timeout=60)
    (execution,) = again.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    last = rows_for(cloud, db.primary)[-1]
    assert last["phase"] == "skipped" and last["error"]["error"] == "RecentlyRemediated"
    assert "0 read replicas" in last["reason"] and "cooldown" in last["reason"]


def test_promote_replica_rds_failure_event_promotes_the_replica_and_moves_the_dns_name(cloud):
    # Given a fenced primary with a healthy fenced replica and the application's CNAME on the primary
    db = make_database(cloud, lag=2.0)
    # When RDS reports the primary failed
    summary = cloud.send_event_and_wait(rds_event(db), timeout=90)
    # Then the replica is a standalone writer and the name points at it; the primary is untouched
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert db.replica_state(cloud) == ("available", None)
    assert db.record_value(cloud) == db.replica_endpoint
    primary = cloud.client("rds").describe_db_instances(DBInstanceIdentifier=db.primary)["DBInstances"][0]
    assert primary["DBInstanceStatus"] == "available"
    rows = rows_for(cloud, db.primary)
    phases = [r["phase"] for r in rows]
    assert phases == [
        "received",
        "started",
        "action",
        "action",
        "verified",
        "action",
        "action",
        "verified",
        "succeeded",
    ]
    succeeded = rows[-1]
    assert (
        succeeded["before"]["trafficMove"]
        == f"{db.record} CNAME {db.primary_endpoint} -> {db.replica_endpoint}"
    )
    assert "To go back" in succeeded["before"]["howToGoBack"]
    assert succeeded["before"]["replicaLagSeconds"] == 2.0


def test_promote_replica_every_mutating_call_has_audit_rows_before_and_after(cloud):
    db = make_database(cloud)
    cloud.reset_recording()
    result = cloud.start_and_wait(RUNBOOK, manual_input(db), timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    mutating = [
        r
        for r in cloud.recorded_requests()
        if r.service in ("rds", "route53") and not r.operation.startswith(("Describe", "Get", "List"))
    ]
    # The promotion cannot be undone: it is the last change, after the name was repointed (and checked)
    assert [m.operation for m in mutating] == ["ChangeResourceRecordSets", "PromoteReadReplica"]
    rows = rows_for(cloud, db.primary)
    for call in mutating:
        matching = [
            r
            for r in rows
            if r.get("action") == f"{call.service}:{call.operation}" and r["phase"] == "action"
        ]
        assert [r["outcome"] for r in matching] == ["pending", "ok"], json.dumps(rows, default=str)


def test_promote_replica_dry_run_records_would_do_and_changes_nothing(cloud):
    db = make_database(cloud)
    result = cloud.start_and_wait(RUNBOOK, {**manual_input(db), "dryRun": True})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.primary_endpoint
    rows = rows_for(cloud, db.primary)
    assert [r["phase"] for r in rows] == ["started", "would-do", "would-do", "succeeded"]
    dns, promote = rows[1], rows[2]
    assert promote["action"] == "rds:PromoteReadReplica"
    assert promote["parameters"] == {"DbInstanceIdentifier": db.replica}
    assert dns["action"] == "route53:ChangeResourceRecordSets"
    change = dns["parameters"]["ChangeBatch"]["Changes"][0]
    assert change["ResourceRecordSet"]["ResourceRecords"] == [{"Value": db.replica_endpoint}]


def test_promote_replica_unfenced_replica_is_refused(cloud):
    db = make_database(cloud, fence_replica=False)
    result = cloud.start_and_wait(RUNBOOK, manual_input(db))
    assert result.status == "SUCCEEDED"  # skipped, by design: a guard said no
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.primary_endpoint
    skipped = rows_for(cloud, db.primary)[-1]
    assert skipped["phase"] == "skipped"
    assert db.replica in skipped["reason"] and "fence" in skipped["reason"]


def test_promote_replica_replica_not_available_fails_with_a_named_error_and_escalates(cloud):
    db = make_database(cloud)
    # A replica whose storage filled up cannot take over (only AWS can cause this: injected).
    compat_rds.inject_instance_status(ACCOUNT, REGION, db.replica, "storage-full")
    result = cloud.start_and_wait(RUNBOOK, manual_input(db))
    assert result.status == "FAILED"
    assert result.error == "PreconditionFailed"
    assert "not available" in (result.cause or "")
    assert db.record_value(cloud) == db.primary_endpoint
    failed = rows_for(cloud, db.primary)[-1]
    assert failed["phase"] == "failed" and failed["error"]["error"] == "PreconditionFailed"


def test_promote_replica_promotion_that_never_completes_times_out_with_a_named_error(cloud):
    db = make_database(cloud)
    # One check, no wait: the emulated promotion is still "modifying" (as a real one would be).
    result = cloud.start_and_wait(RUNBOOK, manual_input(db, verifyAttempts=1, verifyIntervalSeconds=0))
    assert result.status == "FAILED"
    assert result.error == "PromotionTimedOut"
    # The promotion was made and completes on its own: the name, moved before it, stays on it
    assert "already points at it" in (result.cause or "")
    assert db.record_value(cloud) == db.replica_endpoint
    rows = rows_for(cloud, db.primary)
    assert rows[-1]["phase"] == "failed" and rows[-1]["error"]["error"] == "PromotionTimedOut"
    assert [r["outcome"] for r in rows if r["phase"] == "action"] == ["pending", "ok", "pending", "ok"]


def test_promote_replica_multi_az_failover_started_is_recorded_and_skipped(cloud):
    db = make_database(cloud)
    summary = cloud.send_event_and_wait(rds_event(db, "rds-instance-multi-az-failover-started"))
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED"
    assert db.replica_state(cloud) == ("available", db.primary)
    skipped = rows_for(cloud, db.primary)[-1]
    assert skipped["phase"] == "skipped" and "not fighting AWS" in skipped["reason"]


# ------------------------------------------------------------------------------------- approval


def _start(cloud: DeployedCloud, body: dict[str, Any]) -> str:
    arn = cloud.state_machine_arn(RUNBOOK)
    return str(
        cloud.client("stepfunctions").start_execution(stateMachineArn=arn, input=json.dumps(body))[
            "executionArn"
        ]
    )


@pytest.fixture
def approvals(cloud: DeployedCloud) -> Any:
    """What an approver subscribed to the notification topic receives: the question for an execution."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName=f"approver-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.stack.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=arn)
    seen: list[dict[str, Any]] = []

    def question_for(execution_arn: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                seen.append(json.loads(m["Body"]))
            for note in seen:
                if execution_arn in note["Message"] and "asks for approval" in note["Message"]:
                    return note
            time.sleep(0.2)
        raise AssertionError(f"no approval request for {execution_arn}: {seen}")

    return question_for


def _words(note: dict[str, Any]) -> str:
    """A notification's text with its lines joined (e-mail lines wrap at 100 columns)."""
    return " ".join(str(note["Message"]).split())


def _cli(*argv: str) -> int:
    return main(list(argv))


def answer(
    cloud: DeployedCloud, user: Any, arn: str, decision: str = "approve", reason: str | None = None
) -> Any:
    """``user`` answers on the authenticated path (what `selfheal approve` / `reject` do)."""
    return ops.answer_approval(user, cloud.stack.outputs, arn, decision, reason)


def _token(cloud: DeployedCloud, arn: str) -> str:
    """The task token, as an authorised caller lists it (`selfheal approvals --tokens`)."""
    from selfheal.approvals import Approvals

    pending = Approvals(cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"]).get(
        arn.rsplit(":", 1)[-1]
    )
    assert pending is not None
    return pending.task_token


def test_promote_replica_lag_over_the_limit_waits_for_approval_and_approved_promotes(
    cloud, approvals, local_user, monkeypatch, capsys
):
    # Given a replica 120 s behind, over a 30 s limit
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=30))
    # When the approver reads the notification (no task token in it) ...
    note = approvals(arn)
    token = _token(cloud, arn)
    assert f"selfheal approve {arn.rsplit(':', 1)[-1]} --comment WHY" in note["Message"]
    assert "over the limit" in note["Message"]
    assert token not in json.dumps(note) and "taskToken" not in note.get("MessageAttributes", {})
    assert db.replica_state(cloud) == ("available", db.primary)  # nothing yet
    # ... lists what waits, and runs the command it names, signed with their own credentials
    alice = local_user("alice")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", alice.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", alice.secret)
    capsys.readouterr()
    assert _cli("approvals", "--endpoint", cloud.endpoint) == 0
    [listed] = [p for p in json.loads(capsys.readouterr().out) if p["executionArn"] == arn]
    assert "taskToken" not in listed and "over the limit" in listed["why"]
    assert _cli("approve", arn, "--comment", "replica checked", "--endpoint", cloud.endpoint) == 0
    # Then the replica is promoted and the name moved; the audit says who approved, as STS says
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", None)
    assert db.record_value(cloud) == db.replica_endpoint
    rows = rows_for(cloud, db.primary)
    waiting = next(r for r in rows if r["phase"] == "awaiting-approval")
    assert "over the limit" in waiting["reason"] and waiting["after"]["planHash"] == listed["planHash"]
    approved = next(r for r in rows if r["phase"] == "approved")["after"]
    assert approved == {"principal": alice.arn, "verified": True, "comment": "replica checked"}
    assert rows[-1]["phase"] == "succeeded"


def test_promote_replica_unknown_lag_rejected_changes_nothing(cloud, approvals, local_user):
    db = make_database(cloud, lag=None)
    arn = _start(cloud, manual_input(db))
    approvals(arn)
    bob = local_user("bob")
    answer(cloud, bob, arn, "reject", "replica is hours behind")
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=60)
    assert result.status == "SUCCEEDED"
    # The run's output says a human said no: a rejection, not a heal, and `selfheal trigger` exits 4
    assert result.output["outcome"] == "rejected" and "error" not in result.output, result.output
    assert outcomes.summarize(result, "promote-replica").exit_code == 4
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.primary_endpoint
    rows = rows_for(cloud, db.primary)
    assert "unknown" in next(r for r in rows if r["phase"] == "awaiting-approval")["reason"]
    assert rows[-1]["phase"] == "skipped" and "rejected" in rows[-1]["reason"]
    assert f"rejected by {bob.arn}: replica is hours behind" in rows[-1]["reason"]
    assert not [r for r in rows if r["phase"] == "action"]


def test_promote_replica_request_may_tighten_the_lag_limit_never_loosen_it(cloud, approvals, local_user):
    # Given a replica 120 s behind, and a request that sets the limit past the stack's 60 s maximum
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=1e12))
    # Then the run still asks a human, at the stack's limit, and nothing moves until someone answers
    note = approvals(arn)
    assert "over the limit of 60s" in _words(note)
    assert db.replica_state(cloud) == ("available", db.primary)
    answer(cloud, local_user("bob"), arn, "reject", "no")
    assert ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=60).status == "SUCCEEDED"
    assert db.replica_state(cloud) == ("available", db.primary)


def test_promote_replica_bare_send_task_success_is_a_claim_and_does_not_act(cloud, approvals):
    # Given a run waiting for approval, and someone who calls SendTaskSuccess with its token,
    # saying whatever they like about who approves
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=30))
    approvals(arn)
    sfn = cloud.client("stepfunctions")
    sfn.send_task_success(taskToken=_token(cloud, arn), output=json.dumps({"approvedBy": "the-ceo"}))
    # Then the approver is only claimed: the run stops, nothing promoted, the row says what was claimed
    result = ops.wait_for_execution(sfn, arn, timeout=60)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", db.primary)
    rows = rows_for(cloud, db.primary)
    assert next(r for r in rows if r["phase"] == "approved")["after"] == {
        "claimed": {"approvedBy": "the-ceo"},
        "verified": False,
    }
    assert rows[-1]["phase"] == "skipped" and rows[-1]["error"]["error"] == "UnverifiedApproval"
    assert not [r for r in rows if r["phase"] == "action"]


def test_promote_replica_requester_may_not_approve_their_own_request(cloud, approvals, local_user):
    # Given a request by hand, signed by alice (the policy asks a human before acting on one)
    db = make_database(cloud, lag=1.0)
    alice, bob = local_user("alice"), local_user("bob")
    body = manual_input(db)
    ops.put_event(alice("events"), ops.signed_request_event(alice("sts"), RUNBOOK, body))
    received = next(r for r in rows_for(cloud, db.primary) if r["phase"] == "received")
    arn = received["executionArn"]
    assert received["actor"]["principal"] == alice.arn
    note = approvals(arn)
    assert "the policy asks a human" in _words(note) and f"signed by {alice.arn}" in _words(note)
    # When alice approves it herself
    with pytest.raises(ops.OpsError, match="requested this run and may not approve it"):
        answer(cloud, alice, arn)
    # Then nothing happens (a rejected row says why), until someone else approves
    assert db.replica_state(cloud) == ("available", db.primary)
    refused = [r for r in rows_for(cloud, db.primary) if r["phase"] == "rejected"]
    assert refused and refused[-1]["actor"]["principal"] == alice.arn
    answer(cloud, bob, arn)
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", None)
    rows = rows_for(cloud, db.primary)
    assert next(r for r in rows if r["phase"] == "approved")["after"]["principal"] == bob.arn


def test_promote_replica_approval_timeout_changes_nothing(cloud):
    db = make_database(cloud, lag=600.0)
    result = cloud.start_and_wait(RUNBOOK, manual_input(db, approvalTimeoutSeconds=1), timeout=60)
    assert result.status == "SUCCEEDED"
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.primary_endpoint
    rows = rows_for(cloud, db.primary)
    assert rows[-1]["phase"] == "skipped" and "nobody approved" in rows[-1]["reason"]
    assert not [r for r in rows if r["phase"] == "action"]


# --------------------------------------------------------------------------------- aurora cluster


def make_cluster(cloud: DeployedCloud, members: list[tuple[str, int, str]]) -> tuple[str, dict[str, str]]:
    """A fenced Aurora cluster; members (suffix, promotion tier, class), the first is the writer."""
    cluster = promote_replica.aurora_cluster(Aws.of(cloud), unique("aurora"), members)
    return cluster.name, cluster.members


def writer_of(cloud: DeployedCloud, cluster: str) -> str:
    members = cloud.client("rds").describe_db_clusters(DBClusterIdentifier=cluster)["DBClusters"][0][
        "DBClusterMembers"
    ]
    return next(m["DBInstanceIdentifier"] for m in members if m["IsClusterWriter"])


def test_promote_replica_aurora_failover_failed_event_fails_over_to_the_best_reader(cloud):
    # Given a cluster whose readers differ by tier and size: tier 0 wins, then the larger class
    cluster, names = make_cluster(
        cloud,
        [
            ("a", 1, "db.r6g.large"),
            ("b", 1, "db.r6g.2xlarge"),
            ("c", 0, "db.r6g.large"),
            ("d", 0, "db.r6g.xlarge"),
        ],
    )
    event = copy.deepcopy(load_event("rds-cluster-failover-failed"))
    event["id"] = str(uuid.uuid4())
    event["detail"]["SourceIdentifier"] = cluster
    event["detail"]["SourceArn"] = f"arn:aws:rds:us-east-1:123456789012:cluster:{cluster}"
    # When Aurora reports that its own failover failed
    summary = cloud.send_event_and_wait(event, timeout=90)
    # Then the tier-0, larger reader is the writer, and the audit says how to go back
    (execution,) = summary.executions
    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert writer_of(cloud, cluster) == names["d"]
    rows = rows_for(cloud, cluster)
    assert [r["phase"] for r in rows] == ["received", "started", "action", "action", "verified", "succeeded"]
    assert rows[2]["parameters"] == {"DbClusterIdentifier": cluster, "TargetDbInstanceIdentifier": names["d"]}
    assert names["a"] in rows[-1]["before"]["howToGoBack"]


def test_promote_replica_aurora_named_reader_and_dry_run(cloud):
    cluster, names = make_cluster(cloud, [("a", 1, "db.r6g.large"), ("b", 2, "db.r6g.large")])
    body = {
        "target": {"dbClusterIdentifier": cluster},
        "params": {"targetInstanceIdentifier": names["b"], "verifyIntervalSeconds": 0},
        "dryRun": True,
        "reason": "e2e",
    }
    result = cloud.start_and_wait(RUNBOOK, body)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert writer_of(cloud, cluster) == names["a"]
    assert [r["phase"] for r in rows_for(cloud, cluster)] == ["started", "would-do", "succeeded"]
    result = cloud.start_and_wait(RUNBOOK, {**body, "dryRun": False})
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert writer_of(cloud, cluster) == names["b"]


# ------------------------------------------------------------------------------- aurora global


def make_global(cloud: DeployedCloud, fence_secondary: bool = True) -> tuple[str, str, str]:
    """A fenced global database: writer cluster in us-east-1, secondary in us-west-2."""
    rds = cloud.client("rds")
    west = boto3.client(
        "rds",
        region_name="us-west-2",
        endpoint_url=cloud.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"orders-global-{uuid.uuid4().hex[:8]}"
    primary = rds.create_db_cluster(
        DBClusterIdentifier=f"{name}-east",
        Engine="aurora-postgresql",
        MasterUsername="app",
        MasterUserPassword="not-a-secret-1",
        Tags=[FENCE],
    )["DBCluster"]["DBClusterArn"]
    rds.create_global_cluster(GlobalClusterIdentifier=name, SourceDBClusterIdentifier=primary, Tags=[FENCE])
    secondary = west.create_db_cluster(
        DBClusterIdentifier=f"{name}-west",
        Engine="aurora-postgresql",
        GlobalClusterIdentifier=name,
        Tags=[FENCE] if fence_secondary else [],
    )["DBCluster"]["DBClusterArn"]
    return name, primary, secondary


def global_writer(cloud: DeployedCloud, name: str) -> str:
    found = cloud.client("rds").describe_global_clusters(GlobalClusterIdentifier=name)["GlobalClusters"][0]
    return next(m["DBClusterArn"] for m in found["GlobalClusterMembers"] if m["IsWriter"])


def test_promote_replica_aurora_global_moves_the_writer_to_the_named_secondary(cloud):
    action = "switchover"
    name, primary, secondary = make_global(cloud)
    body = {
        "target": {"globalClusterIdentifier": name},
        "params": {"targetClusterIdentifier": secondary, "globalAction": action, "verifyIntervalSeconds": 1},
        "dryRun": False,
        "reason": "e2e: us-east-1 impaired",
    }
    result = cloud.start_and_wait(RUNBOOK, body, timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert global_writer(cloud, name) == secondary
    rows = rows_for(cloud, name)
    assert [r["phase"] for r in rows] == ["started", "action", "action", "verified", "succeeded"]
    assert rows[1]["action"] == "rds:SwitchoverGlobalCluster" and rows[1]["outcome"] == "pending"
    assert primary in rows[-1]["before"]["howToGoBack"]


def test_promote_replica_aurora_global_failover_with_data_loss_always_asks_a_human(
    cloud, approvals, local_user
):
    # Given a failover (AllowDataLoss) asked from the console, with nothing else calling for approval
    name, primary, secondary = make_global(cloud)
    body = {
        "target": {"globalClusterIdentifier": name},
        "params": {
            "targetClusterIdentifier": secondary,
            "globalAction": "failover",
            "verifyIntervalSeconds": 1,
        },
        "dryRun": False,
        "reason": "e2e: us-east-1 impaired",
    }
    arn = _start(cloud, body)
    # Then it waits for a human before it may lose data
    assert "may lose the writes not yet replicated" in _words(approvals(arn))
    assert global_writer(cloud, name) == primary
    answer(cloud, local_user("alice"), arn)
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert global_writer(cloud, name) == secondary
    rows = rows_for(cloud, name)
    assert [r["phase"] for r in rows] == [
        "started",
        "awaiting-approval",
        "approved",
        "action",
        "action",
        "verified",
        "succeeded",
    ]
    assert rows[3]["action"] == "rds:FailoverGlobalCluster"


def test_promote_replica_aurora_global_unfenced_secondary_is_refused(cloud):
    name, primary, secondary = make_global(cloud, fence_secondary=False)
    body = {
        "target": {"globalClusterIdentifier": name},
        "params": {"targetClusterIdentifier": secondary},
        "dryRun": False,
        "reason": "e2e",
    }
    result = cloud.start_and_wait(RUNBOOK, body)
    assert result.status == "SUCCEEDED"
    assert global_writer(cloud, name) == primary
    assert rows_for(cloud, name)[-1]["phase"] == "skipped"


def test_promote_replica_lease_taken_while_waiting_for_approval_changes_nothing(cloud, approvals, local_user):
    # Given an execution waiting for approval whose lease expired and was taken by another execution
    db = make_database(cloud, lag=None)
    arn = _start(cloud, manual_input(db))
    approvals(arn)
    cloud.client("dynamodb").put_item(
        TableName=cloud.stack.outputs["LeaseTableName"],
        Item={
            "targetKey": {"S": db.primary},
            "owner": {"S": "another-execution"},
            "expiresAt": {"N": str(int(time.time()) + 900)},
        },
    )
    # When the approval finally comes
    answer(cloud, local_user("alice"), arn)
    # Then nothing is promoted: the other execution owns the target now
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=60)
    assert result.status == "SUCCEEDED"
    assert db.replica_state(cloud) == ("available", db.primary)
    rows = rows_for(cloud, db.primary)
    assert rows[-1]["phase"] == "skipped" and not [r for r in rows if r["phase"] == "action"]


def test_promote_replica_replica_promoted_by_hand_while_waiting_for_approval_is_not_acted_on(
    cloud, approvals, local_user
):
    # Given an execution waiting for approval, and an operator who promotes the replica by hand
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=30))
    approvals(arn)
    cloud.client("rds").promote_read_replica(DBInstanceIdentifier=db.replica)
    # When the approval comes anyway
    answer(cloud, local_user("alice"), arn)
    # Then it looks again before acting: the approved plan no longer holds (the primary has no
    # replica now), so nothing is called, the DNS name is not touched, and a human hears why
    result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=60)
    assert result.status == "FAILED" and result.error == "PreconditionFailed", (result.error, result.cause)
    assert "changed since it was approved" in result.cause
    assert db.record_value(cloud) == db.primary_endpoint
    rows = rows_for(cloud, db.primary)
    assert rows[-1]["phase"] == "failed" and "changed since it was approved" in rows[-1]["reason"]
    assert not [r for r in rows if r["phase"] == "action"]


def test_promote_replica_kill_switch_turned_off_while_waiting_for_approval_stops_it(
    cloud, approvals, local_user
):
    ssm, name = cloud.client("ssm"), cloud.stack.outputs["ModeParameterName"]
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=30))
    approvals(arn)
    ssm.put_parameter(Name=name, Value="off", Type="String", Overwrite=True)
    try:
        answer(cloud, local_user("alice"), arn)
        result = ops.wait_for_execution(cloud.client("stepfunctions"), arn, timeout=60)
    finally:
        ssm.put_parameter(Name=name, Value="enforce", Type="String", Overwrite=True)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", db.primary)
    rows = rows_for(cloud, db.primary)
    assert rows[-1]["phase"] == "skipped" and "kill switch is off" in rows[-1]["reason"]
    assert rows[-1]["error"]["error"] == "ModeChanged"
    assert not [r for r in rows if r["phase"] == "action"]


def test_promote_replica_rds_throttling_a_step_is_retried_and_the_run_heals(cloud, faults):
    db = make_database(cloud)
    throttle = faults.throttle("rds", "DescribeDBInstances", times=THROTTLES_PAST_THE_CLIENT)
    result = cloud.start_and_wait(RUNBOOK, manual_input(db), timeout=90)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert ("Check the guards", "AwsCallFailed") in result.failed_attempts
    assert len(throttle.hits) == THROTTLES_PAST_THE_CLIENT
    assert db.replica_state(cloud) == ("available", None)
    assert db.record_value(cloud) == db.replica_endpoint


@pytest.mark.parametrize(
    "fault,made",
    [("refused", False), ("answered-late", True)],
    ids=["promotion-refused", "promotion-made-but-unanswered"],
)
def test_promote_replica_failed_promotion_is_looked_for_then_the_name_put_back_or_followed(
    cloud, faults, fault, made
):
    # The name moves first (it can be put back), the promotion last (it cannot be undone). Given a
    # promotion that fails: refused (RDS never made it), or made but its answer lost
    db = make_database(cloud)
    if made:
        faults.add(terminal("rds", "PromoteReadReplica", times=20, serve_first=True))
    else:
        faults.add(terminal("rds", "PromoteReadReplica", times=20))
    result = cloud.start_and_wait(RUNBOOK, manual_input(db), timeout=120)
    rows = rows_for(cloud, db.primary)
    if made:
        # Then the replica, no longer a replica, is followed to a standalone writer: the name stays
        assert result.status == "SUCCEEDED", (result.error, result.cause)
        assert db.replica_state(cloud) == ("available", None)
        assert db.record_value(cloud) == db.replica_endpoint
        assert "compensated" not in [r["phase"] for r in rows]
    else:
        # Then it is still an available replica: the name is put back, nothing else changed
        assert result.status == "FAILED" and result.error == "PromotionFailed", result.cause
        assert db.replica_state(cloud) == ("available", db.primary)
        assert db.record_value(cloud) == db.primary_endpoint
        (restore,) = [r for r in rows if r["phase"] == "compensated" and r.get("outcome") == "ok"]
        change = restore["parameters"]["ChangeBatch"]["Changes"][0]["ResourceRecordSet"]
        assert change["ResourceRecords"] == [{"Value": db.primary_endpoint}]
        assert rows[-1]["phase"] == "failed" and rows[-1]["error"]["error"] == "PromotionFailed"


def test_promote_replica_repoint_that_cannot_be_read_back_is_put_back_before_anything_is_promoted(
    cloud, faults
):
    # Given a repoint Route 53 takes, and a record that cannot be read back afterwards
    db = make_database(cloud)
    reads: list[object] = []

    def after_the_plan(request: object) -> bool:  # resolve reads the record once, before the repoint
        reads.append(request)
        return len(reads) > 1

    unreadable = faults.add(terminal("route53", "ListResourceRecordSets", times=20, where=after_the_plan))
    result = cloud.start_and_wait(RUNBOOK, manual_input(db), timeout=120)
    faults.clear()  # the test reads the record too
    # Then the name is put back and nothing is promoted: an unchecked repoint is no ground to promote
    assert unreadable.hits
    assert result.status == "FAILED" and result.error == "VerificationFailed", (result.error, result.cause)
    assert "could not be read back" in (result.cause or "")
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.primary_endpoint
    rows = rows_for(cloud, db.primary)
    assert not [r for r in rows if r.get("action") == "rds:PromoteReadReplica"]
    assert [r["outcome"] for r in rows if r["phase"] == "compensated"] == ["ok"]


def test_promote_replica_name_that_cannot_be_put_back_is_a_named_failure_that_says_where_it_points(
    cloud, faults
):
    # Given a promotion RDS refuses, and a put-back (the undo of the repoint) Route 53 refuses too
    db = make_database(cloud)
    faults.add(terminal("rds", "PromoteReadReplica", times=20))
    changes: list[object] = []

    def after_the_repoint(request: object) -> bool:  # the repoint is the run's first DNS change
        changes.append(request)
        return len(changes) > 1

    put_back = faults.add(terminal("route53", "ChangeResourceRecordSets", times=20, where=after_the_repoint))
    result = cloud.start_and_wait(RUNBOOK, manual_input(db), timeout=120)
    # Then the run fails with the one error that says the name points at a replica not promoted
    assert put_back.hits
    assert result.status == "FAILED" and result.error == "DnsRestoreFailed", (result.error, result.cause)
    assert "put it back by hand" in (result.cause or "")
    assert db.replica_state(cloud) == ("available", db.primary)
    assert db.record_value(cloud) == db.replica_endpoint
    rows = rows_for(cloud, db.primary)
    # the repoint (intent, ok), the put-back (intent, its error row), each recorded
    dns = [(r["phase"], r["outcome"]) for r in rows if r.get("action") == "route53:ChangeResourceRecordSets"]
    assert dns == [("action", "pending"), ("action", "ok"), ("action", "pending"), ("compensated", "error")]
    assert rows[-1]["phase"] == "failed" and rows[-1]["error"]["error"] == "DnsRestoreFailed"


@pytest.mark.parametrize(
    "allowed,needle",
    [("orders.*.internal", "record db."), (RECORD_NAMES, "hosted zone")],
    ids=["record-not-allowed", "zone-not-allowed"],
)
def test_promote_replica_dns_name_outside_the_stacks_scope_is_refused_before_the_promotion(
    cloud, allowed, needle
):
    # Given a database whose DNS name (or zone) the stack does not allow promote-replica to repoint
    db = make_database(cloud)
    zone = "Z0000000000000000NONE" if needle == "hosted zone" else db.zone
    cloud.set_steps_variables(DATABASE_HOSTED_ZONE_ID=zone, DATABASE_RECORD_NAMES=allowed)
    cloud.reset_recording()
    # When a promotion is asked for
    result = cloud.start_and_wait(RUNBOOK, manual_input(db))
    # Then nothing is promoted: the scope guard refuses first (not the record change, after)
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert db.replica_state(cloud) == ("available", db.primary)
    assert not [r for r in cloud.recorded_requests() if r.operation == "PromoteReadReplica"]
    (skipped,) = [r for r in rows_for(cloud, db.primary) if r["phase"] == "skipped"]
    assert "outside the scope" in skipped["reason"] and needle in skipped["reason"]


def test_promote_replica_run_stopped_from_outside_is_finished_released_and_escalated(
    cloud, approvals, outcome_inbox
):
    """An operator stops a run that waits for approval (StopExecution): Step Functions' status
    change event finishes it: a failed row saying so, the lease released (the target is free for
    the next run), one escalation. Before, the target stayed locked with no word why."""
    db = make_database(cloud, lag=120.0)
    arn = _start(cloud, manual_input(db, maxLagSeconds=30))
    approvals(arn)
    sfn = cloud.client("stepfunctions")
    sfn.stop_execution(executionArn=arn, cause="operator: wrong database")
    leases = cloud.stack.outputs["LeaseTableName"]
    deadline = time.monotonic() + 30
    while True:
        rows = rows_for(cloud, db.primary)
        if (rows and rows[-1]["phase"] == "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rows[-1]["phase"] == "failed" and rows[-1]["error"]["error"] == "ExecutionAborted", rows[-1]
    lease = cloud.client("dynamodb").get_item(TableName=leases, Key={"targetKey": {"S": db.primary}})
    assert "Item" not in lease
    assert db.replica_state(cloud) == ("available", db.primary)
    name = arn.rsplit(":", 1)[-1]
    escalated = [m for m in outcome_inbox() if m.get("detail", {}).get("requestId") == name]
    assert [m["detail"]["escalate"] for m in escalated] == [True]
