"""Policy: decisions for every sample, NoMatch with reasons, validation that reports every problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from selfheal.errors import PolicyError
from selfheal.models import Actor, RunbookInput
from selfheal.policy import (
    DEFAULT_POLICY_PATH,
    Decision,
    NoMatch,
    Policy,
    decide,
    load_policy,
    parse_policy,
    validate_file,
)
from selfheal.runbooks import RUNBOOKS
from selfheal.signals import Signal, parse_event
from selfheal.tags import tag_params
from tests.events import event_names, load_event

WEB_1 = "i-0a1b2c3d4e5f60001"
WEB_2 = "i-0a1b2c3d4e5f60002"
WEB_3 = "i-0a1b2c3d4e5f60003"
WEB_5 = "i-0a1b2c3d4e5f60005"


def signal_of(name: str) -> Signal:
    result = parse_event(load_event(name))
    assert isinstance(result, Signal), result
    return result


def policy_from(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shipped() -> Policy:
    return load_policy()


# The expected outcome of the shipped policy for every sample that is a signal:
# (rule, runbook, target) per decision, or None for NoMatch.
EXPECTED: dict[str, list[tuple[str, str, dict[str, str]]] | None] = {
    "alarm-status-check-failed": [("ec2-status-check-failed", "remap-eip", {"instanceId": WEB_1})],
    "alarm-lambda-action": [("ec2-status-check-failed", "remap-eip", {"instanceId": WEB_1})],
    "alarm-sns": [("ec2-status-check-failed", "remap-eip", {"instanceId": WEB_1})],
    "alarm-ok": None,
    "alarm-ok-from-insufficient-data": None,
    "alarm-insufficient-data": None,
    "alarm-metric-math": None,
    "alarm-anomaly-detection": None,
    "alarm-composite": None,
    "ec2-state-stopped": [("ec2-instance-stopped", "remap-eip", {"instanceId": WEB_1})],
    "ec2-state-running": None,
    "health-ec2-retirement": [
        ("ec2-retirement-scheduled", "remap-eip", {"instanceId": WEB_1}),
        ("ec2-retirement-scheduled", "remap-eip", {"instanceId": WEB_3}),
    ],
    "health-ec2-retirement-old-schema": [("ec2-retirement-scheduled", "remap-eip", {"instanceId": WEB_1})],
    "health-public-no-entities": None,
    "rds-instance-failure": [
        ("rds-instance-failed", "promote-replica", {"dbInstanceIdentifier": "orders-db"})
    ],
    "rds-cluster-failover": [
        ("rds-cluster-failover-started", "promote-replica", {"dbClusterIdentifier": "orders-aurora"})
    ],
    "manual-remap-eip": [("manual-request", "remap-eip", {"instanceId": WEB_1})],
    "alarm-sqs-dlq-messages": [("sqs-dlq-has-messages", "redrive-dlq", {"queueName": "orders-dlq"})],
    "manual-redrive-dlq": [("manual-request", "redrive-dlq", {"queueName": "orders-dlq"})],
    "alarm-route53-health-check": [
        ("route53-health-check-failed", "flip-dns", {"healthCheckId": "8f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"})
    ],
    "alarm-route53-health-check-forwarded": [
        ("route53-health-check-failed", "flip-dns", {"healthCheckId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"})
    ],
    "alarm-route53-health-check-ok": [
        (
            "route53-health-check-recovered",
            "flip-dns",
            {"healthCheckId": "8f0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d"},
        )
    ],
    "manual-flip-dns": [
        (
            "manual-request",
            "flip-dns",
            {"hostedZoneId": "Z0123456789ABCDEFGHIJ", "recordName": "api.example.com", "recordType": "A"},
        )
    ],
    "health-ec2-instance-store-degraded": [
        ("replace-instance-retirement-scheduled", "replace-instance", {"instanceId": WEB_3}),
        ("replace-instance-retirement-scheduled", "replace-instance", {"instanceId": WEB_5}),
    ],
    "health-ec2-system-maintenance": [
        ("replace-instance-system-maintenance", "replace-instance", {"instanceId": WEB_5}),
    ],
    "manual-replace-instance": [("manual-request", "replace-instance", {"instanceId": WEB_3})],
    "rds-instance-multi-az-failover-started": [
        ("rds-instance-multi-az-failover-started", "promote-replica", {"dbInstanceIdentifier": "orders-db"})
    ],
    "rds-cluster-failover-failed": [
        ("rds-cluster-failover-failed", "promote-replica", {"dbClusterIdentifier": "orders-aurora"})
    ],
    "alarm-db-primary-connections": [
        ("rds-primary-health-alarm", "promote-replica", {"dbInstanceIdentifier": "orders-db"})
    ],
    "manual-promote-replica": [("manual-request", "promote-replica", {"dbInstanceIdentifier": "orders-db"})],
    "health-rds-issue": [("rds-health-issue", "promote-replica", {"dbInstanceIdentifier": "orders-db"})],
}


def test_decide_table_covers_every_signal_sample() -> None:
    # A new sample in events/ needs an expectation here.
    signals = {name for name in event_names() if isinstance(parse_event(load_event(name)), Signal)}

    assert signals == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decide_shipped_policy_gives_expected_decisions(shipped: Policy, name: str) -> None:
    # Given a sample signal / When the shipped policy decides
    result = decide(shipped, signal_of(name))

    # Then the decisions (or NoMatch) are as expected, and every target fits its runbook
    expected = EXPECTED[name]
    if expected is None:
        assert isinstance(result, NoMatch), result
        assert result.reason
        return
    assert isinstance(result, list), result
    assert [(d.rule, d.runbook, d.target) for d in result] == expected
    for decision in result:
        spec = RUNBOOKS[decision.runbook]
        spec.target_model.model_validate(decision.target)
        spec.params_model.model_validate(decision.params)
        RunbookInput.model_validate(decision.runbook_input().model_dump(by_alias=True))


def test_decide_alarm_ok_is_no_match_saying_so(shipped: Policy) -> None:
    result = decide(shipped, signal_of("alarm-ok"))

    assert isinstance(result, NoMatch)
    assert "no rule acts on a transition to OK" in result.reason
    assert "web-1-status-check-failed" in result.reason


def test_decide_unmatched_signal_names_the_signal(shipped: Policy) -> None:
    result = decide(shipped, signal_of("ec2-state-running"))

    assert isinstance(result, NoMatch)
    assert result.reason == f"no rule matches EC2 instance {WEB_1} is running"


def test_decide_health_gives_one_decision_per_affected_entity_still_at_risk(shipped: Policy) -> None:
    # Given a Health retirement with a bare id (PENDING), an ARN (IMPAIRED) and a RESOLVED entity
    result = decide(shipped, signal_of("health-ec2-retirement"))

    # Then one decision per entity at risk, the ARN reduced to the instance id, RESOLVED skipped
    assert isinstance(result, list)
    assert [d.target["instanceId"] for d in result] == [WEB_1, WEB_3]
    assert all(d.reason.startswith("ec2-retirement-scheduled: AWS Health") for d in result)


def test_decide_health_closed_event_is_no_match(shipped: Policy) -> None:
    event = load_event("health-ec2-retirement")
    event["detail"]["statusCode"] = "closed"
    signal = parse_event(event)
    assert isinstance(signal, Signal)

    assert isinstance(decide(shipped, signal), NoMatch)


def test_decide_alarm_decision_reason_carries_the_alarm_reason(shipped: Policy) -> None:
    result = decide(shipped, signal_of("alarm-status-check-failed"))

    assert isinstance(result, list)
    assert "Threshold Crossed" in result[0].reason
    assert result[0].dry_run is False


def test_decide_manual_request_uses_its_runbook_target_params_and_dry_run(shipped: Policy) -> None:
    # Given a manual request that asks for a dry run
    event = load_event("manual-remap-eip")
    event["detail"]["dryRun"] = True
    signal = parse_event(event)
    assert isinstance(signal, Signal)

    # When decided
    result = decide(shipped, signal)

    # Then the request's own input goes to the runbook it names
    assert isinstance(result, list) and len(result) == 1
    decision = result[0]
    assert (decision.runbook, decision.target, decision.params) == (
        "remap-eip",
        {"instanceId": WEB_1},
        {"standbyInstanceId": WEB_2},
    )
    assert decision.dry_run is True
    assert decision.reason.startswith("web-1 unreachable")
    runbook_input = decision.runbook_input(Actor(kind="manual", requested_by="alice"))
    assert runbook_input.dry_run is True
    assert runbook_input.actor == {"kind": "manual", "requestedBy": "alice"}


def test_decide_manual_request_for_unknown_runbook_is_no_match(shipped: Policy) -> None:
    event = load_event("manual-remap-eip")
    event["detail"]["runbook"] = "reboot-everything"
    signal = parse_event(event)
    assert isinstance(signal, Signal)

    result = decide(shipped, signal)

    assert isinstance(result, NoMatch)
    assert "unknown runbook reboot-everything" in result.reason


def test_decide_alarm_without_instance_dimension_is_no_match(shipped: Policy) -> None:
    # Given a status check alarm aggregated over an Auto Scaling group (no InstanceId)
    event = load_event("alarm-status-check-failed")
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"] = {
        "AutoScalingGroupName": "web"
    }
    signal = parse_event(event)
    assert isinstance(signal, Signal)

    # Then the instance rule does not match
    assert isinstance(decide(shipped, signal), NoMatch)


def test_decide_first_match_wins_unless_continue(tmp_path: Path) -> None:
    # Given two rules that both match, the first with continue: true, then a third that also matches
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: first
            continue: true
            match: {ec2State: {state: [stopped]}}
            runbook: remap-eip
            target: {instanceId: "{ec2.instanceId}"}
          - name: second
            dryRun: true
            match: {ec2State: {}}
            runbook: remap-eip
            target: {instanceId: "{ec2.instanceId}"}
            params: {verifyAttempts: 3}
          - name: third
            match: {ec2State: {}}
            runbook: remap-eip
            target: {instanceId: "{ec2.instanceId}"}
        """,
    )

    result = decide(load_policy(path), signal_of("ec2-state-stopped"))

    # Then the first continues into the second, which stops evaluation
    assert isinstance(result, list)
    assert [(d.rule, d.dry_run, d.params) for d in result] == [
        ("first", False, {}),
        ("second", True, {"verifyAttempts": 3}),
    ]


