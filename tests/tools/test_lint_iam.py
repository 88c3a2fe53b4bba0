"""tools/lint_iam.py: bad policies are caught, a scoped template passes."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from tools import lint_iam

HEADER = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  TagKey:
    Type: String
    Default: selfheal:managed
Resources:
  AuditTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Topic:
    Type: AWS::SNS::Topic
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/fn/
      Handler: app.handler
      Runtime: python3.13
      Tracing: Active
      Policies:
        - DynamoDBCrudPolicy: {TableName: !Ref AuditTable}
        - SNSPublishMessagePolicy: {TopicName: !GetAtt Topic.TopicName}
        - Statement:
            - Effect: Allow
              Action: cloudwatch:PutMetricData
              Resource: "*"
            - Effect: Allow
              Action: [ec2:DescribeInstances, ec2:DescribeAddresses]
              Resource: "*"
            - Effect: Allow
              Action: ec2:AssociateAddress
              Resource: "*"
              Condition:
                StringEquals:
                  "aws:ResourceTag/selfheal:managed": "true"
"""


def statement(body: str) -> str:
    """An extra inline statement on the function (YAML, as it would be written in the template)."""
    return HEADER + textwrap.indent(textwrap.dedent(body), " " * 12)


def run(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    rc = lint_iam.main([str(path)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def test_lint_iam_accepts_scoped_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given SAM policy templates, an allowlisted '*' action, reads on '*' and a tag-conditioned write
    rc, out = run(tmp_path, HEADER, capsys)
    # Then every generated policy is clean and the attached managed policies are listed
    assert rc == 0, out
    assert "0 with problems" in out
    assert "AWSLambdaBasicExecutionRole" in out


BAD = {
    "action star": (
        """\
        - Effect: Allow
          Action: "*"
          Resource: "*"
        """,
        "Action '*' grants a whole service",
    ),
    "service star": (
        """\
        - Effect: Allow
          Action: ec2:*
          Resource: !Sub arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*
        """,
        "Action 'ec2:*' grants a whole service",
    ),
    "mutating on star without condition": (
        """\
        - Effect: Allow
          Action: [ec2:DescribeInstances, ec2:TerminateInstances]
          Resource: "*"
        """,
        "mutating action 'ec2:TerminateInstances' on Resource '*' without a Condition",
    ),
    "not action": (
        """\
        - Effect: Allow
          NotAction: iam:*
          Resource: "*"
        """,
        "Allow with NotAction",
    ),
    "parliament resource mismatch": (
        """\
        - Effect: Allow
          Action: s3:GetObject
          Resource: arn:aws:s3:::my-bucket
        """,
        "parliament MEDIUM RESOURCE_MISMATCH",
    ),
    "parliament unknown condition": (
        """\
        - Effect: Allow
          Action: sns:Publish
          Resource: !Ref Topic
          Condition:
            StringEquals: {"ec2:InstanceType": "t3.micro"}
        """,
        "UNKNOWN_CONDITION_FOR_ACTION",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_lint_iam_catches_bad_policy(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body, expected = BAD[case]
    # Given a template with one bad statement
    rc, out = run(tmp_path, statement(body), capsys)
    # Then the lint fails and says why
    assert rc == 1, out
    assert expected in out
    assert "1 with problems" in out


def test_lint_iam_lints_plain_cloudformation_policies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given plain IAM resources (no SAM transform) with a bad statement in each
    text = """\
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument: {Version: "2012-10-17", Statement: []}
  Pol:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: p
      Roles: [!Ref Role]
      PolicyDocument:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Action: "sqs:*", Resource: "*"}]
  Managed:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument:
        Version: "2012-10-17"
        Statement:
          - {Effect: Allow, Action: route53:ChangeResourceRecordSets, Resource: "*"}
"""
    rc, out = run(tmp_path, text, capsys)
    assert rc == 1
    assert "Pol (AWS::IAM::Policy): " in out
    assert "Managed (AWS::IAM::ManagedPolicy): " in out
    assert "route53:ChangeResourceRecordSets" in out
    assert "2 with problems" in out


def test_lint_iam_reports_a_template_that_does_not_transform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "Transform: AWS::Serverless-2016-10-31\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {}\n"
    rc, out = run(tmp_path, text, capsys)
    assert rc == 2
    assert "SAM transform failed" in out


def test_lint_iam_reports_a_missing_template(tmp_path: Path) -> None:
    assert lint_iam.main([str(tmp_path / "nope.yaml")]) == 2


def test_resolver_makes_concrete_arns() -> None:
    template: dict[str, Any] = {
        "Parameters": {
            "Env": {"Type": "String", "Default": "dev"},
            "Ids": {"Type": "CommaDelimitedList", "Default": "a,b"},
        },
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "dlq-${Env}"}}},
            "SM": {"Type": "AWS::StepFunctions::StateMachine"},
        },
    }
    resolver = lint_iam.Resolver(template)
    assert resolver.resolve({"Fn::GetAtt": ["Q", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:dlq-dev"
    assert resolver.resolve({"Fn::GetAtt": "Q.Arn"}) == "arn:aws:sqs:us-east-1:123456789012:dlq-dev"
    assert (
        resolver.resolve({"Ref": "SM"})
        == "arn:aws:states:us-east-1:123456789012:stateMachine:selfheal-dev-SM-EXAMPLE"
    )
    assert resolver.resolve(
        {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Q.QueueName}"}
    ) == ("arn:aws:sqs:us-east-1:123456789012:dlq-dev")
    assert resolver.resolve({"Fn::Sub": ["${X}/${!Literal}", {"X": {"Ref": "Env"}}]}) == "dev/${Literal}"
    assert resolver.resolve({"Fn::Join": [":", ["a", {"Ref": "AWS::Region"}]]}) == "a:us-east-1"
    assert resolver.resolve({"Fn::Select": [1, {"Ref": "Ids"}]}) == "b"
    assert resolver.resolve(["x", {"Ref": "AWS::NoValue"}]) == ["x"]
    assert resolver.resolve({"Fn::If": ["C", {"Ref": "AWS::NoValue"}, "other"]}) == "other"
    assert resolver.unresolved == []


def test_lint_iam_reads_policy_documents_written_as_json_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a policy whose document is a !Sub'd JSON string (valid CloudFormation) with a bad action
    text = """\
Resources:
  Pol:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      PolicyDocument: !Sub |
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "ec2:TerminateInstances", "Resource": "*"}]}
"""
    rc, out = run(tmp_path, text, capsys)
    # Then it is parsed and linted like any other document
    assert rc == 1
    assert "mutating action 'ec2:TerminateInstances'" in out
    assert "MALFORMED_JSON" not in out


def _run_instances(resources: list[str], condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_lint_iam_accepts_run_instances_split_by_request_tag() -> None:
    """Given RunInstances split as the EC2 user guide shows (the instance under an aws:RequestTag
    condition, what it uses in another statement), When linted, Then parliament's per-statement
    RESOURCE_MISMATCH is not a problem; other findings still are."""
    fenced = _run_instances(
        ["arn:aws:ec2:us-east-1:123456789012:instance/*"],
        {"StringEquals": {"aws:RequestTag/selfheal:managed": "true"}},
    )
    assert lint_iam.parliament_problems(fenced) == []
    mismatch = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ec2:TerminateInstances",
                "Resource": "arn:aws:ec2:us-east-1:123456789012:subnet/*",
            }
        ],
    }
    assert lint_iam.parliament_problems(mismatch)


def test_resolver_uses_parameter_examples_instead_of_sentinel_defaults() -> None:
    resolver = lint_iam.Resolver(
        {"Parameters": {"ReplaceInstancePassRoleArns": {"Type": "CommaDelimitedList", "Default": "none"}}}
    )
    assert resolver.resolve({"Ref": "ReplaceInstancePassRoleArns"}) == ["arn:aws:iam::123456789012:role/web"]
