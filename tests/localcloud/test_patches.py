"""One registry for the local cloud's patches to moto: each applied once per process, whoever asks."""

from __future__ import annotations

from typing import Any

import pytest

from localcloud import patches


def _patched_attributes() -> dict[str, Any]:
    """What some patch of each patch module put in place (a second application would replace it)."""
    from moto.autoscaling.models import AutoScalingBackend
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.ec2.models.instances import InstanceBackend
    from moto.events.models import Rule
    from moto.rds.models import RDSBackend
    from moto.route53.models import Route53Backend
    from moto.sqs.models import SQSBackend
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.utils import json_path
    from moto.stepfunctions.parser.backend.execution import Execution
    from moto.sts.responses import TokenResponse

    return {
        "extract_json": json_path.extract_json,
        "parse": AmazonStateLanguageParser.__dict__["parse"],
        "send_to_targets": Rule.__dict__["send_to_targets"],
        "invoke": LambdaSimpleBackend.__dict__["invoke"],
        "set_instance_health": AutoScalingBackend.__dict__["set_instance_health"],
        "update_health_check": Route53Backend.__dict__["update_health_check"],
        "stop_instances": InstanceBackend.__dict__["stop_instances"],
        "execution_stop": Execution.__dict__["stop"],
        "promote_read_replica": RDSBackend.__dict__["promote_read_replica"],
        "get_caller_identity": TokenResponse.__dict__["get_caller_identity"],
        "receive_message": SQSBackend.__dict__["receive_message"],
    }


def test_apply_all_twice_is_a_no_op() -> None:
    # Given every patch applied once
    patches.apply_all()
    before = _patched_attributes()
    # When they are applied again, all at once and one by one
    patches.apply_all()
    for each in patches.load():
        patches.REGISTRY.apply(each.name)
    # Then nothing was wrapped a second time, and the registry knows them all as applied
    assert _patched_attributes() == before
    assert patches.REGISTRY.applied() == {p.name for p in patches.load()}


def test_a_patch_function_called_again_does_nothing() -> None:
    # Given a registry with one patch that counts its runs
    registry = patches.Registry()
    runs: list[str] = []

    @registry.patch("counting")
    def counting() -> None:
        """Counts."""
        runs.append("run")

    # When it is applied by name, by calling it, and with the rest
    registry.apply("counting")
    counting()
    registry.apply_all()
    # Then it ran once
    assert runs == ["run"]
    assert registry.applied() == {"counting"}


def test_two_patches_cannot_share_a_name() -> None:
    registry = patches.Registry()

    @registry.patch("same")
    def first() -> None:
        """First."""

    with pytest.raises(patches.DuplicatePatch, match="same"):

        @registry.patch("same")
        def second() -> None:
            """Second."""


def test_every_patch_says_which_gap_it_closes() -> None:
    listed = patches.load()
    assert listed, "no patch registered"
    assert [p.name for p in listed if not p.gap.strip()] == []
    assert {p.module for p in listed} == set(patches.PATCH_MODULES)
