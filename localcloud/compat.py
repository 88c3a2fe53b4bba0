"""Compatibility patches that close the gaps between moto 5.2.5 and real AWS for this project.

Each is registered in ``localcloud.patches`` (``@patch``), which applies it once per process and only
on the pinned moto version; ``patches.apply_all()`` applies these and every other module's patches.
Gap numbers refer to TOOLCHAIN.md.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.session

from localcloud.patches import patch

_LOG = logging.getLogger(__name__)
# A file inside a deployed zip that points back at the working-tree directory it was built from, so the
# in-process Lambda runs the current source (edits need no redeploy). Written by localcloud.deploy.
SOURCE_MARKER = ".localcloud-source"

# Real Step Functions names aws-sdk errors after the Java SDK v2 service class (Ec2, Rds, DynamoDb...).
_SFN_SERVICE_ERROR_PREFIX = {
    "ec2": "Ec2",
    "rds": "Rds",
    "sqs": "Sqs",
    "route53": "Route53",
    "lambda": "Lambda",
    "dynamodb": "DynamoDb",
    "sns": "Sns",
    "autoscaling": "AutoScaling",
    "ssm": "Ssm",
    "sfn": "Sfn",
    "cloudwatch": "CloudWatch",
    "eventbridge": "EventBridge",
    "elasticloadbalancingv2": "ElasticLoadBalancingV2",
}


@patch("sfn-elbv2-service-name")
def patch_sfn_elbv2_service_name() -> None:
    """Step Functions names ELBv2 ``elasticloadbalancingv2`` in aws-sdk integrations
    (arn:aws:states:::aws-sdk:elasticloadbalancingv2:registerTargets); boto3 calls it ``elbv2``."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
        StateTaskService,
    )

    overrides = dict(StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES)
    overrides["elasticloadbalancingv2"] = "elbv2"
    StateTaskService._SERVICE_NAME_SFN_TO_BOTO_OVERRIDES = overrides  # type: ignore[misc]


# A JSONPath is indefinite (its result is always a list in Step Functions, even of one item, or empty
# when nothing matches) when it has a wildcard, a deep scan, a filter, a slice or a union.
_INDEFINITE_PATH = re.compile(r"\.\*|\.\.|\[[^\]]*[*:?,][^\]]*\]")


def is_definite_json_path(path: str) -> bool:
    return not _INDEFINITE_PATH.search(path)


@patch("sfn-definite-json-paths")
def patch_sfn_definite_json_paths() -> None:
    """Step Functions (Jayway JSONPath) gives a definite path's one value as it is: ``$.a[0].b`` is
    ``b``'s value. moto 5.2.5 wraps it in a list whenever the path goes through an array index, so an
    ASL that is right on AWS fails locally (and one written to pass locally fails on AWS). Indefinite
    paths (``[*]``, ``..``, filters, slices, unions) keep moto's list, which is what AWS gives."""
    from moto.stepfunctions.parser.asl.utils import json_path

    original = json_path.extract_json

    def extract_json(path: str, data: Any) -> Any:
        if not is_definite_json_path(path):
            return original(path, data)
        matches = json_path.parse(path).find(data)
        if not matches:
            raise json_path.NoSuchJsonPathError(json_path=path, data=data)
        return matches[0].value

    json_path.extract_json = extract_json
    # Modules that imported it by name before the patch keep their own reference: replace those too.
    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(module, "extract_json", None) is original:
            module.extract_json = extract_json  # type: ignore[attr-defined]


def _json_safe(value: Any) -> Any:
    def _default(obj: Any) -> str:
        if isinstance(obj, datetime.datetime | datetime.date):
            return obj.isoformat()
        if isinstance(obj, bytes):
            return obj.decode("utf-8", "replace")
        return str(obj)

    return json.loads(json.dumps(value, default=_default))


_botocore_session: botocore.session.Session | None = None


def _service_model(service: str) -> Any:
    global _botocore_session
    if _botocore_session is None:
        _botocore_session = botocore.session.get_session()
    return _botocore_session.get_service_model(service)


