"""Resource tags: per-resource parameters (``selfheal:param:<name>``) and tag lists as dicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

TAG_PARAM_PREFIX = "selfheal:param:"


def tag_params(tags: Mapping[str, str], prefix: str = TAG_PARAM_PREFIX) -> dict[str, str]:
    """Per-resource params from tags: ``selfheal:param:standbyInstanceId = i-...`` -> ``standbyInstanceId``.

    Values stay strings (tags are strings); the runbook's params model converts them. Merge order is
    the caller's: policy params, then these, then an operator's explicit params.
    """
    return {
        key[len(prefix) :]: value for key, value in tags.items() if key.startswith(prefix) and key != prefix
    }


def tag_dict(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """AWS's ``[{"Key": k, "Value": v}]`` as ``{k: v}``."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags or ()}
