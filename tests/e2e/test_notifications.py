"""The notifications people act on, rendered from real runs on the local cloud: one per outcome
(healed, skipped with an escalation, failed, approval needed), as e-mail (plain text, lines within
100 columns, no JSON dump) and as the custom notification Amazon Q Developer in chat applications
reads. Each names the evidence, the decision, every call with its before and after, the result and
time to heal, and the next steps (the console link, the audit command, how to undo)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from selfheal_cli.main import main
from tests.e2e import test_promote_replica as promote_world
from tests.e2e import test_redrive_dlq as redrive_world
from tests.e2e import test_remap_eip as remap_world
from tests.e2e.test_promote_replica import approvals  # noqa: F401 (a fixture)


def _lines_fit(message: str) -> None:
    """Within 100 columns, but for a line that is only a URL (a URL cannot wrap); no JSON dump."""
    for line in message.splitlines():
        assert len(line) <= 100 or line.strip().startswith("https://"), line
        assert '{"' not in line and '": ' not in line, line  # no JSON object dumped


def _notes(outcome_inbox: Any, target: str) -> list[dict[str, Any]]:
    return [m for m in outcome_inbox() if m.get("Type") == "Notification" and target in m["Subject"]]


@pytest.fixture
def chat(cloud: Any, steps_env: Any) -> Iterator[Any]:
    """An SNS topic an Amazon Q Developer channel would read, named to the stack (ChatTopicArn), and
    what arrives on it."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    name = f"chat-{uuid.uuid4().hex[:8]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    steps_env(CHAT_TOPIC_ARN=topic)

    def read() -> list[dict[str, Any]]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    yield read


def test_a_heal_is_told_with_its_evidence_calls_before_and_after_time_and_next_steps(
    cloud, outcome_inbox, chat
):
    pair = remap_world.make_pair(cloud)
    result = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair, reason="INC-42: api-1 is down"))
    assert result.output["outcome"] == "healed", result.output
    (note,) = _notes(outcome_inbox, pair.primary)
    subject, body = note["Subject"], note["Message"]
    assert subject.startswith(f"[selfheal] HEALED: remap-eip {pair.primary} in ") and subject.endswith(" s")
    _lines_fit(body)
    for heading in ("What happened", "Decision", "What it did", "Result", "Next steps"):
        assert f"\n{heading}\n" in body, (heading, body)
    assert "INC-42: api-1 is down" in body  # the evidence: why it ran
    assert "1. ec2:AssociateAddress: ok" in body
    assert f"before: allocationId={pair.allocation}, " in body and "after:  associationId=eipassoc-" in body
    assert f"standby.instanceId={pair.standby}" in body
    assert "Time to heal: " in body and " s from the request" in body
    assert f"selfheal audit --target {pair.primary}" in body
    assert f"#/v2/executions/details/{result.arn}" in body
    assert "To undo: " in body
    # The same outcome in chat: Amazon Q Developer's custom notification schema
    (message,) = [m for m in chat() if m["metadata"]["additionalContext"]["requestId"] == result.name]
    assert (message["version"], message["source"]) == ("1.0", "custom")
    content = message["content"]
    assert content["textType"] == "client-markdown"
    assert content["title"] == f"selfheal HEALED: remap-eip {pair.primary}"
    assert "INC-42: api-1 is down" in content["description"] and "*Time to heal:*" in content["description"]
    assert any(step.startswith("See every row: selfheal audit --target") for step in content["nextSteps"])
    assert message["metadata"]["threadId"] == f"selfheal#remap-eip#{pair.primary}"


def test_a_failure_says_action_needed_first_with_the_named_error(cloud, outcome_inbox, chat):
    pair = remap_world.make_pair(cloud)
    cloud.client("ec2").stop_instances(InstanceIds=[pair.standby])
    result = cloud.start_and_wait("remap-eip", remap_world.manual_input(pair))
    assert result.status == "FAILED"
    (note,) = _notes(outcome_inbox, pair.primary)
    assert note["Subject"] == f"[selfheal] FAILED: remap-eip {pair.primary} - ACTION NEEDED"
    body = note["Message"]
    _lines_fit(body)
    assert body.splitlines()[2] == "ACTION NEEDED"
    assert "Error: PreconditionFailed: " in body and "is stopped, not running" in body
    assert "none: nothing was changed" in body and "To undo: nothing to undo: the run changed nothing" in body
    (message,) = [m for m in chat() if m["metadata"]["additionalContext"]["requestId"] == result.name]
    assert message["content"]["title"].startswith(":rotating_light: selfheal FAILED")
    assert "escalated" in message["content"]["keywords"]


def test_a_skip_that_needs_a_human_is_told_and_one_that_does_not_is_not(cloud, outcome_inbox):
    dlq = redrive_world.make_dlq(cloud, messages=3)
    first = cloud.start_and_wait("redrive-dlq", redrive_world.manual_input(dlq))
    assert first.output["outcome"] == "healed", first.output
    cloud.client("sqs").send_message(QueueUrl=dlq.url, MessageBody="again")
    again = cloud.start_and_wait("redrive-dlq", redrive_world.manual_input(dlq))
    assert again.output["outcome"] == "skipped" and again.output["escalated"] is True, again.output
    notes = _notes(outcome_inbox, dlq.name)
    (skipped,) = [n for n in notes if n["Subject"].startswith("[selfheal] SKIPPED")]
    assert skipped["Subject"] == f"[selfheal] SKIPPED: redrive-dlq {dlq.name} - ACTION NEEDED"
    _lines_fit(skipped["Message"])
    assert "came back" in skipped["Message"] and "none: nothing was changed" in skipped["Message"]


def test_an_approval_request_names_the_commands_to_answer_within_100_columns(
    cloud,
    approvals,  # noqa: F811
    local_user,
    monkeypatch,
):
    db = promote_world.make_database(cloud, lag=120.0)
    arn = promote_world._start(cloud, promote_world.manual_input(db, maxLagSeconds=30))
    note = approvals(arn)
    assert note["Subject"] == f"[selfheal] APPROVAL NEEDED: promote-replica {db.primary}"
    body = note["Message"]
    _lines_fit(body)
    name = arn.rsplit(":", 1)[-1]
    assert f"  selfheal approve {name} --comment WHY" in body.splitlines()
    assert f"  selfheal reject {name} --reason WHY" in body.splitlines()
    assert "over the limit" in body and "rds:PromoteReadReplica: DbInstanceIdentifier=" in body
    assert "\nWhat happened\n  e2e test\n" in body  # the request's reason, the evidence
    assert "How to go back" in body and f"#/v2/executions/details/{arn}" in body
    # The command as printed works: the run named by its request id, answered by someone else
    bob = local_user("bob")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bob.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bob.secret)
    assert main(["reject", name, "--reason", "not now", "--endpoint", cloud.endpoint]) == 0
    assert cloud.wait(arn).output["outcome"] == "rejected"
