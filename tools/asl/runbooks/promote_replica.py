"""promote-replica: promote an RDS read replica (after a human's yes when its lag is too high or
unknown) and repoint the DNS name; fail an Aurora cluster over to a reader; switch (or fail) a global
database over to a secondary. Each path polls until the new writer is the writer."""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.errors import VerificationFailed
from selfheal.runbooks import promote_replica as rb
from tools.asl.frame import FAILED, SUCCEEDED, VERIFIED, Approval, Workflow, approval
from tools.asl.idioms import Call, Flow, all_of, equals, is_true

PLAN = "$.guard.plan"

PROMOTE = Call(
    rb.PROMOTE,
    intent="Record: about to promote the replica",
    task="Promote the replica",
    done="Record: the promotion started",
    failed="Record: the promotion failed",
    result={"status.$": "$.DbInstance.DbInstanceStatus"},
)
REPOINT = Call(
    rb.REPOINT_DNS,
    intent="Record: about to repoint the DNS name",
    task="Repoint the DNS name",
    done="Record: the DNS name was repointed",
    failed="Record: the DNS change failed",
    result={"changeId.$": "$.ChangeInfo.Id", "status.$": "$.ChangeInfo.Status"},
    result_path="$.dnsAct",
)
FAILOVER_CLUSTER = Call(
    rb.FAILOVER_CLUSTER,
    intent="Record: about to fail the cluster over",
    task="Fail the cluster over",
    done="Record: the cluster failover started",
    failed="Record: the cluster failover failed",
    result={"status.$": "$.DbCluster.Status"},
)
SWITCHOVER = Call(
    rb.SWITCHOVER_GLOBAL,
    intent="Record: about to switch the global database over",
    task="Switch the global database over",
    done="Record: the switchover started",
    failed="Record: the switchover failed",
    result={"status.$": "$.GlobalCluster.Status"},
)
FAILOVER_GLOBAL = Call(
    rb.FAILOVER_GLOBAL,
    intent="Record: about to fail the global database over",
    task="Fail the global database over",
    done="Record: the global failover started",
    failed="Record: the global failover failed",
    result={"status.$": "$.GlobalCluster.Status"},
)

ASK = Approval(
    timeout=f"{PLAN}.approvalTimeoutSeconds",
    refused="acting on {} was rejected ({}: {}): nothing was changed",
    refused_args=["$.request.targetKey", "$.error.Error", "$.error.Cause"],
    timed_out="nobody approved acting on {} within {} seconds: nothing was changed ({})",
    timed_out_args=[
        "$.request.targetKey",
        f"{PLAN}.approvalTimeoutSeconds",
        "$.precheck.before.approvalReason",
    ],
)


KIND = "Which kind of database?"
GLOBAL = "Switchover or failover?"


RESTORE = Call(
    rb.RESTORE_DNS,
    intent="Record: about to put the DNS name back",
    task="Put the DNS name back",
    done="Record: the DNS name was put back",
    failed="Record: putting the DNS name back failed",
    result={"changeId.$": "$.ChangeInfo.Id"},
    result_path="$.compensated",
    error_path="$.compensationError",
)
LOOK = "Describe the replica after the failed promotion"


