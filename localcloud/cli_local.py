"""``selfheal local ...``: run the local cloud and drive it (dev-only: it needs moto and this checkout).

The operator CLI (``selfheal_cli``) hands every ``selfheal local`` command line to ``main`` here, and
imports this module only then: an operator's install of the CLI needs neither moto nor localcloud.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from localcloud import ops
from selfheal_cli import outcomes
from selfheal_cli.errors import CliError, InvalidArgument
from selfheal_cli.main import command_parser, run
from selfheal_cli.options import (
    LOCAL_STACK_NAME,
    add_output_option,
    add_remote_options,
    load_json_argument,
    remote_clients,
    resolve_stack_name,
)
from selfheal_cli.terminal import done_waiting, print_json, progress


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
    from localcloud.cloud import LocalCloud, PortInUse, point_boto3_at
    from localcloud.control import Control
    from localcloud.deploy import UnknownParameters, check_parameters, load_template
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
    try:  # before a cloud starts: the deploy's own refusal, sooner
        check_parameters(load_template(template), overrides)
    except UnknownParameters as exc:
        raise InvalidArgument(f"--parameter-overrides: {exc}") from exc
    built: list[str] = []
    drill_triggers: dict[str, str] = {}

    def build_worlds(cloud: LocalCloud) -> dict[str, str]:
        from localcloud.worlds.drills import mark_ready_worlds

        aws = worlds.Aws(cloud.client, Control(cloud.endpoint))
        lines, needed = worlds.build(aws, chosen)
        built.extend(lines)
        # Marked selfheal:drill=true too: `selfheal drill` runs on them as on an operator's own.
        drill_triggers.update(mark_ready_worlds(aws, chosen))
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
        for runbook, trigger in drill_triggers.items():
            print(f"  selfheal drill {runbook} --target {trigger}")
        print("Use it from another shell:")
        for key, value in deployed.cloud.environment().items():
            print(f"export {key}={value}")
        print("Ctrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)  # interrupted by the handler's exception
    except _StopServing as stop:
        print(f"stopping ({stop})", flush=True)
    except PortInUse as exc:
        raise CliError(str(exc)) from exc
    finally:
        # A second signal must not interrupt the shutdown half-way.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if deployed is not None:
            deployed.cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


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
        clients, resolve_stack_name(args.stack_name, endpoint), event, args.timeout, stop_at_approval=True
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
        print_json(record)
    else:
        decisions = sorted(
            {str(r.get("decision") or r.get("phase")) for r in summary.audit if r.get("step") == "triage"}
        )
        print(
            f"event {summary.event_id}: {len(runs)} execution(s); triage: {', '.join(decisions) or 'no row'}"
        )
        for run in runs:
            print(run.line())
            for step in run.next_steps:
                print(f"  {step}")
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
        verdict = break_and_watch(aws, fault, outputs, timeout=args.timeout, on_wait=progress(fault.name))
    except (worlds.UnknownWorld, ControlError, NoRunEnded) as exc:
        raise CliError(str(exc)) from exc
    finally:
        done_waiting()
    if args.output == "json":
        print_json(
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


def cmd_local_env_json(args: argparse.Namespace) -> int:
    """env.json for `sam local invoke --env-vars`, from the template and the deployed stack."""
    from localcloud.env_json import EnvJsonError, env_json

    template = Path(args.template)
    if not template.is_file():
        raise InvalidArgument(f"--template: no such file: {template}")
    endpoint, clients = remote_clients(args)
    stack = resolve_stack_name(args.stack_name, endpoint)
    ops.stack_outputs(clients("cloudformation"), stack)  # a missing stack: OpsError, one line
    try:
        content = env_json(template, clients, stack, endpoint)
    except EnvJsonError as exc:
        raise CliError(str(exc)) from exc
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    if args.output_file:
        Path(args.output_file).write_text(text, encoding="utf-8")
        print(f"wrote {args.output_file}: {', '.join(sorted(content))} (stack {stack})")
    else:
        print(text, end="")
    return 0


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser, local = command_parser(
        "selfheal local", "run the local cloud and drive it (a development checkout: localcloud, moto)"
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
    add_output_option(breaks)
    add_remote_options(breaks)
    breaks.set_defaults(handler=cmd_local_break)
    send = local.add_parser("send", help="put an event on the local bus and wait for what it caused")
    send.add_argument("event", help="EventBridge event JSON file (source, detail-type, detail)")
    send.add_argument("--timeout", type=float, default=60.0)
    send.add_argument("--dry-run", action="store_true", help="a request (selfheal.manual) as a dry run")
    add_output_option(send)
    add_remote_options(send)
    send.set_defaults(handler=cmd_local_send)
    env = local.add_parser(
        "env-json",
        help="write env.json for `sam local invoke --env-vars`: each function's variables, as deployed",
    )
    env.add_argument("--output", dest="output_file", metavar="FILE", help="write it here (default: stdout)")
    env.add_argument("--template", default="template.yaml", help="the template the stack was deployed from")
    add_remote_options(env)
    env.set_defaults(handler=cmd_local_env_json)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``selfheal local`` with the words after ``local``."""
    return run(build_parser(), argv)
