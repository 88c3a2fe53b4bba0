"""localcloud.route53 behaves as the Route 53 documentation says: checkers, the HealthCheckStatus
metric and its alarms (with their state change events), and change propagation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud import route53 as emulation
from localcloud.aws_events import patch_service_events
from selfheal.signals import parse_event


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    patch_service_events()
    emulation.patch_route53()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        events = boto3.client("events", region_name="us-east-1")
        url = sqs.create_queue(QueueName="seen")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="alarms", EventPattern=json.dumps({"source": ["aws.cloudwatch"]}))
        events.put_targets(Rule="alarms", Targets=[{"Id": "q", "Arn": arn}])
        yield {
            "route53": boto3.client("route53", region_name="us-east-1"),
            "cloudwatch": boto3.client("cloudwatch", region_name="us-east-1"),
            "sqs": sqs,
            "url": url,
        }
    emulation.reset()


def health_check(route53: Any, **config: Any) -> str:
    return str(
        route53.create_health_check(
            CallerReference=json.dumps(config, sort_keys=True) + str(id(config)),
            HealthCheckConfig={"IPAddress": "192.0.2.10", "Port": 443, "Type": "HTTPS", **config},
        )["HealthCheck"]["Id"]
    )


def statuses(route53: Any, hc: str) -> list[str]:
    observations = route53.get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
    return [o["StatusReport"]["Status"] for o in observations]


def test_route53_checkers_report_from_every_checker_region_and_follow_the_endpoint(aws):
    r53 = aws["route53"]
    hc = health_check(r53)
    reports = statuses(r53, hc)
    assert len(reports) == len(emulation.CHECKER_REGIONS)
    assert all(r.startswith("Success") for r in reports)
    emulation.set_endpoint_health(hc, False)
    assert all(r.startswith("Failure") for r in statuses(r53, hc))
    emulation.set_endpoint_health(hc, True)
    assert all(r.startswith("Success") for r in statuses(r53, hc))


def test_route53_checkers_only_report_from_the_configured_regions(aws):
    regions = ["us-east-1", "eu-west-1", "ap-southeast-1"]
    hc = health_check(aws["route53"], Regions=regions)
    observations = aws["route53"].get_health_check_status(HealthCheckId=hc)["HealthCheckObservations"]
    assert sorted(o["Region"] for o in observations) == sorted(regions)


def test_route53_health_check_status_metric_moves_its_alarm_and_emits_the_event(aws):
    r53, cw = aws["route53"], aws["cloudwatch"]
    hc = health_check(r53)
    cw.put_metric_alarm(
        AlarmName="api-primary-health",
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": hc}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
    )
    emulation.set_endpoint_health(hc, False)
    assert cw.describe_alarms(AlarmNames=["api-primary-health"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    datapoints = cw.get_metric_statistics(
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"Name": "HealthCheckId", "Value": hc}],
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=60,
        Statistics=["Minimum"],
    )["Datapoints"]
    assert [d["Minimum"] for d in datapoints] == [0.0]
    messages = aws["sqs"].receive_message(QueueUrl=aws["url"], MaxNumberOfMessages=10)["Messages"]
    signal = parse_event(json.loads(messages[0]["Body"]))
    assert signal.alarm.state == "ALARM" and signal.alarm.dimensions == {"HealthCheckId": hc}
    assert signal.alarm.namespace == "AWS/Route53" and signal.alarm.metric_name == "HealthCheckStatus"
    emulation.set_endpoint_health(hc, True)
    assert cw.describe_alarms(AlarmNames=["api-primary-health"])["MetricAlarms"][0]["StateValue"] == "OK"


def test_route53_disabled_is_healthy_and_inverted_flips_it(aws):
    r53 = aws["route53"]
    hc = health_check(r53)
    backend_check = emulation._backend_health_check(hc)[1]
    emulation.set_endpoint_health(hc, False)
    assert not emulation.considered_healthy(backend_check)
    r53.update_health_check(HealthCheckId=hc, Disabled=True)
    assert emulation.considered_healthy(backend_check)  # "always healthy" once disabled
    r53.update_health_check(HealthCheckId=hc, Inverted=True)
    assert not emulation.considered_healthy(backend_check)  # disabled + inverted: always unhealthy
    r53.update_health_check(HealthCheckId=hc, Disabled=False, Inverted=False)
    assert r53.get_health_check(HealthCheckId=hc)["HealthCheck"]["HealthCheckConfig"]["Inverted"] is False


def test_route53_change_is_pending_then_insync(aws, monkeypatch):
    r53 = aws["route53"]
    monkeypatch.setattr(emulation, "pending_polls", 2)
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="z")["HostedZone"]["Id"]
    info = r53.change_resource_record_sets(
        HostedZoneId=zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": "api.example.com",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "192.0.2.10"}],
                    },
                }
            ]
        },
    )["ChangeInfo"]
    assert info["Status"] == "PENDING" and info["Id"].startswith("/change/")
    seen = [r53.get_change(Id=info["Id"])["ChangeInfo"]["Status"] for _ in range(3)]
    assert seen == ["PENDING", "PENDING", "INSYNC"]
    assert r53.get_change(Id=info["Id"].removeprefix("/change/"))["ChangeInfo"]["Status"] == "INSYNC"


def test_route53_list_tags_of_an_unknown_resource_fails_as_on_aws(aws):
    """API reference, ListTagsForResource, Errors: NoSuchHealthCheck / NoSuchHostedZone (moto: empty tags)."""
    r53 = aws["route53"]
    hc = health_check(r53)
    r53.change_tags_for_resource(
        ResourceType="healthcheck", ResourceId=hc, AddTags=[{"Key": "k", "Value": "v"}]
    )
    assert r53.list_tags_for_resource(ResourceType="healthcheck", ResourceId=hc)["ResourceTagSet"][
        "Tags"
    ] == [{"Key": "k", "Value": "v"}]
    with pytest.raises(r53.exceptions.NoSuchHealthCheck):
        r53.list_tags_for_resource(
            ResourceType="healthcheck", ResourceId="00000000-0000-0000-0000-000000000000"
        )
    zone = r53.create_hosted_zone(Name="example.com", CallerReference="tags")["HostedZone"]["Id"]
    tags = r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=zone.split("/")[-1])
    assert tags["ResourceTagSet"]["Tags"] == []
    with pytest.raises(r53.exceptions.NoSuchHostedZone):
        r53.list_tags_for_resource(ResourceType="hostedzone", ResourceId="Z0000000000000NOSUCH")