def _replica(f: Flow) -> None:
    """The promotion cannot be undone, so it comes last: repoint the name (undone by putting it
    back), check it, promote. A promotion that failed is looked for before the name is put back (a
    call that timed out may have been made: then it is followed, not undone)."""
    f.call(
        REPOINT,
        next_state="Start counting DNS checks",
        on_error=FAILED,
        on_failed="Explain: the repoint was refused",
        on_unrecorded=RESTORE.intent,  # repointed, not recorded: put back, never promoted unrecorded
    )
    f.error(
        "Explain: the repoint was refused",
        rb.DnsRepointFailed,
        "Route 53 refused to repoint {}: {}. Nothing was changed: {} was not promoted",
        f"{PLAN}.recordName",
        "$.error.Cause",
        f"{PLAN}.replicaIdentifier",
        next_state=FAILED,
    )
    f.poll(
        start="Start counting DNS checks",
        describe="Read the DNS record",
        check="Does the name point at the replica?",
        done=[
            (
                {"Variable": "$.dnsVerify.value.Value", "StringEqualsPath": f"{PLAN}.replicaEndpoint"},
                "Record: the name points at the replica",
            )
        ],
        give_up="DNS verification failed",
        wait="Wait for the DNS change",
        count="Count the DNS check",
        on_error=FAILED,
    )
    f.describe(
        "Read the DNS record",
        "aws-sdk:route53:listResourceRecordSets",
        {
            "HostedZoneId.$": f"{PLAN}.hostedZoneId",
            "StartRecordName.$": f"{PLAN}.recordName",
            "StartRecordType": "CNAME",
            "MaxItems": "1",
        },
        {"record.$": "States.ArrayGetItem($.ResourceRecordSets, 0)"},
        next_state="Pick the record value",
        on_error="DNS unreadable",
        result_path="$.dnsVerify",
    )
    f.error(
        "DNS unreadable",
        VerificationFailed,
        "{} could not be read back after the repoint ({}): putting it back, {} not promoted",
        f"{PLAN}.recordName",
        "$.error.Cause",
        f"{PLAN}.replicaIdentifier",
        next_state=RESTORE.intent,
    )
    f.pass_(
        "Pick the record value",
        next_state="Does the name point at the replica?",
        parameters={
            "name.$": "$.dnsVerify.record.Name",
            "value.$": "States.ArrayGetItem($.dnsVerify.record.ResourceRecords, 0)",
        },
        result_path="$.dnsVerify",
    )
    f.error(
        "DNS verification failed",
        VerificationFailed,
        "{} still points at {} after {} checks: putting it back, {} not promoted",
        f"{PLAN}.recordName",
        "$.dnsVerify.value.Value",
        "$.verifyState.attempt",
        f"{PLAN}.replicaIdentifier",
        next_state=RESTORE.intent,
    )
    f.record(
        "Record: the name points at the replica",
        "verified",
        next_state=PROMOTE.intent,
        on_error=RESTORE.intent,
        **{"after.$": "$.dnsVerify"},
    )
    f.call(
        PROMOTE,
        next_state="Start counting promotion checks",
        on_error=RESTORE.intent,
        on_failed=LOOK,
        on_unrecorded="Start counting promotion checks",
    )
    f.describe(
        LOOK,
        "aws-sdk:rds:describeDBInstances",
        {"DbInstanceIdentifier.$": f"{PLAN}.replicaIdentifier"},
        {
            "instance.$": "States.ArrayGetItem($.DbInstances, 0)",
            "replicates.$": "$.DbInstances[*].ReadReplicaSourceDbInstanceIdentifier",
        },
        next_state="Is it still a replica, after the failure?",
        on_error="Explain: the promotion's outcome is unknown",
    )
    f.pass_(
        "Is it still a replica, after the failure?",
        next_state="Is the replica being promoted anyway?",
        parameters={
            "status.$": "$.verify.instance.DbInstanceStatus",
            "replicaSources.$": "States.ArrayLength($.verify.replicates)",
        },
        result_path="$.verify",
    )
    f.error(
        "Explain: the promotion's outcome is unknown",
        rb.PromotionFailed,
        "promoting {} failed ({}) and it could not be read to tell whether it was made: {} is left"
        " pointing at it; check the replica, then put the name back or keep it",
        f"{PLAN}.replicaIdentifier",
        "$.error.Cause",
        f"{PLAN}.recordName",
        next_state=FAILED,
    )
    f.choice(
        "Is the replica being promoted anyway?",
        [
            (
                all_of(
                    equals("$.verify.status", "available"),
                    {"Variable": "$.verify.replicaSources", "NumericGreaterThan": 0},
                ),
                "Explain: the promotion failed",
            )
        ],
        "Start counting promotion checks",
        comment="Still an available replica: the promotion was not made. Anything else: it was.",
    )
    f.error(
        "Explain: the promotion failed",
        rb.PromotionFailed,
        "promoting {} failed ({}): {} is put back to {}; nothing else was changed",
        f"{PLAN}.replicaIdentifier",
        "$.error.Cause",
        f"{PLAN}.recordName",
        f"{PLAN}.primaryEndpoint",
        next_state=RESTORE.intent,
    )
    f.poll(
        start="Start counting promotion checks",
        describe="Describe the promoted instance",
        check="Is it a standalone writer?",
        done=[
            (
                all_of(
                    equals("$.verify.status", "available"),
                    {"Variable": "$.verify.replicaSources", "NumericEquals": 0},
                ),
                VERIFIED,
            )
        ],
        give_up="Promotion timed out",
        wait="Wait for the promotion",
        count="Count the promotion check",
        on_error=FAILED,
    )
    f.describe(
        "Describe the promoted instance",
        "aws-sdk:rds:describeDBInstances",
        {"DbInstanceIdentifier.$": f"{PLAN}.replicaIdentifier"},
        {
            "instance.$": "States.ArrayGetItem($.DbInstances, 0)",
            "replicates.$": "$.DbInstances[*].ReadReplicaSourceDbInstanceIdentifier",
        },
        next_state="Is it still a replica?",
        on_error=FAILED,
    )
    f.pass_(
        "Is it still a replica?",
        next_state="Is it a standalone writer?",
        comment="A list, empty once promoted: no Choice on a field that may be missing.",
        parameters={
            "instance.$": "$.verify.instance",
            "status.$": "$.verify.instance.DbInstanceStatus",
            "replicaSources.$": "States.ArrayLength($.verify.replicates)",
        },
        result_path="$.verify",
    )
    f.error(
        "Promotion timed out",
        rb.PromotionTimedOut,
        "{} is still {} after {} checks: not a standalone writer yet; {} already points at it (a"
        " promotion, once started, completes on its own)",
        f"{PLAN}.replicaIdentifier",
        "$.verify.status",
        "$.verifyState.attempt",
        f"{PLAN}.recordName",
        next_state=FAILED,
    )
    f.record(VERIFIED, "verified", next_state=SUCCEEDED, on_error=FAILED, **{"after.$": "$.verify"})
    f.call(
        RESTORE,
        next_state=FAILED,
        on_error=FAILED,
        on_failed="Explain: the name could not be put back",
        before=None,
    )
    f.error(
        "Explain: the name could not be put back",
        rb.DnsRestoreFailed,
        "{} was NOT promoted and {} could not be put back to {} ({}): it points at a replica; put it"
        " back by hand",
        f"{PLAN}.replicaIdentifier",
        f"{PLAN}.recordName",
        f"{PLAN}.primaryEndpoint",
        "$.compensationError.Cause",
        next_state=FAILED,
    )


