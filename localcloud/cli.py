"""The ``selfheal`` command: run the local cloud, send events, trigger runbooks, read the audit trail.

Non-``local`` commands work against a deployed stack too: with ``--endpoint`` (or AWS_ENDPOINT_URL) they
talk to the local cloud, otherwise to AWS with the ordinary credential chain.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import io
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions

from localcloud import ops, outcomes
from localcloud.cloud import PortInUse

if TYPE_CHECKING:
    from localcloud.steer import AuditFilter, Status

DEPLOYED_STACK_NAME = "selfheal-dev"
LOCAL_STACK_NAME = "selfheal-local"
DEFAULT_REGION = "us-east-1"
_MAX_CELL = 48
TABLE_WIDTH = 160
# The audit table's columns, the same whatever rows come back: (name, widest, narrowest), each at
# most _MAX_CELL; the narrowest add up to fit TABLE_WIDTH. --output json or csv shows everything.
_AUDIT_COLUMNS = (
    ("at", 20, 20),
    ("targetKey", 40, 16),
    ("runbook", 16, 16),
    ("phase", 17, 14),
    ("step", 32, 12),
    ("outcome", 8, 7),
    ("approver", 40, 20),
    ("reason", 48, 20),
    ("requestId", 48, 12),
)
# --output csv: the table's columns, untruncated, then what else tells a row apart.
_AUDIT_CSV_COLUMNS = (*(name for name, _, _ in _AUDIT_COLUMNS), "action", "dryRun", "executionArn", "sk")


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback, exit status 1."""

    exit_status = 1


class InvalidArgument(CliError):
    """What the user gave cannot be used (a missing file, malformed JSON): exit status 2, as for a
    usage error."""

    exit_status = 2


# --- clients and stack resolution --------------------------------------------------------------


def resolve_endpoint(flag: str | None) -> str | None:
    return flag or os.environ.get("AWS_ENDPOINT_URL") or None


def client_factory(
    endpoint: str | None, region: str | None = None, profile: str | None = None
) -> Callable[[str], Any]:
    """service -> boto3 client; against the local cloud with fake credentials when ``endpoint`` is set."""
    if endpoint and not profile:
        # The local cloud's own key unless the environment names another (a local IAM user's: who
        # signs a request or an approval is who the stack records).
        session = boto3.session.Session(
            aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
            aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing",
            region_name=region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        )
    else:
        session = boto3.session.Session(region_name=region, profile_name=profile)
    cache: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]
        return cache[service]

    return client


def resolve_stack_name(flag: str | None, endpoint: str | None) -> str:
    if flag:
        return flag
    return LOCAL_STACK_NAME if endpoint else DEPLOYED_STACK_NAME


def load_json_argument(value: str, what: str = "--input") -> Any:
    """A JSON document given inline (it starts with ``{`` or ``[``) or as a path to a file."""
    inline = value.lstrip().startswith(("{", "["))
    if inline:
        text, source = value, what
    else:
        path = Path(value)
        if not path.is_file():
            raise InvalidArgument(f"{what}: no such file: {value} (give a file, or the JSON itself)")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{what}: cannot read {value}: {exc}") from exc
        source = value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"{source} is not valid JSON: {exc}") from exc


def remote_clients(args: argparse.Namespace) -> tuple[str | None, Callable[[str], Any]]:
    """The endpoint (None: AWS) and the clients a remote command uses, from its options."""
    endpoint = resolve_endpoint(args.endpoint)
    return endpoint, client_factory(endpoint, args.region, args.profile)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# --- commands ----------------------------------------------------------------------------------


class _StopServing(Exception):
    """Raised by the SIGINT/SIGTERM handler of ``local serve``: stop the cloud and exit 0."""


def _stop_serving(signum: int, frame: Any) -> None:
    raise _StopServing(signal.Signals(signum).name)


