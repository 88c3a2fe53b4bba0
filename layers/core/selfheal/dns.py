"""Route 53 names and the stack's scope lists, shared by the runbooks that change records."""

from __future__ import annotations

import fnmatch

from selfheal.config import listed


def normalise_name(name: str) -> str:
    """Route 53's form of a record name: lower case, trailing dot."""
    return name.strip().lower().rstrip(".") + "."


def iam_record_name(name: str) -> str:
    """The form the ``route53:ChangeResourceRecordSetsNormalizedRecordNames`` condition key compares."""
    return normalise_name(name).rstrip(".")


def bare_zone_id(zone: str) -> str:
    return zone.rsplit("/", 1)[-1]


def record_name_allowed(name: str, patterns: str) -> bool:
    """Whether the record matches one of the stack's name patterns (* and ?), as IAM's StringLike on
    the normalised record name would."""
    return any(fnmatch.fnmatchcase(iam_record_name(name), p.lower()) for p in listed(patterns))
