"""Route 53 health checkers and change propagation, which moto 5.2.5 does not simulate.

What moto does: ``GetHealthCheckStatus`` always answers one "Success" observation;
``ChangeResourceRecordSets`` and ``GetChange`` always answer ``INSYNC``; nothing publishes the
``AWS/Route53 HealthCheckStatus`` metric; ``ListTagsForResource`` answers an empty tag set for a
health check or hosted zone that does not exist. What AWS does (Route 53 developer guide, API
reference):

- Health checkers in several regions probe the endpoint; ``GetHealthCheckStatus`` returns one
  observation per checker ("Success: HTTP Status Code 200..." / "Failure: ..."). Route 53 considers
  the endpoint healthy when more than 18% of the checkers report it healthy; ``Inverted`` flips the
  result; a ``Disabled`` check is always considered healthy.
- Route 53 publishes ``HealthCheckStatus`` (1 healthy, 0 unhealthy; dimension ``HealthCheckId``) in
  us-east-1 only; CloudWatch alarms on it change state, and the alarm emits its state change event.
- A change batch is ``PENDING`` until it has propagated to every authoritative server, then
  ``GetChange`` says ``INSYNC``.
- ``ListTagsForResource`` of an unknown resource fails: ``NoSuchHealthCheck`` ("No health check
  exists with the specified ID") or ``NoSuchHostedZone`` (API reference, ListTagsForResource, Errors).

Here: `set_endpoint_health` is what an outage (or a recovery) looks like to the checkers. Every
checker reports accordingly, the metric datapoint is published and alarms on it move to ALARM/OK at
once (their state change events then reach the rules through localcloud.aws_events). Change batches
answer ``PENDING`` and turn ``INSYNC`` after `pending_polls` ``GetChange`` calls.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.route53 import responses as r53_responses
from moto.route53.models import Route53Backend

from localcloud.patches import patch

# The default checker regions of a Route 53 health check.
CHECKER_REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
METRIC_REGION = "us-east-1"  # HealthCheckStatus exists only there

_lock = threading.Lock()
_endpoint_healthy: dict[str, bool] = {}
_changes: dict[str, int] = {}  # change id -> GetChange polls left before INSYNC
_change_ids = itertools.count(1)
pending_polls = 1


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _backend_health_check(health_check_id: str) -> Any:
    from moto.route53.models import route53_backends

    for _account, _partition, found in route53_backends.iter_backends():
        backend: Any = found
        if health_check_id in backend.health_checks:
            return backend, backend.health_checks[health_check_id]
    raise KeyError(f"no health check {health_check_id} in the local cloud")


def considered_healthy(health_check: Any) -> bool:
    """Route 53's view: disabled -> healthy; otherwise the checkers' verdict, inverted if asked."""
    raw = True if _truthy(health_check.disabled) else _endpoint_healthy.get(health_check.id, True)
    return raw != _truthy(health_check.inverted)


def _publish(backend: Any, health_check: Any) -> None:
    """The metric datapoint Route 53 publishes, and CloudWatch's verdict on the alarms watching it."""
    account = backend.account_id
    cloudwatch = cloudwatch_backends[account][METRIC_REGION]
    healthy = considered_healthy(health_check)
    cloudwatch.put_metric_data(
        "AWS/Route53",
        [
            {
                "MetricName": "HealthCheckStatus",
                "Dimensions": [{"Name": "HealthCheckId", "Value": health_check.id}],
                "Value": 1.0 if healthy else 0.0,  # Timestamp: now (moto's default, naive UTC as it compares)
            }
        ],
    )
    for alarm in list(cloudwatch.alarms.values()):
        dimensions = {d.name: d.value for d in alarm.dimensions}
        if (
            alarm.namespace == "AWS/Route53"
            and alarm.metric_name == "HealthCheckStatus"
            and dimensions.get("HealthCheckId") == health_check.id
        ):
            # The usual alarm: HealthCheckStatus < 1 for 1 period (Minimum). Evaluated at once.
            state = "OK" if healthy else "ALARM"
            reason = (
                f"Threshold Crossed: 1 datapoint [{1.0 if healthy else 0.0}] was"
                f" {'not ' if healthy else ''}less than the threshold (1.0)."
            )
            alarm.update_state(reason, "{}", state)


