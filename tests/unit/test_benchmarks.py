"""The benchmark code itself (benchmarks/): fast checks so it cannot rot. No timings asserted."""

from __future__ import annotations

import math

import pytest

from benchmarks import cold_start, cost, prices, triage_throughput
from benchmarks.__main__ import render, targets
from benchmarks.scenarios import SCENARIOS
from selfheal.runbooks import RUNBOOKS


def test_scenarios_cover_every_runbook_in_the_registry():
    assert set(SCENARIOS) == set(RUNBOOKS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_minimum_names_its_repair_and_its_verify_call_with_reasons(name):
    scenario = SCENARIOS[name]
    assert scenario.runbook == name
    assert scenario.mutating <= set(scenario.minimum)
    assert scenario.verify_call in scenario.minimum
    for op, need in scenario.minimum.items():
        service, _, operation = op.partition(":")
        assert service and operation[:1].isupper(), op
        assert need.count >= 1 and len(need.why) > 5, op


def test_scenario_event_is_an_eventbridge_event_about_the_setup():
    ctx = {"primary": "i-0123456789abcdef0", "standby": "i-0fedcba9876543210", "allocation": "eipalloc-1"}
    event = SCENARIOS["remap-eip"].event(ctx)
    assert event["source"] == "aws.cloudwatch" and "i-0123456789abcdef0" in str(event["detail"])


def test_cost_model_per_1000_remediations_is_list_price_times_usage():
    usage = cost.Usage(
        transitions=40,
        invocations=[cost.Invocation("f", 1024, 1000)],  # exactly 1 GB-second
        dynamodb_wru=10,
        dynamodb_rru=2,
        sns_publishes=1,
        eventbridge_custom_events=1,
        xray_traces=1,
    )
    per_1000 = cost.cost_per_1000(usage)
    assert per_1000["stepfunctions_transitions"] == pytest.approx(40 * 0.025)
    assert per_1000["lambda_duration"] == pytest.approx(1000 * prices.LAMBDA_ARM64_GB_SECOND.usd)
    assert per_1000["lambda_requests"] == pytest.approx(1000 * 0.20 / 1e6)
    assert per_1000["dynamodb_writes"] == pytest.approx(10 * 1000 * 0.625 / 1e6)
    assert per_1000["sns_email"] == 0
    assert per_1000["total"] == pytest.approx(sum(v for k, v in per_1000.items() if k != "total"))
    assert cost.cost_per_1000(usage, email_subscribers=1)["sns_email"] == pytest.approx(1000 * 2 / 1e5)


def test_lambda_billed_duration_rounds_up_and_adds_the_assumed_round_trips():
    assert cost.billed_ms(10.2, 0) == 11
    assert cost.billed_ms(0.0, 0) == 1
    assert cost.billed_ms(10.0, 3, call_ms=20) == 70


def test_dynamodb_item_size_and_write_units_follow_the_documented_rules():
    # name bytes + value bytes: "id"(2) + "abc"(3); "n"(1) + 123 -> 2 digits/2 rounded up + 1 = 3
    assert cost.item_size({"id": {"S": "abc"}, "n": {"N": "123"}}) == 2 + 3 + 1 + 3
    small = {"requestId": {"S": "r"}, "targetKey": {"S": "t"}, "at": {"S": "x"}}
    assert cost.write_units(small, [frozenset({"targetKey", "at"}), frozenset({"runbook", "at"})]) == 2
    big = {**small, "blob": {"S": "x" * 1500}}
    assert cost.write_units(big, []) == 2
    wru, rru = cost.dynamodb_units(
        [("PutItem", {"TableName": "t", "Item": small}), ("DeleteItem", {"TableName": "l"}), ("Query", {})],
        {"t": [frozenset({"targetKey", "at"})]},
    )
    assert (wru, rru) == (3, 0.5)


def test_prices_are_dated_and_named_after_their_source_page():
    assert prices.AS_OF and prices.REGION == "us-east-1"
    for price in prices.ALL.values():
        assert price.usd > 0 and price.per > 0 and price.source.startswith(("AWS", "Amazon"))
        assert math.isfinite(price.unit_price)


def test_triage_fakes_answer_everything_triage_calls_for_every_sample_event():
    from selfheal.config import Settings
    from selfheal.policy import load_policy
    from selfheal.triage import Triage

    settings = Settings.from_env(
        {"AUDIT_TABLE": "audit", "STATE_MACHINE_REMAP_EIP": "arn:aws:states:us-east-1:1:stateMachine:x"}
    )
    triage = Triage(settings, triage_throughput.FakeClients(), load_policy())  # type: ignore[arg-type]
    events = triage_throughput.stream(len(list(triage_throughput.EVENTS_DIR.glob("*.json"))))
    decisions = {o.decision for e in events for o in triage.handle(e)}
    assert "started" in decisions and "ignored" in decisions


def test_cold_start_measures_every_function_of_the_template():
    functions = cold_start._template_functions()
    subjects = {s.name for s in cold_start._subjects(None)}
    assert set(functions) <= subjects
    assert set(cold_start.FIRST_USE) <= set(functions)
    assert all(isinstance(v, str) and "Ref" not in v for f in functions.values() for v in f["env"].values())


def test_render_and_targets_accept_a_result_document():
    subject = {"median": 1.0, "min": 1.0, "max": 1.0, "stdev": 0.0}
    results = {
        "startedAt": "t",
        "quick": True,
        "machine": {"cpu": "c", "cores": 2, "memoryGiB": 1, "python": "3", "loadAverageAtStart": [0]},
        "cold": {
            "rounds": 1,
            "subjects": {
                "floor": {"kind": "floor", "initMs": subject, "initCpuMs": subject, "peakRssMb": 1},
                "F": {
                    "kind": "function",
                    "initMs": subject,
                    "initCpuMs": subject,
                    "peakRssMb": 1,
                    "firstUseMs": subject,
                    "peakRssAfterFirstUseMb": 2,
                    "ratioToFloor": 1.0,
                    "cpuRatioToFloor": 1.0,
                },
            },
        },
        "triage": {
            "events": 1,
            "samples": 1,
            "parseDecide": {"perSecond": 1, "perCpuSecond": 1, "p50Us": 1, "p99Us": 1},
            "handle": {"perSecond": 1, "perCpuSecond": 1, "p50Us": 1, "p99Us": 1},
        },
    }
    assert "| F |" in render(results)
    assert any("NOT met" in line for line in targets(results))


def test_every_price_but_the_unconfirmed_ones_says_where_it_was_confirmed():
    assert set(prices.VERIFIED) <= set(prices.ALL)
    assert set(prices.ALL) - set(prices.VERIFIED) == {"sns_publish", "sns_email_delivery"}
