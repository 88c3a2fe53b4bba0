#!/usr/bin/env python3
"""Lint every IAM policy the SAM template creates, after the SAM transform.

1. Transform the template with ``samtranslator`` (region us-east-1, offline managed-policy loader),
   so SAM policy templates, connectors and generated roles are linted as deployed.
2. Collect every policy document: ``AWS::IAM::Role`` inline ``Policies``, ``AWS::IAM::Policy``,
   ``AWS::IAM::ManagedPolicy``.
3. Replace intrinsics (``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``, ...) by plausible concrete
   values (ARNs in the formats the services use) so the policy reads as IAM will see it.
4. Run parliament (Python API: its CLI needs a terminal on stdin) and fail on findings of severity
   MEDIUM or above; fail on our own rules too:
   - an ``Allow`` whose ``Action`` is ``*`` or ``service:*``, or that uses ``NotAction``/``NotResource``;
   - a mutating action (anything but Describe*/Get*/List*) on ``Resource: "*"`` without a
     ``Condition``, unless the action is in ``STAR_RESOURCE_ALLOWLIST`` (with the reason).

Usage: tools/lint_iam.py [template.yaml]      exit 0 = clean, 1 = findings, 2 = cannot run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
PARTITION = "aws"
STACK = "selfheal-dev"
FAILING_SEVERITIES = ("MEDIUM", "HIGH", "CRITICAL")
READ_ONLY_PREFIXES = ("Describe", "Get", "List")

# Mutating actions that may have Resource "*" without a Condition, because the service offers no
# resource-level permission for them (see the Service Authorization Reference: "Resource types" is
# empty for each of these).
STAR_RESOURCE_ALLOWLIST: dict[str, str] = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions (Lambda/Step Functions tracing)",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions (Lambda/Step Functions tracing)",
    "cloudwatch:PutMetricData": "no resource-level permissions (may be narrowed by cloudwatch:namespace)",
    "logs:CreateLogDelivery": "Step Functions/vended logs delivery is account-level: Resource must be *",
    "logs:UpdateLogDelivery": "Step Functions/vended logs delivery is account-level: Resource must be *",
    "logs:DeleteLogDelivery": "Step Functions/vended logs delivery is account-level: Resource must be *",
    "logs:PutResourcePolicy": "required with Resource * for Step Functions logging to CloudWatch Logs",
    "ssm:CreateOpsItem": "no resource type (only aws:RequestTag and aws:TagKeys): the statement requires"
    " the stack's tag on every OpsItem (EscalateToOpsCenter)",
    "states:SendTaskSuccess": "no resource type: the task token names the execution (triage answers only"
    " tokens from its own table)",
    "states:SendTaskFailure": "no resource type: the task token names the execution (triage answers only"
    " tokens from its own table)",
}

# Parameters whose default does not look like what they hold (a "none" sentinel): lint the policies
# with an example value instead, so the statements they feed are checked as deployed.
PARAMETER_EXAMPLES: dict[str, str] = {
    "ReplaceInstancePassRoleArns": f"arn:aws:iam::{ACCOUNT}:role/web",
    "ReplaceInstanceLaunchTemplateIds": "lt-0123456789abcdef0,lt-0fedcba9876543210",
    "ReplaceInstanceImageIds": "ami-0123456789abcdef0",
    "ChatTopicArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:chat-ops",
}

# Parliament findings that are the documented pattern, not a problem: (issue, action) -> why.
PARLIAMENT_ACCEPTED: dict[tuple[str, str], str] = {
    ("RESOURCE_MISMATCH", "ec2:RunInstances"): (
        "RunInstances is split as the EC2 user guide shows (instance/* with an aws:RequestTag"
        " condition; launch template and image with the declared-source conditions; subnet,"
        " security group... without): each statement alone matches part"
    ),
    ("RESOURCE_MISMATCH", "states:DescribeExecution"): (
        "parliament asks for both of the action's resource types (execution and express); the stack's"
        " state machines are STANDARD, so only their execution ARNs are granted"
    ),
}

# The AWS managed policies SAM may reference by name (Policies: [Name], Tracing, VPC, SQS/DDB
# events). samtranslator would list them from IAM; this map keeps the transform offline.
MANAGED_POLICIES: dict[str, str] = {
    name: f"arn:aws:iam::aws:policy/{path}"
    for name, path in {
        "AWSLambdaBasicExecutionRole": "service-role/AWSLambdaBasicExecutionRole",
        "AWSLambdaVPCAccessExecutionRole": "service-role/AWSLambdaVPCAccessExecutionRole",
        "AWSLambdaSQSQueueExecutionRole": "service-role/AWSLambdaSQSQueueExecutionRole",
        "AWSLambdaDynamoDBExecutionRole": "service-role/AWSLambdaDynamoDBExecutionRole",
        "AWSLambdaKinesisExecutionRole": "service-role/AWSLambdaKinesisExecutionRole",
        "AWSLambdaRole": "service-role/AWSLambdaRole",
        "AWSLambdaExecute": "AWSLambdaExecute",
        "AWSXrayWriteOnlyAccess": "AWSXrayWriteOnlyAccess",
        "AWSXRayDaemonWriteAccess": "AWSXRayDaemonWriteAccess",
        "CloudWatchLambdaInsightsExecutionRolePolicy": "CloudWatchLambdaInsightsExecutionRolePolicy",
        "AWSStepFunctionsReadOnlyAccess": "AWSStepFunctionsReadOnlyAccess",
        "ReadOnlyAccess": "ReadOnlyAccess",
    }.items()
}


class TemplateError(Exception):
    """The template cannot be read or transformed: nothing to lint."""


@dataclass
class PolicyDoc:
    """One policy document found in the transformed template."""

    label: str
    document: Any
    problems: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------- transform
def load_template(path: Path) -> dict[str, Any]:
    from cfnlint.decode import decode  # short-form tags (!Sub, !GetAtt) -> long form

    template, matches = decode(str(path))
    if matches or template is None:
        details = "; ".join(m.message for m in matches) or "cannot be parsed"
        raise TemplateError(f"{path}: {details}")
    # cfn-lint's node types subclass dict/str; plain JSON types keep samtranslator happy.
    loaded: dict[str, Any] = json.loads(json.dumps(template))
    return loaded


LOCAL_URI_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri")


def as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    """Point local CodeUri/ContentUri/DefinitionUri paths at S3, as `sam package` would.

    The translator only accepts S3 locations; the code itself does not matter for IAM.
    """
    sections = [
        r.get("Properties") for r in (template.get("Resources") or {}).values() if isinstance(r, dict)
    ]
    sections += list((template.get("Globals") or {}).values())
    for props in sections:
        if not isinstance(props, dict):
            continue
        for key in LOCAL_URI_PROPERTIES:
            value = props.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                props[key] = f"s3://selfheal-artifacts/{value.strip('./') or 'root'}"
    return template


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
    from samtranslator.translator.transform import transform

    class OfflineManagedPolicyLoader(ManagedPolicyLoader):
        def __init__(self) -> None:  # no IAM client: nothing to list
            self._policy_map = dict(MANAGED_POLICIES)
            self.max_items = 0

        def load(self) -> dict[str, str]:
            return dict(MANAGED_POLICIES)

    ArnGenerator.BOTO_SESSION_REGION_NAME = REGION
    if "Transform" not in template:
        return template
    try:
        transformed: dict[str, Any] = transform(as_packaged(template), {}, OfflineManagedPolicyLoader())
    except InvalidDocumentException as exc:
        causes = "\n  ".join(str(cause.message) for cause in exc.causes)
        raise TemplateError(f"SAM transform failed:\n  {causes}") from exc
    return transformed


# ------------------------------------------------------------------------------------ intrinsics
NO_VALUE = object()

# Resource type -> (Ref value, {GetAtt attribute: value}); {n} = physical name.
_R, _A = REGION, ACCOUNT
RESOURCE_VALUES: dict[str, tuple[str, dict[str, str]]] = {
    "AWS::DynamoDB::Table": (
        "{n}",
        {
            "Arn": f"arn:aws:dynamodb:{_R}:{_A}:table/{{n}}",
            "StreamArn": f"arn:aws:dynamodb:{_R}:{_A}:table/{{n}}/stream/2026-01-01T00:00:00.000",
        },
    ),
    "AWS::SNS::Topic": (
        f"arn:aws:sns:{_R}:{_A}:{{n}}",
        {"TopicArn": f"arn:aws:sns:{_R}:{_A}:{{n}}", "TopicName": "{n}"},
    ),
    "AWS::SQS::Queue": (
        f"https://sqs.{_R}.amazonaws.com/{_A}/{{n}}",
        {
            "Arn": f"arn:aws:sqs:{_R}:{_A}:{{n}}",
            "QueueName": "{n}",
            "QueueUrl": f"https://sqs.{_R}.amazonaws.com/{_A}/{{n}}",
        },
    ),
    "AWS::Lambda::Function": ("{n}", {"Arn": f"arn:aws:lambda:{_R}:{_A}:function:{{n}}"}),
    "AWS::Lambda::Alias": (f"arn:aws:lambda:{_R}:{_A}:function:{{n}}:live", {}),
    "AWS::Lambda::Version": (f"arn:aws:lambda:{_R}:{_A}:function:{{n}}:1", {"Version": "1"}),
    "AWS::Lambda::LayerVersion": (f"arn:aws:lambda:{_R}:{_A}:layer:{{n}}:1", {}),
    "AWS::StepFunctions::StateMachine": (
        f"arn:aws:states:{_R}:{_A}:stateMachine:{{n}}",
        {"Arn": f"arn:aws:states:{_R}:{_A}:stateMachine:{{n}}", "Name": "{n}"},
    ),
    "AWS::StepFunctions::Activity": (
        f"arn:aws:states:{_R}:{_A}:activity:{{n}}",
        {"Name": "{n}"},
    ),
    "AWS::IAM::Role": ("{n}", {"Arn": f"arn:aws:iam::{_A}:role/{{n}}", "RoleId": "AROAEXAMPLEEXAMPLE"}),
    "AWS::IAM::ManagedPolicy": (f"arn:aws:iam::{_A}:policy/{{n}}", {}),
    "AWS::SSM::Parameter": ("{n}", {"Type": "String", "Value": "value"}),
    "AWS::Events::EventBus": (
        "{n}",
        {"Arn": f"arn:aws:events:{_R}:{_A}:event-bus/{{n}}", "Name": "{n}"},
    ),
    "AWS::Events::Rule": ("{n}", {"Arn": f"arn:aws:events:{_R}:{_A}:rule/{{n}}"}),
    "AWS::Events::Archive": ("{n}", {"Arn": f"arn:aws:events:{_R}:{_A}:archive/{{n}}"}),
    "AWS::Logs::LogGroup": ("{n}", {"Arn": f"arn:aws:logs:{_R}:{_A}:log-group:{{n}}:*"}),
    "AWS::S3::Bucket": ("{n}", {"Arn": "arn:aws:s3:::{n}", "DomainName": "{n}.s3.amazonaws.com"}),
    "AWS::KMS::Key": (
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        {
            "Arn": f"arn:aws:kms:{_R}:{_A}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        },
    ),
    "AWS::KMS::Alias": ("alias/{n}", {}),
    "AWS::CloudWatch::Alarm": ("{n}", {"Arn": f"arn:aws:cloudwatch:{_R}:{_A}:alarm:{{n}}"}),
    "AWS::Route53::HostedZone": ("Z0123456789EXAMPLE", {"Id": "Z0123456789EXAMPLE"}),
    "AWS::Route53::HealthCheck": ("abcdef12-3456-7890-abcd-ef1234567890", {}),
    "AWS::SecretsManager::Secret": (f"arn:aws:secretsmanager:{_R}:{_A}:secret:{{n}}-AbCdEf", {}),
    "AWS::Scheduler::ScheduleGroup": ("{n}", {"Arn": f"arn:aws:scheduler:{_R}:{_A}:schedule-group/{{n}}"}),
    "AWS::EC2::Instance": ("i-0123456789abcdef0", {}),
    "AWS::EC2::EIP": ("203.0.113.10", {"AllocationId": "eipalloc-0123456789abcdef0"}),
    "AWS::AutoScaling::AutoScalingGroup": ("{n}", {}),
}
NAME_PROPERTIES = (
    "TableName",
    "TopicName",
    "QueueName",
    "FunctionName",
    "StateMachineName",
    "RoleName",
    "ManagedPolicyName",
    "LogGroupName",
    "BucketName",
    "AlarmName",
    "LayerName",
    "AliasName",
    "Name",
)
PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK,
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/1b2c3d4e",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
    "AWS::NoValue": NO_VALUE,
}
_SUB_VAR = re.compile(r"\$\{(!?)([^}]*)\}")


class Resolver:
    """Evaluates CloudFormation intrinsics to concrete, plausible values."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.resources: Mapping[str, Any] = template.get("Resources") or {}
        self.parameters: Mapping[str, Any] = template.get("Parameters") or {}
        self.mappings: Mapping[str, Any] = template.get("Mappings") or {}
        self.unresolved: list[str] = []
        self._names: dict[str, str] = {}

    def name_of(self, logical_id: str) -> str:
        if logical_id not in self._names:
            self._names[logical_id] = f"{STACK}-{logical_id}-EXAMPLE"  # CloudFormation's default shape
            props = (self.resources.get(logical_id) or {}).get("Properties") or {}
            for key in NAME_PROPERTIES:
                if key in props:
                    value = self.resolve(props[key])
                    if isinstance(value, str):
                        self._names[logical_id] = value
                    break
        return self._names[logical_id]

    def ref(self, name: str) -> Any:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            param = self.parameters[name] or {}
            default = PARAMETER_EXAMPLES.get(name) or param.get("Default", f"param-{name}")
            kind = str(param.get("Type", "String"))
            if kind.startswith("List<") or kind == "CommaDelimitedList":
                return [part.strip() for part in str(default).split(",")]
            return str(default)
        if name in self.resources:
            kind = self.resources[name].get("Type", "")
            ref_format = RESOURCE_VALUES.get(kind, ("{n}", {}))[0]
            return ref_format.format(n=self.name_of(name))
        self.unresolved.append(f"Ref {name}")
        return f"unresolved-{name}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = (self.resources.get(logical_id) or {}).get("Type", "")
        attrs = RESOURCE_VALUES.get(kind, ("", {}))[1]
        name = self.name_of(logical_id)
        if attribute in attrs:
            return attrs[attribute].format(n=name)
        if attribute == "Arn":
            service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
            resource = kind.split("::")[-1].lower()
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}/{name}"
        return f"{name}-{attribute}"

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            literal, expr = match.group(1), match.group(2)
            if literal:
                return "${" + expr + "}"
            if expr in variables:
                value = self.resolve(variables[expr])
            elif "." in expr and expr.split(".", 1)[0] in self.resources:
                value = self.get_att(*expr.split(".", 1))
            else:
                value = self.ref(expr)
            return ",".join(map(str, value)) if isinstance(value, list) else str(value)

        return _SUB_VAR.sub(one, text)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, self.resolve(attribute))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                return self.sub(text, variables)
            if key == "Fn::Join":
                parts = self.resolve(arg[1])
                return str(arg[0]).join(str(p) for p in (parts if isinstance(parts, list) else [parts]))
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Select":
                items = self.resolve(arg[1])
                return items[int(self.resolve(arg[0]))]
            if key == "Fn::If":  # the true branch, unless it is AWS::NoValue
                chosen = self.resolve(arg[1])
                return self.resolve(arg[2]) if chosen is NO_VALUE else chosen
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(a) for a in arg[:3])
                return self.mappings.get(name, {}).get(top, {}).get(second, f"map-{name}-{top}-{second}")
            if key == "Fn::ImportValue":
                return f"imported-{self.resolve(arg)}"
            if key == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if key == "Fn::Base64":
                return self.resolve(arg)
            if key.startswith("Fn::"):
                self.unresolved.append(key)
                return f"unresolved-{key[4:]}"
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}


