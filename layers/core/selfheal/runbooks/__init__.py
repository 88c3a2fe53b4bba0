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
from selfheal.config import Settings
from selfheal.errors import GroupBudgetExceeded, LeaseHeld, SelfhealError
from selfheal.runbooks import flip_dns, promote_replica, redrive_dlq, remap_eip, replace_instance


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
    # Optional: (clients, plan) -> {"done": bool, ...}, for the ASL's verify step when checking the
    # result needs logic (flip-dns compares record sets); raises like precheck.
    verify: Callable[[Clients, Any], dict[str, Any]] | None = None
    # Optional: (settings, plan) -> what the plan touches outside the stack's configured scope
    # (a guard like the fence; flip-dns: hosted zones, record names, health checks).
    out_of_scope: Callable[[Settings, Any], list[str]] | None = None
    # (clients, target, params, fence_key, fence_value) -> None if the runbook applies to the target,
    # else why not. Read-only; asked by triage for policy rules with `whenApplicable`.
    applies: Callable[[Clients, Any, Any, str, str], str | None] | None = None
    # plan (as JSON) -> lease keys of the concurrency slots the runbook shares with others acting on
    # the same group (e.g. one per allowed in-flight replacement in an Auto Scaling group). The
    # precheck step takes a free one before the runbook's precheck and the finish step releases it;
    # none free -> ``slots_full`` is raised. Empty list: no slot needed.
    slots: Callable[[dict[str, Any]], list[str]] | None = None
    slots_full: type[SelfhealError] = LeaseHeld
    # Optional: (clients, settings, plan) -> the plan of a second path, for the ASL to take when the
    # first did not heal the target (replace-instance: stop/start -> a replacement). It checks the
    # fence and scope of what the new plan touches itself, raising like the guards would refuse.
    fallback: Callable[[Clients, Settings, Any], BaseModel] | None = None


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
        applies=lambda c, t, p, k, v: remap_eip.applies(c.ec2, t, p, k, v),
    ),
    "replace-instance": RunbookSpec(
        name="replace-instance",
        target_model=replace_instance.ReplaceInstanceTarget,
        params_model=replace_instance.ReplaceInstanceParams,
        plan_model=replace_instance.ReplacePlan,
        resolve=replace_instance.resolve,
        precheck=lambda c, plan: replace_instance.precheck(c.ec2, c.autoscaling, plan),
        actions=replace_instance.action_calls,
        iam_actions=replace_instance.IAM_ACTIONS,
        slots=replace_instance.group_slots,
        out_of_scope=lambda s, plan: replace_instance.out_of_scope(plan, s.replace_instance_pass_role_arns),
        slots_full=GroupBudgetExceeded,
        fallback=lambda c, s, plan: replace_instance.fallback_plan(
            c, plan, s.fence_tag_key, s.fence_tag_value, s.replace_instance_pass_role_arns
        ),
    ),
    "redrive-dlq": RunbookSpec(
        name="redrive-dlq",
        target_model=redrive_dlq.RedriveDlqTarget,
        params_model=redrive_dlq.RedriveDlqParams,
        plan_model=redrive_dlq.DlqRedrive,
        resolve=lambda c, t, p, k, v: redrive_dlq.resolve(c.sqs, t, p, k, v),
        precheck=lambda c, plan: redrive_dlq.precheck(c.sqs, c.cloudwatch, plan),
        actions=redrive_dlq.action_calls,
        iam_actions=redrive_dlq.IAM_ACTIONS,
    ),
    "flip-dns": RunbookSpec(
        name="flip-dns",
        target_model=flip_dns.FlipDnsTarget,
        params_model=flip_dns.FlipDnsParams,
        plan_model=flip_dns.FlipPlan,
        resolve=lambda c, t, p, k, v: flip_dns.resolve(c.route53, t, p, k, v),
        precheck=lambda c, plan: flip_dns.precheck(c.route53, plan),
        actions=flip_dns.actions,
        iam_actions=flip_dns.IAM_ACTIONS,
        verify=lambda c, plan: flip_dns.verify(c.route53, plan),
        out_of_scope=lambda s, plan: flip_dns.out_of_scope(
            plan, s.flip_dns_hosted_zone_ids, s.flip_dns_record_names, s.flip_dns_health_check_ids
        ),
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
