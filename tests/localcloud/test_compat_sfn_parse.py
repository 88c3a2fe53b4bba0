"""The state machine definition is parsed once; every execution still gets its own components."""

from __future__ import annotations

import json

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

from localcloud.patches import apply_all

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})


def test_a_definition_is_parsed_once_and_each_execution_gets_fresh_components() -> None:
    apply_all()
    first, first_tree = AmazonStateLanguageParser.parse(DEFINITION)
    second, second_tree = AmazonStateLanguageParser.parse(DEFINITION)
    assert first_tree is second_tree
    assert first is not second and type(first) is type(second)


def test_a_definition_that_does_not_parse_is_still_refused() -> None:
    apply_all()
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse('{"StartAt": "Done", "States": {"Done": {"Type": "Nope"}}}')