@dataclass(frozen=True)
class WriterPoll:
    """Poll a cluster (or a global database) until the chosen member is its writer."""

    what: str  # "writer": the states' names
    describe: str
    resource: str
    parameters: dict[str, str]
    result: dict[str, str]
    status: str  # the path of the status in the described resource
    writers: str  # a filter that lists the writers' identifiers
    chosen_name: str  # "chosen reader"
    chosen: str  # the path of the chosen member's identifier
    waiting_for: str  # "cluster failover"
    done: str
    timed_out: str


def _writer_poll(f: Flow, poll: WriterPoll) -> None:
    among, check = f"Is the {poll.chosen_name} among the writers?", f"Is the {poll.chosen_name} the writer?"
    f.poll(
        start=f"Start counting {poll.what} checks",
        describe=poll.describe,
        check=check,
        done=[
            (all_of(equals("$.verify.status", "available"), is_true("$.verify.chosenIsWriter")), poll.done)
        ],
        give_up=poll.timed_out,
        wait=f"Wait for the {poll.waiting_for}",
        count=f"Count the {poll.what} check",
        on_error=FAILED,
    )
    find = f"Find the {poll.what}"
    f.describe(poll.describe, poll.resource, poll.parameters, poll.result, next_state=find, on_error=FAILED)
    f.pass_(
        find,
        next_state=among,
        parameters={"status.$": poll.status, "writers.$": poll.writers},
        result_path="$.verify",
    )
    f.pass_(
        among,
        next_state=check,
        parameters={
            "status.$": "$.verify.status",
            "writers.$": "$.verify.writers",
            "chosenIsWriter.$": f"States.ArrayContains($.verify.writers, {poll.chosen})",
        },
        result_path="$.verify",
    )
    f.record(poll.done, "verified", next_state=SUCCEEDED, on_error=FAILED, **{"after.$": "$.verify"})


