"""The runbooks, by name: one ``Runbook`` class per module, registered with ``@register``.

Adding a runbook: a module here with its class (models, permissions, calls, steps, hooks), its
workflow module in ``tools/asl/runbooks/``, a policy rule, and its tests (README, "How it works").
"""

from __future__ import annotations

from selfheal.runbooks import flip_dns, promote_replica, redrive_dlq, remap_eip, replace_instance
from selfheal.runbooks.base import REGISTRY, Call, CallSpec, Plan, Runbook

RUNBOOKS = REGISTRY

__all__ = [
    "RUNBOOKS",
    "Call",
    "CallSpec",
    "Plan",
    "Runbook",
    "flip_dns",
    "promote_replica",
    "redrive_dlq",
    "remap_eip",
    "replace_instance",
]