def test_decide_placeholder_without_value_skips_rule_with_reason(tmp_path: Path) -> None:
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: needs-dimension
            match: {alarm: {namespace: [AWS/EC2]}}
            runbook: remap-eip
            target: {instanceId: "{alarm.dimensions.InstanceId}", publicIp: "{alarm.dimensions.PublicIp}"}
        """,
    )

    result = decide(load_policy(path), signal_of("alarm-status-check-failed"))

    assert isinstance(result, NoMatch)
    assert "rule 'needs-dimension' matched but the signal has no {alarm.dimensions.PublicIp}" in result.reason


def test_decide_matchers_cover_names_prefixes_types_and_rds(tmp_path: Path) -> None:
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: math-by-prefix
            match:
              alarm:
                namePrefix: [web-1-]
                type: [metric-math]
                dimensions: {InstanceId: [i-0a1b2c3d4e5f60001, i-0a1b2c3d4e5f60002]}
            runbook: remap-eip
            target: {instanceId: "{alarm.dimensions.InstanceId}"}
          - name: rds-failure
            match: {rds: {eventId: [RDS-EVENT-0031], category: [failure], sourceType: [DB_INSTANCE]}}
            runbook: remap-eip
            target: {publicIp: "{rds.sourceId}.example.com"}
        """,
    )
    policy = load_policy(path)

    math = decide(policy, signal_of("alarm-metric-math"))
    rds = decide(policy, signal_of("rds-instance-failure"))
    anomaly = decide(policy, signal_of("alarm-anomaly-detection"))

    assert isinstance(math, list) and math[0].rule == "math-by-prefix"
    assert isinstance(rds, list) and rds[0].target == {"publicIp": "orders-db.example.com"}
    assert isinstance(anomaly, NoMatch)


