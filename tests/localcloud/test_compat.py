"""Each moto 5.2.5 compatibility patch, checked against the documented AWS behaviour it restores."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import moto
import pytest

from localcloud import compat, ops, patches
from localcloud.harness import DeployedCloud

ROLE = "arn:aws:iam::123456789012:role/local"


def _machine(local: DeployedCloud, definition: dict[str, Any]) -> str:
    sfn = local.client("stepfunctions")
    name = f"t-{uuid.uuid4().hex[:8]}"
    return str(
        sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE)[
            "stateMachineArn"
        ]
    )


def _audit_keys(local: DeployedCloud) -> set[str]:
    rows = ops.scan_audit(local.client("dynamodb"), local.stack.outputs["AuditTableName"])
    return {row["pk"] for row in rows}


# --- pin -------------------------------------------------------------------------------------------


def test_apply_all_refuses_another_moto_version(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a moto version the patches were not verified against
    monkeypatch.setattr(moto, "__version__", "5.2.6")
    # When / Then applying them fails loudly instead of patching blindly
    with pytest.raises(patches.MotoVersionError, match=r"5\.2\.5"):
        patches.apply_all()


# --- gaps 1-3: aws-sdk integrations ----------------------------------------------------------------


def _create_db(local: DeployedCloud, identifier: str) -> None:
    local.client("rds").create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        MasterUsername="admin1",
        MasterUserPassword="password123",
        AllocatedStorage=20,
    )


def test_aws_sdk_task_takes_java_sdk_casing_and_returns_it_with_iso_datetimes(local: DeployedCloud) -> None:
    # Given a database and a task written as in the Step Functions docs (DbInstanceIdentifier)
    _create_db(local, "compat-db1")
    arn = _machine(
        local,
        {
            "StartAt": "Describe",
            "States": {
                "Describe": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
                    "Parameters": {"DbInstanceIdentifier": "compat-db1"},
                    "End": True,
                }
            },
        },
    )
    # When it runs
    result = local.start_and_wait(arn, {})
    # Then the parameter was understood, keys come back Java-cased and datetimes as strings
    assert result.status == "SUCCEEDED", result.cause
    instance = result.output["DbInstances"][0]
    assert instance["DbInstanceIdentifier"] == "compat-db1"
    assert isinstance(instance["InstanceCreateTime"], str)


def test_aws_sdk_errors_carry_the_service_prefixed_exception_name(local: DeployedCloud) -> None:
    # Given tasks whose calls fail, each caught by the exact name real Step Functions reports
    def catching(resource: str, parameters: dict[str, Any], error: str) -> dict[str, Any]:
        return {
            "StartAt": "Call",
            "States": {
                "Call": {
                    "Type": "Task",
                    "Resource": resource,
                    "Parameters": parameters,
                    "Catch": [{"ErrorEquals": [error], "ResultPath": "$.caught", "Next": "Caught"}],
                    "End": True,
                },
                "Caught": {"Type": "Pass", "End": True},
            },
        }

    rds = catching(
        "arn:aws:states:::aws-sdk:rds:describeDBInstances",
        {"DbInstanceIdentifier": "does-not-exist"},
        "Rds.DbInstanceNotFoundException",
    )
    ec2 = catching(
        "arn:aws:states:::aws-sdk:ec2:associateAddress",
        {"AllocationId": "eipalloc-00000000000000000", "InstanceId": "i-00000000000000000"},
        "Ec2.Ec2Exception",
    )
    for definition, expected in ((rds, "Rds.DbInstanceNotFoundException"), (ec2, "Ec2.Ec2Exception")):
        # When it runs
        result = local.start_and_wait(_machine(local, definition), {})
        # Then the Catch matched the documented name
        assert result.status == "SUCCEEDED", (expected, result.error, result.cause)
        assert result.output["caught"]["Error"] == expected


@pytest.mark.parametrize(
    "boto_service,sdk_service,code,expected",
    [
        ("rds", "rds", "DBInstanceNotFound", "Rds.DbInstanceNotFoundException"),  # modelled (a Fault shape)
        ("rds", "rds", "Throttling", "Rds.RdsException"),  # unmodelled: the service's generic exception
        ("ec2", "ec2", "RequestLimitExceeded", "Ec2.Ec2Exception"),  # EC2 models no errors at all
        ("route53", "route53", "Throttling", "Route53.ThrottlingException"),
        ("sqs", "sqs", "RequestThrottled", "Sqs.RequestThrottledException"),
        ("autoscaling", "autoscaling", "ResourceContention", "AutoScaling.ResourceContentionException"),
        (
            "elbv2",
            "elasticloadbalancingv2",
            "Throttling",
            "ElasticLoadBalancingV2.ElasticLoadBalancingV2Exception",
        ),
    ],
)
def test_sfn_error_name_is_the_java_sdk_class_of_the_modelled_error_else_the_generic_one(
    boto_service: str, sdk_service: str, code: str, expected: str
) -> None:
    assert compat.sfn_error_name(boto_service, sdk_service, code) == expected
    assert expected in compat.sfn_error_names(boto_service, sdk_service)


# --- gap 5: Lambda runs the real handler -----------------------------------------------------------


def test_invoke_runs_the_handler_with_its_own_environment(local: DeployedCloud) -> None:
    # Given the fixture stack's echo function (Environment: MODE from the Mode parameter)
    function = local.stack.physical_id("EchoFunction")
    # When it is invoked synchronously
    response = local.client("lambda").invoke(FunctionName=function, Payload=json.dumps({"id": "direct"}))
    payload = json.loads(response["Payload"].read())
    # Then the real handler ran with the function's variables, its context, and its boto3 calls landed
    assert "FunctionError" not in response
    assert payload["mode"] == "enforce"
    assert payload["function"] == function
    assert "echo#direct" in _audit_keys(local)
    # And the variables did not leak into the process
    assert "MODE" not in os.environ


def test_unhandled_exception_is_reported_as_lambda_does(local: DeployedCloud) -> None:
    # Given a handler that raises VerificationFailed (a class from the layer)
    function = local.stack.physical_id("BoomFunction")
    # When invoked
    response = local.client("lambda").invoke(FunctionName=function, Payload=json.dumps({"fail": True}))
    body = json.loads(response["Payload"].read())
    # Then: FunctionError Unhandled, errorType = the exception class name
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "VerificationFailed"
    assert body["errorMessage"] == "standby not healthy"


def test_async_invoke_retries_then_sends_the_record_to_the_on_failure_destination(
    local: DeployedCloud,
) -> None:
    # Given a function with MaximumRetryAttempts 2 and an SQS OnFailure destination
    function = local.stack.physical_id("BoomFunction")
    queue = local.stack.outputs["DeadLettersUrl"]
    # When an asynchronous invocation fails every attempt
    response = local.client("lambda").invoke(
        FunctionName=function, InvocationType="Event", Payload=json.dumps({"fail": True, "n": 7})
    )
    # Then it was accepted (202) and the destination got the documented invocation record
    assert response["StatusCode"] == 202
    messages = local.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    records = [json.loads(m["Body"]) for m in messages]
    record = next(r for r in records if r.get("requestPayload", {}).get("n") == 7)
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "VerificationFailed"


def test_state_machine_catches_a_handler_error_by_class_name(local: DeployedCloud) -> None:
    # Given the stack's state machine, whose Catch names VerificationFailed
    # When the function it invokes raises that exception
    result = local.start_and_wait("CheckStateMachine", {"fail": True})
    # Then the Catch branch ran (its audit row) and the machine failed with that name
    assert result.status == "FAILED"
    assert result.error == "VerificationFailed"
    assert f"run#failed#{result.name}" in _audit_keys(local)


def test_a_function_can_trigger_another_while_it_runs(local: DeployedCloud) -> None:
    # Given a function that puts an event whose rule targets the echo function (served on another thread)
    function = local.stack.physical_id("RelayFunction")
    # When it is invoked
    response = local.client("lambda").invoke(FunctionName=function, Payload="{}")
    result = json.loads(response["Payload"].read())
    # Then it returned (no lock held across the nested invocation), the echo function ran before it
    # returned, and each function saw only its own variables
    assert "FunctionError" not in response, result
    assert f"echo#{result['eventId']}" in _audit_keys(local)
    assert result["own"] == "relay" and result["mode"] is None


def test_edited_function_code_runs_without_redeploy(local: DeployedCloud, fixture_app: Path) -> None:
    # Given the deployed echo function, then an edit of its source in the working tree
    app = fixture_app / "functions" / "echo" / "app.py"
    original = app.read_text()
    app.write_text(original.replace('"version": 1', '"version": 2'))
    os.utime(app, (time.time() + 5, time.time() + 5))  # a new mtime even within the clock's resolution
    try:
        # When it is invoked again
        response = local.client("lambda").invoke(
            FunctionName=local.stack.physical_id("EchoFunction"), Payload=json.dumps({"id": "edited"})
        )
        # Then the edited code ran
        assert json.loads(response["Payload"].read())["version"] == 2
    finally:
        app.write_text(original)


def test_stack_functions_get_their_layers(local: DeployedCloud) -> None:
    # Given a function with Layers (from Globals) in the template
    config = local.client("lambda").get_function(FunctionName=local.stack.physical_id("BoomFunction"))
    # Then the function's configuration lists the layer version (moto's CloudFormation dropped it)
    assert config["Configuration"]["Layers"][0]["Arn"].startswith(
        "arn:aws:lambda:us-east-1:123456789012:layer:"
    )


# --- gap 6: EventBridge targets ----------------------------------------------------------------


def test_put_events_delivers_to_a_lambda_target_before_returning(local: DeployedCloud) -> None:
    # Given the echo function's rule (alarm names starting heal-echo-, state ALARM)
    events = local.client("events")

    def put(name: str, state: str) -> str:
        detail = {"alarmName": name, "state": {"value": state}}
        entry = {
            "Source": "aws.cloudwatch",
            "DetailType": "CloudWatch Alarm State Change",
            "Detail": json.dumps(detail),
        }
        return str(events.put_events(Entries=[entry])["Entries"][0]["EventId"])

    # When matching and non-matching events are put
    hit = put("heal-echo-web", "ALARM")
    misses = [put("heal-echo-web", "OK"), put("other", "ALARM")]
    # Then only the match ran the function, and it had run when put_events returned
    keys = _audit_keys(local)
    assert f"echo#{hit}" in keys
    assert not {f"echo#{m}" for m in misses} & keys


def test_put_events_starts_a_state_machine_target(local: DeployedCloud) -> None:
    # Given the state machine's rule (source aws.health)
    machine = local.stack.physical_id("CheckStateMachine")
    sfn = local.client("stepfunctions")
    before = ops.execution_arns(sfn, [machine])
    # When an AWS Health event is put
    local.client("events").put_events(
        Entries=[
            {
                "Source": "aws.health",
                "DetailType": "AWS Health Event",
                "Detail": json.dumps({"service": "EC2"}),
            }
        ]
    )
    # Then one execution started, with the event (ISO time) as its input
    (new,) = ops.execution_arns(sfn, [machine]) - before
    result = ops.wait_for_execution(sfn, new)
    started = json.loads(result.history[0]["executionStartedEventDetails"]["input"])
    assert started["source"] == "aws.health" and started["detail"] == {"service": "EC2"}
    assert started["time"].endswith("Z") and "T" in started["time"]
    assert result.status == "SUCCEEDED"


def test_input_transformer_with_quoted_placeholders() -> None:
    # Given a target with an InputTransformer (string placeholders quoted, as EventBridge requires)
    target = {
        "Arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "InputTransformer": {
            "InputPathsMap": {"alarm": "$.detail.alarmName"},
            "InputTemplate": '{"id": "<alarm>"}',
        },
    }
    event = compat.delivered_event({"time": 0, "detail": {"alarmName": "a1"}, "ingestion-time": 1})
    # Then the transformed input and the delivered event look as on AWS
    assert compat.target_input(target, event) == {"id": "a1"}
    assert event == {"time": "1970-01-01T00:00:00Z", "detail": {"alarmName": "a1"}}
    assert compat.target_input({"Arn": "x", "InputPath": "$.detail"}, event) == {"alarmName": "a1"}
    assert compat.target_input({"Arn": "x", "Input": '{"k": 1}'}, event) == {"k": 1}


# --- gap 8 and other CloudFormation gaps -----------------------------------------------------------


def test_stack_state_machine_has_substitutions_applied_and_executes(local: DeployedCloud) -> None:
    # Given the stack's state machine (DefinitionUri + DefinitionSubstitutions)
    machine = local.stack.physical_id("CheckStateMachine")
    definition = local.client("stepfunctions").describe_state_machine(stateMachineArn=machine)["definition"]
    # Then its definition holds the real ARN and table name
    assert "${" not in definition
    assert local.stack.outputs["AuditTableName"] in definition
    # And it is created where executions really run
    assert local.start_and_wait(machine, {"fail": False}).status == "SUCCEEDED"


def test_substitute_definition_leaves_unknown_placeholders() -> None:
    assert compat.substitute_definition('{"a": "${A}", "b": "${B}"}', {"A": 1}) == '{"a": "1", "b": "${B}"}'


def test_unnamed_ssm_parameter_gets_a_generated_name(local: DeployedCloud) -> None:
    # Given an AWS::SSM::Parameter without Name
    name = local.stack.outputs["ModeParameterName"]
    # Then CloudFormation named it and it holds the parameter value
    assert local.client("ssm").get_parameter(Name=name)["Parameter"]["Value"] == "enforce"


def test_policies_subscription_and_invoke_config_are_created(local: DeployedCloud) -> None:
    topic = local.stack.outputs["AlertsTopicArn"]
    attributes = local.client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
    assert "AlarmsPublish" in attributes["Policy"]
    queue = local.client("sqs").get_queue_attributes(
        QueueUrl=local.stack.outputs["DeadLettersUrl"], AttributeNames=["Policy"]
    )
    assert "EventsSend" in queue["Attributes"]["Policy"]
    config = local.client("lambda").get_function_event_invoke_config(
        FunctionName=local.stack.physical_id("EchoFunction")
    )
    assert config["MaximumRetryAttempts"] == 1
    subscriptions = local.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [s["Protocol"] for s in subscriptions] == ["lambda"]


def test_sns_publish_invokes_a_subscribed_function_with_the_sns_event(local: DeployedCloud) -> None:
    # When a message is published to the topic the echo function subscribes to
    message_id = local.client("sns").publish(TopicArn=local.stack.outputs["AlertsTopicArn"], Message="hello")[
        "MessageId"
    ]
    # Then the function received the SNS event carrying that message id
    assert f"echo#{message_id}" in _audit_keys(local)


def test_start_execution_without_a_name_gets_a_unique_one(local: DeployedCloud) -> None:
    # Given StartExecution without name (AWS generates a UUID)
    sfn = local.client("stepfunctions")
    machine = local.stack.physical_id("CheckStateMachine")
    first = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    # Then both start, with distinct UUID names
    assert first != second
    uuid.UUID(first.rsplit(":", 1)[-1])
    ops.wait_for_execution(sfn, first)
    ops.wait_for_execution(sfn, second)


# --- gap 4: SQS dead-letter redrive ----------------------------------------------------------------


def _dlq_pair(local: DeployedCloud, messages: int) -> tuple[Any, str, str, str]:
    sqs = local.client("sqs")
    suffix = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    src_url = sqs.create_queue(QueueName=f"src-{suffix}", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    for i in range(messages):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=f"m{i}")
    return sqs, dlq_arn, dlq_url, src_url


def _wait_status(sqs: Any, arn: str, wanted: str) -> dict[str, Any]:
    for _ in range(200):
        task: dict[str, Any] = sqs.list_message_move_tasks(SourceArn=arn)["Results"][0]
        if task["Status"] == wanted:
            return task
        time.sleep(0.02)
    raise AssertionError(f"task never reached {wanted}: {task}")


def test_message_move_task_redrives_to_the_original_source(local: DeployedCloud) -> None:
    # Given a dead-letter queue holding three messages from one source queue
    sqs, dlq_arn, dlq_url, src_url = _dlq_pair(local, 3)
    # When a move task starts without a destination
    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    # Then it completes, the messages are back in the source queue and the DLQ is empty
    task = _wait_status(sqs, dlq_arn, "COMPLETED")
    assert handle and "TaskHandle" not in task
    assert task["ApproximateNumberOfMessagesMoved"] == 3 and task["ApproximateNumberOfMessagesToMove"] == 3
    bodies = {m["Body"] for m in sqs.receive_message(QueueUrl=src_url, MaxNumberOfMessages=10)["Messages"]}
    assert bodies == {"m0", "m1", "m2"}
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq_url)


def test_message_move_task_one_active_task_and_cancel(local: DeployedCloud) -> None:
    # Given a slow task (1 message per second) over many messages
    sqs, dlq_arn, _, _ = _dlq_pair(local, 20)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)["TaskHandle"]
    # Then a second task on the same queue is refused while it runs
    with pytest.raises(sqs.exceptions.ClientError, match="UnsupportedOperation"):
        sqs.start_message_move_task(SourceArn=dlq_arn)
    assert sqs.list_message_move_tasks(SourceArn=dlq_arn)["Results"][0]["TaskHandle"] == handle
    # When cancelled, it ends CANCELLED having moved only part of them
    sqs.cancel_message_move_task(TaskHandle=handle)
    assert _wait_status(sqs, dlq_arn, "CANCELLED")["ApproximateNumberOfMessagesMoved"] < 20


def test_message_move_task_validates_its_parameters(local: DeployedCloud) -> None:
    sqs, dlq_arn, _, src_url = _dlq_pair(local, 0)
    src_arn = sqs.get_queue_attributes(QueueUrl=src_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    with pytest.raises(sqs.exceptions.ClientError, match="Dead Letter Queue"):
        sqs.start_message_move_task(SourceArn=src_arn)  # not a DLQ
    with pytest.raises(sqs.exceptions.ClientError, match="between 1 and 500"):
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)


def test_aws_sdk_task_names_elbv2_as_step_functions_does(local: DeployedCloud) -> None:
    # Given a target group and a task on the SDK service name Step Functions documents for ELBv2
    elb, ec2 = local.client("elbv2"), local.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = elb.create_target_group(Name="compat-tg", Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]
    arn = _machine(
        local,
        {
            "StartAt": "Describe",
            "States": {
                "Describe": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::aws-sdk:elasticloadbalancingv2:describeTargetHealth",
                    "Parameters": {"TargetGroupArn": group["TargetGroupArn"]},
                    "End": True,
                }
            },
        },
    )
    # When it runs, Then it reaches elbv2
    result = local.start_and_wait(arn, {})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output["TargetHealthDescriptions"] == []


def test_comma_delimited_list_parameter_left_at_its_default_is_a_list(local: DeployedCloud) -> None:
    # Given a stack whose list parameter keeps its default, selected and used in a condition
    template = {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "none"}},
        "Conditions": {
            "HasNames": {"Fn::Not": [{"Fn::Equals": [{"Fn::Select": [0, {"Ref": "Names"}]}, "none"]}]}
        },
        "Resources": {
            "Always": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": "x"}},
            "OnlyWithNames": {
                "Type": "AWS::SSM::Parameter",
                "Condition": "HasNames",
                "Properties": {"Type": "String", "Value": "y"},
            },
        },
        "Outputs": {"First": {"Value": {"Fn::Select": [0, {"Ref": "Names"}]}}},
    }
    cfn = local.client("cloudformation")
    # When it is created (AWS: the default is split like a passed value)
    cfn.create_stack(StackName="compat-list-default", TemplateBody=json.dumps(template))
    stack = cfn.describe_stacks(StackName="compat-list-default")["Stacks"][0]
    # Then the first item is "none" and the conditional resource is not created
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"First": "none"}
    resources = cfn.list_stack_resources(StackName="compat-list-default")["StackResourceSummaries"]
    ids = [r.get("LogicalResourceId") for r in resources]
    assert "Always" in ids and "OnlyWithNames" not in ids


# --- JSONPath ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.a[0].b", 1),  # definite through an index: the value (moto alone: [1])
        ("$.a[1]", {"b": 2, "w": False}),
        ("$.a[*].b", [1, 2]),
        ("$.one[*].b", [1]),  # indefinite over one item: still a list
        ("$.a[?(@.w == true)].b", [1]),
        ("$.a[0:1]", [{"b": 1, "w": True}]),
        ("$..b", [1, 2, 1]),
        ("$.none[*].b", []),
    ],
)
def test_json_paths_resolve_as_step_functions_does(path: str, expected: Any) -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    compat.patch_sfn_definite_json_paths()
    data = {"a": [{"b": 1, "w": True}, {"b": 2, "w": False}], "one": [{"b": 1}], "none": []}
    assert json_path.extract_json(path, data) == expected


def test_definite_path_to_nothing_is_still_an_error() -> None:
    from moto.stepfunctions.parser.asl.utils import json_path

    compat.patch_sfn_definite_json_paths()
    with pytest.raises(json_path.NoSuchJsonPathError):
        json_path.extract_json("$.a[5].b", {"a": [{"b": 1}]})


def test_state_machine_reads_a_definite_path_through_an_index_as_a_value(local: DeployedCloud) -> None:
    # Given a Pass state that picks one field of the first item, and a Choice on it
    arn = _machine(
        local,
        {
            "StartAt": "Pick",
            "States": {
                "Pick": {
                    "Type": "Pass",
                    "Parameters": {"first.$": "$.items[0].id", "all.$": "$.items[*].id"},
                    "Next": "Is it a?",
                },
                "Is it a?": {
                    "Type": "Choice",
                    "Choices": [{"Variable": "$.first", "StringEquals": "a", "Next": "Yes"}],
                    "Default": "No",
                },
                "Yes": {"Type": "Succeed"},
                "No": {"Type": "Fail", "Error": "NotA"},
            },
        },
    )
    # When it runs over one item, Then the definite path is the value and the wildcard a list
    result = local.start_and_wait(arn, {"items": [{"id": "a"}]})
    assert result.status == "SUCCEEDED", result.cause
    assert result.output == {"first": "a", "all": ["a"]}
