"""What a run's output says became of it (the frame's finish step, read by `selfheal trigger`): healed
with what it changed, and no error field; a dry run as asked; a dry run nobody asked for is no heal;
a skip says why; an input refused is invalid. One runbook (remap-eip): the frame is the same in all
five (tests/e2e/test_frame.py)."""

from __future__ import annotations

from selfheal_cli import outcomes
from tests.e2e import test_remap_eip as remap_world


def test_a_heal_says_what_it_changed_and_carries_no_error(cloud):
    pair = remap_world.make_pair(cloud)
    result = cloud.wait(cloud.start("remap-eip", remap_world.manual_input(pair)))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    output = result.output
    assert output.pop("timeToHealSeconds") >= 0  # its own test: tests/e2e/test_time_to_heal.py
    assert output == {
        "outcome": "healed",
        "reason": "1 change(s): ec2:AssociateAddress",
        "runbook": "remap-eip",
        "target": pair.primary,
        "requestId": result.name,
        "escalated": False,
    }
    summary = outcomes.summarize(result, "remap-eip")
    assert summary.exit_code == 0 and len(summary.line()) <= 160
    assert summary.line().startswith(f"healed   remap-eip {pair.primary}: 1 change(s)"), summary.line()


def test_a_dry_run_as_asked_exits_0_and_one_the_kill_switch_forced_is_a_skip(cloud, mode):
    pair = remap_world.make_pair(cloud)
    asked = cloud.wait(cloud.start("remap-eip", remap_world.manual_input(pair, dryRun=True)))
    assert asked.output["outcome"] == "dry-run", asked.output
    assert outcomes.summarize(asked, "remap-eip").exit_code == 0
    mode("dry-run")
    forced = cloud.wait(cloud.start("remap-eip", remap_world.manual_input(pair)))
    assert forced.output["outcome"] == "skipped", forced.output
    assert "kill switch says dry-run" in forced.output["reason"], forced.output
    assert outcomes.summarize(forced, "remap-eip").exit_code == 3
    assert pair.holder(cloud) == pair.primary  # nothing moved either time


def test_a_skip_says_why_and_exits_3(cloud):
    pair = remap_world.make_pair(cloud, fence_standby=False)
    result = cloud.wait(cloud.start("remap-eip", remap_world.manual_input(pair)))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.output["outcome"] == "skipped" and "error" not in result.output, result.output
    assert result.output["reason"], result.output
    assert outcomes.summarize(result, "remap-eip").exit_code == 3


def test_an_input_the_frame_refuses_is_invalid_and_exits_2(cloud):
    result = cloud.wait(cloud.start("remap-eip", {"target": {"instanceId": 42}}))
    summary = outcomes.summarize(result, "remap-eip")
    assert (summary.outcome, summary.exit_code) == ("invalid", 2), summary
    assert summary.reason.startswith("InvalidInput: "), summary
