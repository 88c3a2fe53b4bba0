"""The idioms every workflow is written in: a Lambda step, an audited mutating call, a poll loop,
an error with a readable cause. Each is written once here; the frame and the runbook modules only
say which states they need and how they connect.

Conventions of the execution's state (JSONPath): ``$.request`` (the validated input), ``$.guard``
(``decision``, ``plan``, ``dryRun``), ``$.precheck.before``, ``$.error`` (``Error``, ``Cause``),
``$.call`` (the call the last intent step returned), ``$.verifyState.attempt`` (a poll's counter),
``$.guard.callTimeoutSeconds`` (how long an SDK task waits for AWS's answer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfheal.errors import (
    AccessDenied,
    AwsCallFailed,
    InvalidInput,
    LeaseHeld,
    NotApplicable,
    NotThisStacksExecution,
    SelfhealError,
    TooManyActionsAtOnce,
)
from selfheal.runbooks import CallSpec

State = dict[str, Any]
Condition = dict[str, Any]
# The frame's skip path (frame.py), where a run stops without acting: the kill switch left enforce,
# the lease was lost, there is nothing to do. States inside a Map cannot reach it: they fail, and
# the Map's Catch sends these errors there.
SKIPPED = "Record: skipped"
STOPS: tuple[type[SelfhealError], ...] = (NotApplicable, LeaseHeld)
# A Catch target: an error class (its subclasses are listed too) or a Step Functions name.
Catchable = type[SelfhealError] | str

LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
)
# The Java SDK v2 class names Step Functions reports aws-sdk errors under (Ec2, Rds, ...).
SDK_ERROR_PREFIX = {
    "ec2": "Ec2",
    "rds": "Rds",
    "route53": "Route53",
    "sqs": "Sqs",
    "autoscaling": "AutoScaling",
    "elasticloadbalancingv2": "ElasticLoadBalancingV2",
}
# Modelled errors that mean "not done: try again". EC2, RDS and ELB model no throttling error (nor
# Auto Scaling its "Throttling"): Step Functions reports those as the service's generic exception,
# which a workflow may only retry for a call that does no harm when sent twice.
THROTTLED = {
    "route53": ("Route53.ThrottlingException", "Route53.PriorRequestNotCompleteException"),
    "sqs": ("Sqs.RequestThrottledException",),
    "autoscaling": ("AutoScaling.ResourceContentionException",),
}
UNMODELLED_THROTTLING = frozenset({"ec2", "rds", "elasticloadbalancingv2", "autoscaling"})


def error_names(*errors: Catchable) -> list[str]:
    """ErrorEquals for these errors: Step Functions matches names exactly, so a class is listed with
    every subclass (``NotApplicable`` -> ``NotApplicable, AlreadyRecovering, ModeChanged``)."""
    names: list[str] = []
    for error in errors:
        found = [error] if isinstance(error, str) else [c.__name__ for c in _with_subclasses(error)]
        names += [n for n in found if n not in names]
    return names


def _with_subclasses(cls: type[SelfhealError]) -> list[type[SelfhealError]]:
    found = [cls]
    for sub in sorted(cls.__subclasses__(), key=lambda c: c.__name__):
        found += [c for c in _with_subclasses(sub) if c not in found]
    return found


CALL_TIMEOUT = "$.guard.callTimeoutSeconds"

LAMBDA_RETRY: State = {
    "ErrorEquals": [*LAMBDA_SERVICE_ERRORS, *error_names(AwsCallFailed)],
    "IntervalSeconds": 1,
    "MaxAttempts": 3,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
# The intent step, when the account's runs acting at once are at MaxConcurrentActions: a place
# frees when a run finishes, so wait for one (about five minutes in all), then stop skipped.
WAIT_FOR_A_PLACE: State = {
    "ErrorEquals": error_names(TooManyActionsAtOnce),
    "IntervalSeconds": 15,
    "MaxAttempts": 6,
    "BackoffRate": 1.5,
    "JitterStrategy": "FULL",
}
# An audit row's step: a row is written once under a key the retry does not change (the state's
# entered time), so a step that failed (before or after writing) is tried again, whatever the error,
# except the refusals an audit step meets that would only be repeated. An outcome row never written
# leaves a call that was made without its "after": the run must not give up on it after one crash.
ROW_RETRY: tuple[State, ...] = (
    {"ErrorEquals": error_names(InvalidInput, NotThisStacksExecution, AccessDenied), "MaxAttempts": 0},
    {
        "ErrorEquals": ["States.TaskFailed"],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
        "JitterStrategy": "FULL",
    },
)
# Read-only calls (the verify loops): any error is worth another try before the run gives up.
READ_RETRY: State = {
    "ErrorEquals": ["States.ALL"],
    "IntervalSeconds": 2,
    "MaxAttempts": 3,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}


def generic_sdk_error(sdk_service: str) -> str:
    prefix = SDK_ERROR_PREFIX[sdk_service]
    return f"{prefix}.{prefix}Exception"


def mutation_retry(spec: CallSpec) -> list[State]:
    """Retry a mutating call only on errors that say it was not made; a service that reports
    throttling only under its generic name is retried on that only when the call is idempotent, and
    so is a call that did not answer in time (States.Timeout: it may or may not have been made)."""
    sdk_service = spec.sdk_resource.split(":")[1]
    names = list(THROTTLED.get(sdk_service, ()))
    if spec.idempotent and sdk_service in UNMODELLED_THROTTLING:
        names.append(generic_sdk_error(sdk_service))
    if spec.idempotent:
        names.append("States.Timeout")
    if not names:
        return []
    return [
        {
            "ErrorEquals": names,
            "IntervalSeconds": 2,
            "MaxAttempts": 3,
            "BackoffRate": 2,
            "JitterStrategy": "FULL",
        }
    ]


def _stops(skip: str | None, result_path: str = "$.error") -> list[State]:
    return [catch(STOPS, skip, result_path)] if skip else []


def formatted(template: str, args: Sequence[str]) -> str:
    """``States.Format`` of ``template`` with the paths ``args``. No apostrophes: the escape AWS takes
    (``\\'``) is one the local cloud's parser refuses, so a template with one would not run there."""
    if "'" in template:
        raise ValueError(f"an apostrophe in a States.Format template: {template!r}")
    return f"States.Format('{template}', {', '.join(args)})"


def catch(
    errors: Catchable | Sequence[Catchable], next_state: str, result_path: str | None = "$.error"
) -> State:
    listed = [errors] if isinstance(errors, str | type) else list(errors)
    return {"ErrorEquals": error_names(*listed), "ResultPath": result_path, "Next": next_state}


# ------------------------------------------------------------------------------------- conditions


def is_true(path: str) -> Condition:
    return {"Variable": path, "BooleanEquals": True}


def equals(path: str, value: str) -> Condition:
    return {"Variable": path, "StringEquals": value}


def all_of(*conditions: Condition) -> Condition:
    return {"And": list(conditions)}


def attempts_left(attempts_path: str) -> Condition:
    """The poll's counter has not reached its limit."""
    return {"Variable": "$.verifyState.attempt", "NumericLessThanPath": attempts_path}


def out_of_attempts(attempts_path: str) -> Condition:
    return {"Variable": "$.verifyState.attempt", "NumericGreaterThanEqualsPath": attempts_path}


# ------------------------------------------------------------------------------------------- flow


@dataclass(frozen=True)
class Call:
    """How a workflow makes one of its runbook's declared calls (``CallSpec``): the names of its
    states, where the result goes, and what follows. Three or four states, always the same: the
    intent row, the SDK task (one per request shape), the outcome row, or the error row."""

    spec: CallSpec
    intent: str  # "Record: about to associate the EIP"
    task: str | Mapping[str, str]  # the SDK task's name, or one per shape
    done: str  # "Record: the EIP was associated"
    failed: str  # "Record: the association failed"
    result: Mapping[str, str] | None = None  # the SDK task's ResultSelector
    result_path: str | None = "$.act"
    call_path: str = "$.call"
    error_path: str = "$.error"
    shape_choice: str | None = None  # the Choice between shapes, when there are several


class Flow:
    """The states of one workflow (or of a Map's iteration), in the order they read best."""

    def __init__(self, runbook: str) -> None:
        self.runbook = runbook
        self.states: dict[str, State] = {}

    def add(self, name: str, state: State) -> str:
        if name in self.states:
            raise ValueError(f"{self.runbook}: two states named {name!r}")
        if len(name) > 80:
            raise ValueError(f"{self.runbook}: state name over 80 characters: {name!r}")
        self.states[name] = state
        return name

    def merge(self, other: Flow) -> None:
        """Add the states of a flow built apart (a hook, a body) after the ones here."""
        for name, state in other.states.items():
            self.add(name, state)

    # --- the generic states --------------------------------------------------------------------

    def step(
        self,
        name: str,
        step: str,
        *,
        next_state: str,
        payload: Mapping[str, Any] | None = None,
        result: Mapping[str, Any] | None = None,
        result_path: str | None = None,
        catches: Iterable[State] = (),
        comment: str | None = None,
        with_request: bool = True,
        retries: Iterable[State] = (),
        wait_for_token: str | None = None,
    ) -> str:
        """A Lambda step of the steps function: one envelope, one retry policy (and ``retries``
        for errors of its own, before it). ``wait_for_token``: the path of a timeout in seconds;
        the step gets the task token and the state waits for SendTaskSuccess/Failure with it."""
        body: dict[str, Any] = {
            "step": step,
            "runbook": self.runbook,
            "execution": {"arn.$": "$$.Execution.Id", "name.$": "$$.Execution.Name"},
            "state": {"name.$": "$$.State.Name", "enteredTime.$": "$$.State.EnteredTime"},
        }
        if with_request:
            body |= {"request.$": "$.request", "dryRun.$": "$.guard.dryRun"}
        body |= dict(payload or {})
        resource = "arn:${Partition}:states:::lambda:invoke"
        if wait_for_token is not None:
            body["taskToken.$"] = "$$.Task.Token"
            resource += ".waitForTaskToken"
        state: State = {
            "Type": "Task",
            "Resource": resource,
            **({"Comment": comment} if comment else {}),
            "Parameters": {"FunctionName": "${StepsFunctionArn}", "Payload": body},
            **({"TimeoutSecondsPath": wait_for_token} if wait_for_token is not None else {}),
            "Retry": [*retries, LAMBDA_RETRY],
        }
        if result is not None:
            state["ResultSelector"] = dict(result)
        state["ResultPath"] = result_path
        caught = list(catches)
        if caught:
            state["Catch"] = caught
        state["Next"] = next_state
        return self.add(name, state)

    def record(self, name: str, phase: str, *, next_state: str, on_error: str, **payload: Any) -> str:
        """One audit row (the steps function's ``audit`` step)."""
        return self.step(
            name,
            "audit",
            next_state=next_state,
            payload={"phase": phase, **payload},
            retries=ROW_RETRY,
            catches=[catch("States.ALL", on_error)],
        )

    def choice(
        self, name: str, choices: Sequence[tuple[Condition, str]], default: str, comment: str | None = None
    ) -> str:
        state: State = {"Type": "Choice", **({"Comment": comment} if comment else {})}
        state["Choices"] = [{**condition, "Next": target} for condition, target in choices]
        state["Default"] = default
        return self.add(name, state)

    def pass_(
        self,
        name: str,
        *,
        next_state: str,
        parameters: Mapping[str, Any] | None = None,
        result: Any = None,
        result_path: str | None = "$",
        input_path: str | None = None,
        comment: str | None = None,
    ) -> str:
        state: State = {"Type": "Pass", **({"Comment": comment} if comment else {})}
        if input_path is not None:
            state["InputPath"] = input_path
        if parameters is not None:
            state["Parameters"] = dict(parameters)
        elif result is not None:
            state["Result"] = result
        state["ResultPath"] = result_path
        state["Next"] = next_state
        return self.add(name, state)

    def wait(self, name: str, seconds_path: str, *, next_state: str, comment: str | None = None) -> str:
        state: State = {"Type": "Wait", **({"Comment": comment} if comment else {})}
        return self.add(name, {**state, "SecondsPath": seconds_path, "Next": next_state})

    def error(
        self, name: str, error: type[SelfhealError] | str, cause: str, *args: str, next_state: str
    ) -> str:
        """Set ``$.error`` to a named error with a readable cause (``{}`` placeholders from ``args``)."""
        error_field = {"Error": error} if isinstance(error, str) else {"Error": error.__name__}
        if error_field["Error"].startswith("$"):
            error_field = {"Error.$": error_field.pop("Error")}
        cause_field = {"Cause.$": formatted(cause, args)} if args else {"Cause": cause}
        return self.pass_(
            name, next_state=next_state, parameters={**error_field, **cause_field}, result_path="$.error"
        )

    def fail(self, name: str, error_path: str = "$.error", comment: str | None = None) -> str:
        state: State = {"Type": "Fail", **({"Comment": comment} if comment else {})}
        state |= {"ErrorPath": f"{error_path}.Error", "CausePath": f"{error_path}.Cause"}
        return self.add(name, state)

    def succeed(self, name: str, comment: str | None = None, output_path: str | None = None) -> str:
        state: State = {"Type": "Succeed", **({"Comment": comment} if comment else {})}
        return self.add(name, {**state, **({"OutputPath": output_path} if output_path else {})})

    def sdk(
        self,
        name: str,
        resource: str,
        parameters: Mapping[str, Any],
        *,
        next_state: str,
        result: Mapping[str, Any] | None = None,
        result_path: str | None = "$.verify",
        retry: Sequence[State] = (READ_RETRY,),
        catches: Iterable[State] = (),
        comment: str | None = None,
    ) -> str:
        """A direct SDK integration (``aws-sdk:<service>:<action>``). It times out (``States.Timeout``,
        which its Catch and Retry see as any other error) after the guards' ``callTimeoutSeconds``: a
        call that never answers must not hold the run, its lease and its place for the ASL default of
        99999999 s. Every SDK task comes after the guards, inside a Map too (its items carry them)."""
        state: State = {
            "Type": "Task",
            "Resource": f"arn:${{Partition}}:states:::{resource}",
            **({"Comment": comment} if comment else {}),
            "Parameters": dict(parameters),
            "TimeoutSecondsPath": CALL_TIMEOUT,
        }
        if result is not None:
            state["ResultSelector"] = dict(result)
        state["ResultPath"] = result_path
        if retry:
            state["Retry"] = list(retry)
        caught = list(catches)
        if caught:
            state["Catch"] = caught
        state["Next"] = next_state
        return self.add(name, state)

    def each(
        self,
        name: str,
        items: str,
        iteration: Flow,
        start: str,
        *,
        next_state: str,
        catches: Iterable[State],
        item: Mapping[str, str] | None = None,
        comment: str | None = None,
    ) -> str:
        """A Map over ``items``, one at a time. Each iteration sees the request, the guard (the plan),
        its item as ``$.item`` and its index as ``$.index`` (which call of the plan it makes), plus
        ``item``'s extra paths."""
        selector = {
            "item.$": "$$.Map.Item.Value",
            "index.$": "$$.Map.Item.Index",
            "request.$": "$.request",
            "guard.$": "$.guard",
            **{f"{k}.$": v for k, v in (item or {}).items()},
        }
        state: State = {
            "Type": "Map",
            **({"Comment": comment} if comment else {}),
            "ItemsPath": items,
            "MaxConcurrency": 1,
            "ItemSelector": selector,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": start,
                "States": iteration.states,
            },
            "ResultPath": None,
            "Catch": list(catches),
            "Next": next_state,
        }
        return self.add(name, state)

    # --- the idioms ----------------------------------------------------------------------------

    def call(
        self,
        call: Call,
        *,
        next_state: str,
        on_error: str,
        index: str | None = None,
        runtime: Mapping[str, str] | None = None,
        reason: str | None = None,
        before: str | None = "$.precheck.before",
        on_failed: str | None = None,
        on_unrecorded: str | None = None,
        skip: str | None = SKIPPED,
    ) -> str:
        """An audited mutating call, from its declaration: the intent row (the intent step returns
        the call as the plan declared it, with the runtime values filled in) -> the SDK task (its
        retry and catch) -> the outcome row. ``on_error``: where a failure of the intent or the outcome
        row goes; ``on_failed``: where the call's own failure goes after its error row;
        ``on_unrecorded``: where a failure to write the outcome row of a call that was made goes
        (both default to ``on_error``); ``skip``: where the intent step's refusals go (the kill
        switch, a lost lease; None inside a Map)."""
        spec = call.spec
        payload: dict[str, Any] = {"call": spec.name, "plan.$": "$.guard.plan"}
        if index is not None:
            payload["index.$"] = index
        if runtime:
            payload["runtime"] = {f"{k}.$": v for k, v in runtime.items()}
        if reason is not None:
            payload["reason.$"] = reason
        if before is not None:
            payload["before.$"] = before
        tasks = {"default": call.task} if isinstance(call.task, str) else dict(call.task)
        if set(tasks) != set(spec.shapes):
            raise ValueError(f"{spec.name}: tasks for shapes {sorted(tasks)}, declared {sorted(spec.shapes)}")
        if len(tasks) == 1:
            first_task = next(iter(tasks.values()))
        else:
            if call.shape_choice is None:
                raise ValueError(f"{spec.name}: several shapes need a shape_choice state")
            first_task = call.shape_choice
        self.step(
            call.intent,
            "intent",
            next_state=first_task,
            payload=payload,
            result={
                "name.$": "$.Payload.name",
                "action.$": "$.Payload.action",
                "shape.$": "$.Payload.shape",
                "parameters.$": "$.Payload.parameters",
            },
            result_path=call.call_path,
            retries=[WAIT_FOR_A_PLACE],
            # A stop (the kill switch, a lost lease) is what the skip reports, an undo call's too:
            # the error it was undoing is in its rows already.
            catches=[*_stops(skip), catch("States.ALL", on_error, call.error_path)],
        )
        if len(tasks) > 1:
            assert call.shape_choice is not None
            choices = [(equals(f"{call.call_path}.shape", shape), task) for shape, task in tasks.items()]
            self.choice(call.shape_choice, choices[:-1], choices[-1][1])
        for shape, task in tasks.items():
            parameters = {f"{key}.$": f"{call.call_path}.parameters.{key}" for key in spec.shapes[shape]}
            self.sdk(
                task,
                spec.sdk_resource,
                parameters,
                next_state=call.done,
                result=call.result,
                result_path=call.result_path,
                retry=mutation_retry(spec),
                catches=[catch("States.ALL", call.failed, call.error_path)],
            )
        phase = "compensated" if spec.undo else "action"
        self.record(
            call.failed,
            phase,
            next_state=on_failed or on_error,
            on_error=on_failed or on_error,
            **{"call.$": call.call_path, "outcome": "error", "error.$": call.error_path},
        )
        after = {"after.$": call.result_path} if call.result_path else {}
        self.record(
            call.done,
            phase,
            next_state=next_state,
            on_error=on_unrecorded or on_error,
            **{"call.$": call.call_path, "outcome": "ok", **after},
        )
        return call.intent

    def poll(
        self,
        *,
        start: str,
        describe: str,
        check: str,
        done: Sequence[tuple[Condition, str]],
        give_up: str,
        wait: str,
        count: str,
        on_error: str,
        attempts: str = "$.guard.plan.verifyAttempts",
        interval: str = "$.guard.plan.verifyIntervalSeconds",
        skip: str | None = SKIPPED,
    ) -> str:
        """describe -> check -> count -> wait -> describe. The caller adds ``describe`` (an SDK read,
        or a Lambda verify step) leading to ``check``; ``done`` are the conditions that end the loop,
        ``give_up`` the state once the attempts are spent. The count renews the lease past the wait
        (a run must not lose its target while it waits). Returns ``start``, which resets the count."""
        self.pass_(start, next_state=describe, result={"attempt": 1}, result_path="$.verifyState")
        self.choice(check, [*done, (out_of_attempts(attempts), give_up)], count)
        self.renew(
            count,
            interval,
            next_state=wait,
            keep={"attempt.$": "States.MathAdd($.verifyState.attempt, 1)"},
            result_path="$.verifyState",
            on_error=on_error,
            skip=skip,
        )
        self.wait(wait, interval, next_state=describe)
        return start

    def renew(
        self,
        name: str,
        for_seconds: str,
        *,
        next_state: str,
        on_error: str,
        keep: Mapping[str, Any] | None = None,
        result_path: str | None = None,
        skip: str | None = SKIPPED,
    ) -> str:
        """Renew the lease past the wait that follows (``for_seconds``: its path); ``keep`` comes
        back as the result (so a count can ride along without a state of its own)."""
        return self.step(
            name,
            "renew-lease",
            next_state=next_state,
            payload={"forSeconds.$": for_seconds, **({"keep": dict(keep)} if keep else {})},
            result={k.removesuffix(".$") + ".$": f"$.Payload.{k.removesuffix('.$')}" for k in keep or {}}
            if keep
            else None,
            result_path=result_path,
            catches=[*_stops(skip), catch("States.ALL", on_error)],
        )

    def describe(
        self,
        name: str,
        resource: str,
        parameters: Mapping[str, Any],
        result: Mapping[str, Any],
        *,
        next_state: str,
        on_error: str,
        result_path: str = "$.verify",
    ) -> str:
        """A read-only SDK call of a poll (retried on any error; then ``on_error``)."""
        return self.sdk(
            name,
            resource,
            parameters,
            next_state=next_state,
            result=result,
            result_path=result_path,
            catches=[catch("States.ALL", on_error)],
        )
