"""See and steer: `selfheal status`, `selfheal leases release` and the `selfheal audit` filters, run
in-process against the real template.yaml, deployed for this module as a second stack into the
package's local cloud (a process holds one local cloud at a time: moto's state is the process's) and
deleted afterwards, so its rules take no event a later test sends.

The runs here are real executions (a target that does not exist fails at once, as a run would); the
leases, budgets and rows that a run would leave are written with the domain's own classes. Tests share
the stack, so each works on targets and request ids of its own, and on its own runbook where it
counts per runbook (breaker: redrive-dlq; budget: flip-dns; old rows for filters: promote-replica).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localcloud import ops
from localcloud.deploy import deploy
from localcloud.faults import hang
from localcloud.harness import DeployedCloud
from selfheal.audit import AuditRow, AuditTrail
from selfheal.budget import Budgets
from selfheal.chain import verify
from selfheal.lease import LeaseStore
from selfheal.models import Phase, utcnow
from selfheal_cli import steer
from selfheal_cli.main import main
from selfheal_cli.tables import TABLE_WIDTH

ROOT = Path(__file__).parents[2]
STACK = "selfheal-steer"


@pytest.fixture(scope="module")
def cloud(local: DeployedCloud) -> Iterator[DeployedCloud]:
    cloudformation = local.client("cloudformation")
    stack = deploy(cloudformation, local.client("s3"), ROOT / "template.yaml", STACK, {"Mode": "enforce"})
    try:
        yield DeployedCloud(local.cloud, stack)
    finally:
        cloudformation.delete_stack(StackName=STACK)


# What the stack's functions, running in this process, print on stdout: Powertools' log lines and
# EMF metrics, one JSON object a line (a run's RunEnded may still be delivered while a command runs).
FUNCTION_OUTPUT = ('{"level":', '{"_aws":')


def run(capsys: pytest.CaptureFixture[str], cloud: DeployedCloud, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # what came before is not the command's
    code = main([*argv, "--endpoint", cloud.endpoint, "--stack-name", STACK])
    out, err = capsys.readouterr()
    out = "".join(line for line in out.splitlines(keepends=True) if not line.startswith(FUNCTION_OUTPUT))
    return code, out, err


def leases(cloud: DeployedCloud) -> LeaseStore:
    return LeaseStore(cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"])


def trail(cloud: DeployedCloud) -> AuditTrail:
    return AuditTrail(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])


def all_rows(cloud: DeployedCloud) -> list[dict[str, Any]]:
    return ops.scan_audit(cloud.client("dynamodb"), cloud.stack.outputs["AuditTableName"])


def failed_run(cloud: DeployedCloud, runbook: str, target: dict[str, Any]) -> ops.ExecutionResult:
    """A real run that fails at once (its target does not exist): a failed row, its lease released."""
    result = cloud.start_and_wait(runbook, {"target": target, "reason": "steer test: no such target"})
    assert (result.status, result.error) == ("FAILED", "UnknownResource"), result.cause
    return result


def missing_eip() -> tuple[dict[str, str], str]:
    allocation = f"eipalloc-{uuid.uuid4().hex[:17]}"
    return {"allocationId": allocation}, allocation


def left_behind(cloud: DeployedCloud, target: str, owner: str, minutes_ago: int = 0) -> None:
    """The lease a run that crashed would leave (taken ``minutes_ago``, for LeaseSeconds 900)."""
    leases(cloud).acquire(target, owner, utcnow() - timedelta(minutes=minutes_ago), 900)


# --- status ---------------------------------------------------------------------------------------


def test_status_shows_switch_budget_breaker_leases_and_last_remediations(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three failed redrive-dlq runs this hour (MaxFailedRunsPerHour is 3: the breaker opens),
    queue_runs = [
        failed_run(cloud, "redrive-dlq", {"queueName": f"gone-{n}-{uuid.uuid4().hex[:6]}"}) for n in range(3)
    ]
    # two flip-dns runs counted against its hourly budget, as their intent steps take it,
    budgets = Budgets(cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"])
    for n in range(2):
        budgets.take_hourly("flip-dns", f"steer-budget-{n}", 10, utcnow())
    # and the lease a remap-eip run left on its target when it crashed
    target, key = missing_eip()
    crashed = failed_run(cloud, "remap-eip", target)
    left_behind(cloud, key, crashed.name)
    # When asked for the status as JSON
    code, out, _ = run(capsys, cloud, "status", "--output", "json")
    # Then the kill switch is the stack's parameter, read as the runs read it
    status = json.loads(out)
    assert code == 0
    assert status["killSwitch"] == {
        "parameter": cloud.stack.outputs["ModeParameterName"],
        "mode": "enforce",
        "problem": None,
    }
    by_runbook = {r["runbook"]: r for r in status["runbooks"]}
    assert sorted(by_runbook) == [
        "flip-dns",
        "promote-replica",
        "redrive-dlq",
        "remap-eip",
        "replace-instance",
    ]
    assert {r["mode"] for r in status["runbooks"]} == {"enforce"}
    # And redrive-dlq's breaker is open for its failed runs, the last of which come first
    redrive = by_runbook["redrive-dlq"]
    assert redrive["failedRuns"] == {"count": 3, "limit": 3, "window": "last hour"}
    assert redrive["breaker"]["open"] is True
    assert redrive["breaker"]["why"] == ["3 failed runs in the last hour (MaxFailedRunsPerHour 3)"]
    assert [r["requestId"] for r in redrive["lastRemediations"]] == [r.name for r in reversed(queue_runs)]
    assert {r["outcome"] for r in redrive["lastRemediations"]} == {"failed"}
    # And flip-dns has used 2 of its 10, its breaker closed
    assert by_runbook["flip-dns"]["budget"] == {"used": 2, "limit": 10, "window": "last hour"}
    assert by_runbook["flip-dns"]["breaker"] == {"open": False, "why": []}
    # And the lease is listed under remap-eip with its owner's execution, which no longer runs
    (lease,) = [h for h in by_runbook["remap-eip"]["leases"] if h["target"] == key]
    assert lease["owner"] == crashed.name and lease["ownerExecution"] == crashed.arn
    assert lease["ownerRunning"] is False and lease["expired"] is False
    (remap_last,) = [r for r in by_runbook["remap-eip"]["lastRemediations"] if r["requestId"] == crashed.name]
    assert (remap_last["target"], remap_last["outcome"], remap_last["dryRun"]) == (key, "failed", False)

    # When asked for the table, Then it says the same, within 160 columns
    code, out, _ = run(capsys, cloud, "status")
    assert code == 0
    lines = out.splitlines()
    assert f"kill switch {cloud.stack.outputs['ModeParameterName']}: enforce (for every runbook)" in out
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    (redrive_line,) = [line for line in lines if line.startswith("redrive-dlq ")]
    assert redrive_line.split()[1:5] == ["enforce", "0/10", "3/3", "OPEN"]
    assert "  redrive-dlq: 3 failed runs in the last hour (MaxFailedRunsPerHour 3)" in lines
    (lease_line,) = [line for line in lines if line.startswith(key)]
    assert lease_line.split()[1:4] == ["remap-eip", crashed.name, "no"]


def test_status_reads_the_limits_and_the_switch_the_runs_use(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the steps function running with a budget of 0 (so every runbook's breaker is open), and
    # the kill switch thrown (off)
    original = cloud.set_steps_variables(BUDGET_PER_HOUR="0")
    ssm, parameter = cloud.client("ssm"), cloud.stack.outputs["ModeParameterName"]
    ssm.put_parameter(Name=parameter, Value="off", Type="String", Overwrite=True)
    try:
        code, out, _ = run(capsys, cloud, "status", "--output", "json", "--last", "0")
    finally:
        cloud.set_steps_variables(**original)
        ssm.put_parameter(Name=parameter, Value="enforce", Type="String", Overwrite=True)
    # Then status says what the runs see: off, and no budget left anywhere
    status = json.loads(out)
    assert code == 0
    assert status["killSwitch"] == {"parameter": parameter, "mode": "off", "problem": None}
    for runbook in status["runbooks"]:
        assert runbook["mode"] == "off"
        assert runbook["budget"]["limit"] == 0 and runbook["breaker"]["open"] is True
        assert runbook["lastRemediations"] == []


# --- leases release -------------------------------------------------------------------------------


def test_release_deletes_the_lease_and_writes_a_chained_row_saying_who_from_whom_and_why(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the lease a crashed remap-eip run left on its target (its failed row is the target's newest)
    target, key = missing_eip()
    crashed = failed_run(cloud, "remap-eip", target)
    left_behind(cloud, key, crashed.name)
    # and an operator signed in as a local IAM user
    iam = cloud.client("iam")
    user = iam.create_user(UserName=f"ops-{uuid.uuid4().hex[:6]}")["User"]
    access = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", access["SecretAccessKey"])
    # When they release it
    code, out, err = run(capsys, cloud, "leases", "release", key, "--reason", "INC-7: its run crashed")
    # Then the lease is gone and the answer says from whom, by whom
    assert code == 0, err
    released = json.loads(out)
    assert leases(cloud).get(key) is None
    assert (released["target"], released["releasedFrom"], released["by"]) == (key, crashed.name, user["Arn"])
    assert released["ownerExecution"] == crashed.arn and released["runbook"] == "remap-eip"
    # And one lease-released row records it, chained to the target's row before it
    (row,) = [r for r in all_rows(cloud) if r["requestId"] == released["auditRow"]["requestId"]]
    assert (row["phase"], row["step"], row["targetKey"], row["runbook"]) == (
        "lease-released",
        "selfheal leases release",
        key,
        "remap-eip",
    )
    assert row["actor"] == {"kind": "manual", "principal": user["Arn"]}
    assert row["reason"] == "INC-7: its run crashed"
    assert row["before"]["owner"] == crashed.name and row["after"] == {"releasedBy": user["Arn"]}
    (failed_row,) = [r for r in all_rows(cloud) if r["requestId"] == crashed.name]
    assert (row["seq"], row["prevRequestId"], row["prev"]) == (0, crashed.name, failed_row["hash"])
    assert verify([failed_row, row]) == []
    code, out, _ = run(capsys, cloud, "audit", "verify", "--target", key)
    assert code == 0 and out.startswith("OK: 2 rows in 2 remediation(s)")


def test_release_of_a_target_without_a_lease_is_refused_and_writes_nothing(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    rows_before = len(all_rows(cloud))
    code, out, err = run(capsys, cloud, "leases", "release", "i-0000000000000f00d", "--reason", "tidy up")
    assert (code, out) == (1, "")
    assert err == "selfheal: error: there is no lease on i-0000000000000f00d: nothing to release" + (
        " (selfheal status lists the leases)\n"
    )
    assert len(all_rows(cloud)) == rows_before


def test_release_of_an_item_that_is_no_lease_is_refused(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a budget bucket in the lease table (its key is no target)
    budgets = Budgets(cloud.client("dynamodb"), cloud.stack.outputs["LeaseTableName"])
    budgets.take_hourly("promote-replica", "steer-not-a-lease", 10, utcnow())
    key = f"budget#promote-replica#{utcnow():%Y-%m-%dT%H}"
    # When asked to release it, Then it is refused as no lease and the bucket stays
    code, _, err = run(capsys, cloud, "leases", "release", key, "--reason", "not a lease")
    assert code == 1 and "there is no lease on budget#promote-replica#" in err
    assert budgets.hourly_used("promote-replica", utcnow()) >= 1


def test_release_for_an_owner_that_no_longer_holds_it_changes_nothing(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a lease that another run has taken over since the operator looked
    key = f"i-{uuid.uuid4().hex[:17]}"
    left_behind(cloud, key, "the-run-that-took-over")
    rows_before = len(all_rows(cloud))
    # When released for the owner the operator saw
    code, _, err = run(
        capsys, cloud, "leases", "release", key, "--owner", "the-crashed-run", "--reason", "crashed"
    )
    # Then it is refused naming the holder, the lease stays its, and no row is written
    assert code == 1
    assert f"the lease on {key} is held by the-run-that-took-over, not the-crashed-run" in err
    assert err.count("\n") == 1
    lease = leases(cloud).get(key)
    assert lease is not None and lease.owner == "the-run-that-took-over"
    assert len(all_rows(cloud)) == rows_before


class TakenOverBeforeTheDelete:
    """A DynamoDB client through which another run takes the (expired) lease over right before the
    release's delete: the race the conditional delete is there for."""

    def __init__(self, client: Any, table: str, target: str, new_owner: str) -> None:
        self._client, self._table, self._target, self._new_owner = client, table, target, new_owner

    def delete_item(self, **request: Any) -> Any:
        LeaseStore(self._client, self._table).acquire(self._target, self._new_owner, utcnow(), 900)
        return self._client.delete_item(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_release_never_deletes_a_lease_taken_over_meanwhile(cloud: DeployedCloud) -> None:
    # Given an expired lease of a crashed run, taken over by a new run while it is being released
    key = f"i-{uuid.uuid4().hex[:17]}"
    left_behind(cloud, key, "crashed-long-ago", minutes_ago=60)
    table = cloud.stack.outputs["LeaseTableName"]
    racing = TakenOverBeforeTheDelete(cloud.client("dynamodb"), table, key, "the-new-run")

    def clients(service: str) -> Any:
        return racing if service == "dynamodb" else cloud.client(service)

    rows_before = len(all_rows(cloud))
    # When released, Then the delete (conditional on the crashed owner) is refused and says so
    with pytest.raises(steer.LeaseChanged, match="changed while releasing it \\(now held by the-new-run\\)"):
        steer.release_lease(clients, cloud.stack.outputs, key, "crashed")
    # And the new run's lease stays, with no row claiming a release
    lease = leases(cloud).get(key)
    assert lease is not None and lease.owner == "the-new-run"
    assert len(all_rows(cloud)) == rows_before


def test_release_under_a_run_that_still_runs_is_refused(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a remap-eip run holding its lease, held up in its guards by a call that does not answer
    target, key = missing_eip()
    cloud.cloud.faults.add(hang("ec2", "DescribeAddresses", 20))
    arn = cloud.start("remap-eip", {"target": target, "reason": "steer test: held up"})
    try:
        cloud.wait_for_state(arn, "Check the guards")
        lease = leases(cloud).get(key)
        assert lease is not None
        # When released, Then it is refused (the run would take it again at its next renewal)
        code, _, err = run(capsys, cloud, "leases", "release", key, "--reason", "stuck?")
        assert code == 1 and f"{lease.owner} still runs ({arn})" in err
        assert leases(cloud).get(key) == lease
        # And status shows it held by a running execution
        code, out, _ = run(capsys, cloud, "status", "--output", "json", "--last", "0")
        remap = next(r for r in json.loads(out)["runbooks"] if r["runbook"] == "remap-eip")
        (held,) = [h for h in remap["leases"] if h["target"] == key]
        assert held["ownerRunning"] is True and held["ownerExecution"] == arn
    finally:
        cloud.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="test over")
        cloud.wait(arn)
        cloud.cloud.faults.clear()


def test_release_needs_a_reason(cloud: DeployedCloud, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["leases", "release", "i-1", "--endpoint", cloud.endpoint])
    assert exited.value.code == 2 and "--reason" in capsys.readouterr().err
    code, _, err = run(capsys, cloud, "leases", "release", "i-1", "--reason", "  ")
    assert code == 2 and "--reason must say why" in err


# --- audit filters --------------------------------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def history(cloud: DeployedCloud) -> dict[str, str]:
    """Rows of two promote-replica remediations in March 2026 and one of remap-eip: one approved by
    a verified principal, one with a claimed approver."""
    db_a, db_b = f"db-{uuid.uuid4().hex[:8]}", f"db-{uuid.uuid4().hex[:8]}"
    first, second, other = (f"steer-{name}-{uuid.uuid4().hex[:8]}" for name in ("first", "second", "other"))
    rows = [
        (first, db_a, "promote-replica", Phase.STARTED, 0, {}),
        (
            first,
            db_a,
            "promote-replica",
            Phase.APPROVED,
            5,
            {"after": {"principal": "arn:aws:iam::123456789012:user/bob", "verified": True}},
        ),
        (first, db_a, "promote-replica", Phase.SUCCEEDED, 10, {}),
        (second, db_b, "promote-replica", Phase.STARTED, 60, {}),
        (
            second,
            db_b,
            "promote-replica",
            Phase.APPROVED,
            65,
            {"after": {"claimed": {"approvedBy": "the-ceo"}, "verified": False}},
        ),
        (second, db_b, "promote-replica", Phase.FAILED, 70, {"reason": "x" * 500}),
        (other, db_a, "remap-eip", Phase.STARTED, 30, {}),
    ]
    audit = trail(cloud)
    for request, target, runbook, phase, minutes, extra in rows:
        audit.write(
            AuditRow(
                request_id=request,
                phase=phase,
                target_key=target,
                runbook=runbook,
                step=f"Record: {phase.value}",
                at=T0 + timedelta(minutes=minutes),
                **extra,
            )
        )
    return {"first": first, "second": second, "other": other, "db_a": db_a, "db_b": db_b}


def audit_json(capsys: pytest.CaptureFixture[str], cloud: DeployedCloud, *argv: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, cloud, "audit", *argv, "--output", "json")
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def phases_of(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["requestId"], r["phase"]) for r in rows]


