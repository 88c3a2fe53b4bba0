"""Approvals that mean something (selfheal.approvals, the ask/approved/recheck steps): against moto."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from selfheal.approvals import VALID_FOR, ApprovalAnswer, Approvals, PendingApproval, plan_hash
from selfheal.config import Settings
from selfheal.errors import ApprovalExpired, ApprovalRefused, PreconditionFailed, UnverifiedApproval
from selfheal.models import Actor, Request, utcnow
from selfheal.policy import parse_policy
from selfheal.runbooks.promote_replica import PromotionPlan
from selfheal.steps import StepEvent, Steps
from tests.integration.conftest import approve, running_execution

ALICE = "arn:aws:iam::123456789012:user/alice"
BOB = "arn:aws:sts::123456789012:assumed-role/oncall/bob"
PLAN = {
    "kind": "rds-replica",
    "targetKey": "orders",
    "approvalTimeoutSeconds": 600,
    "verifyAttempts": 1,
    "verifyIntervalSeconds": 1,
    "resourceTags": {},
    "calls": [],
}


def _pending(execution: dict[str, str], requester: str | None = ALICE, **changes: Any) -> PendingApproval:
    now = utcnow()
    fields: dict[str, Any] = {
        "request_id": execution["name"],
        "execution_arn": execution["arn"],
        "runbook": "promote-replica",
        "target_key": "orders",
        "task_token": "a-task-token",
        "plan_hash": plan_hash(PLAN),
        "why": "ReplicaLag of orders-r0 is 300s, over the limit of 60s",
        "summary": "primary down",
        "asked_at": now,
        "expires_at": now + timedelta(minutes=10),
        "requester": requester,
        **changes,
    }
    return PendingApproval(**fields)


def _answer(execution: dict[str, str], decision: str = "approve", **changes: Any) -> ApprovalAnswer:
    fields = {
        "execution_arn": execution["arn"],
        "decision": decision,
        "plan_hash": plan_hash(PLAN),
        **changes,
    }
    return ApprovalAnswer(**fields)


@pytest.fixture
def execution(clients: Any) -> dict[str, str]:
    return running_execution(clients, "promote-replica")


def test_an_answer_is_taken_once_from_someone_who_is_not_the_requester(clients, settings, execution):
    approvals = Approvals(clients.dynamodb, settings.lease_table)
    approvals.ask(_pending(execution, requester=ALICE))
    # The requester may not approve their own run
    with pytest.raises(ApprovalRefused, match="requested this run and may not approve it"):
        approvals.answer(_answer(execution), ALICE, utcnow())
    # Someone else may, once
    taken = approvals.answer(_answer(execution), BOB, utcnow())
    assert (taken.decision, taken.answered_by) == ("approve", BOB)
    with pytest.raises(ApprovalRefused, match="already answered"):
        approvals.answer(_answer(execution), "arn:aws:iam::123456789012:user/carol", utcnow())
    assert approvals.pending(utcnow()) == []


def test_an_answer_for_another_plan_late_or_without_a_question_is_refused(clients, settings, execution):
    approvals = Approvals(clients.dynamodb, settings.lease_table)
    with pytest.raises(ApprovalRefused, match="no approval is pending"):
        approvals.answer(_answer(execution), BOB, utcnow())
    approvals.ask(_pending(execution))
    with pytest.raises(ApprovalRefused, match=r"the answer is for plan sha256:0+, but the run asks about"):
        approvals.answer(_answer(execution, plan_hash="sha256:" + "0" * 64), BOB, utcnow())
    with pytest.raises(ApprovalRefused, match="a rejection needs a reason"):
        approvals.answer(_answer(execution, decision="reject"), BOB, utcnow())
    with pytest.raises(ApprovalRefused, match="the question expired"):
        approvals.answer(_answer(execution), BOB, utcnow() + timedelta(minutes=11))
    # Still open, and listed (without the token unless asked)
    [listed] = approvals.pending(utcnow())
    assert (
        "taskToken" not in listed.listing() and listed.listing(with_token=True)["taskToken"] == "a-task-token"
    )


def _request(actor: Actor, execution: dict[str, str]) -> Request:
    return Request(
        request_id=execution["name"],
        runbook="promote-replica",
        target={"dbInstanceIdentifier": "orders"},
        target_key="orders",
        params={},
        dry_run=False,
        reason="primary down",
        actor=actor,
    )


def _event(step: str, execution: dict[str, str], request: Request, **fields: Any) -> StepEvent:
    return StepEvent.model_validate(
        {
            "step": step,
            "runbook": "promote-replica",
            "execution": execution,
            "state": {"name": step, "enteredTime": utcnow().isoformat()},
            "request": request.model_dump(mode="json", by_alias=True),
            **fields,
        }
    )


def test_ask_keeps_the_token_in_the_table_and_out_of_the_notification_and_audit(clients, settings, execution):
    sqs = clients.client("sqs")
    queue = sqs.create_queue(QueueName="reader")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    clients.sns.subscribe(TopicArn=settings.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    request = _request(Actor(kind="manual", principal=ALICE), execution)
    plan = PromotionPlan.model_validate(PLAN).model_dump(mode="json", by_alias=True)
    event = _event(
        "ask-approval",
        execution,
        request,
        plan=plan,
        before={"approvalReason": "lag unknown"},
        taskToken="tok-1",
    )
    result = Steps(settings, clients).run(event)
    assert result["planHash"] == plan_hash(plan)
    pending = Approvals(clients.dynamodb, settings.lease_table).get(execution["name"])
    assert pending is not None and (pending.task_token, pending.requester) == ("tok-1", ALICE)
    message = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert "tok-1" not in json.dumps(message)
    assert f"selfheal approve {execution['name']} --comment WHY" in message["Message"]
    assert plan_hash(plan) in message["Message"] and "signed by " + ALICE in message["Message"]
    rows = Steps(settings, clients).audit.for_request(execution["name"])
    assert [r.phase.value for r in rows] == ["awaiting-approval"] and "tok-1" not in rows[0].model_dump_json()


def test_a_bare_send_task_success_is_only_a_claim_and_does_not_act_unless_the_stack_says(
    clients, settings, execution
):
    """Given a question nobody answered on the authenticated path, When the run resumes anyway
    (someone called SendTaskSuccess with output naming an approver), Then the approver is only
    claimed: by default the run stops (UnverifiedApproval), and the row says what was claimed."""
    approvals = Approvals(clients.dynamodb, settings.lease_table)
    approvals.ask(_pending(execution))
    request = _request(Actor(kind="manual"), execution)
    event = _event("approved", execution, request, approval={"approvedBy": "the-ceo"})
    with pytest.raises(UnverifiedApproval, match="only claimed"):
        Steps(settings, clients).run(event)
    [row] = Steps(settings, clients).audit.for_request(execution["name"])
    assert row.after == {"claimed": {"approvedBy": "the-ceo"}, "verified": False}
    lenient = Settings.model_validate(
        {**settings.model_dump(by_alias=True), "ACCEPT_UNVERIFIED_APPROVALS": True}
    )
    assert Steps(lenient, clients).run(event)["approver"] == {
        "claimed": {"approvedBy": "the-ceo"},
        "verified": False,
    }


def test_an_answer_taken_on_the_authenticated_path_names_the_verified_approver(clients, settings, execution):
    approve(clients, settings, execution, PLAN, approver=BOB)
    event = _event(
        "approved", execution, _request(Actor(kind="manual"), execution), approval={"approvedBy": "x"}
    )
    assert Steps(settings, clients).run(event)["approver"] == {"principal": BOB, "verified": True}


def test_recheck_refuses_an_old_approval_and_another_plan(clients, settings, execution, monkeypatch):
    from selfheal import steps as steps_module

    approve(clients, settings, execution, PLAN, approver=BOB)
    request = _request(Actor(kind="manual"), execution)
    event = _event("recheck", execution, request, plan=PLAN)
    later = utcnow() + VALID_FOR + timedelta(seconds=5)
    monkeypatch.setattr(steps_module, "utcnow", lambda: later)
    with pytest.raises(ApprovalExpired, match="not acting on an old yes"):
        Steps(settings, clients).recheck(event)
    monkeypatch.undo()
    # The plan resolved now (the real orders database does not exist here) is not the one approved
    with pytest.raises(PreconditionFailed, match="changed since it was approved"):
        Steps(settings, clients).run(event)


def test_the_policy_may_mark_only_runbooks_with_an_approval_step():
    from selfheal.errors import PolicyError

    with pytest.raises(PolicyError) as refused:
        parse_policy({"version": 1, "approvals": {"remap-eip": ["manual"], "nope": ["manual"]}, "rules": []})
    problems = refused.value.details["problems"]
    assert any("approvals.remap-eip: its workflow has no approval step" in p for p in problems)
    assert any("approvals.nope: unknown runbook" in p for p in problems)


def test_a_run_resumed_as_approved_after_a_no_does_not_act(clients, settings, execution):
    approvals = Approvals(clients.dynamodb, settings.lease_table)
    approvals.ask(_pending(execution))
    approvals.answer(_answer(execution, decision="reject", reason="behind"), BOB, utcnow())
    event = _event("approved", execution, _request(Actor(kind="manual"), execution), approval={})
    with pytest.raises(UnverifiedApproval, match="answered no"):
        Steps(settings, clients).run(event)


def test_an_end_event_for_a_running_or_foreign_execution_finishes_nothing(clients, settings, execution):
    """The steps function's RunEnded path trusts no event: the execution must be this stack's, and over."""
    steps = Steps(settings, clients)
    running = steps.ended(
        {"source": "aws.states", "detail": {"executionArn": execution["arn"], "status": "ABORTED"}}
    )
    assert running == {"finished": False, "why": f"{execution['arn']} is still running"}
    foreign = execution["arn"].replace(":123456789012:", ":210987654321:").replace("selfheal-", "other-")
    assert steps.ended({"detail": {"executionArn": foreign}})["finished"] is False
    assert steps.audit.for_request(execution["name"]) == []
