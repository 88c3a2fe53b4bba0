"""flip-dns IAM: the state machine may change only the zones, record names, types and actions the
stack's parameters name (Route 53 has no tag conditions). The statements are resolved with chosen
parameter values and evaluated the way IAM does for these keys (ARN match on Resource,
ForAllValues on the multi-valued condition keys of ChangeResourceRecordSets)."""

from __future__ import annotations

import copy
import fnmatch
from pathlib import Path
from typing import Any

import pytest

from selfheal.runbooks.flip_dns import iam_record_name
from tools.lint_iam import Resolver, load_template

TEMPLATE = load_template(Path(__file__).parents[2] / "template.yaml")
ALLOWED_ZONE, OTHER_ZONE = "Z0ALLOWED000000000", "Z0OTHER00000000000"


def statements(parameters: dict[str, str]) -> list[dict[str, Any]]:
    template = copy.deepcopy(TEMPLATE)
    for name, value in parameters.items():
        template["Parameters"][name]["Default"] = value
    machine = template["Resources"]["FlipDnsStateMachine"]["Properties"]["Policies"]
    resolver = Resolver(template)
    return [s for p in machine if "Statement" in p for s in resolver.resolve(p["Statement"])]


def allowed(found: list[dict[str, Any]], action: str, resource: str, context: dict[str, list[str]]) -> bool:
    """Does any Allow statement grant this request? (Only the operators these statements use.)"""
    for statement in found:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        if action not in actions or not any(fnmatch.fnmatchcase(resource, r) for r in resources):
            continue
        ok = True
        for operator, keys in statement.get("Condition", {}).items():
            for key, wanted in keys.items():
                wanted = wanted if isinstance(wanted, list) else [wanted]
                values = context.get(key, [])
                if operator == "ForAllValues:StringLike":
                    ok &= all(any(fnmatch.fnmatchcase(v, w) for w in wanted) for v in values)
                elif operator == "ForAllValues:StringEquals":
                    ok &= all(v in wanted for v in values)
                else:
                    pytest.fail(f"unexpected operator {operator}")
        if ok:
            return True
    return False


PARAMS = {
    "FlipDnsHostedZoneIds": ALLOWED_ZONE,
    "FlipDnsRecordNames": "api.example.com,*.shop.example.com",
    "FlipDnsHealthCheckIds": "11111111-aaaa-bbbb-cccc-000000000001",
}


def change(zone: str, name: str, record_type: str = "A", action: str = "UPSERT") -> tuple[str, str, dict]:
    return (
        "route53:ChangeResourceRecordSets",
        f"arn:aws:route53:::hostedzone/{zone}",
        {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [iam_record_name(name)],
            "route53:ChangeResourceRecordSetsRecordTypes": [record_type],
            "route53:ChangeResourceRecordSetsActions": [action],
        },
    )


def test_iam_allows_an_upsert_of_an_allowed_record_in_an_allowed_zone():
    assert allowed(statements(PARAMS), *change(ALLOWED_ZONE, "API.example.com."))
    assert allowed(statements(PARAMS), *change(ALLOWED_ZONE, "eu.shop.example.com"))


@pytest.mark.parametrize(
    "request_",
    [
        change(OTHER_ZONE, "api.example.com"),  # an out-of-policy zone
        change(ALLOWED_ZONE, "admin.example.com"),  # a record name outside the list
        change(ALLOWED_ZONE, "api.example.com", action="DELETE"),  # flip-dns only UPSERTs
        change(ALLOWED_ZONE, "api.example.com", record_type="NS"),
    ],
)
def test_iam_refuses_what_the_parameters_do_not_name(request_):
    assert not allowed(statements(PARAMS), *request_)


def test_iam_default_parameters_allow_no_zone_and_no_health_check():
    defaults = statements({})
    assert not allowed(defaults, *change(ALLOWED_ZONE, "api.example.com"))
    hc = "arn:aws:route53:::healthcheck/11111111-aaaa-bbbb-cccc-000000000001"
    assert not allowed(defaults, "route53:UpdateHealthCheck", hc, {})
    assert allowed(statements(PARAMS), "route53:UpdateHealthCheck", hc, {})
    assert not allowed(statements(PARAMS), "route53:UpdateHealthCheck", hc.replace("0001", "0002"), {})


def test_iam_several_zones_each_become_a_resource():
    found = statements({**PARAMS, "FlipDnsHostedZoneIds": f"{ALLOWED_ZONE},{OTHER_ZONE}"})
    assert allowed(found, *change(OTHER_ZONE, "api.example.com"))
    assert not allowed(found, *change("Z0THIRD", "api.example.com"))
