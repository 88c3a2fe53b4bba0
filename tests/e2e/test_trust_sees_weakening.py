"""The trust report sees a weaker system (issue #13): with one safety mechanism removed on purpose
(localcloud.weaken, dev-only: the product has no such switch), a small storm's own figure for that
mechanism is no longer zero, and the verdict `make trust` exits with fails on it.

Each storm runs in its own process (a local cloud of its own), as tests/e2e/test_storm.py does.

Each storm is the smallest that brings the removed mechanism's moment, with no signal sent again
(``--events 0``: the storm's own mix, each signal once): what a weakening needs is one target with
two runs at once (lease), one run past its guards as the switch goes off (mode re-read), or a burst
larger than the budget (budget). Run five times each, every one of these showed its figure.
Most of a storm's time is its own stack's deployment and world, not its size.
"""

from __future__ import annotations

import json

import pytest

from localcloud import trust
from tests.e2e.test_storm import run_storm

pytestmark = pytest.mark.long

# weakening -> (storm arguments, the figure that must show it, words of the verdict's problem)
CASES = {
    # Two signals for one target in one PutEvents call: both runs go past the lease at once.
    # One resource per runbook: the remap-eip pair is one such target.
    "lease": (["--resources", "1"], "concurrentRuns", "concurrentRuns ="),
    # The Health event's runs reach their guards together: with a budget of 1 an hour, the
    # guards' count of audit rows lets them all through, the atomic take would not. 8 resources
    # are the fewest that give replace-instance two fenced members for the Health event to name.
    "budget": (["--resources", "8", "--budget-per-hour", "1"], "overBudget", "over its budget"),
    # The switch goes off as a run passes its guards: that run's intent step must stop it. One
    # resource per runbook: the switch goes off as the fourth of their five runs passes its guards.
    "mode-reread": (["--resources", "1"], "mutationsAfterKillSwitch", "mutationsAfterKillSwitch ="),
}


@pytest.mark.parametrize("weaken", sorted(CASES))
def test_trust_a_weakened_mechanism_shows_in_its_figure_and_fails_the_verdict(tmp_path, weaken):
    size, figure, problem = CASES[weaken]
    # Given a small storm with one safety mechanism removed
    done, out = run_storm(tmp_path, *size, "--events", "0", "--weaken", weaken)
    assert out.is_file(), done.stderr[-3000:]
    storm = json.loads(out.read_text())
    # Then the removal changed what the product did (else the storm proved nothing) ...
    assert storm["weakened"]["name"] == weaken and storm["weakened"]["hits"] > 0, storm["weakened"]
    # ... its figure is no longer zero, and the storm itself fails
    assert storm[figure], {k: storm[k] for k in (figure, "killSwitch", "remediationsThatActed")}
    assert done.returncode != 0
    # When `make trust`'s verdict is built from that storm (its main, its exit code)
    code = trust.main(["--storm-figures", str(out), "--out", str(tmp_path / "report")])
    report = json.loads((tmp_path / "report" / "trust-report.json").read_text())
    # Then it does not hold, and says so for this figure, not only for the weakening itself
    assert code != 0 and not report["verdict"]["holds"]
    assert any(problem in p for p in report["verdict"]["problems"]), report["verdict"]["problems"]
    assert "WEAKENED" in (tmp_path / "report" / "trust-report.md").read_text()