# -------------------------------------------------------------------------------------- collect
def collect_policies(template: Mapping[str, Any]) -> tuple[list[PolicyDoc], list[str]]:
    """Every policy document, with intrinsics resolved; and the managed policy ARNs attached."""
    resolver = Resolver(template)
    docs: list[PolicyDoc] = []
    attached: list[str] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        props = resource.get("Properties") or {}
        if kind == "AWS::IAM::Role":
            for i, policy in enumerate(props.get("Policies") or []):
                name = resolver.resolve(policy.get("PolicyName", f"Policies[{i}]"))
                docs.append(
                    PolicyDoc(f"{logical_id} (AWS::IAM::Role) policy {name}", policy.get("PolicyDocument"))
                )
            for arn in resolver.resolve(props.get("ManagedPolicyArns") or []):
                attached.append(f"{logical_id}: {arn}")
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(PolicyDoc(f"{logical_id} ({kind})", props.get("PolicyDocument")))
    for doc in docs:
        before = len(resolver.unresolved)
        doc.document = resolver.resolve(doc.document)
        if isinstance(doc.document, str):  # CloudFormation also takes the document as a JSON string
            try:
                doc.document = json.loads(doc.document)
            except json.JSONDecodeError as exc:
                doc.problems.append(f"PolicyDocument is a string but not JSON: {exc}")
        doc.problems += [f"cannot resolve {what}" for what in resolver.unresolved[before:]]
    return docs, attached


