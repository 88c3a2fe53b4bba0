"""flip-dns console input is checked field by field (no AWS)."""

import json

import pytest

from selfheal.errors import InvalidInput
from selfheal.steps import parse_request
from tests.events import load_event


def test_parse_request_accepts_the_flip_dns_console_example():
    example = load_event("runbooks/flip-dns.json")
    request = parse_request(example, "flip-dns", "exec-1", None)
    assert request.target_key == example["target"]["healthCheckId"]
    # Unset tunables stay unset, so tags on the health check can still provide them.
    assert "holdDownSeconds" not in request.params and request.params["direction"] == "failover"


def test_parse_request_record_target_key_is_the_normalised_record():
    body = {
        "target": {"hostedZoneId": "/hostedzone/Z0123456789ABC", "recordName": "API.example.com"},
        "reason": "test",
    }
    assert parse_request(body, "flip-dns", "exec-1", None).target_key == "Z0123456789ABC/api.example.com.A"


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda d: d.update(target={}), "healthCheckId"),
        (lambda d: d.update(target={"hostedZoneId": "Z0123456789ABC"}), "recordName"),
        (lambda d: d.update(params={"direction": "sideways"}), "params.direction"),
        (lambda d: d.update(params={"holdDownSeconds": -1}), "params.holdDownSeconds"),
        (lambda d: d.update(params={"secondary": "x"}), "params.secondary"),
    ],
)
def test_parse_request_flip_dns_names_what_is_wrong(mutate, needle):
    bad = json.loads(json.dumps(load_event("runbooks/flip-dns.json")))
    mutate(bad)
    with pytest.raises(InvalidInput) as caught:
        parse_request(bad, "flip-dns", "exec-1", None)
    assert needle in caught.value.message