def test_audit_filters_by_target_runbook_phase_and_time(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], history: dict[str, str]
) -> None:
    first, second, other = history["first"], history["second"], history["other"]
    # By target: both runbooks' rows of db_a, newest last
    assert phases_of(audit_json(capsys, cloud, "--target", history["db_a"])) == [
        (first, "started"),
        (first, "approved"),
        (first, "succeeded"),
        (other, "started"),
    ]
    # By target and runbook
    assert phases_of(audit_json(capsys, cloud, "--target", history["db_a"], "--runbook", "remap-eip")) == [
        (other, "started")
    ]
    # By runbook and time (both bounds included; UTC unless the time says otherwise)
    window = audit_json(
        capsys,
        cloud,
        "--runbook",
        "promote-replica",
        "--since",
        "2026-03-01T12:05:00Z",
        "--until",
        "2026-03-01T13:05",
    )
    assert phases_of(window) == [
        (first, "approved"),
        (first, "succeeded"),
        (second, "started"),
        (second, "approved"),
    ]
    same_window = audit_json(
        capsys,
        cloud,
        "--runbook",
        "promote-replica",
        "--since",
        "2026-03-01T13:05:00+01:00",
        "--until",
        "2026-03-01T14:05:00+01:00",
    )
    assert same_window == window
    # By phase across the table, within March 1st
    approved = audit_json(
        capsys, cloud, "--phase", "approved", "--since", "2026-03-01", "--until", "2026-03-02"
    )
    assert phases_of(approved) == [(first, "approved"), (second, "approved")]
    # Nothing matches: an empty list, not an error
    assert audit_json(capsys, cloud, "--target", history["db_b"], "--phase", "succeeded") == []


def test_audit_json_is_an_alias_of_output_json(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], history: dict[str, str]
) -> None:
    code, out, _ = run(capsys, cloud, "audit", "--target", history["db_b"], "--json")
    assert code == 0 and json.loads(out) == audit_json(capsys, cloud, "--target", history["db_b"])


def test_audit_table_keeps_its_columns_fits_160_and_shows_the_approver(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], history: dict[str, str]
) -> None:
    code, out, _ = run(capsys, cloud, "audit", "--runbook", "promote-replica", "--until", "2026-03-02")
    code_none, none_out, _ = run(capsys, cloud, "audit", "--target", "i-nothing-here")
    assert code == code_none == 0
    lines, empty = out.splitlines(), none_out.splitlines()
    header = ["at", "targetKey", "runbook", "phase", "step", "outcome", "approver", "reason", "requestId"]
    # The same columns whatever comes back, even nothing
    assert lines[0].split() == empty[0].split() == header
    assert empty[2:] == ["(no audit rows)"]
    # Within 160 columns, though a reason is 500 characters long
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    # Who approved: the verified principal, or the claim marked as one
    approver_at = lines[0].index("approver")
    approved = [line for line in lines if " approved " in line]
    assert [line[approver_at:].split("  ")[0] for line in approved] == ["user/bob", "the-ceo (claimed)"]
    # Rows to the second, oldest first
    assert lines[2].startswith("2026-03-01T12:00:00Z ")


def test_audit_csv_has_fixed_columns_and_full_values(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], history: dict[str, str]
) -> None:
    code, out, _ = run(capsys, cloud, "audit", "--target", history["db_b"], "--output", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [
        "at",
        "targetKey",
        "runbook",
        "phase",
        "step",
        "outcome",
        "approver",
        "reason",
        "requestId",
        "action",
        "dryRun",
        "executionArn",
        "sk",
    ]
    assert [(r["phase"], r["approver"]) for r in rows] == [
        ("started", ""),
        ("approved", "the-ceo (claimed)"),
        ("failed", ""),
    ]
    assert rows[2]["reason"] == "x" * 500 and rows[2]["at"] == "2026-03-01T13:10:00.000000Z"


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 time"),
        (["--until", "2026-13-01"], "--until: '2026-13-01' is not an ISO 8601 time"),
        (["--since", "2026-03-02", "--until", "2026-03-01"], "is after --until"),
        (["--phase", "exploded"], "--phase: no phase 'exploded' (one of: received, "),
        (["--runbook", "reboot-everything"], "--runbook: the stack has no runbook 'reboot-everything'"),
        (["verify", "--phase", "failed"], "audit verify checks whole chains: --phase cannot narrow it"),
        (["verify", "--since", "last week"], "--since: 'last week' is not an ISO 8601 time"),
    ],
    ids=[
        "bad-since",
        "bad-until",
        "since-after-until",
        "unknown-phase",
        "unknown-runbook",
        "verify-narrowed",
        "verify-bad-since",
    ],
)
def test_audit_refuses_filters_it_cannot_use_with_exit_2(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, cloud, "audit", *argv)
    assert (code, out, err.count("\n")) == (2, "", 1), err
    assert needle in err and "Traceback" not in err


def test_audit_verify_from_a_time_still_checks_whole_remediations(
    cloud: DeployedCloud, capsys: pytest.CaptureFixture[str], history: dict[str, str]
) -> None:
    # --since now goes through the same parsing: a remediation with a row from then on is checked whole
    code, out, _ = run(
        capsys, cloud, "audit", "verify", "--target", history["db_b"], "--since", "2026-03-01T13:05"
    )
    assert code == 0 and out.startswith("OK: 3 rows in 1 remediation(s)")


def test_status_of_a_stack_that_is_not_selfheal_says_so() -> None:
    def no_calls(service: str) -> Any:
        raise AssertionError(f"no {service} call expected")

    with pytest.raises(ops.OpsError, match="the stack has no RunbookStepsFunctionArn output"):
        steer.status(no_calls, "x", {})
