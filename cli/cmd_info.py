"""``peerkit status``, ``peerkit peers``, ``peerkit peer add/remove``: the node and its neighbours."""

from __future__ import annotations

from typing import Any

import rich_click as click
from rich.text import Text

from .console import Env
from .errors import UsageProblem
from .options import json_option, node_options
from .render import peers_table, status_table


def do_status(env: Env, as_json: bool) -> int:
    doc = env.client().get("/status")
    if as_json:
        env.json(doc)
    else:
        env.print(status_table(doc))
    return 0


def _peer_list(doc: Any) -> list[dict[str, Any]]:
    return doc.get("peers", []) if isinstance(doc, dict) else list(doc or [])


def do_peers(env: Env, as_json: bool) -> int:
    doc = env.client().get("/peers")
    if as_json:
        env.json(doc)
        return 0
    peers = _peer_list(doc)
    if not peers:
        env.note("No neighbours yet. Add one with: peerkit peer add NAME --rest URL --grpc HOST:PORT")
        return 0
    env.print(peers_table(peers))
    alive = sum(1 for p in peers if p.get("state") == "alive")
    env.print(f"{len(peers)} neighbour{'s' if len(peers) != 1 else ''}, {alive} alive")
    return 0


def do_peer_add(env: Env, name: str, rest: str, grpc: str, as_json: bool) -> int:
    from peerkit.peers import validate_grpc_address, validate_peer_name, validate_rest_url

    try:
        body = {"name": validate_peer_name(name), "rest": validate_rest_url(rest), "grpc": validate_grpc_address(grpc)}
    except ValueError as err:
        raise UsageProblem(str(err)) from None
    doc = env.client().post("/peers", body)
    if as_json:
        env.json(doc)
    else:
        env.print(Text.assemble("Added ", (name, "bold"), f" ({body['rest']}, gRPC {body['grpc']})."))
    return 0


def do_peer_remove(env: Env, name: str, as_json: bool) -> int:
    from urllib.parse import quote

    env.client().delete(f"/peers/{quote(name, safe='')}")
    if as_json:
        env.json({"removed": name})
    else:
        env.print(Text.assemble("Removed ", (name, "bold"), "."))
    return 0


@click.command("status")
@node_options
@json_option
@click.pass_obj
def status(env: Env, as_json: bool) -> int:
    """The node's name, addresses, plugins, uptime and counters."""
    return do_status(env, as_json)


@click.command("peers")
@node_options
@json_option
@click.pass_obj
def peers(env: Env, as_json: bool) -> int:
    """The node's neighbour table: name, addresses, state, last seen."""
    return do_peers(env, as_json)


@click.group("peer")
def peer() -> None:
    """Change the node's neighbour table (kept across restarts)."""


@peer.command("add")
@click.argument("name")
@click.option("--rest", required=True, metavar="URL", help="The neighbour's REST URL, e.g. http://127.0.0.1:5002.")
@click.option("--grpc", required=True, metavar="HOST:PORT", help="The neighbour's gRPC address, e.g. 127.0.0.1:50052.")
@node_options
@json_option
@click.pass_obj
def peer_add(env: Env, name: str, rest: str, grpc: str, as_json: bool) -> int:
    """Add a neighbour."""
    return do_peer_add(env, name, rest, grpc, as_json)


@peer.command("remove")
@click.argument("name")
@node_options
@json_option
@click.pass_obj
def peer_remove(env: Env, name: str, as_json: bool) -> int:
    """Remove a neighbour."""
    return do_peer_remove(env, name, as_json)
