"""Auto Scaling: replace members marked Unhealthy, as the service does; moto 5.2.5 only records the mark.

Documented behaviour restored (Amazon EC2 Auto Scaling user guide, "Health checks" and "Suspend and
resume processes"):
- ``SetInstanceHealth HealthStatus=Unhealthy`` on an InService member: the group's ReplaceUnhealthy
  process terminates it, then launches a replacement from the group's launch template (or launch
  configuration) so the group is back to its desired capacity. It happens after the call returns:
  the replacement runs on a timer (``REPLACEMENT_DELAY_SECONDS``) so a replacement can be in flight.
- ``ReplaceUnhealthy`` or ``Terminate`` suspended: nothing happens, the member stays Unhealthy.
- ``Launch`` suspended: the member is terminated and nothing replaces it (below desired capacity).
Pinned to moto 5.2.5 with every patch (localcloud.patches): it wraps moto internals.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.autoscaling.models import AutoScalingBackend

from localcloud.patches import patch

# Seconds between the Unhealthy mark and the group acting on it (AWS: usually within a minute).
REPLACEMENT_DELAY_SECONDS = 0.2


def _suspended(group: Any) -> set[str]:
    return {p["ProcessName"] for p in group.suspended_processes}


def replace_unhealthy(backend: AutoScalingBackend, group_name: str, instance_id: str) -> str:
    """What the group does with an Unhealthy member now; returns what happened (for tests and logs)."""
    group = backend.autoscaling_groups.get(group_name)
    if group is None:
        return "group deleted"
    state = next((s for s in group.instance_states if s.instance.id == instance_id), None)
    if state is None or state.health_status != "Unhealthy":
        return "no longer an unhealthy member"
    suspended = _suspended(group)
    if suspended & {"ReplaceUnhealthy", "Terminate"}:
        return f"not replaced: {', '.join(sorted(suspended & {'ReplaceUnhealthy', 'Terminate'}))} suspended"
    if "Launch" in suspended:
        # Terminate without a replacement: detach first so moto's capacity logic launches nothing.
        group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
        backend.ec2_backend.terminate_instances([instance_id])
        return "terminated, not replaced: Launch suspended"
    # Terminate (keeping the desired capacity): moto launches the replacement from the template.
    backend.terminate_instance(instance_id, should_decrement=False)
    backend.update_attached_target_groups(group_name)
    return "replaced"


@patch("autoscaling-replace-unhealthy")
def patch_autoscaling() -> None:
    """moto's Auto Scaling only records an Unhealthy mark; the group replaces the member, as AWS does."""
    original = AutoScalingBackend.set_instance_health

    def set_instance_health(self: AutoScalingBackend, instance_id: str, health_status: str) -> None:
        original(self, instance_id, health_status)
        if health_status != "Unhealthy":
            return
        group = next(
            (
                g
                for g in self.autoscaling_groups.values()
                if any(s.instance.id == instance_id for s in g.instance_states)
            ),
            None,
        )
        if group is None:
            return
        # Looked up when the timer fires, so a test can stand in for a group that cannot launch.
        timer = threading.Timer(
            REPLACEMENT_DELAY_SECONDS,
            lambda: globals()["replace_unhealthy"](self, group.name, instance_id),
        )
        timer.daemon = True
        timer.start()

    AutoScalingBackend.set_instance_health = set_instance_health  # type: ignore[method-assign]