# ----------------------------------------------------------------------------------------- lint
def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    if not isinstance(document, Mapping):
        return
    for i, statement in enumerate(as_list(document.get("Statement") or [])):
        if isinstance(statement, Mapping):
            yield str(statement.get("Sid") or f"Statement[{i}]"), statement


def is_read_only(action: str) -> bool:
    verb = action.split(":", 1)[-1]
    return verb.startswith(READ_ONLY_PREFIXES)


def rule_problems(document: Any) -> list[str]:
    problems: list[str] = []
    for sid, statement in statements(document):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"{sid}: Allow with NotAction grants every other action")
        if "NotResource" in statement:
            problems.append(f"{sid}: Allow with NotResource grants every other resource")
        actions = [str(a) for a in as_list(statement.get("Action") or [])]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{sid}: Action {action!r} grants a whole service (or everything)")
        if "*" in as_list(statement.get("Resource") or []) and not statement.get("Condition"):
            for action in actions:
                if action == "*" or action.endswith(":*") or is_read_only(action):
                    continue
                if action not in STAR_RESOURCE_ALLOWLIST:
                    problems.append(
                        f"{sid}: mutating action {action!r} on Resource '*' without a Condition "
                        "(scope it to ARNs, add a tag/name Condition, or allowlist it with a reason)"
                    )
    return problems


