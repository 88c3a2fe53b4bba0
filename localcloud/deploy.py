"""Deploy the real SAM template into the local cloud, the way ``sam package`` + CloudFormation would.

Code directories are zipped to S3 with a marker pointing back at the working tree, so the in-process
Lambda (localcloud.compat) runs the current source: edits need no redeploy.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template
from samtranslator.yaml_helper import yaml_parse

from localcloud.compat import SOURCE_MARKER

ARTIFACT_BUCKET = "selfheal-localcloud-artifacts"
_EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


class DeployError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE."""


@dataclass(frozen=True)
class Stack:
    """A deployed stack: its outputs and the physical id behind every logical id."""

    name: str
    stack_id: str
    outputs: dict[str, str]
    physical_ids: dict[str, str]
    resource_types: dict[str, str] = field(default_factory=dict)

    def physical_id(self, logical_id: str) -> str:
        return self.physical_ids[logical_id]

    def of_type(self, resource_type: str) -> dict[str, str]:
        """logical id -> physical id for every resource of a CloudFormation type."""
        return {lid: self.physical_ids[lid] for lid, t in self.resource_types.items() if t == resource_type}


def _no_lookups() -> dict[str, str]:
    """samtranslator would ask IAM for managed policy names its bundled map lacks; offline there are none."""
    return {}


def zip_directory(source: Path) -> bytes:
    """Zip a code directory deterministically, with the marker naming the working-tree directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and not _EXCLUDED_DIRS.intersection(path.relative_to(source).parts):
                archive.write(path, path.relative_to(source).as_posix())
        archive.writestr(SOURCE_MARKER, str(source.resolve()))
    return buffer.getvalue()


def _upload(s3: Any, source: Path, key_prefix: str) -> dict[str, str]:
    body = zip_directory(source)
    key = f"{key_prefix}/{source.resolve().as_posix().strip('/').replace('/', '_')}.zip"
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=body)
    return {"Bucket": ARTIFACT_BUCKET, "Key": key}


def _is_local(uri: Any) -> bool:
    return isinstance(uri, str) and not uri.startswith("s3://")


def _check_placeholders(path: Path, substitutions: Mapping[str, Any]) -> None:
    """CloudFormation substitutes only DefinitionSubstitutions keys (not pseudo parameters such as
    ``${AWS::Partition}``); anything else stays literal and the state machine is invalid on AWS too."""
    unresolved = sorted(set(re.findall(r"\$\{([^}]+)\}", path.read_text())) - set(substitutions))
    if unresolved:
        raise DeployError(
            f"{path.name}: placeholders without a DefinitionSubstitutions entry: {unresolved}. "
            "Pseudo parameters are not substituted in ASL; pass them through a substitution instead, e.g. "
            "LambdaInvoke: !Sub arn:${AWS::Partition}:states:::lambda:invoke"
        )


def package_template(template: dict[str, Any], base_dir: Path, s3: Any, key_prefix: str) -> dict[str, Any]:
    """What ``sam package`` does: local CodeUri/ContentUri -> S3 objects, DefinitionUri -> inline
    Definition."""
    packaged = copy.deepcopy(template)
    global_fn = packaged.get("Globals", {}).get("Function", {})
    if _is_local(global_fn.get("CodeUri")):
        global_fn["CodeUri"] = _upload(s3, base_dir / global_fn["CodeUri"], key_prefix)
    for resource in packaged.get("Resources", {}).values():
        props = resource.get("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and _is_local(props.get("CodeUri")):
            props["CodeUri"] = _upload(s3, base_dir / props["CodeUri"], key_prefix)
        elif kind == "AWS::Serverless::LayerVersion" and _is_local(props.get("ContentUri")):
            props["ContentUri"] = _upload(s3, base_dir / props["ContentUri"], key_prefix)
        elif kind == "AWS::Serverless::StateMachine" and _is_local(props.get("DefinitionUri")):
            path = base_dir / props.pop("DefinitionUri")
            _check_placeholders(path, props.get("DefinitionSubstitutions") or {})
            props["Definition"] = json.loads(path.read_text())
    return packaged


def translate(template: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """Run the SAM transform offline: region from an explicit session (not the caller's environment), the
    bundled managed-policy map instead of IAM lookups."""
    session = boto3.session.Session(region_name=region)
    params: dict[str, Any] = dict(parameters)
    document = copy.deepcopy(template)
    to_py27_compatible_template(document, params)
    translator = Translator(None, Parser(), boto_session=session)
    transformed = translator.translate(document, parameter_values=params, get_managed_policy_map=_no_lookups)
    result: dict[str, Any] = undo_mark_unicode_str_in_template(transformed)
    return result


def load_template(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml_parse(path.read_text())
    return document


def wait_for_stack(cloudformation: Any, stack_name: str, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE" or status == "UPDATE_COMPLETE":
            return stack
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack_name)["StackEvents"]
            failures = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in events
                if e.get("ResourceStatus", "").endswith("FAILED")
            ]
            raise DeployError(f"stack {stack_name} ended {status}: {failures}")
        time.sleep(0.2)


def describe_stack(cloudformation: Any, stack_name: str) -> Stack:
    """Outputs and resources of an existing stack (local or real)."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            physical[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
            types[summary["LogicalResourceId"]] = summary["ResourceType"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Stack(stack_name, stack["StackId"], outputs, physical, types)


class UnknownParameters(ValueError):
    """A parameter the template does not declare (a typo in --parameter-overrides)."""


def check_parameters(template: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
    """CloudFormation's own refusal of a parameter the template does not declare (moto would take it
    silently, and a typo in --parameter-overrides would go unseen)."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise UnknownParameters(f"Parameters: {unknown} do not exist in the template")


def deploy(
    cloudformation: Any,
    s3: Any,
    template_path: Path,
    stack_name: str,
    parameters: Mapping[str, str] | None = None,
    region: str = "us-east-1",
) -> Stack:
    """Package, transform and create the stack; returns once it is CREATE_COMPLETE."""
    base_dir = template_path.resolve().parent
    template = load_template(template_path)
    check_parameters(template, parameters or {})
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    packaged = package_template(template, base_dir, s3, stack_name)
    transformed = translate(packaged, dict(parameters or {}), region)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(transformed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    wait_for_stack(cloudformation, stack_name)
    return describe_stack(cloudformation, stack_name)
