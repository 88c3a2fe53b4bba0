"""`selfheal drill`'s own logic, without AWS: blocked windows, declarations, drill tags, the report."""

from __future__ import annotations

import argparse
import datetime
import json

import pytest

from selfheal_cli import drill
from selfheal_cli.errors import InvalidArgument
from selfheal_cli.main import build_parser

UTC = datetime.UTC


def at(text: str) -> datetime.datetime:
    """2026-12-05 is a Saturday."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "now", "holds"),
    [
        ("Sat 00:00-06:00", "2026-12-05T00:00", True),
        ("Sat 00:00-06:00", "2026-12-05T05:59", True),
        ("Sat 00:00-06:00", "2026-12-05T06:00", False),  # the end minute is not in it
        ("Sat 00:00-06:00", "2026-12-06T03:00", False),  # Sunday
        ("Mon-Fri 09:00-17:00", "2026-12-07T12:00", True),  # Monday
        ("Mon-Fri 09:00-17:00", "2026-12-05T12:00", False),  # Saturday
        ("Fri-Mon 00:00-23:59", "2026-12-06T12:00", True),  # a range across the week's end
        ("Fri-Mon 00:00-23:59", "2026-12-09T12:00", False),  # Wednesday
        ("22:00-02:00", "2026-12-05T23:30", True),  # every day, past midnight
        ("22:00-02:00", "2026-12-06T01:30", True),
        ("22:00-02:00", "2026-12-06T02:00", False),
        ("Sat 22:00-02:00", "2026-12-06T01:00", True),  # Saturday night runs into Sunday
        ("Sat 22:00-02:00", "2026-12-05T01:00", False),  # Friday night is not declared
        ("sat 18:00-24:00", "2026-12-05T23:59", True),
    ],
)
def test_window_holds_in_utc(window, now, holds):
    assert drill.parse_window(window).holds(at(now)) is holds


def test_window_reads_an_aware_time_in_utc():
    # 01:00 in UTC+02:00 is Friday 23:00 UTC: outside Saturday's early hours
    friday_night = datetime.datetime(2026, 12, 5, 1, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert not drill.parse_window("Sat 00:00-06:00").holds(friday_night)


@pytest.mark.parametrize(
    "text",
    [
        "Saturday 00:00-06:00",
        "Sat 00:00",
        "Sat 25:00-06:00",
        "Sat 00:61-06:00",
        "Sat 06:00-06:00",
        "",
        "Xyz 01:00-02:00",
    ],
)
def test_window_malformed_is_a_usage_error(text):
    with pytest.raises(InvalidArgument, match="--blocked-window"):
        drill.parse_window(text)


def test_blocking_window_names_the_first_that_holds():
    windows = [drill.parse_window("Sun 00:00-06:00"), drill.parse_window("Sat 00:00-06:00")]
    assert drill.blocking_window(windows, at("2026-12-05T01:00")) == windows[1]
    assert drill.blocking_window(windows, at("2026-12-05T07:00")) is None


# --- declarations ------------------------------------------------------------------------------------


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["drill", *argv])


def test_declared_joins_the_drill_file_and_the_command_line():
    file = {
        "targets": {"remap-eip": "drill-api-status", "flip-dns": "hc-1"},
        "blockingAlarms": "checkout-errors",
        "blockedWindows": ["Sat 00:00-06:00"],
        "outcomeAlarms": ["orders-per-minute"],
    }
    plan = drill.declared(
        args("remap-eip", "--file", json.dumps(file), "--blocking-alarm", "payments-errors", "--enforce")
    )
    assert plan.trigger == "drill-api-status" and plan.enforce
    assert plan.blocking_alarms == ("checkout-errors", "payments-errors")
    assert [w.text for w in plan.blocked_windows] == ["Sat 00:00-06:00"]
    assert plan.outcome_alarms == ("orders-per-minute",)


def test_declared_target_on_the_command_line_wins_over_the_file():
    plan = drill.declared(args("remap-eip", "--file", '{"targets": {"remap-eip": "a"}}', "--target", "b"))
    assert plan.trigger == "b" and not plan.enforce


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("flip-dns",), "name the drill's trigger"),
        (("remap-eip", "--file", '{"targets": {"flip-dns": "hc"}}'), "targets.remap-eip"),
        (("remap-eip", "--file", '{"target": {}}'), "unknown key"),
        (("remap-eip", "--file", "[1]"), "JSON object"),
        (("remap-eip", "--target", "a", "--timeout", "0"), "--timeout"),
        (("remap-eip", "--target", "a", "--blocked-window", "weekends"), "--blocked-window"),
        (("remap-eip", "--file", '{"targets": {"remap-eip": "a"}, "outcomeAlarms": [1]}'), "outcomeAlarms"),
    ],
)
def test_declared_refuses_what_cannot_be_used(argv, needle):
    with pytest.raises(InvalidArgument, match=needle):
        drill.declared(args(*argv))


def test_drill_command_knows_every_runbook_and_nothing_else(capsys):
    with pytest.raises(SystemExit) as exited:
        args("make-coffee", "--target", "x")
    assert exited.value.code == 2
    assert sorted(drill.DRILLS) == [
        "flip-dns",
        "promote-replica",
        "redrive-dlq",
        "remap-eip",
        "replace-instance",
    ]


# --- drill tags -------------------------------------------------------------------------------------------


def test_drill_tags_are_required_with_the_fence_where_the_run_acts():
    fence = ("selfheal:managed", "true")
    drill.require_drill_tags("x", {"selfheal:drill": "true", "selfheal:managed": "true"}, fence)
    drill.require_drill_tags("alarm", {"selfheal:drill": "true"}, None)
    with pytest.raises(drill.NotADrillResource, match="no selfheal:drill=true tag"):
        drill.require_drill_tags("x", {"selfheal:managed": "true"}, fence)
    with pytest.raises(drill.NotADrillResource, match="no selfheal:drill=true and no selfheal:managed=true"):
        drill.require_drill_tags("x", {"selfheal:drill": "True"}, fence)  # compared exactly, as IAM does


# --- the report -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "code"), [("pass", 0), ("fail", 1), ("stopped", 1), ("refused", 2), ("blocked", 3)]
)
def test_drill_result_exit_codes(verdict, code):
    assert drill.DrillResult(verdict, "remap-eip", "i-1", "dry-run", "why").exit_code == code


def test_drill_result_line_says_verdict_runbook_target_mode_and_time():
    result = drill.DrillResult("pass", "flip-dns", "hc-1", "enforce", "healed", seconds=4.25)
    assert result.line() == "PASS     flip-dns hc-1 (enforce) in 4.2 s: healed"
    assert result.as_dict()["timeToHealSeconds"] == 4.25


def test_heal_seconds_from_the_succeeded_row_else_measured():
    rows = [{"phase": "started"}, {"phase": "succeeded", "timeToHeal": {"seconds": 7}}]
    assert drill._heal_seconds(rows, 9.5) == 7.0
    assert drill._heal_seconds([{"phase": "succeeded"}], 9.5) == 9.5


def test_readme_drills_section_names_every_exit_code():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Drills", 1)[1].split("\n## ", 1)[0]
    for code in sorted(set(drill.EXIT_CODES.values())):
        assert f"\n| {code} | " in section, f"exit code {code} is not in the README's Drills table"
