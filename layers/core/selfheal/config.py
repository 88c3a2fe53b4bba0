"""Configuration, read once from the function's environment into a typed object.

Logic never reads ``os.environ``: handlers build a ``Settings`` on their first invocation and pass
values down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal.errors import ConfigurationError

STATE_MACHINE_PREFIX = "STATE_MACHINE_"


def listed(raw: str) -> list[str]:
    """A stack parameter's comma-separated list ("none" or empty: nothing)."""
    return [v.strip() for v in raw.split(",") if v.strip() and v.strip().lower() != "none"]


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    audit_table: str = Field(alias="AUDIT_TABLE")
    lease_table: str = Field(default="", alias="LEASE_TABLE")
    mode_parameter: str = Field(default="", alias="MODE_PARAMETER")
    topic_arn: str = Field(default="", alias="TOPIC_ARN")
    # An SNS topic an Amazon Q Developer (AWS Chatbot) channel reads: custom notifications go there too.
    chat_topic_arn: str = Field(default="", alias="CHAT_TOPIC_ARN")
    # Escalations also as OpsCenter OpsItems (one open per target and runbook), and while one is
    # open, that target and runbook are paused (the stack's EscalateToOpsCenter).
    escalate_to_opscenter: bool = Field(default=False, alias="ESCALATE_TO_OPSCENTER")
    region: str = Field(default="", alias="AWS_REGION")  # set by Lambda; the console links need it
    event_bus: str = Field(default="default", alias="EVENT_BUS")
    fence_tag_key: str = Field(default="selfheal:managed", alias="FENCE_TAG_KEY")
    fence_tag_value: str = Field(default="true", alias="FENCE_TAG_VALUE")
    # Runbook name -> state machine ARN, from one STATE_MACHINE_<RUNBOOK> variable per runbook
    # (STATE_MACHINE_REMAP_EIP -> "remap-eip"), so adding a runbook adds a line, not an edit.
    state_machines: dict[str, str] = Field(default_factory=dict)
    # The stack's LeaseSeconds (MinValue 60); shorter here only so tests can outlive a lease.
    lease_seconds: int = Field(default=900, alias="LEASE_SECONDS", ge=1)
    # How long a workflow's direct SDK task may wait for AWS's answer (its TimeoutSecondsPath): a Task
    # state with no timeout waits up to the ASL default of 99999999 s, holding its lease and its place
    # among the runs acting at once, for a call that may never answer.
    aws_call_timeout_seconds: int = Field(default=60, alias="AWS_CALL_TIMEOUT_SECONDS", ge=1)
    # Whether a request put on the bus (its requestedBy self-declared) may act, or only dry-run.
    bus_requests_mode: Literal["enforce", "dry-run"] = Field(default="dry-run", alias="BUS_REQUESTS_MODE")
    cooldown_seconds: int = Field(default=600, alias="COOLDOWN_SECONDS", ge=0)
    loop_window_seconds: int = Field(default=3600, alias="LOOP_WINDOW_SECONDS", ge=0)
    loop_threshold: int = Field(default=3, alias="LOOP_THRESHOLD", ge=1)
    budget_per_hour: int = Field(default=10, alias="BUDGET_PER_HOUR", ge=0)
    # Runs acting at once across the account (all runbooks), taken atomically in the intent step.
    max_concurrent_actions: int = Field(default=10, alias="MAX_CONCURRENT_ACTIONS", ge=1)
    # After this many failed runs of a runbook in an hour, its breaker opens: no more runs act.
    max_failed_runs_per_hour: int = Field(default=3, alias="MAX_FAILED_RUNS_PER_HOUR", ge=1)
    # replace-instance: the most members of one group a request or a tag may take out at once.
    replace_instance_max_in_flight: int = Field(default=1, alias="REPLACE_INSTANCE_MAX_IN_FLIGHT", ge=1)
    stack_name: str = Field(default="selfheal", alias="STACK_NAME")
    # Signals are accepted from this account, and from the AcceptedAccountIds the stack names.
    account_id: str = Field(default="", alias="ACCOUNT_ID")
    accepted_account_ids: str = Field(default="", alias="ACCEPTED_ACCOUNT_IDS")
    # flip-dns scope (comma-separated; empty or "none": nothing). The same template parameters build
    # the IAM statements, so the guard and IAM agree.
    flip_dns_hosted_zone_ids: str = Field(default="", alias="FLIP_DNS_HOSTED_ZONE_IDS")
    flip_dns_record_names: str = Field(default="", alias="FLIP_DNS_RECORD_NAMES")
    flip_dns_health_check_ids: str = Field(default="", alias="FLIP_DNS_HEALTH_CHECK_IDS")
    # The shortest hold-down a failback may have, whatever a request or tag asks.
    flip_dns_min_hold_down_seconds: int = Field(default=300, alias="FLIP_DNS_MIN_HOLD_DOWN_SECONDS", ge=0)
    # promote-replica scope: the one zone and the record names it may repoint (the same template
    # parameters scope its IAM statement).
    database_hosted_zone_id: str = Field(default="", alias="DATABASE_HOSTED_ZONE_ID")
    database_record_names: str = Field(default="", alias="DATABASE_RECORD_NAMES")
    # promote-replica: the highest replica lag (s) it promotes without asking; requests and tags may
    # only set a lower limit.
    promote_replica_max_lag_seconds: float = Field(
        default=60.0, alias="PROMOTE_REPLICA_MAX_LAG_SECONDS", ge=0
    )
    # Whether an approval given straight to Step Functions (SendTaskSuccess, its approver only
    # claimed) may let a run act; otherwise only answers on the authenticated path do.
    accept_unverified_approvals: bool = Field(default=False, alias="ACCEPT_UNVERIFIED_APPROVALS")
    # replace-instance: ARNs of the roles (comma-separated; empty or "none": none) a replacement's
    # instance profile may pass; the same template parameter scopes iam:PassRole.
    replace_instance_pass_role_arns: str = Field(default="", alias="REPLACE_INSTANCE_PASS_ROLE_ARNS")
    # replace-instance: the launch templates (lt-...) and images (ami-...) a replacement may be
    # launched from (comma-separated, * and ? wildcards; empty or "none": none); the same template
    # parameters scope ec2:RunInstances.
    replace_instance_launch_template_ids: str = Field(
        default="", alias="REPLACE_INSTANCE_LAUNCH_TEMPLATE_IDS"
    )
    replace_instance_image_ids: str = Field(default="", alias="REPLACE_INSTANCE_IMAGE_IDS")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        machines = {
            key.removeprefix(STATE_MACHINE_PREFIX).lower().replace("_", "-"): value
            for key, value in environ.items()
            if key.startswith(STATE_MACHINE_PREFIX) and value
        }
        try:
            return cls.model_validate({**environ, "state_machines": machines})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid function configuration: {problems}") from exc
