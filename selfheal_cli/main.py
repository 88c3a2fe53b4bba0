"""The ``selfheal`` command: trigger runbooks, read the audit trail, see and steer a stack, answer approvals.

Commands work against a deployed stack: with ``--endpoint`` (or AWS_ENDPOINT_URL) they talk to the
local cloud, otherwise to AWS with the ordinary credential chain. ``selfheal local ...`` and
``selfheal demo`` run the local cloud, from a development checkout (localcloud, moto), loaded only
when one of them runs.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from selfheal_cli import ops, outcomes
from selfheal_cli.errors import CliError, InvalidArgument
from selfheal_cli.options import (
    add_output_option,
    add_remote_options,
    load_json_argument,
    remote_clients,
    resolve_endpoint,
    resolve_stack_name,
)
from selfheal_cli.tables import format_audit_csv, format_audit_table, format_status
from selfheal_cli.terminal import done_waiting, print_json, progress

if TYPE_CHECKING:
    from selfheal_cli.steer import AuditFilter

Handler = Callable[[argparse.Namespace], int]


# --- commands ----------------------------------------------------------------------------------


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
    on_wait = progress(args.runbook)
    asked = ops.approval_asked(clients("dynamodb"), outputs)
    try:
        if args.direct:
            result = ops.start_and_wait(
                clients("stepfunctions"), arn, runbook_input, args.name, args.timeout, on_wait, asked
            )
        else:
            if not isinstance(runbook_input, dict):
                raise InvalidArgument("--input must be a JSON object: {target, params, reason, dryRun}")
            if args.name:
                raise InvalidArgument(
                    "--name is for --direct starts (a request's execution is named after it)"
                )
            result = ops.request_and_wait(
                clients,
                outputs,
                args.runbook,
                runbook_input,
                timeout=args.timeout,
                progress=on_wait,
                approval_asked=asked,
            )
    finally:
        done_waiting()
    run = outcomes.summarize(result, args.runbook, runbook_input)
    if args.output == "json":
        print_json(
            {
                **run.as_dict(),
                "status": result.status,
                "output": result.output,
                "error": result.error,
                "cause": result.cause,
                **({"approval": result.asks_approval.listing()} if result.asks_approval else {}),
            }
        )
    else:
        print(run.line())
        for step in run.next_steps:
            print(f"  {step}")
    return run.exit_code


def _audit_filter(args: argparse.Namespace) -> AuditFilter:
    """The filters as steer.AuditFilter, checked before any call (exit 2 for what cannot be used)."""
    from selfheal_cli import steer

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
    from selfheal_cli import steer

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
        print_json(rows)
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


def cmd_status(args: argparse.Namespace) -> int:
    """What holds each runbook back now: the kill switch, budgets, breakers, leases, last outcomes."""
    from selfheal_cli import steer

    if args.last < 0:
        raise InvalidArgument("--last must be 0 or more")
    endpoint, clients = remote_clients(args)
    stack = resolve_stack_name(args.stack_name, endpoint)
    outputs = ops.stack_outputs(clients("cloudformation"), stack)
    state = steer.status(clients, stack, outputs, last=args.last)
    if args.output == "json":
        print_json(state.as_dict())
    else:
        print(format_status(state))
    return 0


def cmd_leases_release(args: argparse.Namespace) -> int:
    """Delete a lease a run left behind (only from its owner, never under a running run), audited."""
    from selfheal_cli import steer

    if not args.reason.strip():
        raise InvalidArgument("--reason must say why (it goes in the audit row)")
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    released = steer.release_lease(clients, outputs, args.target, args.reason, owner=args.owner)
    print_json(released.as_dict())
    return 0


def cmd_policy_validate(args: argparse.Namespace) -> int:
    # Imported here: only this command needs the domain package (written by the policy engineer).
    from selfheal.policy import DEFAULT_POLICY_PATH, validate_file

    errors: list[str] = list(validate_file(args.file or DEFAULT_POLICY_PATH))
    for error in errors:
        print(error, file=sys.stderr)
    print("policy OK" if not errors else f"{len(errors)} error(s)")
    return 0 if not errors else 1


def _local_cloud(command: str) -> ModuleType:
    """localcloud's ``selfheal local`` module; an operator's install has the CLI without the local
    cloud (no localcloud, no moto): one line that says so, rather than a traceback."""
    try:
        import moto  # noqa: F401  (the local cloud is moto, imported by localcloud only when it starts)

        from localcloud import cli_local
    except ImportError as exc:
        raise CliError(
            f"`selfheal {command}` runs the local cloud, which needs a development checkout of selfheal"
            f" with its dev requirements (`make venv`): {exc}"
        ) from exc
    return cli_local


def _debug_flag(args: argparse.Namespace) -> list[str]:
    return ["--debug"] if getattr(args, "debug", False) else []


def cmd_local(args: argparse.Namespace) -> int:
    return int(_local_cloud("local").main([*_debug_flag(args), *args.words]))


def cmd_demo(args: argparse.Namespace) -> int:
    _local_cloud("demo")
    from localcloud import demo

    return int(demo.main(args.words) or 0)


def cmd_approvals(args: argparse.Namespace) -> int:
    """The questions runbooks are waiting on (the task tokens only with --tokens)."""
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    pending = ops.pending_approvals(clients("dynamodb"), outputs)
    print_json([p.listing(with_token=args.tokens) for p in pending])
    return 0


def _answer(args: argparse.Namespace, decision: str, reason: str | None) -> int:
    endpoint, clients = remote_clients(args)
    outputs = ops.stack_outputs(clients("cloudformation"), resolve_stack_name(args.stack_name, endpoint))
    taken = ops.answer_approval(clients, outputs, args.execution, decision, reason, timeout=args.timeout)
    print_json(
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


def command_parser(prog: str, description: str | None) -> tuple[argparse.ArgumentParser, Any]:
    """A parser and its subcommands, each taking ``--debug`` (the local cloud's commands too)."""
    # --debug anywhere on the line, as with the AWS CLI (SUPPRESS: a subcommand's absent flag does
    # not reset one given before it).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error"
    )
    parser = argparse.ArgumentParser(prog=prog, description=description, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    _add_parser = commands.add_parser

    def add_parser(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return _add_parser(name, parents=[common], **kwargs)

    commands.add_parser = add_parser  # type: ignore[method-assign]
    return parser, commands


def build_parser() -> argparse.ArgumentParser:
    parser, commands = command_parser("selfheal", __doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    local_help = "the local cloud: serve, break, send, env-json (`selfheal local --help`)"
    _add_forwarding(commands, "local", cmd_local, local_help)

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
    add_output_option(trigger)
    add_remote_options(trigger)
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
    add_remote_options(audit)
    audit.set_defaults(handler=cmd_audit)

    status = commands.add_parser(
        "status",
        help="per runbook: the kill switch, its hourly budget and breaker, leases held, last remediations",
    )
    status.add_argument("--last", type=int, default=5, help="remediations shown per runbook (default 5)")
    status.add_argument("--output", choices=["table", "json"], default="table")
    add_remote_options(status)
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
    add_remote_options(release)
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
    add_remote_options(approvals)
    approvals.set_defaults(handler=cmd_approvals)
    approve = commands.add_parser(
        "approve", help="approve a run waiting for a human (signed: you must not be its requester)"
    )
    approve.add_argument(
        "execution", help="the waiting execution's ARN or request id (selfheal approvals lists them)"
    )
    approve.add_argument("--comment", help="why; recorded in the audit trail")
    approve.add_argument("--timeout", type=float, default=30.0)
    add_remote_options(approve)
    approve.set_defaults(handler=cmd_approve)
    reject = commands.add_parser("reject", help="refuse a run waiting for a human: nothing is changed")
    reject.add_argument(
        "execution", help="the waiting execution's ARN or request id (selfheal approvals lists them)"
    )
    reject.add_argument("--reason", required=True, help="why not; recorded in the audit trail")
    reject.add_argument("--timeout", type=float, default=30.0)
    add_remote_options(reject)
    reject.set_defaults(handler=cmd_reject)

    _add_forwarding(commands, "demo", cmd_demo, "the local-cloud demo (`selfheal demo --help`)")
    from selfheal_cli import drill

    drill.register(commands)
    return parser


def _add_forwarding(commands: Any, name: str, handler: Handler, help: str) -> None:
    """A command whose words, options included, all go to a parser of its own (one in localcloud,
    imported only when the command runs): no prefix character, so ``--help`` is one of those words."""
    forwarding = commands.add_parser(name, help=help, add_help=False, prefix_chars="\0")
    forwarding.add_argument("words", nargs=argparse.REMAINDER)
    forwarding.set_defaults(handler=handler)


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
    if isinstance(exc, ops.OpsError):
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
    return run(build_parser(), argv)


def run(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Parse, run the command's handler; an error a user can act on is one line and an exit status."""
    args = parser.parse_args(argv)
    handler: Handler = args.handler
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