def _java_name(name: str) -> str:
    from moto.stepfunctions.parser.utils import camel_to_snake_case, snake_to_camel_case

    base = name.removesuffix("Fault").removesuffix("Exception")
    return f"{snake_to_camel_case(camel_to_snake_case(base))}Exception"


def sfn_error_prefix(sdk_service: str) -> str:
    return _SFN_SERVICE_ERROR_PREFIX.get(sdk_service.lower(), sdk_service.title())


def sfn_error_names(boto_service: str, sdk_service: str) -> set[str]:
    """Every error name Step Functions can report for this service's aws-sdk tasks."""
    prefix = sfn_error_prefix(sdk_service)
    modelled = {f"{prefix}.{_java_name(s.name)}" for s in _service_model(boto_service).error_shapes}
    return {f"{prefix}.{prefix}Exception", *modelled}


def sfn_error_name(boto_service: str, sdk_service: str, code: str) -> str:
    """The error name real Step Functions gives an aws-sdk task's failure: the Java SDK v2 exception
    class of the service's modelled error with that code (``Rds.DbInstanceNotFoundException``), else
    the service's generic one (``Ec2.Ec2Exception``: EC2 models no errors; ``Rds.RdsException`` for
    an unmodelled throttle)."""
    prefix = sfn_error_prefix(sdk_service)
    wanted = {code, code.rsplit(".", 1)[-1]} - {""}

    def codes(shape: Any) -> set[str]:
        # A shape without an explicit code answers to its name, with or without the usual suffixes
        # (Route 53's ThrottlingException is sent as Throttling).
        explicit = shape.metadata.get("error", {}).get("code")
        bare = shape.name.removesuffix("Fault").removesuffix("Exception")
        return {explicit} if explicit else {shape.name, bare}

    shape = next((s for s in _service_model(boto_service).error_shapes if codes(s) & wanted), None)
    return f"{prefix}.{prefix}Exception" if shape is None else f"{prefix}.{_java_name(shape.name)}"


# --- Gaps 1-3: Step Functions aws-sdk integrations -------------------------------------------------


