"""Runbook registry: name -> its input models and its resolve/precheck steps.

Each runbook module declares the IAM actions it uses (``IAM_ACTIONS``); a test checks the
template grants its state machine and the steps function exactly those.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from selfheal.clients import Clients
from selfheal.runbooks import promote_replica, remap_eip


@dataclass(frozen=True)
class RunbookSpec:
    name: str
    target_model: type[BaseModel]
    params_model: type[BaseModel]
    plan_model: type[BaseModel]
    # (clients, target, params, fence_key, fence_value) -> plan; the plan carries resourceTags
    resolve: Callable[[Clients, Any, Any, str, str], BaseModel]
    # (clients, plan) -> the "before" picture; raises PreconditionFailed when acting is unsafe
    precheck: Callable[[Clients, Any], dict[str, Any]]
    # plan -> the exact mutating call(s), for would-do and action rows
    actions: Callable[[Any], list[dict[str, Any]]]
    iam_actions: tuple[str, ...]


RUNBOOKS: dict[str, RunbookSpec] = {
    "remap-eip": RunbookSpec(
        name="remap-eip",
        target_model=remap_eip.RemapEipTarget,
        params_model=remap_eip.RemapEipParams,
        plan_model=remap_eip.EipMove,
        resolve=lambda c, t, p, k, v: remap_eip.resolve(c.ec2, t, p, k, v),
        precheck=lambda c, plan: remap_eip.precheck(c.ec2, plan),
        actions=lambda plan: [
            {"action": "ec2:AssociateAddress", "parameters": remap_eip.action_parameters(plan)}
        ],
        iam_actions=remap_eip.IAM_ACTIONS,
    ),
    "promote-replica": RunbookSpec(
        name="promote-replica",
        target_model=promote_replica.PromoteReplicaTarget,
        params_model=promote_replica.PromoteReplicaParams,
        plan_model=promote_replica.PromotionPlan,
        resolve=promote_replica.resolve,
        precheck=promote_replica.precheck,
        actions=promote_replica.actions,
        iam_actions=promote_replica.IAM_ACTIONS,
    ),
}
