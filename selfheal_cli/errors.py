"""The CLI's own errors: printed as one line, without a traceback, with their exit status."""

from __future__ import annotations


class CliError(RuntimeError):
    """A user-facing error: printed without a traceback, exit status 1."""

    exit_status = 1


class InvalidArgument(CliError):
    """What the user gave cannot be used (a missing file, malformed JSON): exit status 2, as for a
    usage error."""

    exit_status = 2
