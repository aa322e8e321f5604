"""Every way a command can fail, and the one table mapping failures to exit codes.

Commands raise; :func:`exit_code` and :func:`message` decide what the user
sees. Exit codes (CONTRACT.md): 0 success, 1 the operation failed or found
nothing, 2 usage error, 3 the node could not be reached; 130 after Ctrl-C.
"""

from __future__ import annotations

import rich_click as click

from peerkit import ConfigError, PeerkitError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(PeerkitError):
    """A failure the CLI itself detects; ``code`` is its exit code."""

    code = EXIT_FAILED


class UsageProblem(CliError):
    """Bad arguments found after parsing (a malformed URL, an unreadable size)."""

    code = EXIT_USAGE


class Unreachable(CliError):
    """The node's REST API did not answer at all."""

    code = EXIT_UNREACHABLE


class NothingFound(CliError):
    """The operation ran but found nothing (a locate without hits)."""


class Rejected(CliError):
    """The node refused the request (bad input, missing token)."""


class Interrupted(CliError):
    """Ctrl-C; the message says what was kept (a resumable .part file)."""

    code = EXIT_INTERRUPTED


def exit_code(err: BaseException) -> int:
    if isinstance(err, CliError):
        return err.code
    if isinstance(err, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(err, (click.UsageError, ConfigError)):
        return EXIT_USAGE
    if isinstance(err, click.ClickException):
        return err.exit_code
    return EXIT_FAILED  # PeerkitError (NotFound, IntegrityError, ...), OSError, anything else


def message(err: BaseException) -> str:
    """The one line shown on stderr."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, click.ClickException):
        return err.format_message()
    if isinstance(err, (PeerkitError, ConfigError)):
        return str(err) or type(err).__name__
    if isinstance(err, OSError) and err.strerror:
        where = f": {err.filename}" if err.filename else ""
        return f"{err.strerror}{where}"
    return f"unexpected error: {type(err).__name__}: {err} (run with --debug for details)"
