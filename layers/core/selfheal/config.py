"""Configuration, read once from the function's environment into a typed object.

Logic never reads ``os.environ``: handlers build a ``Settings`` on their first invocation and pass
values down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal.errors import ConfigurationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    audit_table: str = Field(alias="AUDIT_TABLE")
    lease_table: str = Field(default="", alias="LEASE_TABLE")
    mode_parameter: str = Field(default="", alias="MODE_PARAMETER")
    topic_arn: str = Field(default="", alias="TOPIC_ARN")
    event_bus: str = Field(default="default", alias="EVENT_BUS")
    fence_tag_key: str = Field(default="selfheal:managed", alias="FENCE_TAG_KEY")
    fence_tag_value: str = Field(default="true", alias="FENCE_TAG_VALUE")
    state_machines_json: str = Field(default="{}", alias="STATE_MACHINES")
    lease_seconds: int = Field(default=900, alias="LEASE_SECONDS", ge=60)
    cooldown_seconds: int = Field(default=600, alias="COOLDOWN_SECONDS", ge=0)
    loop_window_seconds: int = Field(default=3600, alias="LOOP_WINDOW_SECONDS", ge=0)
    loop_threshold: int = Field(default=3, alias="LOOP_THRESHOLD", ge=1)
    budget_per_hour: int = Field(default=10, alias="BUDGET_PER_HOUR", ge=0)
    stack_name: str = Field(default="selfheal", alias="STACK_NAME")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        try:
            return cls.model_validate(dict(environ))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigurationError(f"invalid function configuration: {problems}") from exc

    @cached_property
    def state_machines(self) -> dict[str, str]:
        """Runbook name -> state machine ARN (set by the template on the triage function)."""
        try:
            value = json.loads(self.state_machines_json)
        except json.JSONDecodeError as exc:
            raise ConfigurationError("STATE_MACHINES is not JSON") from exc
        if not isinstance(value, dict):
            raise ConfigurationError("STATE_MACHINES must be a JSON object")
        return {str(k): str(v) for k, v in value.items()}
