"""Request recording: every AWS call the local cloud serves, whoever made it, decoded per protocol."""

from __future__ import annotations

import json

from localcloud.harness import DeployedCloud
from localcloud.recording import decode_request


def _auth(service: str) -> dict[str, str]:
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=AK/20261122/us-east-1/{service}/aws4_request, x"}


def test_decode_json_protocol() -> None:
    headers = {**_auth("states"), "X-Amz-Target": "AWSStepFunctions.StartExecution"}
    entry = decode_request("POST", "http://h/", headers, b'{"stateMachineArn": "arn"}', 1.0)
    assert (entry.service, entry.operation, entry.parameters) == (
        "stepfunctions",
        "StartExecution",
        {"stateMachineArn": "arn"},
    )


def test_decode_query_protocol() -> None:
    entry = decode_request(
        "POST", "http://h/", _auth("sns"), b"Action=Publish&Version=2010-03-31&TopicArn=t", 1.0
    )
    assert (entry.service, entry.operation, entry.parameters) == ("sns", "Publish", {"TopicArn": "t"})


def test_decode_rest_protocols() -> None:
    invoke = decode_request(
        "POST", "http://h/2015-03-31/functions/fn-1/invocations", _auth("lambda"), b'{"a": 1}', 1.0
    )
    assert (invoke.operation, invoke.parameters) == ("Invoke", {"FunctionName": "fn-1", "Payload": {"a": 1}})
    put = decode_request("PUT", "http://h/bucket/dir/key.zip", _auth("s3"), b"\x00\x01", 1.0)
    assert (put.operation, put.parameters["Key"]) == ("PutObject", "dir/key.zip")
    copy = decode_request("PUT", "http://h/bucket/key", {**_auth("s3"), "x-amz-copy-source": "b/k"}, b"", 1.0)
    assert copy.operation == "CopyObject"
    tagging = decode_request("PUT", "http://h/bucket?tagging", _auth("s3"), b"", 1.0)
    assert tagging.operation == "PutBucketTagging"


def test_records_calls_from_the_test_the_handlers_and_the_interpreter(local: DeployedCloud) -> None:
    # Given a clean recording
    local.reset_recording()
    # When the test starts the state machine, which invokes a function and calls DynamoDB itself
    result = local.start_and_wait("CheckStateMachine", {"fail": False})
    local.client("lambda").invoke(
        FunctionName=local.stack.physical_id("EchoFunction"), Payload=json.dumps({"id": "rec"})
    )
    # Then all three sources are in the recording, in order, with decoded parameters
    calls = [(r.service, r.operation) for r in local.recorded_requests()]
    assert result.status == "SUCCEEDED"
    assert calls[0] == ("stepfunctions", "StartExecution")
    assert ("lambda", "Invoke") in calls  # by the Step Functions interpreter
    puts = [r for r in local.recorded_requests() if r.operation == "PutItem"]
    table = local.stack.outputs["AuditTableName"]
    assert {p.parameters["TableName"] for p in puts} == {table}
    # One by the interpreter (the ASL's putItem), one by the handler's own boto3 client
    assert {p.parameters["Item"]["pk"]["S"] for p in puts} == {f"run#ok#{result.name}", "echo#rec"}
    times = [r.time for r in local.recorded_requests()]
    assert times == sorted(times)
