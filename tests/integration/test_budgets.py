"""Budgets taken atomically in the lease table (moto): exactly the limit gets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from selfheal.budget import Budgets
from selfheal.errors import BudgetExhausted, TooManyActionsAtOnce

NOW = datetime(2026, 12, 1, 21, 30, tzinfo=UTC)


@pytest.fixture
def budgets(clients, settings):
    return Budgets(clients.dynamodb, settings.lease_table)


def test_hourly_budget_lets_exactly_the_limit_through_and_a_run_counts_once(budgets):
    for n in range(3):
        budgets.take_hourly("remap-eip", f"run-{n}", 3, NOW)
    budgets.take_hourly("remap-eip", "run-1", 3, NOW)  # its second call: already counted
    with pytest.raises(BudgetExhausted, match=r"3 runs acted in the last hour \(limit 3"):
        budgets.take_hourly("remap-eip", "run-3", 3, NOW)
    budgets.take_hourly("flip-dns", "run-3", 3, NOW)  # per runbook


def test_hourly_budget_counts_the_part_of_the_previous_hour_still_in_the_window(budgets):
    # Given 4 of 4 taken late in the previous hour
    for n in range(4):
        budgets.take_hourly("remap-eip", f"early-{n}", 4, NOW - timedelta(hours=1))
    # Then at :30 half of them still count (2): two more get through, not four
    budgets.take_hourly("remap-eip", "late-0", 4, NOW)
    budgets.take_hourly("remap-eip", "late-1", 4, NOW)
    with pytest.raises(BudgetExhausted):
        budgets.take_hourly("remap-eip", "late-2", 4, NOW)
    # And a run of the previous hour acting again is not counted twice
    budgets.take_hourly("remap-eip", "early-0", 4, NOW)


def test_a_zero_budget_lets_nothing_through(budgets):
    with pytest.raises(BudgetExhausted):
        budgets.take_hourly("remap-eip", "run-0", 0, NOW)


def test_runs_acting_at_once_are_capped_and_a_finished_run_frees_its_place(budgets):
    running = {"arn:1", "arn:2"}
    budgets.take_in_flight("arn:1", 2, NOW, running.__contains__)
    budgets.take_in_flight("arn:2", 2, NOW, running.__contains__)
    budgets.take_in_flight("arn:2", 2, NOW, running.__contains__)  # already in
    with pytest.raises(TooManyActionsAtOnce, match="2 runs are acting at once"):
        budgets.take_in_flight("arn:3", 2, NOW, lambda arn: True)
    budgets.leave_in_flight("arn:1")
    budgets.take_in_flight("arn:3", 2, NOW, running.__contains__)


def test_a_place_held_by_an_execution_that_no_longer_runs_is_cleared_when_the_set_is_full(budgets):
    budgets.take_in_flight("arn:crashed", 1, NOW, lambda arn: True)
    # The crashed run never left; the next run finds it not running and takes its place
    budgets.take_in_flight("arn:next", 1, NOW, lambda arn: arn != "arn:crashed")
    with pytest.raises(TooManyActionsAtOnce):
        budgets.take_in_flight("arn:third", 1, NOW, lambda arn: True)


def test_the_first_stop_of_the_hour_escalates_and_the_rest_do_not(budgets):
    assert budgets.first_escalation("remap-eip#budget", NOW) is True
    assert budgets.first_escalation("remap-eip#budget", NOW + timedelta(minutes=10)) is False
    assert budgets.first_escalation("flip-dns#budget", NOW) is True
    assert budgets.first_escalation("remap-eip#budget", NOW + timedelta(hours=1)) is True


def test_hourly_used_counts_what_take_hourly_counts(budgets):
    # Given 4 runs late in the previous hour and 1 in this one
    for n in range(4):
        budgets.take_hourly("remap-eip", f"early-{n}", 10, NOW - timedelta(hours=1))
    budgets.take_hourly("remap-eip", "late-0", 10, NOW)
    # Then at :30 half of the earlier ones still count, plus this hour's: 3; other runbooks none
    assert budgets.hourly_used("remap-eip", NOW) == 3
    assert budgets.hourly_used("flip-dns", NOW) == 0
    # And with the budget used up, take_hourly refuses exactly where hourly_used says the limit is
    with pytest.raises(BudgetExhausted):
        budgets.take_hourly("remap-eip", "late-1", 3, NOW)


def test_in_flight_lists_the_runs_acting_now(budgets):
    budgets.take_in_flight("arn:1", 5, NOW, lambda arn: True)
    budgets.take_in_flight("arn:2", 5, NOW, lambda arn: True)
    budgets.leave_in_flight("arn:1")
    assert budgets.in_flight() == {"arn:2"}