def parameter_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``Key=Value ...`` as `sam deploy --parameter-overrides` takes them."""
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"--parameter-overrides: {pair!r} is not Key=Value")
        parameters[key] = value
    return parameters


def cmd_local_serve(args: argparse.Namespace) -> int:
    from localcloud import worlds
    from localcloud.cloud import LocalCloud, point_boto3_at
    from localcloud.control import Control
    from localcloud.deploy import load_template
    from localcloud.harness import start_deployed_cloud

    template = Path(args.template)
    if not template.is_file():
        raise CliError(f"template not found: {template}")
    try:
        chosen = worlds.select(args.world) if args.world else []
    except worlds.UnknownWorld as exc:
        raise InvalidArgument(f"--world: {exc}") from exc
    # The operator's word wins over the worlds' (their zone ids ...) and over --mode, as in sam deploy.
    overrides = {"Mode": args.mode, **parameter_overrides(args.parameter_overrides)}
    declared = load_template(template).get("Parameters", {})
    unknown = sorted(set(overrides) - set(declared))
    if unknown:  # before a cloud starts: CloudFormation's own refusal, sooner
        raise InvalidArgument(f"--parameter-overrides: {template} has no parameter {', '.join(unknown)}")
    built: list[str] = []

    def build_worlds(cloud: LocalCloud) -> dict[str, str]:
        lines, needed = worlds.build(worlds.Aws(cloud.client, Control(cloud.endpoint)), chosen)
        built.extend(lines)
        return needed

    # Own handlers, not Python's default: a process started in the background by a non-interactive
    # shell inherits SIGINT *ignored*, and Python then never raises KeyboardInterrupt, so Ctrl-C or
    # `kill -INT` would leave the server running. SIGTERM (`kill`, a test's terminate()) stops it too.
    previous = {s: signal.signal(s, _stop_serving) for s in (signal.SIGINT, signal.SIGTERM)}
    deployed = None
    try:
        given = " ".join(f"{k}={v}" for k, v in overrides.items())
        print(f"Starting the local cloud and deploying {template} ({given})...", flush=True)
        deployed = start_deployed_cloud(
            template, overrides, stack_name=LOCAL_STACK_NAME, port=args.port, before_deploy=build_worlds
        )
        point_boto3_at(deployed.endpoint, deployed.cloud.region)  # this process's own boto3 use, if any
        print(f"Local cloud: {deployed.endpoint}   stack: {deployed.stack.name}")
        for key, value in sorted(deployed.stack.outputs.items()):
            print(f"  {key} = {value}")
        for line in built:
            print(f"World {line}")
        for world in chosen:
            for fault in world.faults:
                print(f"  selfheal local break {fault.name:<32} {fault.title}")
        print("Use it from another shell:")
        for key, value in deployed.cloud.environment().items():
            print(f"export {key}={value}")
        print("Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)  # interrupted by the handler's exception
    except _StopServing as stop:
        print(f"stopping ({stop})", flush=True)
    finally:
        # A second signal must not interrupt the shutdown half-way.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if deployed is not None:
            deployed.cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _progress(what: str) -> ops.Progress | None:
    """A progress line while waiting, on a terminal only (a pipe gets the summary and nothing else)."""
    if not sys.stderr.isatty():
        return None

    def show(seconds: float) -> None:
        print(f"\rwaiting for {what}: {seconds:.0f} s", end="", file=sys.stderr, flush=True)

    return show


def _done_waiting() -> None:
    if sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr, flush=True)


def cmd_local_send(args: argparse.Namespace) -> int:
    endpoint, clients = remote_clients(args)
    if not endpoint:
        raise CliError(
            "no local cloud: pass --endpoint or export AWS_ENDPOINT_URL (see `selfheal local serve`)"
        )
    event = load_json_argument(args.event, "the event")
    if not isinstance(event, dict) or "source" not in event or "detail-type" not in event:
        raise InvalidArgument("the event needs at least `source`, `detail-type` and `detail`")
    if args.dry_run:
        if event.get("source") != ops.MANUAL_SOURCE or not isinstance(event.get("detail"), dict):
            raise InvalidArgument(
                "--dry-run is for requests (source selfheal.manual): a signal has no dryRun"
            )
        event = {**event, "detail": {**event["detail"], "dryRun": True}}
    summary = ops.send_event_and_wait(
        clients, resolve_stack_name(args.stack_name, endpoint), event, args.timeout
    )
    runs = [
        outcomes.summarize(
            e, summary.runbooks.get(e.state_machine_arn, e.state_machine_arn.rsplit(":", 1)[-1])
        )
        for e in summary.executions
    ]
    if args.output == "json":
        record = summary.as_dict()
        for execution, run in zip(record["executions"], runs, strict=True):
            execution.update(run.as_dict())
        _print_json(record)
    else:
        decisions = sorted(
            {str(r.get("decision") or r.get("phase")) for r in summary.audit if r.get("step") == "triage"}
        )
        print(
            f"event {summary.event_id}: {len(runs)} execution(s); triage: {', '.join(decisions) or 'no row'}"
        )
        for run in runs:
            print(run.line())
    return outcomes.exit_code(runs)


def cmd_local_break(args: argparse.Namespace) -> int:
    """Inject a world's fault from outside the server, wait for the run it causes, say what came of it."""
    from localcloud import worlds
    from localcloud.control import Control, ControlError
    from localcloud.worlds.breaking import NoRunEnded, break_and_watch

    if args.list:
        for world in worlds.worlds().values():
            for fault in world.faults:
                print(f"{fault.name:<32} {fault.runbook:<17} {fault.title}")
        return 0
    if not args.fault:
        raise InvalidArgument("name the fault to inject (`selfheal local break --list` lists them)")
    endpoint, clients = remote_clients(args)
    if not endpoint:
        raise CliError(
            "no local cloud: pass --endpoint or export AWS_ENDPOINT_URL (see `selfheal local serve`)"
        )
    try:
        fault = worlds.fault(args.fault)
    except worlds.UnknownWorld as exc:
        raise InvalidArgument(str(exc)) from exc
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    aws = worlds.Aws(clients, Control(endpoint))
    try:
        verdict = break_and_watch(aws, fault, outputs, timeout=args.timeout, on_wait=_progress(fault.name))
    except (worlds.UnknownWorld, ControlError, NoRunEnded) as exc:
        raise CliError(str(exc)) from exc
    finally:
        _done_waiting()
    if args.output == "json":
        _print_json(
            {
                **verdict.run.as_dict(),
                "fault": fault.name,
                "worldWhole": verdict.world_whole,
                "evidence": verdict.evidence,
            }
        )
    else:
        print("\n".join(verdict.lines()))
    return verdict.exit_code


