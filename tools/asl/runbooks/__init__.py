"""One module per runbook: its workflow's body and the frame's hooks it uses."""

from __future__ import annotations

from tools.asl.frame import Workflow
from tools.asl.runbooks import flip_dns, promote_replica, redrive_dlq, remap_eip, replace_instance

WORKFLOWS: tuple[Workflow, ...] = (
    flip_dns.WORKFLOW,
    promote_replica.WORKFLOW,
    redrive_dlq.WORKFLOW,
    remap_eip.WORKFLOW,
    replace_instance.WORKFLOW,
)
