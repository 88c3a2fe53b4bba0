"""What every command against a stack shares: the endpoint, the clients, the stack's name, JSON
arguments, and the options that choose them (--endpoint, --region, --profile, --stack-name, --output)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from selfheal_cli.errors import InvalidArgument

DEPLOYED_STACK_NAME = "selfheal-dev"
LOCAL_STACK_NAME = "selfheal-local"
DEFAULT_REGION = "us-east-1"


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


def add_output_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output",
        choices=["text", "json"],
        default="text",
        help="text: one summary line per run (default); json: the full record",
    )


def add_remote_options(parser: argparse.ArgumentParser) -> None:
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