def cmd_trigger(args: argparse.Namespace) -> int:
    """A manual request, signed: triage records who sent it as STS says (--direct: StartExecution, a
    direct start whose caller is only in CloudTrail)."""
    runbook_input = load_json_argument(args.input)  # before any call: a typo costs no round trip
    if args.dry_run:
        if not isinstance(runbook_input, dict):
            raise InvalidArgument("--input must be a JSON object to take --dry-run")
        runbook_input = {**runbook_input, "dryRun": True}
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    arn = ops.state_machine_arn(outputs, args.runbook)
    progress = _progress(args.runbook)
    try:
        if args.direct:
            result = ops.start_and_wait(
                clients("stepfunctions"), arn, runbook_input, args.name, args.timeout, progress
            )
        else:
            if not isinstance(runbook_input, dict):
                raise InvalidArgument("--input must be a JSON object: {target, params, reason, dryRun}")
            if args.name:
                raise InvalidArgument(
                    "--name is for --direct starts (a request's execution is named after it)"
                )
            result = ops.request_and_wait(
                clients, outputs, args.runbook, runbook_input, timeout=args.timeout, progress=progress
            )
    finally:
        _done_waiting()
    run = outcomes.summarize(result, args.runbook, runbook_input)
    if args.output == "json":
        _print_json(
            {
                **run.as_dict(),
                "status": result.status,
                "output": result.output,
                "error": result.error,
                "cause": result.cause,
            }
        )
    else:
        print(run.line())
    return run.exit_code


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _utc(at: datetime.datetime) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(value: Any) -> str:
    """A row's time to the second (the rows keep microseconds, for order)."""
    text = str(value or "")
    return text[:19] + "Z" if len(text) > 20 and text[19] == "." and text.endswith("Z") else text