def set_endpoint_health(health_check_id: str, healthy: bool) -> None:
    """What every Route 53 checker now observes for this health check's endpoint."""
    backend, health_check = _backend_health_check(health_check_id)
    with _lock:
        _endpoint_healthy[health_check_id] = healthy
    _publish(backend, health_check)


def endpoint_healthy(health_check_id: str) -> bool:
    return _endpoint_healthy.get(health_check_id, True)


def _observations(health_check: Any) -> list[dict[str, Any]]:
    healthy = _endpoint_healthy.get(health_check.id, True)
    address = health_check.ip_address or "192.0.2.10"
    status = (
        f"Success: HTTP Status Code 200, OK. Resolved IP: {address}"
        if healthy
        else "Failure: Connection timed out. The endpoint or the internet connection is down."
        f" Resolved IP: {address}"
    )
    regions = health_check.regions or list(CHECKER_REGIONS)
    return [
        {"Region": region, "IPAddress": address, "StatusReport": {"Status": status, "CheckedTime": utcnow()}}
        for region in regions
    ]


def _patch() -> None:
    response_cls: Any = r53_responses.Route53
    original_change = response_cls.change_resource_record_sets
    original_update = Route53Backend.update_health_check
    original_list_tags = response_cls.list_tags_for_resource

    def get_health_check_status(self: Any) -> ActionResult:
        health_check = self.backend.get_health_check(self._get_param("HealthCheckId"))
        return ActionResult({"HealthCheckObservations": _observations(health_check)})

    def change_resource_record_sets(self: Any) -> ActionResult:
        original_change(self)  # validates and applies (moto applies at once: fine, DNS is eventual)
        change_id = f"/change/C{next(_change_ids):013d}SELFHEAL"
        with _lock:
            _changes[change_id] = pending_polls
        return ActionResult({"ChangeInfo": {"Id": change_id, "Status": "PENDING", "SubmittedAt": utcnow()}})

    def get_change(self: Any) -> ActionResult:
        raw = self._get_param("Id")
        change_id = raw if raw.startswith("/change/") else f"/change/{raw}"
        with _lock:
            left = _changes.get(change_id, 0)
            if left > 0:
                _changes[change_id] = left - 1
        status = "PENDING" if left > 0 else "INSYNC"
        return ActionResult({"ChangeInfo": {"Id": change_id, "Status": status, "SubmittedAt": utcnow()}})

    def list_tags_for_resource(self: Any) -> ActionResult:
        resource_type = self._get_param("ResourceType")
        resource_id = self._get_param("ResourceId")
        if resource_type == "healthcheck":
            self.backend.get_health_check(resource_id)  # NoSuchHealthCheck
        elif resource_type == "hostedzone" and len(resource_id) <= 32:  # longer: moto's InvalidInput
            self.backend.get_hosted_zone(resource_id)  # NoSuchHostedZone
        result: ActionResult = original_list_tags(self)
        return result

    def update_health_check(self: Any, health_check_id: str, health_check_args: dict[str, Any]) -> Any:
        # Disabling or inverting changes what Route 53 considers: the metric (and alarms) follow.
        before = considered_healthy(self.get_health_check(health_check_id))
        health_check = original_update(self, health_check_id, health_check_args)
        health_check.health_check_version += 1
        if considered_healthy(health_check) != before:
            _publish(self, health_check)
        return health_check

    response_cls.get_health_check_status = get_health_check_status
    response_cls.change_resource_record_sets = change_resource_record_sets
    response_cls.get_change = get_change
    response_cls.list_tags_for_resource = list_tags_for_resource
    Route53Backend.update_health_check = update_health_check  # type: ignore[method-assign]


@patch("route53-health-checkers")
def patch_route53() -> None:
    """moto's Route 53 has no health checkers: checkers that observe endpoints, the HealthCheckStatus
    metric, and record changes that take a poll to propagate."""
    _patch()


def reset() -> None:
    """Forget endpoint states and pending changes (moto's own reset does not know them)."""
    with _lock:
        _endpoint_healthy.clear()
        _changes.clear()