@patch("sfn-aws-sdk")
def patch_sfn_aws_sdk() -> None:
    """Java-SDK parameter casing in, ISO datetimes and Java-SDK casing out, real error names."""
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_aws_sdk as module,
    )
    from moto.stepfunctions.parser.utils import camel_to_snake_case

    cls: Any = module.StateTaskServiceAwsSdk

    def _operation(service: str, action: str) -> Any:
        model = _service_model(service)
        wanted = camel_to_snake_case(action)
        name = next(op for op in model.operation_names if camel_to_snake_case(op) == wanted)
        return model.operation_model(name)

    def _normalise_parameters(
        self: Any,
        parameters: dict[str, Any],
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        # Real SFN takes Java-SDK-v2 casing (DbInstanceIdentifier); boto wants DBInstanceIdentifier.
        service = self._get_boto_service_name(boto_service_name)
        shape = _operation(service, service_action_name or self.resource.api_action).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    original_eval = cls._eval_service_task
    original_from_error = cls._from_error

    def _eval_service_task(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> None:
        original_eval(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        # Datetimes in the response (route53, ec2, rds) would break describe_execution's JSON.
        response = _json_safe(env.stack.pop())
        out_shape = _operation(self._get_boto_service_name(), self.resource.api_action).output_shape
        if out_shape is not None:
            # Real SFN re-cases response keys the Java-SDK way too (DBInstance -> DbInstance).
            self._from_boto_response(response, out_shape)
        env.stack.append(response)

    def _from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original_from_error(self, env, ex)
        code = ex.response.get("Error", {}).get("Code", "")
        name = sfn_error_name(self._get_boto_service_name(), self.resource.api_name, code)
        prefix = name.split(".", 1)[0]
        meta = ex.response.get("ResponseMetadata", {})
        cause = (
            f"{ex.response.get('Error', {}).get('Message', '')} (Service: {prefix}, "
            f"Status Code: {meta.get('HTTPStatusCode')}, Request ID: {meta.get('RequestId')}, "
            f"Error Code: {code})"
        )
        return self._get_task_failure_event(env=env, error=name, cause=cause)

    cls._normalise_parameters = _normalise_parameters
    cls._eval_service_task = _eval_service_task
    cls._from_error = _from_error


# --- Gap 5: Lambda runs the real Python handler in-process -----------------------------------------


class _OverlayEnviron(os._Environ[str]):
    """os.environ with a per-thread overlay holding the current Lambda function's variables.

    Several functions share this process and one function may trigger another while it runs (it puts an
    event whose rule targets a second function, served on another server thread). A process-wide lock
    around each invocation would deadlock there, so each invocation sees its own variables on its
    own thread instead, while the process environment stays untouched.
    """

    def __init__(self, base: os._Environ[str]) -> None:
        super().__init__(
            base._data,  # type: ignore[attr-defined]  # share the real environment's storage
            base.encodekey,
            base.decodekey,
            base.encodevalue,
            base.decodevalue,
        )
        self._local = threading.local()

    def _overlay(self) -> dict[str, str] | None:
        overlay: dict[str, str] | None = getattr(self._local, "overlay", None)
        return overlay

    def enter(self, variables: Mapping[str, str]) -> dict[str, str] | None:
        previous = self._overlay()
        self._local.overlay = dict(variables)
        return previous

    def leave(self, previous: dict[str, str] | None) -> None:
        self._local.overlay = previous

    def __getitem__(self, key: str) -> str:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            return overlay[key]
        return super().__getitem__(key)

    def __setitem__(self, key: str, value: str) -> None:
        overlay = self._overlay()
        if overlay is not None:  # a handler's own writes stay in its sandbox, as on Lambda
            overlay[key] = value
        else:
            super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        overlay = self._overlay()
        if overlay is not None and key in overlay:
            del overlay[key]
        else:
            super().__delitem__(key)

    def __iter__(self) -> Iterator[str]:
        overlay = self._overlay()
        if overlay is None:
            yield from super().__iter__()
            return
        yield from overlay
        yield from (key for key in super().__iter__() if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


def _overlay_environ() -> _OverlayEnviron:
    if not isinstance(os.environ, _OverlayEnviron):
        # Replaced, not cleared: the overlay shares the original mapping's storage.
        os.environ = _OverlayEnviron(os.environ)  # noqa: B003
    return os.environ


class LambdaContext:
    """The attributes of the real Lambda context object that handlers and Powertools read."""

    def __init__(self, function_name: str, function_arn: str, memory_mb: int, timeout_s: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function_arn
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _CodeLoader:
    """Finds and imports a function's handler from its deployed zip (or the source dir it points to)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sys.path / sys.modules are process-wide
        self._cache_root = Path(tempfile.gettempdir()) / "selfheal-localcloud-code"
        self._modules: dict[str, tuple[float, ModuleType]] = {}

    def source_dir(self, code_bytes: bytes) -> Path:
        with zipfile.ZipFile(io.BytesIO(code_bytes)) as archive:
            if SOURCE_MARKER in archive.namelist():
                return Path(archive.read(SOURCE_MARKER).decode().strip())
            target = self._cache_root / hashlib.sha256(code_bytes).hexdigest()
            if not target.exists():
                archive.extractall(target)
            return target

    def handler(
        self, function_name: str, handler: str, code_bytes: bytes, layers: list[bytes]
    ) -> Callable[[Any, Any], Any]:
        module_path, func_name = handler.rsplit(".", 1)
        with self._lock:
            for layer in layers:
                root = self.source_dir(layer)
                # Lambda puts /opt/python on sys.path; an unbuilt layer holds the package at its root.
                for candidate in (root / "python", root):
                    if candidate.is_dir() and str(candidate) not in sys.path:
                        sys.path.insert(0, str(candidate))
            file = self.source_dir(code_bytes) / (module_path.replace(".", "/") + ".py")
            mtime = file.stat().st_mtime
            unique = f"_selfheal_fn_{re.sub(r'\W', '_', function_name)}_{re.sub(r'\W', '_', module_path)}"
            cached = self._modules.get(unique)
            if cached is None or cached[0] != mtime:  # re-import edited working-tree code
                spec = importlib.util.spec_from_file_location(unique, file)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot import handler module {file}")
                module = importlib.util.module_from_spec(spec)
                sys.modules[unique] = module
                spec.loader.exec_module(module)
                cached = (mtime, module)
                self._modules[unique] = cached
            result: Callable[[Any, Any], Any] = getattr(cached[1], func_name)
            return result


_loader = _CodeLoader()
# Variables the Lambda runtime (not the function config) provides; the endpoint makes the handler's own
# boto3 clients talk to the local cloud.
_runtime_environment: dict[str, str] = {}


def lambda_runtime_environment() -> dict[str, str]:
    return dict(_runtime_environment)


def set_lambda_runtime_environment(variables: Mapping[str, str]) -> None:
    """Variables every in-process invocation gets (endpoint, fake credentials, region)."""
    _runtime_environment.clear()
    _runtime_environment.update(variables)


def _error_payload(exc: BaseException) -> bytes:
    # Lambda's stack trace starts in the function's code: drop this module's frames.
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": "",
            "stackTrace": traceback.format_list(frames),
        }
    ).encode()


def _function_environment(backend: Any, fn: Any) -> dict[str, str]:
    """What a Lambda sandbox sees: runtime-provided variables, then the function's configured ones."""
    return {
        **_runtime_environment,
        "AWS_REGION": backend.region_name,
        "AWS_DEFAULT_REGION": backend.region_name,
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
        "_HANDLER": fn.handler,
        **{key: str(value) for key, value in (fn.environment_vars or {}).items()},
    }


def invoke_in_process(
    backend: Any, function_name: str, qualifier: str | None, body: Any
) -> tuple[bytes, bool]:
    """Run the function's real handler; returns (payload, unhandled_error)."""
    fn = backend.get_function(function_name, qualifier)
    layers = [backend.layers_versions_by_arn(layer["Arn"]).code_bytes for layer in fn.layers]
    raw = body.decode() if isinstance(body, bytes) else body
    event = json.loads(raw) if raw else {}
    environ = _overlay_environ()
    # The module is imported under the function's variables too: module-level code (Powertools Logger,
    # Metrics) reads them at import, as in Lambda's init phase.
    previous = environ.enter(_function_environment(backend, fn))
    try:
        handler = _loader.handler(fn.function_name, fn.handler, fn.code_bytes, layers)
        context = LambdaContext(fn.function_name, fn.function_arn, int(fn.memory_size), int(fn.timeout))
        result = handler(event, context)
    except Exception as exc:  # import errors included: Lambda reports both as the invocation's error
        return _error_payload(exc), True
    finally:
        environ.leave(previous)
    return json.dumps(result, default=str).encode(), False


class InvocationTap:
    """Sees the Lambda invocations the local cloud runs in this process, while installed: it wraps
    ``invoke_in_process`` (the one place every invocation goes through). A subclass says what to do
    around one in ``around``; ``call`` runs it (or the tap installed before this one)."""

    def __init__(self) -> None:
        self._original: Callable[..., tuple[bytes, bool]] | None = None

    def around(
        self,
        call: Callable[..., tuple[bytes, bool]],
        backend: Any,
        function_name: str,
        qualifier: str | None,
        body: Any,
    ) -> tuple[bytes, bool]:
        return call(backend, function_name, qualifier, body)

    def install(self) -> None:
        global invoke_in_process
        original = self._original = invoke_in_process

        def tapped(backend: Any, function_name: str, qualifier: str | None, body: Any) -> tuple[bytes, bool]:
            return self.around(original, backend, function_name, qualifier, body)

        invoke_in_process = tapped

    def uninstall(self) -> None:
        global invoke_in_process
        if self._original is not None:
            invoke_in_process = self._original


def invocation_record(fn: Any, event: Any, payload: bytes, failed: bool, attempts: int) -> dict[str, Any]:
    """The asynchronous invocation record Lambda sends to a destination (Lambda developer guide)."""
    response: Any = json.loads(payload) if payload else None
    context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if failed:
        context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{fn.function_arn}:$LATEST",
            "condition": "RetriesExhausted" if failed else "Success",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": context,
        "responsePayload": response,
    }


def _send_to_destination(destination: str, record: dict[str, Any], failed: bool) -> None:
    from moto.utilities.arns import parse_arn

    arn = parse_arn(destination)
    message = json.dumps(record)
    if arn.service == "sqs":
        from moto.sqs.models import sqs_backends

        sqs_backends[arn.account][arn.region].send_message(arn.resource_id, message)
    elif arn.service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[arn.account][arn.region].publish(message, arn=destination)
    elif arn.service == "lambda":
        from moto.awslambda.utils import get_backend

        get_backend(arn.account, arn.region).invoke(
            arn.resource_id, None, message, {"X-Amz-Invocation-Type": "Event"}, {}
        )
    elif arn.service == "events":
        from moto.events.models import events_backends

        detail_type = f"Lambda Function Invocation Result - {'Failure' if failed else 'Success'}"
        events_backends[arn.account][arn.region].put_events(
            [{"Source": "lambda", "DetailType": detail_type, "Detail": message, "EventBusName": destination}]
        )


def invoke_asynchronously(backend: Any, function_name: str, qualifier: str | None, body: Any) -> bytes:
    """Lambda's asynchronous contract: retries (MaximumRetryAttempts, default 2; immediately here, not
    after 1 and 2 minutes), then the OnFailure / OnSuccess destination of the event invoke config."""
    fn = backend.get_function(function_name, qualifier)
    config: dict[str, Any] = fn.event_invoke_config[-1].config if fn.event_invoke_config else {}
    allowed = 1 + int(config.get("MaximumRetryAttempts", 2))
    attempts, payload, failed = 0, b"", True
    while failed and attempts < allowed:
        attempts += 1
        payload, failed = invoke_in_process(backend, function_name, qualifier, body)
    outcome = "OnFailure" if failed else "OnSuccess"
    destination = config.get("DestinationConfig", {}).get(outcome, {}).get("Destination")
    if destination:
        raw = body.decode() if isinstance(body, bytes) else body
        event = json.loads(raw) if raw else {}
        try:
            _send_to_destination(destination, invocation_record(fn, event, payload, failed, attempts), failed)
        except Exception:  # a destination failure is not the caller's error
            _LOG.exception("could not deliver the invocation record of %s to %s", function_name, destination)
    return b""  # an asynchronous invoke answers 202 with an empty body


@patch("lambda-in-process")
def patch_lambda_in_process() -> None:
    """moto's Docker-less Lambda only echoes the payload; run the deployed Python handler instead."""
    from moto.awslambda_simple.models import LambdaSimpleBackend

    cls: Any = LambdaSimpleBackend
    _overlay_environ()
    # botocore sessions keep a reference to the os.environ object they were created with; drop boto3's
    # default session so the one handlers use is created on the overlay and sees each function's variables.
    import boto3

    boto3.DEFAULT_SESSION = None

    def invoke(
        self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any
    ) -> bytes:
        if (headers or {}).get("X-Amz-Invocation-Type") == "Event":
            return invoke_asynchronously(self, function_name, qualifier, body)
        payload, failed = invoke_in_process(self, function_name, qualifier, body)
        if failed:
            # Lambda's unhandled-error contract: Step Functions turns errorType into the state's error.
            response_headers["x-amz-function-error"] = "Unhandled"
        response_headers["Content-Length"] = str(len(payload))
        return payload

    cls.invoke = invoke


# --- Gap 6: EventBridge delivery to Lambda and Step Functions targets ------------------------------


def delivered_event(original: Mapping[str, Any]) -> dict[str, Any]:
    """The event as AWS delivers it: ISO time, no moto-only fields."""
    event = {key: value for key, value in original.items() if key != "ingestion-time"}
    when = event.get("time")
    if isinstance(when, int | float):
        event["time"] = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(when, datetime.datetime):
        event["time"] = when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event


def target_input(target: Mapping[str, Any], event: dict[str, Any]) -> Any:
    """Apply the target's Input / InputPath / InputTransformer as EventBridge does."""
    from moto.events.utils import EventTemplateParser

    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    transformer = target.get("InputTransformer")
    if transformer:
        # moto's parser also serves the predefined <aws.events.event.ingestion-time> variable.
        ingested = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with_ingestion: Any = {**event, "ingestion-time": ingested}
        transformed: Any = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=with_ingestion,
        )
        return transformed
    return event


def _deliver(target_arn: str, payload: Any) -> None:
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target_arn)
    body = json.dumps(payload, default=str)
    if arn.service == "states":
        from moto.stepfunctions.responses import get_backend as sfn_backend

        sfn_backend(arn.account, arn.region).start_execution(
            target_arn, name=str(uuid.uuid4()), execution_input=body
        )
    else:
        from moto.awslambda.utils import get_backend as lambda_backend

        # Asynchronous invocation on AWS; here it runs before put_events returns so callers can observe
        # everything the event started. An async invoke's error is not the caller's error.
        lambda_backend(arn.account, arn.region).invoke(
            arn.resource_id, None, body, {"X-Amz-Invocation-Type": "Event"}, {}
        )


@patch("events-targets")
def patch_events_targets() -> None:
    """moto 5.2.5 cannot deliver to Lambda and Step Functions targets (it raises); deliver them here."""
    from moto.events.models import Rule
    from moto.utilities.arns import parse_arn

    cls: Any = Rule
    original = cls.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        ours = [t for t in self.targets if parse_arn(t["Arn"]).service in ("states", "lambda")]
        native = [t for t in self.targets if t not in ours]
        if native:
            saved = self.targets
            self.targets = native
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = saved
        event = delivered_event(original_event)
        for target in ours:
            try:
                _deliver(target["Arn"], target_input(target, event) if transform_input else event)
            except Exception:  # a failing target never fails PutEvents on AWS; keep the sender unaware
                _LOG.exception("EventBridge delivery to %s failed", target["Arn"])

    cls.send_to_targets = send_to_targets


# --- Gap 8: CloudFormation state machines --------------------------------------------------------


def substitute_definition(definition: str, substitutions: Mapping[str, Any]) -> str:
    """``${Name}`` -> value, as CloudFormation's DefinitionSubstitutions does; unknown names stay."""

    def _replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(substitutions[name]) if name in substitutions else match.group(0)

    return re.sub(r"\$\{([^}]+)\}", _replace, definition)


def _definition_from_properties(properties: Mapping[str, Any]) -> str:
    if "DefinitionString" in properties:
        text = properties["DefinitionString"]
    else:
        text = json.dumps(properties.get("Definition", {}))
    return substitute_definition(text, properties.get("DefinitionSubstitutions") or {})


@patch("cfn-state-machine")
def patch_cfn_state_machine() -> None:
    """Apply DefinitionSubstitutions and create stack state machines in the backend that executes."""
    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.responses import get_backend
    from moto.stepfunctions.utils import cfn_to_api_tags

    cls: Any = StateMachine

    def create_from_cloudformation_json(
        klass: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json["Properties"]
        backend = get_backend(account_id, region_name)
        return backend.create_state_machine(
            properties.get("StateMachineName", resource_name),
            _definition_from_properties(properties),
            properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", []) or []),
            sm_type=properties.get("StateMachineType"),
        )

    def delete_from_cloudformation_json(
        klass: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> None:
        get_backend(account_id, region_name).delete_state_machine(resource_name)

    def update_from_cloudformation_json(
        klass: Any,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
    ) -> Any:
        properties = cloudformation_json.get("Properties", {})
        return get_backend(account_id, region_name).update_state_machine(
            original_resource.arn,
            definition=_definition_from_properties(properties),
            role_arn=properties.get("RoleArn"),
        )

    cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)
    cls.delete_from_cloudformation_json = classmethod(delete_from_cloudformation_json)
    cls.update_from_cloudformation_json = classmethod(update_from_cloudformation_json)


# --- CloudFormation gaps for resources the template uses ------------------------------------------


@patch("cfn-ssm-parameter-name")
def patch_cfn_ssm_parameter_name() -> None:
    """An AWS::SSM::Parameter without Name gets a generated one on AWS; moto passes Name=None and fails."""
    from moto.ssm.models import Parameter

    cls: Any = Parameter
    original = cls.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(
        klass: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        properties = cloudformation_json.setdefault("Properties", {})
        if not properties.get("Name"):
            properties["Name"] = resource_name  # moto's generated physical name, e.g. stack-Logical-ABC123
        return original(klass, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


@patch("cfn-lambda-layers")
def patch_cfn_lambda_layers() -> None:
    """moto's AWS::Lambda::Function ignores Layers; attach them so the in-process runtime can import them.

    Also ``Ref`` to an AWS::Lambda::LayerVersion must give its version ARN (moto returns the object).
    """
    from moto.awslambda.models import LambdaFunction, LayerVersion

    cls: Any = LambdaFunction
    layer_cls: Any = LayerVersion
    layer_cls.physical_resource_id = property(lambda self: self.arn)
    original = cls.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(
        klass: Any,
        resource_name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        fn = original(klass, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        layers = cloudformation_json.get("Properties", {}).get("Layers") or []
        if layers:
            fn.layers = fn._get_layers_data(layers)
        return fn

    cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


# --- Step Functions API gaps ---------------------------------------------------------------------


@patch("sfn-start-execution-name")
def patch_sfn_start_execution_name() -> None:
    """StartExecution without a name gets a UUID on AWS; moto names it "None" (so a second one collides)."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    cls: Any = StepFunctionsParserBackend
    original = cls.start_execution

    def start_execution(
        self: Any, state_machine_arn: str, name: str | None = None, execution_input: Any = None, **kwargs: Any
    ) -> Any:
        return original(self, state_machine_arn, name or str(uuid.uuid4()), execution_input, **kwargs)

    cls.start_execution = start_execution


@patch("lambda-configuration-cold-start")
def patch_lambda_configuration_cold_start() -> None:
    """A configuration change (e.g. environment variables) gives a function new execution environments
    in AWS: handlers that read their configuration once per environment see the new values. Here the
    handler module is re-imported on the next invocation."""
    from moto.awslambda.models import LambdaBackend

    cls: Any = LambdaBackend
    original = cls.update_function_configuration

    def update_function_configuration(self: Any, function_name: str, qualifier: Any, body: Any) -> Any:
        result = original(self, function_name, qualifier, body)
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        prefix = f"_selfheal_fn_{re.sub(r'\W', '_', name)}_"
        with _loader._lock:
            for unique in [u for u in _loader._modules if u.startswith(prefix)]:
                del _loader._modules[unique]
        return result

    cls.update_function_configuration = update_function_configuration


@patch("sfn-parse-once")
def patch_sfn_parse_once() -> None:
    """moto parses a state machine's definition (ANTLR) again for every execution it starts: a fifth
    of the local cloud's CPU in the e2e tests. The parse tree of a definition never changes, so it is
    kept; the evaluation components are still built fresh from it for every execution (they are
    what an execution runs, and no two executions share them)."""
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    cls: Any = asl_parser.AmazonStateLanguageParser
    trees: dict[str, Any] = {}
    lock = threading.Lock()

    def parse(definition: str) -> tuple[Any, Any]:
        with lock:
            tree = trees.get(definition)
        if tree is None:
            listener = asl_parser.SyntaxErrorListener()
            tokens = asl_parser.CommonTokenStream(ASLLexer(asl_parser.InputStream(definition)))
            parser = ASLParser(tokens)
            parser.removeErrorListeners()
            parser.addErrorListener(listener)
            tree = parser.state_machine()
            if listener.errors:
                raise asl_parser.ASLParserException(errors=listener.errors)
            with lock:
                trees[definition] = tree
        return Preprocessor().visit(tree), tree

    cls.parse = staticmethod(parse)