def _cluster(f: Flow) -> None:
    f.call(FAILOVER_CLUSTER, next_state="Start counting writer checks", on_error=FAILED)
    _writer_poll(
        f,
        WriterPoll(
            what="writer",
            describe="Describe the cluster",
            resource="aws-sdk:rds:describeDBClusters",
            parameters={"DbClusterIdentifier.$": f"{PLAN}.clusterIdentifier"},
            result={"cluster.$": "States.ArrayGetItem($.DbClusters, 0)"},
            status="$.verify.cluster.Status",
            writers="$.verify.cluster.DbClusterMembers[?(@.IsClusterWriter == true)].DbInstanceIdentifier",
            chosen_name="chosen reader",
            chosen=f"{PLAN}.targetInstanceIdentifier",
            waiting_for="cluster failover",
            done="Record: the writer changed",
            timed_out="Cluster failover timed out",
        ),
    )
    f.error(
        "Cluster failover timed out",
        rb.FailoverTimedOut,
        "{} is not the writer of {} after {} checks",
        f"{PLAN}.targetInstanceIdentifier",
        f"{PLAN}.clusterIdentifier",
        "$.verifyState.attempt",
        next_state=FAILED,
    )


def _global(f: Flow) -> None:
    f.choice(
        GLOBAL, [(equals(f"{PLAN}.globalAction", "failover"), FAILOVER_GLOBAL.intent)], SWITCHOVER.intent
    )
    for call in (SWITCHOVER, FAILOVER_GLOBAL):
        f.call(call, next_state="Start counting global writer checks", on_error=FAILED)
    _writer_poll(
        f,
        WriterPoll(
            what="global writer",
            describe="Describe the global database",
            resource="aws-sdk:rds:describeGlobalClusters",
            parameters={"GlobalClusterIdentifier.$": f"{PLAN}.globalClusterIdentifier"},
            result={"globalCluster.$": "States.ArrayGetItem($.GlobalClusters, 0)"},
            status="$.verify.globalCluster.Status",
            writers="$.verify.globalCluster.GlobalClusterMembers[?(@.IsWriter == true)].DbClusterArn",
            chosen_name="secondary",
            chosen=f"{PLAN}.targetClusterArn",
            waiting_for="global action",
            done="Record: the global writer changed",
            timed_out="Global action timed out",
        ),
    )
    f.error(
        "Global action timed out",
        rb.FailoverTimedOut,
        "{} is not the writer of {} after {} checks",
        f"{PLAN}.targetClusterArn",
        f"{PLAN}.globalClusterIdentifier",
        "$.verifyState.attempt",
        next_state=FAILED,
    )


def body(f: Flow) -> str:
    f.choice(
        "Does it need a human's yes?",
        [(is_true("$.precheck.before.needsApproval"), approval(f, ASK, then=KIND))],
        KIND,
        comment="A replica's lag over the limit or unknown, a data-loss failover, or a request kind the"
        " policy marks.",
    )
    kind = f"{PLAN}.kind"
    f.choice(
        KIND,
        [
            (equals(kind, "rds-replica"), REPOINT.intent),
            (equals(kind, "aurora-cluster"), FAILOVER_CLUSTER.intent),
        ],
        GLOBAL,
    )
    for path in (_replica, _cluster, _global):
        path(f)
    return "Does it need a human's yes?"


WORKFLOW = Workflow(
    runbook=rb.PromoteReplica.name,
    comment=(
        "promote-replica: fail a database over to its replica, safely. Input: {target:"
        " {dbInstanceIdentifier | dbClusterIdentifier | globalClusterIdentifier}, params:"
        " {replicaIdentifier?, hostedZoneId?, recordName?, maxLagSeconds?, approvalTimeoutSeconds?,"
        " targetInstanceIdentifier?, targetClusterIdentifier?, globalAction?}, dryRun, reason}."
        " Approval first (`selfheal approve`) if the replica lag is over the limit or unknown, for a"
        " data-loss global failover, or for a request kind the policy marks. RDS replica: repoint the"
        " DNS name -> read it back -> promote (last: it cannot be undone) -> wait for a standalone"
        " writer -> verify; a promotion not made puts the name back. Aurora: fail over to the chosen or"
        " best reader. Global: switchover/failover to the named secondary. Undo run (input {undo:"
        " <stopped execution>}): a run stopped in the repoint puts the name back; in the promotion,"
        " follows it if it was made, else puts the name back."
    ),
    precheck="Precheck: can the replica take over?",
    body=body,
    undo=((REPOINT, RESTORE.intent), (PROMOTE, LOOK), (RESTORE, RESTORE.intent)),
    substitutions=("Partition", "StepsFunctionArn", "LeaseTableName"),
)
