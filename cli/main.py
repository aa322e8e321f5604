"""Entry point of the ``peerkit`` command: parse, run one command, map errors to exit codes.

Thin on purpose (httpie's shape): the group builds an :class:`Env`, each
command is one function in a ``cmd_*`` module, and :func:`main` is the one
place where exceptions become an error line and an exit code (``errors.py``).
Exit codes (CONTRACT.md): 0 success, 1 the operation failed or found nothing,
2 usage error (bad config included), 3 the node could not be reached.
"""

from __future__ import annotations

import logging
import sys

import rich_click as click

from peerkit.memory import tune_malloc

from .cmd_echo import echo
from .cmd_files import files, locate
from .cmd_info import peer, peers, status
from .cmd_net import net
from .cmd_node import node, plugins
from .cmd_transfer import download, upload
from .console import Env
from .errors import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, exit_code, message  # noqa: F401 - re-exported
from .options import group_options

click.rich_click.USE_RICH_MARKUP = True
click.rich_click.SHOW_ARGUMENTS = True
click.rich_click.COMMAND_GROUPS = {
    "peerkit": [
        {"name": "Start", "commands": ["net", "node", "plugins"]},
        {"name": "Ask a node", "commands": ["status", "peers", "peer", "files", "locate"]},
        {"name": "Move bytes", "commands": ["download", "upload", "echo"]},
    ]
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@group_options
@click.version_option(package_name="peerkit")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """peerkit: share files with a network of peers.

    New here? [bold]peerkit net up --demo[/] starts three nodes and shows what they can do.
    """
    env = ctx.ensure_object(Env)
    logging.basicConfig(
        level=logging.DEBUG if env.debug else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


for command in (node, net, plugins, status, peers, peer, files, locate, download, upload, echo):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    tune_malloc()  # before any thread starts: downloads and uploads move bulk data in this process too
    env = Env(debug="--debug" in args)
    try:
        code = cli.main(args=args, prog_name="peerkit", obj=env, standalone_mode=False)
    except click.exceptions.Exit as err:  # --help, --version
        code = err.exit_code
    except click.exceptions.Abort:
        env.error("aborted")
        code = 130
    except click.ClickException as err:  # usage errors: rich-click prints them with the usage line
        err.show()
        code = exit_code(err)
    except (Exception, KeyboardInterrupt) as err:
        if env.debug:
            env.stderr.print_exception(show_locals=False)
        env.error(message(err))
        code = exit_code(err)
    finally:
        env.close()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