# ------------------------------------------------------------------------------------- validation


def test_validate_file_shipped_policy_is_clean() -> None:
    assert validate_file(DEFAULT_POLICY_PATH) == []


def test_load_policy_default_is_cached(shipped: Policy) -> None:
    assert load_policy() is shipped
    assert [rule.name for rule in shipped.rules] == [
        "ec2-status-check-failed",
        "ec2-instance-stopped",
        "ec2-retirement-scheduled",
        "replace-instance-status-check-failed",
        "replace-instance-retirement-scheduled",
        "replace-instance-system-maintenance",
        "sqs-dlq-has-messages",
        "route53-health-check-failed",
        "route53-health-check-recovered",
        "rds-instance-multi-az-failover-started",
        "rds-instance-failed",
        "rds-primary-health-alarm",
        "rds-cluster-failover-started",
        "rds-cluster-failover-failed",
        "rds-health-issue",
        "manual-request",
    ]


def test_validate_file_broken_policy_reports_every_problem(tmp_path: Path) -> None:
    # Given a policy with many different mistakes
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: unknown-runbook
            match: {alarm: {}}
            runbook: reboot-everything
            target: {instanceId: "{alarm.dimensions.InstanceId}"}
          - name: bad-placeholder
            match: {ec2State: {state: [stopped]}}
            runbook: remap-eip
            target: {instanceId: "{alarm.dimensions.InstanceId}"}
          - name: bad-target
            match: {ec2State: {}}
            runbook: remap-eip
            target: {instance: "{ec2.instanceId}"}
            params: {verifyAttempts: 0, standbyInstanceId: "web-2"}
          - name: runbook-from-signal
            match: {alarm: {}}
            runbook: "{manual.runbook}"
            target: "{manual.target}"
          - name: bad-target
            match: {ec2State: {}}
            runbook: remap-eip
            target: {instanceId: "{ec2.instanceId"}
        """,
    )

    # When validated
    problems = validate_file(path)

    # Then every problem is listed, each saying where
    expected = [
        "rules[0] (unknown-runbook).runbook: unknown runbook 'reboot-everything'",
        "rules[1] (bad-placeholder): unknown placeholder {alarm.dimensions.InstanceId} in a rule matching ec2-state",
        "rules[2] (bad-target).target.instance: Extra inputs are not permitted",
        "rules[2] (bad-target).params.verifyAttempts: Input should be greater than or equal to 1",
        "rules[2] (bad-target).params.standbyInstanceId: String should match pattern",
        "rules[3] (runbook-from-signal): unknown placeholder {manual.runbook} in a rule matching alarm",
        "rules[3] (runbook-from-signal).target: must be an object",
        "rules[3] (runbook-from-signal).runbook: only manual rules may take the runbook from the signal",
        "rules: duplicate rule name 'bad-target'",
        "rules[4] (bad-target): unbalanced or empty braces",
        "rules[4] (bad-target).target.instanceId: String should match pattern",  # not a placeholder
        "rules[3] (runbook-from-signal): unknown placeholder {manual.target} in a rule matching alarm",
    ]
    for text in expected:
        assert any(text in problem for problem in problems), (text, problems)
    assert len(problems) == len(expected), problems


def test_validate_file_schema_errors_and_version_are_all_reported(tmp_path: Path) -> None:
    path = policy_from(
        tmp_path,
        """
        version: 2
        rules:
          - name: Not_A_Good_Name
            match: {alarm: {namespace: AWS/EC2, colour: red}, health: {}}
            runbook: remap-eip
            target: {instanceId: "{alarm.dimensions.InstanceId}"}
            continue: maybe
          - match: {ec2State: {state: [stopped]}}
            runbook: remap-eip
            target: {}
        """,
    )

    problems = validate_file(path)

    for text in [
        "version: unsupported version 2 (this selfheal reads 1)",
        "rules[0].name: String should match pattern",
        "rules[0].match.alarm.namespace: Input should be a valid list",
        "rules[0].match.alarm.colour: Extra inputs are not permitted",
        "rules[0].continue: Input should be a valid boolean",
        "rules[1].name: Field required",
    ]:
        assert any(text in problem for problem in problems), (text, problems)


def test_validate_file_exactly_one_match_kind(tmp_path: Path) -> None:
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: two-kinds
            match: {alarm: {}, health: {}}
            runbook: remap-eip
            target: {instanceId: i-0a1b2c3d4e5f60001}
        """,
    )

    assert any("exactly one of alarm, health, ec2State, rds, manual" in p for p in validate_file(path))


