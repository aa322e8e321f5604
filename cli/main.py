"""Entry point of the ``peerkit`` command: parse, run one command, map errors to exit codes.

Exit codes (CONTRACT.md): 0 success, 1 the operation failed or found nothing,
2 usage error (bad config included), 3 the node could not be reached.
Errors are one line on stderr; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import rich_click as click

from peerkit import ConfigError, PeerkitError, StartupError, load_config

from .console import Env, fail

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="PEERKIT_DEBUG", help="Show tracebacks and debug logs.")
@click.version_option(package_name="peerkit")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """peerkit: share files with a network of peers."""
    ctx.obj = Env(debug=debug)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@cli.group()
def node() -> None:
    """Run a node."""


@node.command("run")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Node config file (TOML).")
@click.pass_obj
def node_run(env: Env, config_path: str) -> None:
    """Run one node (REST + gRPC + plugins) until SIGINT/SIGTERM."""
    from peerkit import Node

    try:
        config = load_config(config_path)
    except ConfigError as err:
        fail(env, str(err), EXIT_USAGE)
    node_ = Node(config)

    async def main() -> None:
        await node_.run_until_signal()

    try:
        _run(main())
    except StartupError as err:
        fail(env, f"{config.node.name}: {err}", EXIT_FAILED)


def _run(coro: object) -> None:
    """asyncio.run with uvloop when it is installed (faster sockets for both servers)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)  # type: ignore[arg-type]
    else:
        uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    env_debug = "--debug" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="peerkit", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(EXIT_USAGE if isinstance(err, click.UsageError) else err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except ConfigError as err:
        print(f"peerkit: {err}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except PeerkitError as err:
        print(f"peerkit: {err}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except Exception as err:  # last resort: one line, never a traceback unless asked
        if env_debug:
            raise
        print(f"peerkit: unexpected error: {type(err).__name__}: {err} (run with --debug for details)", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
