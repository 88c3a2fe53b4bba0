"""``env.json`` for ``sam local invoke --env-vars``: each function's variables, valued as deployed.

SAM CLI gives a function only the variables its template declares (``Globals.Function.Environment``
and the function's own), taking their values from the file by the function's logical id; anything
else in the file is ignored (samcli/local/lambdafn/env_vars.py, ``EnvironmentVariables.resolve``).
So the names come from the template, and the values from the deployed function itself (Lambda's
GetFunctionConfiguration of the physical id CloudFormation lists): exactly what the stack resolved,
parameters and ``!Join`` included. Credentials never go in the file: sam passes the caller's own.

For the local cloud's stack each function also gets ``AWS_ENDPOINT_URL``, for whatever reads the
file to run a handler against that stack (a script, an IDE's launch configuration). SAM CLI itself
drops it, as every variable the template does not declare: a container it starts still calls AWS.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from localcloud.deploy import load_template

FUNCTION_TYPE = "AWS::Serverless::Function"
# Never written, whatever a template declares: sam hands the container the caller's credentials.
CREDENTIAL_VARIABLES = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


class EnvJsonError(RuntimeError):
    """The stack does not match the template (a function or a variable missing)."""


def declared_variables(template: Mapping[str, Any]) -> dict[str, list[str]]:
    """Function logical id -> the variable names its template declares, globals included."""
    globals_ = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables") or {}
    declared = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != FUNCTION_TYPE:
            continue
        own = (resource.get("Properties", {}).get("Environment") or {}).get("Variables") or {}
        declared[logical_id] = sorted(set(globals_) | set(own))
    return declared


def _physical_ids(cloudformation: Any, stack_name: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for summary in page["StackResourceSummaries"]:
            ids[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    return ids


def env_json(
    template_path: Path, clients: Callable[[str], Any], stack_name: str, endpoint: str | None
) -> dict[str, dict[str, str]]:
    """The file's content: per function, its declared variables as deployed, and AWS_ENDPOINT_URL
    when the stack is the local cloud's (``endpoint``)."""
    physical = _physical_ids(clients("cloudformation"), stack_name)
    functions = clients("lambda")
    result: dict[str, dict[str, str]] = {}
    for logical_id, names in declared_variables(load_template(template_path)).items():
        if logical_id not in physical:
            raise EnvJsonError(f"stack {stack_name} has no {logical_id}: deployed from another template?")
        configuration = functions.get_function_configuration(FunctionName=physical[logical_id])
        deployed = configuration.get("Environment", {}).get("Variables", {})
        missing = [name for name in names if name not in deployed]
        if missing:
            raise EnvJsonError(
                f"{logical_id} of stack {stack_name} has no {', '.join(missing)}:"
                " deployed from another template?"
            )
        variables = {name: str(deployed[name]) for name in names if name not in CREDENTIAL_VARIABLES}
        if endpoint:
            variables["AWS_ENDPOINT_URL"] = endpoint
        result[logical_id] = variables
    return result
