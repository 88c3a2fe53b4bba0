"""Runbook input (what an operator pastes into the console) is checked field by field."""

import json
from pathlib import Path

import pytest

from selfheal.errors import InvalidInput, UnknownRunbook
from selfheal.steps import parse_request

EXAMPLE = json.loads((Path(__file__).parents[2] / "events/runbooks/remap-eip.json").read_text())


def test_parse_request_accepts_the_documented_console_example():
    request = parse_request(EXAMPLE, "remap-eip", "exec-1", None)
    assert request.target_key == EXAMPLE["target"]["instanceId"]
    assert request.actor.kind == "direct"  # the input alone proves nothing of who asked
    assert request.dry_run is EXAMPLE.get("dryRun", False)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda d: d.pop("target"), "target"),
        (lambda d: d.pop("reason"), "reason"),
        (lambda d: d.update(dryRun="maybe"), "dryRun"),
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d.update(target={"instanceId": "web-1"}), "target.instanceId"),
        (lambda d: d.update(target={}), "exactly one"),
        (
            lambda d: d.update(target={"instanceId": "i-0123456789abcdef0", "publicIp": "1.2.3.4"}),
            "exactly one",
        ),
        (lambda d: d.update(params={"standbyInstanceId": "i-0123456789abcdef0", "typo": 1}), "params.typo"),
        (lambda d: d.update(params={"verifyAttempts": 0}), "params.verifyAttempts"),
    ],
)
def test_parse_request_names_what_is_wrong(mutate, needle):
    bad = json.loads(json.dumps(EXAMPLE))
    mutate(bad)
    with pytest.raises(InvalidInput) as caught:
        parse_request(bad, "remap-eip", "exec-1", None)
    assert needle in caught.value.message


@pytest.mark.parametrize("raw", [None, [], "text", 42])
def test_parse_request_rejects_input_that_is_not_an_object(raw):
    with pytest.raises(InvalidInput):
        parse_request(raw, "remap-eip", "exec-1", None)


def test_parse_request_unknown_runbook_is_named():
    with pytest.raises(UnknownRunbook):
        parse_request(EXAMPLE, "reboot-the-world", "exec-1", None)


# ---------------------------------------------------------------------------------- redrive-dlq


def test_redrive_dlq_target_key_is_the_queue_name_whichever_form_is_given():
    from selfheal.runbooks.redrive_dlq import RedriveDlqTarget

    forms = [
        {"queueName": "orders-dlq"},
        {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/orders-dlq"},
        {"queueArn": "arn:aws:sqs:us-east-1:123456789012:orders-dlq"},
    ]
    assert {RedriveDlqTarget.model_validate(f).key for f in forms} == {"orders-dlq"}


@pytest.mark.parametrize(
    "target,params,needle",
    [
        ({}, {}, "exactly one of queueName"),
        ({"queueName": "a", "queueArn": "arn:aws:sqs:us-east-1:123456789012:a"}, {}, "exactly one"),
        ({"queueName": "orders dlq"}, {}, "queueName"),
        ({"queueName": "q"}, {"maxMessagesPerSecond": 501}, "maxMessagesPerSecond"),
        ({"queueName": "q"}, {"maxMessagesPerSecond": 0}, "maxMessagesPerSecond"),
        ({"queueName": "q"}, {"destinationArn": "orders"}, "destinationArn"),
        ({"queueName": "q"}, {"rate": 5}, "rate"),
    ],
)
def test_redrive_dlq_bad_input_names_the_problem(target, params, needle):
    with pytest.raises(InvalidInput, match=needle):
        parse_request({"target": target, "params": params, "reason": "t"}, "redrive-dlq", "r1", None)


def test_input_problems_refuses_what_no_row_could_record() -> None:
    from selfheal.models import MAX_INPUT_BYTES, input_problems

    assert input_problems({"target": {"instanceId": "i-1"}, "reason": "ok"}) is None
    assert "bytes" in (input_problems({"reason": "x" * MAX_INPUT_BYTES}) or "")
    deep: dict[str, object] = {}
    node = deep
    for _ in range(10_000):  # no recursion limit to hit
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    assert "nested" in (input_problems(deep) or "")


def test_audit_rows_too_big_for_dynamodb_are_summarised_not_lost() -> None:
    from selfheal.audit import MAX_ROW_BYTES, fitted

    body = {
        "requestId": "r",
        "phase": "failed",
        "before": {"blob": "x" * MAX_ROW_BYTES},
        "reason": "r" * 5000,
    }
    small = fitted(body)
    assert small["before"] == {"truncated": True, "bytes": MAX_ROW_BYTES + 12, "depth": 1}
    assert len(small["reason"]) == 2000 and fitted({"phase": "ok"}) == {"phase": "ok"}