def parliament_problems(document: Any) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # parliament 1.6.4 imports the deprecated pkg_resources
        import parliament

    policy = parliament.analyze_policy_string(json.dumps(document))
    problems = []
    for finding in policy.findings:
        finding = parliament.enhance_finding(finding)
        detail_actions = {d.get("action") for d in finding.detail or [] if isinstance(d, dict)}
        if detail_actions and all((finding.issue, a) in PARLIAMENT_ACCEPTED for a in detail_actions):
            continue
        if finding.severity in FAILING_SEVERITIES:
            location = {k: v for k, v in (finding.location or {}).items() if k != "filepath" and v}
            detail = f" {finding.detail}" if finding.detail else ""
            problems.append(
                f"parliament {finding.severity} {finding.issue}: {finding.title}{detail} {location}"
            )
    return problems


def lint(template_path: Path) -> tuple[list[PolicyDoc], list[str]]:
    template = sam_transform(load_template(template_path))
    docs, attached = collect_policies(template)
    for doc in docs:
        doc.problems += rule_problems(doc.document) + parliament_problems(doc.document)
    return docs, attached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lint the IAM policies of a SAM template.")
    parser.add_argument("template", nargs="?", type=Path, default=Path("template.yaml"))
    parser.add_argument("-v", "--verbose", action="store_true", help="print each resolved policy")
    args = parser.parse_args(argv)
    if not args.template.is_file():
        print(f"{args.template}: not found", file=sys.stderr)
        return 2
    try:
        docs, attached = lint(args.template)
    except TemplateError as exc:
        print(exc, file=sys.stderr)
        return 2
    failed = 0
    for doc in docs:
        print(f"{doc.label}: {'OK' if not doc.problems else f'{len(doc.problems)} problem(s)'}")
        for problem in doc.problems:
            print(f"    {problem}")
        if args.verbose or doc.problems:
            print("    " + json.dumps(doc.document, indent=2).replace("\n", "\n    "))
        failed += bool(doc.problems)
    for line in attached:
        print(f"note: managed policy attached (not linted here): {line}")
    print(f"lint_iam: {len(docs)} policy document(s), {failed} with problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
