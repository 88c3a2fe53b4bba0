"""localcloud.worlds: each runbook's world is built through AWS APIs and found again by name (as
`selfheal local break` finds it from another process), and the control API does what has no AWS API."""

from __future__ import annotations

import pytest

from localcloud import worlds
from localcloud.control import Control, ControlError
from localcloud.harness import DeployedCloud
from localcloud.worlds import breaking, flip_dns, promote_replica, redrive_dlq, remap_eip
from selfheal_cli.outcomes import RunSummary


@pytest.fixture(scope="module")
def aws(local: DeployedCloud) -> worlds.Aws:
    return worlds.Aws(client=local.client, control=Control(local.endpoint))


@pytest.fixture(scope="module")
def built(aws: worlds.Aws) -> tuple[list[str], dict[str, str]]:
    return worlds.build(aws, worlds.select(["all"]))


def test_every_runbook_has_a_world_and_every_fault_names_its_runbook() -> None:
    assert set(worlds.worlds()) == {
        "remap-eip",
        "replace-instance",
        "redrive-dlq",
        "promote-replica",
        "flip-dns",
    }
    for world in worlds.worlds().values():
        assert world.faults and all(f.runbook == world.runbook for f in world.faults)


def test_an_unknown_world_or_fault_is_named_with_the_known_ones() -> None:
    with pytest.raises(worlds.UnknownWorld, match="no world nope; known: all, remap-eip"):
        worlds.select(["nope"])
    with pytest.raises(worlds.UnknownWorld, match="no fault 'nope'; known: api-1-status-check-failed"):
        worlds.fault("nope")


def test_built_worlds_give_the_stack_parameters_they_need(
    aws: worlds.Aws, built: tuple[list[str], dict[str, str]]
) -> None:
    lines, parameters = built
    assert len(lines) == 5 and all(": " in line for line in lines)
    assert parameters == {
        "DatabaseHostedZoneId": promote_replica.zone_id(aws),
        "DatabaseRecordNames": "orders-db.shop.internal",
        "FlipDnsHostedZoneIds": flip_dns.zone_id(aws),
        "FlipDnsRecordNames": "api.shop.example.com",
    }


def test_every_fault_finds_its_target_by_name(aws: worlds.Aws, built: object) -> None:
    targets = {fault.name: fault.target_key(aws) for fault in worlds.faults().values()}
    assert targets["api-1-status-check-failed"] == worlds.instance_named(aws, "api-1")
    assert targets["orders-dead-lettered"] == "orders-dlq"
    assert targets["orders-db-failed"] == "orders-db"
    assert targets["api-blue-unhealthy"] == flip_dns.health_check(aws, "blue")
    assert targets["asg-member-status-check-failed"].startswith("i-")


def test_an_unbroken_world_is_not_reported_healed(aws: worlds.Aws, built: object) -> None:
    """Each heal check looks at the change the runbook makes, not at the world's good health."""
    for fault in (remap_eip.WORLD.faults[0], redrive_dlq.WORLD.faults[0], promote_replica.WORLD.faults[0]):
        healed, evidence = fault.healed(aws)
        assert not healed, (fault.name, evidence)
    assert flip_dns.weights(aws) == {"blue": 100, "green": 0}
    assert not worlds.fault("api-blue-unhealthy").healed(aws)[0]


def test_the_tags_are_the_ones_the_readme_tells_operators_to_set(aws: worlds.Aws, built: object) -> None:
    address = aws.client("ec2").describe_addresses(Filters=[{"Name": "tag:Name", "Values": ["api"]}])[
        "Addresses"
    ][0]
    tags = {t["Key"]: t["Value"] for t in address["Tags"]}
    assert tags["selfheal:managed"] == "true"
    assert tags["selfheal:param:standbyInstanceId"] == worlds.instance_named(aws, "api-2")
    sqs = aws.client("sqs")
    dlq_tags = sqs.list_queue_tags(QueueUrl=redrive_dlq.urls(aws)[1])["Tags"]
    assert (
        dlq_tags["selfheal:dlq"] == "true"
        and dlq_tags["selfheal:param:consumerAlarmName"] == "orders-consumer-errors"
    )


def test_the_control_api_fails_a_health_checker_and_a_database(aws: worlds.Aws, built: object) -> None:
    blue = flip_dns.health_check(aws, "blue")
    r53 = aws.client("route53")
    aws.control.set_endpoint_health(blue, False)
    observations = r53.get_health_check_status(HealthCheckId=blue)["HealthCheckObservations"]
    assert all(o["StatusReport"]["Status"].startswith("Failure") for o in observations)
    aws.control.set_endpoint_health(blue, True)
    assert aws.control.set_db_instance_status("orders-db", "storage-full") == "orders-db is now storage-full"
    status = aws.client("rds").describe_db_instances(DBInstanceIdentifier="orders-db")["DBInstances"][0]
    assert status["DBInstanceStatus"] == "storage-full"
    aws.control.set_db_instance_status("orders-db", "available")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: c._post("reboot-the-region", {}),
            "no action 'reboot-the-region'; known: db-instance-status",
        ),
        (lambda c: c.set_endpoint_health("no-such-check", False), "no health check no-such-check"),
        (lambda c: c.set_db_instance_status("no-such-db", "failed"), "no DB instance no-such-db"),
        (lambda c: c._post("endpoint-health", {"healthCheckId": "x"}), "the body needs .healthy."),
    ],
)
def test_the_control_api_refuses_what_it_cannot_do_with_a_named_reason(
    local: DeployedCloud, call, message
) -> None:
    with pytest.raises(ControlError, match=message):
        call(Control(local.endpoint))


def test_the_control_api_when_nothing_answers_says_to_start_the_local_cloud() -> None:
    with pytest.raises(ControlError, match="is `selfheal local serve` running"):
        Control("http://127.0.0.1:9", timeout=2).set_endpoint_health("x", False)


def _verdict(outcome: str, whole: bool) -> breaking.Verdict:
    run = RunSummary(outcome, "why", "remap-eip", "i-1", "arn")
    return breaking.Verdict(worlds.fault("api-1-status-check-failed"), run, whole, "evidence")


def test_a_verdict_needs_the_run_and_the_world_to_say_healed() -> None:
    assert (_verdict("healed", True).healed, _verdict("healed", True).exit_code) == (True, 0)
    # The run says healed and the world says otherwise: a failure, whatever the run's output claims.
    assert (_verdict("healed", False).healed, _verdict("healed", False).exit_code) == (False, 1)
    assert (_verdict("skipped", True).healed, _verdict("skipped", True).exit_code) == (False, 3)
    assert "STILL BROKEN" in _verdict("healed", False).lines()[1]
