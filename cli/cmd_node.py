"""``peerkit node run`` and ``peerkit plugins``: commands about this machine, not a remote node."""

from __future__ import annotations

from pathlib import Path

import rich_click as click
from rich.text import Text

from peerkit import StartupError, load_config

from .console import Env, run
from .errors import CliError
from .options import debug_option, json_option
from .render import t, table


class NodeFailed(CliError):
    """The node could not start (port taken, unwritable directory)."""


def do_node_run(env: Env, config_path: str) -> int:
    from peerkit import Node

    config = load_config(config_path)  # ConfigError → exit 2, one line
    node = Node(config)
    try:
        run(node.run_until_signal())
    except StartupError as err:
        raise NodeFailed(f"{config.node.name}: {err}") from None
    return 0


def do_plugins(env: Env, config_path: str | None, as_json: bool) -> int:
    from peerkit import installed_plugins

    installed = installed_plugins()
    enabled: list[str] | None = None
    if config_path is not None:
        enabled = list(load_config(config_path).node.plugins)
    rows = [
        {
            "name": info.name,
            "source": info.source,
            "version": info.version,
            "target": info.target,
            **({"enabled": info.name in enabled} if enabled is not None else {}),
        }
        for info in installed.values()
    ]
    if as_json:
        doc: dict[str, object] = {"installed": rows}
        if enabled is not None:
            doc.update(config=str(Path(config_path).resolve()) if config_path else None, enabled=enabled)
        env.json(doc)
        return 0
    columns = ["Plugin", "Source", "Version", "Import path"] + (["Enabled"] if enabled is not None else [])
    tab = table(*columns, title="Installed plugins")
    for row in rows:
        cells = [t(row["name"], "bold"), t(row["source"]), t(row["version"] or "-"), t(row["target"], "dim")]
        if enabled is not None:
            cells.append(Text("yes", "green") if row["enabled"] else Text("no", "dim"))
        tab.add_row(*cells)
    env.print(tab)
    if enabled is not None:
        env.print(Text.assemble("Enabled by ", (str(config_path), "bold"), ": ", ", ".join(enabled) or "none"))
    return 0


@click.group()
def node() -> None:
    """Run a node."""


@node.command("run")
@click.option("-c", "--config", "config_path", required=True, type=click.Path(dir_okay=False), help="Node config file (TOML).")
@debug_option
@click.pass_obj
def node_run(env: Env, config_path: str) -> int:
    """Run one node (REST + gRPC + plugins) until SIGINT/SIGTERM, then stop cleanly."""
    return do_node_run(env, config_path)


@click.command("plugins")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False), help="Also show which plugins this config enables.")
@json_option
@debug_option
@click.pass_obj
def plugins(env: Env, config_path: str | None, as_json: bool) -> int:
    """List installed plugins (built-in and entry points); with -c, which a config enables."""
    return do_plugins(env, config_path, as_json)
