"""localcloud.opscenter behaves as the OpsCenter documentation says: dedup of open items by
/aws/dedup, the DescribeOpsItems filters selfheal uses, GetOpsItem, UpdateOpsItem and the limits.

In the integration tier, whose moto is in-process with a mock_aws per test: in tests/localcloud, a
mock_aws ending resets moto, and with it the fixture stack the later tests of that process use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud import opscenter as emulation


@pytest.fixture
def ssm() -> Iterator[Any]:
    emulation.patch_opscenter()
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


def create(ssm: Any, dedup: str, target: str, **extra: Any) -> str:
    return str(
        ssm.create_ops_item(
            Title=f"FAILED: {target}",
            Description="what happened",
            Source="selfheal",
            Severity="2",
            Category="Availability",
            OperationalData={
                "/aws/dedup": {"Type": "SearchableString", "Value": json.dumps({"dedupString": dedup})},
                "selfheal:target": {"Type": "SearchableString", "Value": target},
                "selfheal:report": {"Type": "String", "Value": "the whole e-mail"},
            },
            **extra,
        )["OpsItemId"]
    )


def open_for(ssm: Any, target: str) -> list[dict[str, Any]]:
    return ssm.describe_ops_items(
        OpsItemFilters=[
            {"Key": "Source", "Values": ["selfheal"], "Operator": "Equal"},
            {"Key": "Status", "Values": ["Open", "InProgress"], "Operator": "Equal"},
            {
                "Key": "OperationalData",
                "Values": [json.dumps({"key": "selfheal:target", "value": target})],
                "Operator": "Equal",
            },
        ]
    )["OpsItemSummaries"]


def test_opscenter_an_open_item_with_the_same_dedup_string_is_returned_not_duplicated(ssm):
    first = create(ssm, "selfheal#remap-eip#i-1", "remap-eip#i-1")
    again = create(ssm, "selfheal#remap-eip#i-1", "remap-eip#i-1")
    other = create(ssm, "selfheal#remap-eip#i-2", "remap-eip#i-2")
    assert first.startswith("oi-") and len(first) == 15
    assert again == first and other != first
    assert [s["OpsItemId"] for s in open_for(ssm, "remap-eip#i-1")] == [first]


def test_opscenter_a_resolved_item_is_found_no_more_and_the_next_create_makes_a_new_one(ssm):
    first = create(ssm, "selfheal#remap-eip#i-1", "remap-eip#i-1")
    ssm.update_ops_item(OpsItemId=first, Status="Resolved")
    assert open_for(ssm, "remap-eip#i-1") == []
    assert ssm.get_ops_item(OpsItemId=first)["OpsItem"]["Status"] == "Resolved"
    second = create(ssm, "selfheal#remap-eip#i-1", "remap-eip#i-1")
    assert second != first
    assert [s["OpsItemId"] for s in open_for(ssm, "remap-eip#i-1")] == [second]


def test_opscenter_in_progress_counts_as_open(ssm):
    first = create(ssm, "d", "remap-eip#i-1")
    ssm.update_ops_item(OpsItemId=first, Status="InProgress")
    assert create(ssm, "d", "remap-eip#i-1") == first
    assert [s["Status"] for s in open_for(ssm, "remap-eip#i-1")] == ["InProgress"]


def test_opscenter_summaries_show_only_searchable_data_get_shows_all(ssm):
    item = create(ssm, "d", "remap-eip#i-1")
    (summary,) = open_for(ssm, "remap-eip#i-1")
    assert set(summary["OperationalData"]) == {"/aws/dedup", "selfheal:target"}
    assert (summary["Source"], summary["Severity"], summary["Category"]) == ("selfheal", "2", "Availability")
    full = ssm.get_ops_item(OpsItemId=item)["OpsItem"]
    assert full["OperationalData"]["selfheal:report"]["Value"] == "the whole e-mail"
    assert full["OpsItemArn"].endswith(f":opsitem/{item}")


def test_opscenter_filters_on_other_sources_and_unknown_ids(ssm):
    create(ssm, "d", "remap-eip#i-1")
    other = ssm.describe_ops_items(OpsItemFilters=[{"Key": "Source", "Values": ["ec2"], "Operator": "Equal"}])
    assert other["OpsItemSummaries"] == []
    with pytest.raises(ClientError) as missing:
        ssm.get_ops_item(OpsItemId="oi-000000000000")
    assert missing.value.response["Error"]["Code"] == "OpsItemNotFoundException"
    with pytest.raises(ClientError) as unknown:
        ssm.update_ops_item(OpsItemId="oi-000000000000", Status="Resolved")
    assert unknown.value.response["Error"]["Code"] == "OpsItemNotFoundException"


def test_opscenter_refuses_what_aws_refuses(ssm):
    with pytest.raises(ClientError) as long_description:
        ssm.create_ops_item(Title="t", Description="x" * 2049, Source="selfheal")
    assert long_description.value.response["Error"]["Code"] == "OpsItemInvalidParameterException"
    with pytest.raises(ClientError) as reserved:
        ssm.create_ops_item(
            Title="t",
            Description="d",
            Source="selfheal",
            OperationalData={"aws:mine": {"Type": "String", "Value": "v"}},
        )
    assert "reserved prefix" in reserved.value.response["Error"]["Message"]
    with pytest.raises(ClientError):
        ssm.create_ops_item(Title="t", Description="d", Source="my-aws-tool")
    with pytest.raises(ClientError) as unemulated:
        ssm.describe_ops_items(
            OpsItemFilters=[{"Key": "ResourceId", "Values": ["i-1"], "Operator": "Contains"}]
        )
    assert "does not emulate" in unemulated.value.response["Error"]["Message"]
