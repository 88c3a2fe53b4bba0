"""What every runbook declares: its models, its IAM permissions, the mutating calls its workflow
makes, its steps and its hooks. One class per runbook, registered by name (``@register``).

The mutating calls are declared once, as ``CallSpec``s: the runbook's ``exact_calls`` turns a plan
into the ``Call``s the workflow will send (parameters and all, in Step Functions' casing); the
workflow builder (``tools/asl``) generates, from the same specs, the audited SDK task for each call;
the steps record each call's intent row from the plan, and a dry run's would-do rows too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from selfheal.errors import ConfigurationError, LeaseHeld, PreconditionFailed, SelfhealError
from selfheal.models import StrictModel

if TYPE_CHECKING:
    from selfheal.clients import Clients
    from selfheal.config import Settings

# Step Functions' aws-sdk service names that differ from the IAM prefix of the same service.
_IAM_TO_SDK_SERVICE = {"elasticloadbalancing": "elasticloadbalancingv2"}


def placeholder(name: str) -> str:
    """How a plan writes a value only the workflow knows at run time: ``(the replacement)``."""
    return f"(the {name})"


class Call(StrictModel):
    """One mutating AWS call, exactly as the workflow sends it (its intent row records the same)."""

    name: str = Field(description="the CallSpec it is an instance of")
    action: str = Field(description="IAM action, e.g. ec2:AssociateAddress")
    parameters: dict[str, Any]


class Plan(StrictModel):
    """What a runbook resolved: the resources it would touch (with their tags, for the fence) and the
    exact calls its workflow would make."""

    resource_tags: dict[str, dict[str, str]] = Field(alias="resourceTags")
    calls: list[Call] = Field(default_factory=list)

    def call(self, name: str, index: int = 0) -> Call:
        """The ``index``-th call named ``name`` (calls made once per item of a Map share a name)."""
        found = [c for c in self.calls if c.name == name]
        if not 0 <= index < len(found):
            raise ConfigurationError(
                f"the plan holds {len(found)} call(s) named {name!r}; the workflow asked for #{index}"
            )
        return found[index]


@dataclass(frozen=True)
class CallSpec:
    """A mutating call a runbook's workflow makes.

    ``shapes``: the parameter keys of every request the workflow can send (an SDK task's Parameters
    have fixed keys, so each shape is its own task). ``runtime``: parameter paths ("Targets.0.Id")
    whose value only the workflow knows when it makes the call; the plan writes ``placeholder(x)``
    there and the intent step fills it in. ``undo``: a compensation (its outcome row is phase
    compensated). ``contingent``: made only on some paths (an undo, stopping a move task early), so a
    dry run does not list it. ``idempotent``: sending it twice does no more than once, so the workflow
    may retry it on errors that do not say it was not made.
    """

    name: str
    action: str
    shapes: Mapping[str, tuple[str, ...]]
    runtime: Mapping[str, str] = field(default_factory=dict)
    undo: bool = False
    contingent: bool = False
    idempotent: bool = True

    @property
    def service(self) -> str:
        """The IAM prefix: ``ec2``, ``elasticloadbalancing``."""
        return self.action.split(":", 1)[0]

    @property
    def sdk_resource(self) -> str:
        """The Step Functions resource suffix: ``aws-sdk:ec2:associateAddress``."""
        api = self.action.split(":", 1)[1]
        return f"aws-sdk:{_IAM_TO_SDK_SERVICE.get(self.service, self.service)}:{api[0].lower()}{api[1:]}"

    def call(self, parameters: dict[str, Any]) -> Call:
        """This call with these parameters, as a plan lists it."""
        return Call(name=self.name, action=self.action, parameters=parameters)

    def shape_of(self, parameters: Mapping[str, Any]) -> str | None:
        return next((name for name, keys in self.shapes.items() if set(keys) == set(parameters)), None)

    def render(self, call: Call, runtime: Mapping[str, Any]) -> dict[str, Any]:
        """The call's parameters with the runtime values filled in, only where this spec says they go
        (a tag value that happens to read "(the x)" stays what it is)."""
        parameters: dict[str, Any] = _copy(call.parameters)
        for path, name in self.runtime.items():
            *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
            node: Any = parameters
            try:
                for part in parents:
                    node = node[part]
                current = node[last]
            except (KeyError, IndexError, TypeError):
                continue  # an optional part the plan left out
            if current != placeholder(name):
                continue
            if name not in runtime or runtime[name] in (None, ""):
                raise ConfigurationError(f"{self.name}: the workflow did not pass {name!r} for {path}")
            node[last] = runtime[name]
        return parameters


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


class Runbook(ABC):
    """The base of every runbook. Subclasses set the class attributes and implement resolve,
    precheck and exact_calls; the hooks below do nothing unless a runbook overrides them."""

    name: ClassVar[str]
    target_model: ClassVar[type[BaseModel]]
    params_model: ClassVar[type[BaseModel]]
    plan_model: ClassVar[type[Plan]]
    # Every IAM action the runbook's steps and workflow use (tests check template.yaml grants exactly
    # these, and that every SDK task of its workflow is among them).
    permissions: ClassVar[tuple[str, ...]]
    calls: ClassVar[tuple[CallSpec, ...]]
    # The error a runbook's concurrency slots raise when none is free.
    slots_full: ClassVar[type[SelfhealError]] = LeaseHeld
    # Whether its workflow has the frame's approval step (the policy's `approvals` may name it).
    asks_approval: ClassVar[bool] = False

    def __init__(self, clients: Clients, settings: Settings) -> None:
        self.clients = clients
        self.settings = settings

    @property
    def fence(self) -> tuple[str, str]:
        return self.settings.fence_tag_key, self.settings.fence_tag_value

    # --- the steps every runbook has ---------------------------------------------------------

    @abstractmethod
    def resolve(self, target: Any, params: Any) -> Plan:
        """What the runbook would touch (read-only). Raises NotApplicable when there is nothing to do."""

    @abstractmethod
    def precheck(self, plan: Any) -> dict[str, Any]:
        """The ``before`` picture, just before acting; raises PreconditionFailed when acting is unsafe."""

    @abstractmethod
    def exact_calls(self, plan: Any) -> list[Call]:
        """The mutating calls the workflow makes for this plan, in the order it makes them."""

    # --- hooks -------------------------------------------------------------------------------

    def applies(self, target: Any, params: Any) -> str | None:
        """None if the runbook applies to the target, else why not (asked by triage, read-only, for
        policy rules with ``whenApplicable``)."""
        return None

    def out_of_scope(self, plan: Any) -> list[str]:
        """What the plan touches outside the stack's configured scope (refused like the fence)."""
        return []

    def slots(self, plan: Mapping[str, Any]) -> list[str]:
        """Lease keys of the concurrency slots shared with other runs on the same group; the
        precheck step takes a free one (none free: ``slots_full``), the finish step releases it."""
        return []

    def verify(self, plan: Any) -> dict[str, Any]:
        """``{"done": bool, ...}``: the runbook's own check of the result, for the workflow's verify
        loop, when checking needs logic."""
        raise ConfigurationError(f"{self.name} has no verify step")

    def fallback(self, plan: Any) -> Plan:
        """The plan of a second path, when the first did not heal the target; it checks the fence and
        scope of what it touches itself, raising as the guards would refuse."""
        raise ConfigurationError(f"{self.name} has no fallback")

    # --- used by the steps -------------------------------------------------------------------

    def plan(self, target: Any, params: Any) -> Plan:
        return self.with_calls(self.resolve(target, params))

    def with_calls(self, plan: Plan) -> Plan:
        """The plan with its exact calls, each checked against its spec: a call the workflow could not
        send as planned is refused here, before anything happens."""
        calls = self.exact_calls(plan)
        for call in calls:
            spec = self.spec(call.name)
            if call.action != spec.action:
                raise ConfigurationError(f"{call.name}: planned as {call.action}, declared {spec.action}")
            if spec.shape_of(call.parameters) is None:
                raise PreconditionFailed(
                    f"{self.name}: no supported way to send {call.action} with"
                    f" {', '.join(sorted(call.parameters))}",
                    call=call.name,
                )
        return plan.model_copy(update={"calls": calls})

    @classmethod
    def spec(cls, name: str) -> CallSpec:
        found = next((c for c in cls.calls if c.name == name), None)
        if found is None:
            raise ConfigurationError(f"{cls.name} declares no call {name!r}")
        return found


REGISTRY: dict[str, type[Runbook]] = {}


def register[R: type[Runbook]](cls: R) -> R:
    """Add a runbook class to the registry under its name."""
    if cls.name in REGISTRY:
        raise ConfigurationError(f"two runbooks named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls
