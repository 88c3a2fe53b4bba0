"""The selfheal CLI, run in-process against the fixture stack in a LocalCloud."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from localcloud import ops
from localcloud.harness import DeployedCloud
from selfheal_cli.main import explain, main
from selfheal_cli.tables import format_audit_table

from .conftest import FIXTURE_STACK

ROOT = Path(__file__).parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def remote(local: DeployedCloud) -> list[str]:
    return ["--endpoint", local.endpoint, "--stack-name", FIXTURE_STACK]


def test_runbook_output_key_follows_the_template_convention() -> None:
    assert ops.runbook_output_key("remap-eip") == "RemapEipStateMachineArn"
    assert ops.runbook_name("RemapEipStateMachineArn") == "remap-eip"


def test_trigger_starts_the_runbook_and_prints_the_outcome(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the fixture state machine "check" (no runbook: no outcome of its own) is triggered
    code, out, _ = run(capsys, "trigger", "check", "--direct", "--input", '{"fail": false}', *remote(local))
    # Then one line says it succeeded, and nothing more (a pipe gets no progress line)
    assert code == 0
    assert out.splitlines() == ["succeeded check -: the execution succeeded"]
    # And --output json gives the full record
    code, out, _ = run(
        capsys,
        "trigger",
        "check",
        "--direct",
        "--input",
        '{"fail": false}',
        "--output",
        "json",
        *remote(local),
    )
    result = json.loads(out)
    assert code == 0 and result["status"] == "SUCCEEDED" and result["runbook"] == "check"


def test_trigger_reports_a_failed_execution(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the input in a file, and a fixed execution name
    path = tmp_path / "input.json"
    path.write_text('{"fail": true}')
    # When triggered
    name = ["--name", "cli-fail-1"]
    code, out, _ = run(capsys, "trigger", "check", "--direct", "--input", str(path), *name, *remote(local))
    # Then one line names the failure, and the exit status is 1 (failed)
    assert code == 1
    assert out.startswith("failed   check -: VerificationFailed"), out
    # And the JSON record has it all
    code, out, _ = run(
        capsys,
        "trigger",
        "check",
        "--direct",
        "--input",
        str(path),
        "--name",
        "cli-fail-2",
        "--output",
        "json",
        *remote(local),
    )
    result = json.loads(out)
    assert code == 1 and result["outcome"] == "failed"
    assert result["status"] == "FAILED" and result["error"] == "VerificationFailed"
    assert result["executionArn"].endswith(":cli-fail-2")


def test_trigger_unknown_runbook_names_the_known_ones(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "trigger", "nope", "--input", "{}", *remote(local))
    assert code == 1
    assert "NopeStateMachineArn" in err and "check" in err


def test_local_send_summarises_rules_executions_and_audit_rows(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given an AWS Health event file (the state machine's rule matches it)
    event = {"source": "aws.health", "detail-type": "AWS Health Event", "detail": {"service": "EC2"}}
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    # When sent
    code, out, _ = run(capsys, "local", "send", str(path), "--output", "json", *remote(local))
    summary = json.loads(out)
    # Then the rule, the finished execution and the rows it wrote are reported
    assert code == 0
    assert [r["rule"] for r in summary["rulesMatched"]] == [
        local.stack.physical_id("CheckStateMachineHealth")
    ]
    assert [(e["runbook"], e["status"]) for e in summary["executions"]] == [("check", "SUCCEEDED")]
    name = summary["executions"][0]["name"]
    assert [row["pk"] for row in summary["audit"]] == [f"run#ok#{name}"]


def test_local_send_reports_function_rows_as_plain_json(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given an alarm event matching the echo function's rule
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": "heal-echo-cli", "state": {"value": "ALARM"}},
        "time": "2026-11-22T00:00:00Z",
    }
    path = tmp_path / "alarm.json"
    path.write_text(json.dumps(event))
    # When sent
    code, out, _ = run(capsys, "local", "send", str(path), "--output", "json", *remote(local))
    summary = json.loads(out)
    # Then the row the function wrote is there, as plain JSON (no DynamoDB type descriptors); no
    # execution: nothing was healed (3)
    assert code == 3 and summary["executions"] == []
    assert summary["audit"] == [
        {
            "pk": f"echo#{summary['eventId']}",
            "at": "2026-01-01T00:00:00Z",
            "targetKey": summary["eventId"],
            "mode": "enforce",
        }
    ]


@pytest.mark.parametrize(
    "event,needle",
    [
        # AWS's own sample events carry placeholder times
        (
            {
                "source": "aws.health",
                "detail-type": "AWS Health Event",
                "detail": {},
                "time": "yyyy-mm-ddThh:mm:ssZ",
            },
            "is not an ISO 8601 time",
        ),
        (
            {"source": "aws.health", "detail-type": "AWS Health Event", "detail": "{}"},
            "must be a JSON object",
        ),
        ([{"source": "aws.health", "detail-type": "AWS Health Event", "detail": {}}], "needs at least"),
    ],
    ids=["placeholder-time", "detail-as-a-string", "a-list"],
)
def test_local_send_names_what_is_wrong_with_a_malformed_event(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str], tmp_path: Path, event: Any, needle: str
) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, out, err = run(capsys, "local", "send", str(path), *remote(local))
    assert code == 2 and needle in err and "Traceback" not in err + out


def test_local_send_without_a_local_cloud_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    path = tmp_path / "e.json"
    path.write_text("{}")
    code, _, err = run(capsys, "local", "send", str(path))
    assert code == 1 and "AWS_ENDPOINT_URL" in err


def test_audit_lists_rows_newest_last_and_filters_by_target(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given rows for two targets written at different times
    table = local.stack.outputs["AuditTableName"]
    ddb = local.client("dynamodb")
    for pk, at, target in (
        ("b", "2026-02-01T00:00:00Z", "tgt-1"),
        ("a", "2026-01-15T00:00:00Z", "tgt-1"),
        ("c", "2026-01-20T00:00:00Z", "tgt-2"),
    ):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "at": {"S": at}, "targetKey": {"S": target}})
    # When listing one target as JSON, and everything as a table
    code, out, _ = run(capsys, "audit", "--target", "tgt-1", "--json", *remote(local))
    code_all, table_out, _ = run(capsys, "audit", *remote(local))
    # Then the target's rows come newest last, and the table has a header and every row
    assert code == 0 and [r["pk"] for r in json.loads(out)] == ["a", "b"]
    assert code_all == 0
    lines = table_out.splitlines()
    assert lines[0].split()[:2] == ["at", "targetKey"]
    assert len(lines) == 2 + len(ops.scan_audit(ddb, table))


def test_audit_table_format() -> None:
    # The same columns, rows or none, whatever fields the rows hold (--output json shows them all)
    rows: list[dict[str, Any]] = [
        {"at": "t1", "targetKey": "i-1", "extra": {"k": "v" * 100}, "reason": "r" * 99}
    ]
    lines = format_audit_table(rows).splitlines()
    header = ["at", "targetKey", "runbook", "phase", "step", "outcome", "approver", "reason", "requestId"]
    assert lines[0].split() == header
    assert lines[2].endswith("…") and max(len(line) for line in lines) <= 160
    empty = format_audit_table([]).splitlines()
    assert empty[0].split() == header and empty[2:] == ["(no audit rows)"]


def test_commands_use_aws_endpoint_url_and_the_local_stack_name(
    local: DeployedCloud, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given only AWS_ENDPOINT_URL (as `local serve` prints) and no --stack-name
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.endpoint)
    # When auditing, the default local stack name (selfheal-local) is looked up there
    code, _, err = run(capsys, "audit")
    assert code == 1 and "selfheal-local" in err


def test_policy_validate_delegates_to_the_policy_module(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("selfheal.policy")
    code, out, _ = run(capsys, "policy", "validate")
    assert code == 0 and "policy OK" in out


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a command it starts with `&`: SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "stop_with,started_in_background",
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["ctrl-c", "ctrl-c-after-a-background-start", "sigterm"],
)
def test_local_serve_deploys_and_serves_until_interrupted(
    fixture_app: Path, stop_with: signal.Signals, started_in_background: bool
) -> None:
    # Given `selfheal local serve` in its own process (started by a shell's `&`: SIGINT inherited
    # as ignored, which Python's own Ctrl-C handling never overrides)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'core'}"}
    env.pop("AWS_ENDPOINT_URL", None)
    command = [
        sys.executable,
        "-c",
        "import sys; from selfheal_cli.main import main; sys.exit(main(sys.argv[1:]))",
    ]
    args = ["local", "serve", "--template", str(fixture_app / "template.yaml"), "--mode", "dry-run"]
    process = subprocess.Popen(
        command + args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=_ignore_sigint if started_in_background else None,
    )
    try:
        endpoint = ""
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("export AWS_ENDPOINT_URL="):
                endpoint = line.strip().split("=", 1)[1]
            if line.startswith("Ctrl-C"):
                break
        # Then it printed an endpoint on 127.0.0.1 serving the deployed stack, with the chosen mode
        assert endpoint.startswith("http://127.0.0.1:")
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1")
        cfn = boto3.client("cloudformation", endpoint_url=endpoint, region_name="us-east-1")
        outputs = ops.stack_outputs(cfn, "selfheal-local")
        assert ssm.get_parameter(Name=outputs["ModeParameterName"])["Parameter"]["Value"] == "dry-run"
        # When it is sent the signal, Then it stops cleanly and says so
        process.send_signal(stop_with)
        rest, _ = process.communicate(timeout=20)
        assert process.returncode == 0
        assert f"stopping ({stop_with.name})" in rest
    finally:
        if process.poll() is None:  # never leave a server behind, whatever failed above
            process.kill()
            process.wait(timeout=10)


# --- everyday mistakes: one line that says what to do, an exit status, no traceback -------------


@pytest.mark.parametrize(
    "argv,status,needle",
    [
        (
            ["trigger", "remap-eip", "--input", "no-such-file.json"],
            2,
            "--input: no such file: no-such-file.json",
        ),
        (["trigger", "remap-eip", "--input", '{"target": '], 2, "--input is not valid JSON"),
        (["local", "send", "no-such-event.json"], 2, "the event: no such file"),
        (["audit"], 1, "nothing answers at http://127.0.0.1:9"),
        (["approvals"], 1, "start the local cloud (`selfheal local serve`)"),
        (["local", "break"], 2, "name the fault to inject (`selfheal local break --list`"),
        (["local", "break", "nope"], 2, "no fault 'nope'; known: api-1-status-check-failed"),
        (["local", "break", "orders-db-failed"], 1, "nothing answers at http://127.0.0.1:9"),
        (["local", "serve", "--world", "nope"], 2, "--world: no world nope; known: all, remap-eip"),
        (["local", "serve", "--parameter-overrides", "Mode"], 2, "'Mode' is not Key=Value"),
        (
            ["local", "serve", "--parameter-overrides", "Moed=off"],
            2,
            "Parameters: ['Moed'] do not exist in the template",
        ),
    ],
    ids=[
        "missing-input-file",
        "malformed-input",
        "missing-event-file",
        "nothing-listening",
        "approvals",
        "break-what",
        "unknown-fault",
        "break-nothing-listening",
        "unknown-world",
        "override-not-a-pair",
        "override-unknown",
    ],
)
def test_everyday_mistakes_are_one_line_with_an_exit_status(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    status: int,
    needle: str,
) -> None:
    # Port 9 (discard) on loopback: nothing listens there; botocore gives up after its own retries.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, out, err = run(capsys, *argv)
    assert (code, err.count("\n")) == (status, 1), err
    assert needle in err and "Traceback" not in out + err


def test_no_region_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, _, err = run(capsys, "audit")
    assert code == 1 and "no AWS region: pass --region" in err


@pytest.mark.parametrize(
    "code,needle",
    [
        ("InvalidClientTokenId", "the credentials were refused by http://127.0.0.1:9 (InvalidClientTokenId)"),
        ("ExpiredToken", "the credentials were refused by http://127.0.0.1:9 (ExpiredToken)"),
        ("ThrottlingException", "AWS said ThrottlingException"),
    ],
)
def test_an_aws_refusal_is_one_line_naming_its_code(code: str, needle: str) -> None:
    # (The local cloud takes any key but for STS, so the refusal is built as botocore raises it.)
    error = botocore.exceptions.ClientError({"Error": {"Code": code, "Message": "no"}}, "DescribeStacks")
    message, status = explain(error, argparse.Namespace(endpoint="http://127.0.0.1:9")) or ("", 0)
    assert status == 1 and needle in message


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        main(["audit", "--debug"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out.startswith("selfheal ")


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    # `selfheal ... | head`: the pipe closes before the output is written
    reader, writer = os.pipe()
    os.close(reader)
    done = subprocess.run(
        [sys.executable, "-m", "selfheal_cli", "policy", "validate"],
        cwd=ROOT,
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )
    os.close(writer)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 1


def test_local_serve_on_a_busy_port_says_so_and_exits(capsys: pytest.CaptureFixture[str]) -> None:
    # moto's server binds in a thread of its own and used to wait for ever when the bind failed
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, _, err = run(
            capsys, "local", "serve", "--port", str(port), "--template", str(ROOT / "template.yaml")
        )
    assert code == 1 and f"port {port} on 127.0.0.1 is in use" in err and "Traceback" not in err


def test_local_break_lists_every_fault_of_every_world(capsys: pytest.CaptureFixture[str]) -> None:
    from localcloud import worlds

    code, out, _ = run(capsys, "local", "break", "--list")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()] == [
        [fault.name, fault.runbook] for fault in worlds.faults().values()
    ]
