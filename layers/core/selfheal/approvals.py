"""Approvals that mean something: who said yes is known, it was not the requester, it was for this
plan, and it is fresh.

When a run must ask a human (``ask``), it stores a *pending approval* in the lease table (key
``approval#<request id>``): the task token, the hash of the plan it asks about, who requested the
run, when the question expires. The task token goes nowhere else: not in the notification, not in
the audit trail. An answer comes on the authenticated path (``selfheal approve``: a bus event with a
proof of its sender, ``selfheal.identity``); triage checks it (``answer``) and only then sends the
token back to Step Functions. After the wait the run checks the approval again (``Steps.approved``)
and acts only on the plan with the approved hash (``Steps.recheck``).

An answer given straight to Step Functions (``SendTaskSuccess`` with any output) has no verified
approver: it is recorded as claimed, and acts only where the stack accepts unverified approvals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from selfheal.errors import ApprovalRefused
from selfheal.models import StrictModel, input_digest, iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX = "approval#"
# An approval is good for this long after it was given: the run acts right after it, or asks again.
VALID_FOR = timedelta(minutes=15)


def plan_hash(plan: dict[str, Any]) -> str:
    """The hash an approval is bound to: the plan as resolved (its resources, their tags, the calls)."""
    return input_digest(plan)


class PendingApproval(StrictModel):
    request_id: str = Field(alias="requestId")
    execution_arn: str = Field(alias="executionArn")
    runbook: str
    # (the run's target key; "targetKey" is the lease table's own key: approval#<request id>)
    target_key: str = Field(alias="target")
    task_token: str = Field(alias="taskToken")
    plan_hash: str = Field(alias="planHash")
    why: str
    summary: str
    asked_at: datetime = Field(alias="askedAt")
    # The question's deadline ("expiresAt" is the lease table's TTL attribute, epoch seconds).
    expires_at: datetime = Field(alias="answerBefore")
    # Who asked for the run: the principal AWS verified, and what the request claimed of itself.
    requester: str | None = None
    requester_claim: str | None = Field(default=None, alias="requesterClaim")
    # Set once, by the first answer taken.
    decision: Literal["approve", "reject"] | None = None
    answered_by: str | None = Field(default=None, alias="answeredBy")
    answered_at: datetime | None = Field(default=None, alias="answeredAt")
    answer_reason: str | None = Field(default=None, alias="answerReason")

    def listing(self, with_token: bool = False) -> dict[str, Any]:
        """What `selfheal approvals` shows (the token only when asked for)."""
        shown = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        if not with_token:
            shown.pop("taskToken")
        return shown


class ApprovalAnswer(StrictModel):
    """An answer as the approver sends it; its proof is bound to ``bound_body()``."""

    execution_arn: str = Field(
        alias="executionArn", pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:"
    )
    decision: Literal["approve", "reject"]
    plan_hash: str = Field(alias="planHash", pattern=r"^sha256:[0-9a-f]{64}$")
    reason: str | None = Field(default=None, min_length=1, max_length=1024)

    def bound_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @property
    def request_id(self) -> str:
        return self.execution_arn.rsplit(":", 1)[-1]


def _key(request_id: str) -> dict[str, Any]:
    return {"targetKey": {"S": KEY_PREFIX + request_id}}


class Approvals:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def ask(self, pending: PendingApproval) -> None:
        """Store the question (a retried ask overwrites its own, unanswered, question)."""
        body = pending.model_dump(mode="json", by_alias=True, exclude_none=True)
        item = {k: {"S": str(v)} for k, v in body.items()}
        # The table's TTL: DynamoDB removes the question (and its token) a day after its deadline.
        item["expiresAt"] = {"N": str(int((pending.expires_at + timedelta(days=1)).timestamp()))}
        self._client.put_item(
            TableName=self._table,
            Item={**item, **_key(pending.request_id)},
            ConditionExpression="attribute_not_exists(targetKey) OR attribute_not_exists(decision)",
        )

    def get(self, request_id: str) -> PendingApproval | None:
        item = self._client.get_item(TableName=self._table, Key=_key(request_id), ConsistentRead=True).get(
            "Item"
        )
        return _pending(item) if item else None

    def pending(self, now: datetime) -> list[PendingApproval]:
        """Questions still open (not answered, not expired), oldest first."""
        found: list[PendingApproval] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "begins_with(targetKey, :p) AND attribute_not_exists(decision)",
            "ExpressionAttributeValues": {":p": {"S": KEY_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = self._client.scan(**kwargs)
            found += [_pending(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted((p for p in found if p.expires_at > now), key=lambda p: p.asked_at)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def answer(self, answer: ApprovalAnswer, approver: str, now: datetime) -> PendingApproval:
        """Take ``approver``'s answer, once, or raise ``ApprovalRefused`` saying why not."""
        pending = self.get(answer.request_id)
        if pending is None or pending.execution_arn != answer.execution_arn:
            raise ApprovalRefused(f"no approval is pending for {answer.execution_arn}")
        if pending.decision is not None:
            raise ApprovalRefused(
                f"{answer.execution_arn} was already answered ({pending.decision} by {pending.answered_by})"
            )
        if now > pending.expires_at:
            raise ApprovalRefused(f"the question expired at {iso(pending.expires_at)}: nothing to answer")
        if answer.plan_hash != pending.plan_hash:
            raise ApprovalRefused(
                f"the answer is for plan {answer.plan_hash}, but the run asks about {pending.plan_hash}:"
                " look at the plan again (selfheal approvals)"
            )
        if approver in {pending.requester, pending.requester_claim}:
            raise ApprovalRefused(f"{approver} requested this run and may not approve it")
        if answer.decision == "reject" and not answer.reason:
            raise ApprovalRefused("a rejection needs a reason")
        values: dict[str, Any] = {
            ":d": {"S": answer.decision},
            ":by": {"S": approver},
            ":at": {"S": now.astimezone(UTC).isoformat()},
            ":h": {"S": pending.plan_hash},
        }
        update = "SET decision = :d, answeredBy = :by, answeredAt = :at"
        if answer.reason:
            values[":r"] = {"S": answer.reason}
            update += ", answerReason = :r"
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(answer.request_id),
                UpdateExpression=update,
                ConditionExpression=(
                    "attribute_exists(targetKey) AND attribute_not_exists(decision) AND planHash = :h"
                ),
                ExpressionAttributeValues=values,
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise ApprovalRefused(f"{answer.execution_arn} was answered meanwhile") from exc
        return pending.model_copy(
            update={
                "decision": answer.decision,
                "answered_by": approver,
                "answered_at": now,
                "answer_reason": answer.reason,
            }
        )


def _pending(item: dict[str, Any]) -> PendingApproval:
    fields = {k: v["S"] for k, v in item.items() if "S" in v and k != "targetKey"}
    return PendingApproval.model_validate(fields)