def test_validate_file_literal_target_values_are_checked(tmp_path: Path) -> None:
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: literal
            match: {ec2State: {}}
            runbook: remap-eip
            target: {instanceId: web-1}
        """,
    )

    problems = validate_file(path)

    assert (
        len(problems) == 1
        and "rules[0] (literal).target.instanceId: String should match pattern" in problems[0]
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("version: 1\nrules: [\n", "YAML error at line"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
    ],
)
def test_validate_file_unreadable_documents(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")

    problems = validate_file(path)

    assert len(problems) == 1 and says in problems[0], problems


def test_validate_file_missing_file_is_a_problem(tmp_path: Path) -> None:
    problems = validate_file(tmp_path / "nope.yaml")

    assert len(problems) == 1 and "cannot read" in problems[0]


def test_load_policy_invalid_raises_policy_error_with_problems(tmp_path: Path) -> None:
    path = policy_from(tmp_path, "version: 3\nrules: []\n")

    with pytest.raises(PolicyError) as caught:
        load_policy(path)

    assert caught.value.details["problems"] == ["version: unsupported version 3 (this selfheal reads 1)"]


def test_parse_policy_accepts_loaded_data() -> None:
    policy = parse_policy(
        {
            "version": 1,
            "rules": [
                {
                    "name": "stopped",
                    "match": {"ec2State": {"state": ["stopped"]}},
                    "runbook": "remap-eip",
                    "target": {"instanceId": "{ec2.instanceId}"},
                }
            ],
        }
    )

    result = decide(policy, signal_of("ec2-state-stopped"))
    assert isinstance(result, list) and isinstance(result[0], Decision)


def _with_objectives(**extra: object) -> dict[str, object]:
    rule = {
        "name": "stopped",
        "match": {"ec2State": {"state": ["stopped"]}},
        "runbook": "remap-eip",
        "target": {"instanceId": "{ec2.instanceId}"},
    }
    return {"version": 1, "rules": [{**rule, **extra.pop("rule", {})}], **extra}  # type: ignore[dict-item]


def test_recovery_objective_is_the_rules_else_the_runbooks_else_none() -> None:
    policy = parse_policy(_with_objectives(recoveryObjectives={"remap-eip": 300}))
    assert policy.recovery_objective("remap-eip", "stopped") == 300  # the rule sets none: its runbook's
    assert policy.recovery_objective("remap-eip", None) == 300  # a request by hand: the runbook's
    assert policy.recovery_objective("flip-dns", None) is None
    ruled = parse_policy(
        _with_objectives(recoveryObjectives={"remap-eip": 300}, rule={"recoveryObjectiveSeconds": 60})
    )
    assert ruled.recovery_objective("remap-eip", "stopped") == 60
    assert ruled.recovery_objective("remap-eip", "another-rule") == 300


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            _with_objectives(recoveryObjectives={"remap-ip": 300}),
            "recoveryObjectives.remap-ip: unknown runbook",
        ),
        (_with_objectives(recoveryObjectives={"remap-eip": 0}), "recoveryObjectives.remap-eip"),
        (_with_objectives(rule={"recoveryObjectiveSeconds": -5}), "recoveryObjectiveSeconds"),
    ],
)
def test_a_recovery_objective_that_cannot_hold_is_a_policy_problem(
    document: dict[str, object], says: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert any(says in problem for problem in caught.value.details["problems"]), caught.value.details


# ------------------------------------------------------------------------------------- tag params


def test_tag_params_takes_prefixed_tags_only() -> None:
    tags = {
        "selfheal:param:standbyInstanceId": WEB_2,
        "selfheal:param:verifyAttempts": "5",
        "selfheal:param:": "ignored: no name",
        "selfheal:managed": "true",
        "Name": "web-1",
    }

    assert tag_params(tags) == {"standbyInstanceId": WEB_2, "verifyAttempts": "5"}


def test_tag_params_values_fit_the_runbook_params_model() -> None:
    params = tag_params({"selfheal:param:standbyInstanceId": WEB_2, "selfheal:param:verifyAttempts": "5"})

    model = RUNBOOKS["remap-eip"].params_model.model_validate(params)

    assert model.model_dump(by_alias=True)["verifyAttempts"] == 5


def test_tag_params_custom_prefix() -> None:
    assert tag_params({"heal/standby": WEB_2, "selfheal:param:x": "y"}, prefix="heal/") == {"standby": WEB_2}


# -------------------------------------------------------------------------- runbook input samples


@pytest.mark.parametrize("runbook", event_names("runbooks"))
def test_runbook_sample_input_validates_for_its_runbook(runbook: str) -> None:
    # Given the input an operator pastes into the Step Functions console (events/runbooks/<name>.json)
    raw = load_event(f"runbooks/{runbook}")

    # When validated as the runbook will validate it
    runbook_input = RunbookInput.model_validate(raw)
    spec = RUNBOOKS[runbook]

    # Then it is a valid input for that runbook
    spec.target_model.model_validate(runbook_input.target)
    spec.params_model.model_validate(runbook_input.params)
    assert runbook_input.reason


def test_runbook_samples_exist_for_every_runbook() -> None:
    assert set(event_names("runbooks")) == set(RUNBOOKS)


def test_decide_consumer_recovery_rule_starts_a_redrive_of_its_dlq(tmp_path: Path) -> None:
    # Given the documented rule that redrives a DLQ when its consumer's alarm returns to OK
    path = policy_from(
        tmp_path,
        """
        version: 1
        rules:
          - name: orders-consumer-recovered
            match: {alarm: {name: [orders-consumer-errors], state: [OK], previousState: [ALARM]}}
            runbook: redrive-dlq
            target: {queueName: orders-dlq}
            params: {consumerAlarmName: orders-consumer-errors}
        """,
    )
    event = load_event("alarm-ok")
    event["detail"]["alarmName"] = "orders-consumer-errors"

    # When that alarm goes back to OK
    result = decide(load_policy(path), parse_event(event))  # type: ignore[arg-type]

    # Then redrive-dlq starts on the DLQ, gated on the same alarm
    assert isinstance(result, list), result
    (decision,) = result
    assert (decision.runbook, decision.target) == ("redrive-dlq", {"queueName": "orders-dlq"})
    assert decision.params == {"consumerAlarmName": "orders-consumer-errors"}


def test_decide_dlq_rule_ignores_backlog_alarms_on_main_queues() -> None:
    event = load_event("alarm-sqs-dlq-messages")
    event["detail"]["alarmName"] = "orders-backlog-high"
    assert isinstance(decide(load_policy(), parse_event(event)), NoMatch)  # type: ignore[arg-type]


# ------------------------------------------------------------- whenApplicable (remap-eip vs replace-instance)


def _remap_applies_only_to(*instances: str):  # type: ignore[no-untyped-def]
    def applies(decision):  # type: ignore[no-untyped-def]
        if decision.runbook == "remap-eip" and decision.target["instanceId"] not in instances:
            return f"{decision.target['instanceId']} holds no managed Elastic IP"
        return None

    return applies


def test_decide_status_check_on_an_eip_pair_goes_to_remap_eip_only(shipped: Policy) -> None:
    # Given remap-eip applies to web-1 (a managed EIP with a standby)
    result = decide(shipped, signal_of("alarm-status-check-failed"), _remap_applies_only_to(WEB_1))

    # Then remap-eip alone decides: never two runbooks on one fault
    assert isinstance(result, list)
    assert [(d.rule, d.runbook) for d in result] == [("ec2-status-check-failed", "remap-eip")]


def test_decide_status_check_without_a_standby_falls_through_to_replace_instance(shipped: Policy) -> None:
    result = decide(shipped, signal_of("alarm-status-check-failed"), _remap_applies_only_to())

    assert isinstance(result, list)
    assert [(d.rule, d.runbook, d.target) for d in result] == [
        ("replace-instance-status-check-failed", "replace-instance", {"instanceId": WEB_1})
    ]


def test_decide_health_entities_split_between_remap_eip_and_replace_instance(shipped: Policy) -> None:
    # Given a retirement for web-1 (EIP pair) and web-3 (no EIP)
    result = decide(shipped, signal_of("health-ec2-retirement"), _remap_applies_only_to(WEB_1))

    # Then one remediation per instance, each by the runbook that applies
    assert isinstance(result, list)
    assert [(d.runbook, d.target["instanceId"]) for d in result] == [
        ("remap-eip", WEB_1),
        ("replace-instance", WEB_3),
    ]


def test_decide_health_public_event_without_entities_decides_nothing(shipped: Policy) -> None:
    result = decide(shipped, signal_of("health-public-no-entities"), _remap_applies_only_to())

    assert isinstance(result, NoMatch)


def test_decide_passed_over_rule_is_named_in_the_no_match_reason(tmp_path: Path) -> None:
    policy = load_policy(
        policy_from(
            tmp_path,
            """
            version: 1
            rules:
              - name: only-pairs
                match: {alarm: {namespace: [AWS/EC2], dimensions: {InstanceId: "*"}}}
                runbook: remap-eip
                target: {instanceId: "{alarm.dimensions.InstanceId}"}
                whenApplicable: true
            """,
        )
    )
    result = decide(policy, signal_of("alarm-status-check-failed"), _remap_applies_only_to())

    assert isinstance(result, NoMatch)
    assert "only-pairs" in result.reason and "holds no managed Elastic IP" in result.reason


def test_decide_without_an_applicability_check_every_rule_applies(shipped: Policy) -> None:
    # Pure callers (no AWS) see the first rule decide, as before whenApplicable existed.
    result = decide(shipped, signal_of("alarm-status-check-failed"))

    assert isinstance(result, list) and [d.runbook for d in result] == ["remap-eip"]
