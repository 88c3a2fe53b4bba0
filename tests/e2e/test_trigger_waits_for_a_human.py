"""`selfheal trigger` on a run that asks for approval: the wait ends at the question, with how to
answer it. Before, it waited in silence until --timeout and then said "still RUNNING" (exit 1), and
the token and the answer commands were only in the SNS message nobody local is subscribed to."""

from __future__ import annotations

import json

from selfheal_cli.main import main
from tests.e2e.test_promote_replica import make_database, manual_input, rows_for


def _printed(out: str) -> list[str]:
    """What the command printed, without the log lines of the functions the local cloud runs in-process."""
    return [line for line in out.splitlines() if not line.startswith(('{"level":', '{"_aws":'))]


def test_trigger_on_a_run_that_asks_a_human_says_so_at_once_and_how_to_answer(
    cloud, local_user, monkeypatch, capsys
):
    # Given a replica 120 s behind, over a 30 s limit: promoting it needs a human's yes
    db = make_database(cloud, lag=120.0)
    body = json.dumps(manual_input(db, maxLagSeconds=30))
    capsys.readouterr()
    # When an operator triggers it (waiting up to 60 s)
    code = main(
        ["trigger", "promote-replica", "--input", body, "--timeout", "60", "--endpoint", cloud.endpoint]
    )
    # Then it ends at the question (exit 5: waiting for a human), the reason and the two answers
    line, *steps = _printed(capsys.readouterr().out)
    assert code == 5, (line, steps)
    assert line.startswith(f"waiting  promote-replica {db.primary}: asks for approval by "), line
    assert len(line) <= 160, line
    approve, reject = (step.split() for step in steps)
    assert approve[:2] == ["selfheal", "approve"] and reject[:2] == ["selfheal", "reject"], steps
    arn = approve[2]
    assert reject[2] == arn and arn.startswith("arn:aws:states:") and reject[3] == "--reason", steps
    # And the command it printed works, for someone else than the requester
    bob = local_user("bob")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", bob.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", bob.secret)
    assert main(["reject", arn, "--reason", "not during the sale", "--endpoint", cloud.endpoint]) == 0
    result = cloud.wait(arn, timeout=60)
    assert result.output["outcome"] == "rejected", result.output
    assert db.replica_state(cloud) == ("available", db.primary)  # nothing was promoted
    assert f"rejected by {bob.arn}: not during the sale" in rows_for(cloud, db.primary)[-1]["reason"]


def test_trigger_json_output_of_a_waiting_run_carries_the_question_without_its_token(cloud, capsys):
    db = make_database(cloud, lag=120.0)
    body = json.dumps(manual_input(db, maxLagSeconds=30))
    capsys.readouterr()
    code = main(
        ["trigger", "promote-replica", "--input", body, "--output", "json", "--endpoint", cloud.endpoint]
    )
    record = json.loads("\n".join(_printed(capsys.readouterr().out)))
    assert (code, record["outcome"], record["status"]) == (5, "waiting", "RUNNING"), record
    assert record["approval"]["executionArn"] == record["executionArn"]
    assert "over the limit" in record["approval"]["why"] and "taskToken" not in record["approval"]
    assert record["nextSteps"] == [
        f"selfheal approve {record['executionArn']} --comment WHY",
        f"selfheal reject {record['executionArn']} --reason WHY",
    ]
    cloud.client("stepfunctions").stop_execution(executionArn=record["executionArn"], cause="test done")
