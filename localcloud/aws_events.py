"""AWS services publish events to the account's default bus; moto's services do not.

These patches emit, from inside the local cloud, the service events selfheal listens to, in the
shapes the AWS user guides document:
- CloudWatch "CloudWatch Alarm State Change" whenever an alarm's state value changes
  (``SetAlarmState``, or moto's own alarm evaluation);
- EC2 "EC2 Instance State-change Notification" for stop, start and terminate (the transitional
  state first, then the final one, as EC2 does);
- Step Functions "Step Functions Execution Status Change" when an execution ends (SUCCEEDED,
  FAILED, TIMED_OUT, ABORTED: stopped from outside).
Then "inject a fault" in the demo or a test is what it is in AWS: an alarm goes to ALARM or an
instance stops, and the event reaches the rules on its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import Alarm
from moto.ec2.models.instances import InstanceBackend
from moto.events.models import events_backends

from localcloud.patches import patch


def _put(account: str, region: str, source: str, detail_type: str, resources: list[str], detail: Any) -> None:
    events_backends[account][region].put_events(
        [
            {
                "Source": source,
                "DetailType": detail_type,
                "Resources": resources,
                "Detail": json.dumps(detail),
                "EventBusName": "default",
            }
        ]
    )


def _cw_time(at: datetime) -> str:
    """CloudWatch's own timestamp format in these events: 2026-11-21T23:59:40.112+0000."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _alarm_configuration(alarm: Alarm) -> dict[str, Any]:
    if alarm.rule:
        return {"alarmRule": alarm.rule, "description": alarm.description or ""}
    if alarm.metric_data_queries:
        metrics = []
        for query in alarm.metric_data_queries:
            entry: dict[str, Any] = {"id": query.id, "returnData": str(query.return_data).lower() != "false"}
            if query.expression:
                entry["expression"] = query.expression
            stat = query.metric_stat
            if stat is not None:
                entry["metricStat"] = {
                    "metric": {
                        "namespace": stat.metric.namespace,
                        "name": stat.metric.metric_name,
                        "dimensions": {d.name: d.value for d in stat.metric.dimensions},
                    },
                    "period": int(stat.period),
                    "stat": stat.stat,
                }
            metrics.append(entry)
        return {"description": alarm.description or "", "metrics": metrics}
    return {
        "description": alarm.description or "",
        "metrics": [
            {
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": alarm.namespace,
                        "name": alarm.metric_name,
                        "dimensions": {d.name: d.value for d in alarm.dimensions},
                    },
                    "period": alarm.period,
                    "stat": alarm.statistic,
                },
                "returnData": True,
            }
        ],
    }


def _patch_alarms() -> None:
    original = Alarm.update_state

    def update_state(self: Alarm, reason: str, reason_data: str, state_value: str) -> None:
        previous = {
            "value": self.state_value,
            "reason": self.state_reason,
            "reasonData": self.state_reason_data,
            "timestamp": _cw_time(self.state_updated_timestamp),
        }
        original(self, reason, reason_data, state_value)
        if previous["value"] == state_value:
            return  # CloudWatch emits an event only when the state value changes
        _, _, _, region, account, *_ = self.alarm_arn.split(":")
        detail = {
            "alarmName": self.name,
            "state": {
                "value": state_value,
                "reason": reason,
                "reasonData": reason_data or "{}",
                "timestamp": _cw_time(self.state_updated_timestamp),
            },
            "previousState": previous,
            "configuration": _alarm_configuration(self),
        }
        _put(account, region, "aws.cloudwatch", "CloudWatch Alarm State Change", [self.alarm_arn], detail)

    Alarm.update_state = update_state  # type: ignore[method-assign]


def _instance_event(backend: Any, instance_id: str, state: str) -> None:
    arn = f"arn:aws:ec2:{backend.region_name}:{backend.account_id}:instance/{instance_id}"
    detail = {"instance-id": instance_id, "state": state}
    _put(
        backend.account_id,
        backend.region_name,
        "aws.ec2",
        "EC2 Instance State-change Notification",
        [arn],
        detail,
    )


def _patch_instances() -> None:
    transitions = {
        "stop_instances": ("stopping", "stopped"),
        "start_instances": ("pending", "running"),
        "terminate_instances": ("shutting-down", "terminated"),
    }
    for method, states in transitions.items():
        original = getattr(InstanceBackend, method)

        def emitting(
            self: Any, instance_ids: list[str], _original: Any = original, _states: Any = states
        ) -> Any:
            changed = _original(self, instance_ids)
            for instance, previous in changed:
                if previous.name == _states[1]:
                    continue  # already in that state: EC2 emits nothing
                for state in _states:
                    _instance_event(self, instance.id, state)
            return changed

        setattr(InstanceBackend, method, emitting)


@patch("service-events")
def patch_service_events() -> None:
    """moto's services emit no EventBridge events: alarms and EC2 instances send their state changes,
    and Step Functions executions their status change, as AWS does."""
    _patch_alarms()
    _patch_instances()
    _patch_executions()


def _execution_ended(execution: Any, status: str) -> None:
    execution._selfheal_end_sent = True
    started = getattr(execution, "start_date", None)
    stopped = execution.stop_date or datetime.now(UTC)
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": getattr(execution.state_machine, "arn", None),
        "name": execution.name,
        "status": status,
        "startDate": int(started.timestamp() * 1000) if started else None,
        "stopDate": int(stopped.timestamp() * 1000),
    }
    _put(
        execution.account_id, execution.region_name, "aws.states", STATUS_CHANGE, [execution.exec_arn], detail
    )


def _patch_executions() -> None:
    """The event Step Functions sends when an execution ends (Step Functions developer guide,
    "Step Functions Execution Status Change"): when moto's interpreter sets the final status, and at
    once on StopExecution, as AWS does: moto's worker, blocked in a wait for a task token, would
    only end (and say so) when that wait does. Once per execution."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    original_reflect = BaseExecutionWorkerCommunication._reflect_execution_status
    original_stop = Execution.stop

    def reflect_execution_status(self: Any) -> None:
        stopped = getattr(self.execution, "_selfheal_stopped", None)
        original_reflect(self)
        if stopped is not None:
            # The worker may end in an error once it is let go (a held call answering late): it was
            # stopped first, and AWS's status stays ABORTED, with the stop's error and cause.
            self.execution.exec_status = ExecutionStatus.ABORTED
            self.execution.error, self.execution.cause = stopped
        status = self.execution.exec_status
        _execution_ended(self.execution, str(getattr(status, "value", status)))

    def stop(self: Any, stop_date: Any, error: Any, cause: Any) -> None:
        self._selfheal_stopped = (error, cause)
        original_stop(self, stop_date, error, cause)
        # ABORTED from now on (AWS's DescribeExecution says so at once), whatever the worker does.
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = self.stop_date or stop_date
        _execution_ended(self, "ABORTED")

    BaseExecutionWorkerCommunication._reflect_execution_status = reflect_execution_status  # type: ignore[method-assign]
    Execution.stop = stop  # type: ignore[method-assign]


STATUS_CHANGE = "Step Functions Execution Status Change"