def format_table(
    header: Sequence[str], cells: Sequence[Sequence[str]], limits: Sequence[tuple[int, int]]
) -> list[str]:
    """Aligned columns within TABLE_WIDTH: each as wide as its content up to its widest, and the ones
    with most room narrowed (never under their narrowest) while the line is too long."""
    widths = [
        min(widest, max([len(name)] + [len(line[i]) for line in cells]))
        for i, (name, (widest, _)) in enumerate(zip(header, limits, strict=True))
    ]
    while sum(widths) + 2 * (len(widths) - 1) > TABLE_WIDTH:
        room = [width - narrowest for width, (_, narrowest) in zip(widths, limits, strict=True)]
        if max(room) <= 0:
            break
        widths[room.index(max(room))] -= 1
    lines = [
        "  ".join(_fit(cell, w).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in [list(header), *cells]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _audit_cell(row: dict[str, Any], column: str, short: bool = False) -> Any:
    from localcloud.steer import approver

    if column != "approver":
        return row.get(column, "")
    who = approver(row)
    # In the table, a principal's ARN without its partition and account: user/bob, assumed-role/Ops/al.
    return who.split(":", 5)[5] if short and who.startswith("arn:") and who.count(":") >= 5 else who


def format_audit_table(rows: Sequence[dict[str, Any]]) -> str:
    """The audit rows as an aligned text table: the same columns whatever the rows hold, within
    TABLE_WIDTH; ``approver`` is who approved (an approved row's)."""
    header = [name for name, _, _ in _AUDIT_COLUMNS]
    cells = [
        [_when(row.get("at")) if c == "at" else _cell(_audit_cell(row, c, short=True)) for c in header]
        for row in rows
    ]
    lines = format_table(header, cells, [(widest, narrowest) for _, widest, narrowest in _AUDIT_COLUMNS])
    if not rows:
        lines.append("(no audit rows)")
    return "\n".join(lines)


def format_audit_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV with a header: fixed columns, values in full (nested ones as JSON)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_AUDIT_CSV_COLUMNS)
    for row in rows:
        values = [_audit_cell(row, name) for name in _AUDIT_CSV_COLUMNS]
        writer.writerow(v if isinstance(v, str) else json.dumps(v, default=str) for v in values)
    return out.getvalue().rstrip("\n")


def _audit_filter(args: argparse.Namespace) -> AuditFilter:
    """The filters as steer.AuditFilter, checked before any call (exit 2 for what cannot be used)."""
    from localcloud import steer

    if args.phase and args.phase not in steer.known_phases():
        raise InvalidArgument(f"--phase: no phase {args.phase!r} (one of: {', '.join(steer.known_phases())})")
    try:
        return steer.AuditFilter(
            target=args.target,
            runbook=args.runbook,
            phase=args.phase,
            since=steer.parse_time(args.since, "--since") if args.since else None,
            until=steer.parse_time(args.until, "--until") if args.until else None,
        )
    except steer.InvalidFilter as exc:
        raise InvalidArgument(str(exc)) from exc


def cmd_audit(args: argparse.Namespace) -> int:
    from localcloud import steer

    audit_filter = _audit_filter(args)
    if args.action == "verify":
        narrowing = [
            flag
            for flag, given in (
                ("--runbook", args.runbook),
                ("--phase", args.phase),
                ("--until", args.until),
                ("--output", args.output),
            )
            if given
        ]
        if narrowing:
            raise InvalidArgument(
                f"audit verify checks whole chains: {', '.join(narrowing)} cannot narrow it"
                " (--target and --since can)"
            )
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    table = outputs.get(ops.AUDIT_TABLE_OUTPUT)
    if not table:
        raise CliError(f"the stack has no {ops.AUDIT_TABLE_OUTPUT} output")
    dynamodb = clients("dynamodb")
    if args.action == "verify":
        rows = (
            ops.audit_for_target(dynamodb, table, args.target)
            if args.target
            else ops.scan_audit(dynamodb, table)
        )
        return _verify_audit(rows, audit_filter.since)
    known = sorted(ops.runbook_state_machines(outputs))
    if args.runbook and args.runbook not in [*known, "-"]:
        raise InvalidArgument(
            f"--runbook: the stack has no runbook {args.runbook!r} (runbooks: {', '.join(known)})"
        )
    rows = steer.audit_rows(dynamodb, table, audit_filter)
    output = args.output or "table"
    if output == "json":
        _print_json(rows)
    elif output == "csv":
        print(format_audit_csv(rows))
    else:
        print(format_audit_table(rows))
    return 0


def _verify_audit(rows: list[dict[str, Any]], since: str | None) -> int:
    """Check the hash chains (selfheal.chain): 0 when every chain holds, 1 naming each break."""
    from selfheal.chain import verify

    if since:
        # Whole remediations with a row from then on: a remediation is checked all or not at all.
        recent = {r["requestId"] for r in rows if str(r.get("at", "")) >= since}
        rows = [r for r in rows if r["requestId"] in recent]
    problems = verify(rows, since_cut=bool(since))
    remediations = len({r["requestId"] for r in rows})
    for problem in problems:
        print(f"BROKEN {problem}")
    if problems:
        print(f"{len(problems)} break(s) in the chains of {remediations} remediation(s), {len(rows)} rows")
        return 1
    print(f"OK: {len(rows)} rows in {remediations} remediation(s), every chain holds")
    return 0


def format_status(state: Status) -> str:
    """``selfheal status`` as text: the switch, one line a runbook, then what holds them back."""
    lines = [f"stack {state.stack} at {_utc(state.at)}"]
    switch = f"kill switch {state.mode_parameter}: {state.mode.value} (for every runbook)"
    lines.append(switch + (f"; {state.mode_problem}" if state.mode_problem else ""))
    lines.append(f"runs acting at once: {state.acting_now} of {state.acting_limit} (MaxConcurrentActions)")
    lines.append("")
    header = ["runbook", "mode", "budget/h", "failed/h", "breaker", "leases", "last outcome"]
    cells = [
        [
            r.runbook,
            r.mode.value,
            f"{r.budget_used}/{r.budget_limit}",
            f"{r.failed_runs}/{r.failed_limit}",
            "OPEN" if r.breaker_reasons else "closed",
            str(len(r.leases)),
            r.last[0].outcome if r.last else "-",
        ]
        for r in state.runbooks
    ]
    lines += format_table(header, cells, [(20, 16), (8, 7), (10, 8), (10, 8), (7, 7), (6, 6), (40, 12)])
    open_breakers = [(r.runbook, why) for r in state.runbooks for why in r.breaker_reasons]
    if open_breakers:
        lines += ["", "breakers open:"] + [f"  {runbook}: {why}" for runbook, why in open_breakers]
    holders = [h for r in state.runbooks for h in r.leases] + list(state.other_leases)
    lines += ["", "leases held now:" if holders else "leases held now: none"]
    if holders:
        header = ["target", "runbook", "owner", "running", "expires", "owner execution"]
        cells = [
            [
                h.lease.target_key,
                h.runbook or "?",
                h.lease.owner,
                "yes" if h.running else "no",
                _utc(h.lease.expires_at),
                h.execution_arn or "?",
            ]
            for h in sorted(holders, key=lambda h: h.lease.target_key)
        ]
        lines += format_table(header, cells, [(40, 16), (16, 16), (48, 16), (7, 7), (20, 20), (100, 20)])
    remediations = sorted((m for r in state.runbooks for m in r.last), key=lambda m: m.at, reverse=True)
    lines += ["", "last remediations:" if remediations else "last remediations: none"]
    if remediations:
        header = ["when", "runbook", "target", "outcome", "requestId", "reason"]
        cells = [
            [
                _when(m.at),
                m.runbook,
                m.target,
                m.outcome + (" (dry run)" if m.dry_run else ""),
                m.request_id,
                _cell(m.reason or ""),
            ]
            for m in remediations
        ]
        lines += format_table(header, cells, [(20, 20), (16, 16), (40, 16), (34, 12), (48, 16), (48, 20)])
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    """What holds each runbook back now: the kill switch, budgets, breakers, leases, last outcomes."""
    from localcloud import steer

    if args.last < 0:
        raise InvalidArgument("--last must be 0 or more")
    endpoint, clients = remote_clients(args)
    stack = resolve_stack_name(args.stack_name, endpoint)
    outputs = ops.stack_outputs(clients("cloudformation"), stack)
    state = steer.status(clients, stack, outputs, last=args.last)
    if args.output == "json":
        _print_json(state.as_dict())
    else:
        print(format_status(state))
    return 0


def cmd_leases_release(args: argparse.Namespace) -> int:
    """Delete a lease a run left behind (only from its owner, never under a running run), audited."""
    from localcloud import steer

    if not args.reason.strip():
        raise InvalidArgument("--reason must say why (it goes in the audit row)")
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    released = steer.release_lease(clients, outputs, args.target, args.reason, owner=args.owner)
    _print_json(released.as_dict())
    return 0


def cmd_policy_validate(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the domain package (written by the policy engineer).
    from selfheal.policy import DEFAULT_POLICY_PATH, validate_file

    errors: list[str] = list(validate_file(args.file or DEFAULT_POLICY_PATH))
    for error in errors:
        print(error, file=sys.stderr)
    print("policy OK" if not errors else f"{len(errors)} error(s)")
    return 0 if not errors else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from localcloud import demo  # type: ignore[attr-defined,unused-ignore]  # written by the lead

    result = demo.main(args.demo_args)
    return int(result or 0)


def cmd_approvals(args: argparse.Namespace) -> int:
    """The questions runbooks are waiting on (the task tokens only with --tokens)."""
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    pending = ops.pending_approvals(clients("dynamodb"), outputs)
    _print_json([p.listing(with_token=args.tokens) for p in pending])
    return 0


def _answer(args: argparse.Namespace, decision: str, reason: str | None) -> int:
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    taken = ops.answer_approval(clients, outputs, args.execution, decision, reason, timeout=args.timeout)
    _print_json(
        {
            "executionArn": taken.execution_arn,
            "decision": taken.decision,
            "by": taken.answered_by,
            "planHash": taken.plan_hash,
        }
    )
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve a waiting run, signed: STS says who approves (not the requester), for the plan asked."""
    return _answer(args, "approve", args.comment)


def cmd_reject(args: argparse.Namespace) -> int:
    return _answer(args, "reject", args.reason)


# --- parser ------------------------------------------------------------------------------------


def _add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=["text", "json"],
        default="text",
        help="text: one summary line per run (default); json: the full record",
    )


def _add_remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", help="local cloud URL (default: $AWS_ENDPOINT_URL; none = AWS)")
    parser.add_argument(
        "--region", help="AWS region (default: $AWS_REGION / $AWS_DEFAULT_REGION, the profile's)"
    )
    parser.add_argument("--profile", help="named profile from the AWS config files (default: $AWS_PROFILE)")
    parser.add_argument(
        "--stack-name",
        help=f"stack to read outputs from (default: {LOCAL_STACK_NAME} with an endpoint, "
        f"else {DEPLOYED_STACK_NAME})",
    )


def build_parser() -> argparse.ArgumentParser:
    # --debug anywhere on the line, as with the AWS CLI (SUPPRESS: a subcommand's absent flag does
    # not reset one given before it).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )
    parser = argparse.ArgumentParser(
        prog="selfheal", description=__doc__.splitlines()[0] if __doc__ else None, parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_parser = commands.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _add_parser(name, parents=[common], **kwargs)

    commands.add_parser = add_parser  # type: ignore[method-assign]

    local = commands.add_parser("local", help="the local cloud").add_subparsers(
        dest="local_command", required=True
    )
    serve = local.add_parser("serve", help="start the local cloud with the stack deployed; run until Ctrl-C")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--mode", choices=["enforce", "dry-run", "off"], default="enforce")
    serve.add_argument("--template", default="template.yaml")
    serve.add_argument(
        "--world",
        nargs="+",
        metavar="WORLD",
        help="build these runbooks' worlds first (all, or runbook names): resources to heal, faults to break",
    )
    serve.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="stack parameters, as `sam deploy --parameter-overrides` takes them",
    )
    serve.set_defaults(handler=cmd_local_serve)
    breaks = local.add_parser(
        "break", help="inject a world's fault (from outside the server), wait for the run, say if it healed"
    )
    breaks.add_argument("fault", nargs="?", help="the fault's name (--list: every fault)")
    breaks.add_argument("--list", action="store_true", help="list the faults of every world")
    breaks.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for the run (default 120)"
    )
    _add_output_option(breaks)
    _add_remote_options(breaks)
    breaks.set_defaults(handler=cmd_local_break)
    send = local.add_parser("send", help="put an event on the local bus and wait for what it caused")
    send.add_argument("event", help="EventBridge event JSON file (source, detail-type, detail)")
    send.add_argument("--timeout", type=float, default=60.0)
    send.add_argument("--dry-run", action="store_true", help="a request (selfheal.manual) as a dry run")
    _add_output_option(send)
    _add_remote_options(send)
    send.set_defaults(handler=cmd_local_send)

    trigger = commands.add_parser("trigger", help="start a runbook's state machine and wait for it")
    trigger.add_argument("runbook", help="runbook name, e.g. remap-eip")
    trigger.add_argument("--input", required=True, help="execution input: a JSON file or inline JSON")
    trigger.add_argument(
        "--direct",
        action="store_true",
        help="StartExecution instead of a signed request (the run's requester is then only claimed)",
    )
    trigger.add_argument("--name", help="with --direct: execution name (default: a UUID)")
    trigger.add_argument("--timeout", type=float, default=300.0)
    trigger.add_argument("--dry-run", action="store_true", help="do everything but the changes (dryRun)")
    _add_output_option(trigger)
    _add_remote_options(trigger)
    trigger.set_defaults(handler=cmd_trigger)

    audit = commands.add_parser(
        "audit",
        help="the audit trail, newest last; `audit verify` checks its hash chains (exit 1 on a break)",
    )
    audit.add_argument("action", nargs="?", choices=["verify"], help="verify: check the rows' hash chains")
    audit.add_argument("--target", help="only rows for this target key (GSI byTarget)")
    audit.add_argument("--runbook", help="only rows of this runbook (GSI byRunbook)")
    audit.add_argument("--phase", help="only rows of this phase (started, approved, failed, ...)")
    audit.add_argument(
        "--since",
        help="rows from this time on (ISO 8601, UTC unless it says; a date is its midnight); "
        "verify: the remediations with rows from then on",
    )
    audit.add_argument("--until", help="rows up to this time, included (ISO 8601, UTC unless it says)")
    audit.add_argument(
        "--output",
        choices=["table", "json", "csv"],
        help="table (default: the same columns every time, 160 wide), json (every field) or csv",
    )
    audit.add_argument("--json", dest="output", action="store_const", const="json", help="--output json")
    _add_remote_options(audit)
    audit.set_defaults(handler=cmd_audit)

    status = commands.add_parser(
        "status",
        help="per runbook: the kill switch, its hourly budget and breaker, leases held, last remediations",
    )
    status.add_argument("--last", type=int, default=5, help="remediations shown per runbook (default 5)")
    status.add_argument("--output", choices=["table", "json"], default="table")
    _add_remote_options(status)
    status.set_defaults(handler=cmd_status)

    leases = commands.add_parser("leases", help="the leases runs hold on their targets").add_subparsers(
        dest="leases_command", required=True
    )
    release = leases.add_parser(
        "release",
        help="delete the lease on a target a run left behind, with an audit row (not under a running run)",
    )
    release.add_argument("target", help="the lease's target key, as selfheal status lists it")
    release.add_argument("--reason", required=True, help="why; recorded in the audit row")
    release.add_argument("--owner", help="release only if this execution (name) holds it still")
    _add_remote_options(release)
    release.set_defaults(handler=cmd_leases_release)

    policy = commands.add_parser("policy", help="policy file tools").add_subparsers(
        dest="policy_command", required=True
    )
    validate = policy.add_parser("validate", help="validate a policy file")
    validate.add_argument("file", nargs="?", default=None, help="policy file (default: the packaged policy)")
    validate.set_defaults(handler=cmd_policy_validate)

    approvals = commands.add_parser("approvals", help="the runbooks waiting for a human, and what they ask")
    approvals.add_argument(
        "--tokens",
        action="store_true",
        help="show the task tokens too (SendTaskSuccess by hand is unverified)",
    )
    _add_remote_options(approvals)
    approvals.set_defaults(handler=cmd_approvals)
    approve = commands.add_parser(
        "approve", help="approve a run waiting for a human (signed: you must not be its requester)"
    )
    approve.add_argument("execution", help="the waiting execution's ARN (selfheal approvals lists them)")
    approve.add_argument("--comment", help="why; recorded in the audit trail")
    approve.add_argument("--timeout", type=float, default=30.0)
    _add_remote_options(approve)
    approve.set_defaults(handler=cmd_approve)
    reject = commands.add_parser("reject", help="refuse a run waiting for a human: nothing is changed")
    reject.add_argument("execution", help="the waiting execution's ARN (selfheal approvals lists them)")
    reject.add_argument("--reason", required=True, help="why not; recorded in the audit trail")
    reject.add_argument("--timeout", type=float, default=30.0)
    _add_remote_options(reject)
    reject.set_defaults(handler=cmd_reject)

    demo = commands.add_parser("demo", help="the local-cloud demo")
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    demo.set_defaults(handler=cmd_demo)
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("selfheal")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def explain(exc: BaseException, args: argparse.Namespace) -> tuple[str, int] | None:
    """One line that says what is wrong and what to do, and the exit status; None: not an error a
    user can act on (a bug: its traceback is shown)."""
    if isinstance(exc, CliError):
        return str(exc), exc.exit_status
    if isinstance(exc, ops.InvalidEvent):
        return str(exc), 2
    if isinstance(exc, ops.OpsError | PortInUse):
        return str(exc), 1
    endpoint = resolve_endpoint(getattr(args, "endpoint", None))
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        if endpoint:
            return f"nothing answers at {endpoint}: start the local cloud (`selfheal local serve`)", 1
        return f"cannot reach AWS ({exc}): check the network and --region", 1
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return "no AWS region: pass --region, or set AWS_REGION (or a region in your profile)", 1
    if isinstance(exc, botocore.exceptions.ProfileNotFound):
        return f"{exc}: check --profile / $AWS_PROFILE against `aws configure list-profiles`", 1
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials: pass --profile, set AWS_PROFILE, or run `aws configure`", 1
    if isinstance(exc, botocore.exceptions.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in _CREDENTIAL_ERRORS:
            where = f" by {endpoint}" if endpoint else ""
            return f"the credentials were refused{where} ({code}): check --profile and the keys", 1
        return f"AWS said {code or 'no'}: {exc}", 1
    return None


_CREDENTIAL_ERRORS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        status = handler(args)
        sys.stdout.flush()  # here, so a reader gone away is met inside the try
        return status
    except BrokenPipeError:
        # `selfheal audit | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # own flush at exit does not fail again (the Python docs' recipe for SIGPIPE).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:
        said = explain(exc, args)
        if said is None or getattr(args, "debug", False):
            raise
        message, status = said
        print(f"selfheal: error: {message}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
