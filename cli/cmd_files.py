"""``peerkit files [--network]`` and ``peerkit locate``: what is shared, and where."""

from __future__ import annotations

from typing import Any

import rich_click as click
from rich.text import Text

from .console import Env
from .errors import NothingFound, UsageProblem
from .options import json_option, node_options
from .render import files_footer, files_table, hits_table, t

# A locate waits for the flood's deadline; give the HTTP call room beyond it.
LOCATE_HTTP_TIMEOUT_S = 30.0


def _file_list(doc: Any) -> list[dict[str, Any]]:
    return doc.get("files", []) if isinstance(doc, dict) else list(doc or [])


def network_groups(doc: Any) -> list[dict[str, Any]]:
    """``GET /network/files`` as ``[{peer, rest, grpc, files, error}]``, whatever its outer shape."""
    if isinstance(doc, dict) and "peers" in doc:
        doc = doc["peers"]
    groups: list[dict[str, Any]] = []
    if isinstance(doc, dict):  # {peer_name: [files]} or {peer_name: {files: [...]}}
        items = [{"peer": k, **(v if isinstance(v, dict) else {"files": v})} for k, v in doc.items()]
    else:
        items = list(doc or [])
    for item in items:
        groups.append(
            {
                "peer": item.get("peer") or item.get("name") or "?",
                "rest": item.get("rest"),
                "grpc": item.get("grpc"),
                "hops": item.get("hops"),
                "files": list(item.get("files") or []),
                "error": item.get("error"),
                "truncated": bool(item.get("truncated")),
            }
        )
    return groups


def do_files(env: Env, network: bool, as_json: bool) -> int:
    client = env.client()
    if not network:
        doc = client.get("/files")
        if as_json:
            env.json(doc)
            return 0
        entries = _file_list(doc)
        if not entries:
            env.note("This node shares no files yet (drop some into its shared_dir, or `peerkit upload PATH`).")
            return 0
        env.print(files_table(entries))
        env.print(files_footer(entries))
        return 0

    doc = client.get("/network/files", timeout=LOCATE_HTTP_TIMEOUT_S)
    if as_json:
        env.json(doc)
        return 0
    groups = network_groups(doc)
    total = 0
    for group in groups:
        title = Text.assemble((str(group["peer"]), "bold cyan"))
        if group["rest"]:
            title.append(f"  {group['rest']}", style="dim")
        if group["hops"] is not None:
            title.append(f"  {group['hops']} hop{'s' if group['hops'] != 1 else ''}", style="dim")
        if group["error"]:
            env.print(title)
            env.print(t(f"  unreachable: {group['error']}", "red"))
            continue
        files = group["files"]
        total += len(files)
        if group["truncated"]:
            title.append("  (list cut short by the peer)", style="yellow")
        if files:
            env.print(files_table(files, title=title))
        else:
            env.print(title)
            env.print(t("  no shared files", "dim"))
    env.print(f"{total} file{'s' if total != 1 else ''} on {len(groups)} peer{'s' if len(groups) != 1 else ''}")
    return 0


def locate_params(name: str, ttl: int | None) -> dict[str, Any]:
    """Query parameters of ``GET /locate``; a malformed ``sha256:`` query is a usage error (exit 2)."""
    from peerkit.store import sha256_query

    try:
        sha256_query(name)
    except ValueError as err:
        raise UsageProblem(str(err)) from None
    if not name.strip():
        raise UsageProblem("give a file name, a pattern like '*.txt', or sha256:<hex>")
    if "/" in name or "\\" in name:
        raise UsageProblem(f"{name!r}: names in a share are one path component (no '/' or '\\')")
    return {"name": name} if ttl is None else {"name": name, "ttl": ttl}


def do_locate(env: Env, name: str, ttl: int | None, as_json: bool) -> int:
    params = locate_params(name, ttl)
    doc = env.client().get("/locate", params=params, timeout=LOCATE_HTTP_TIMEOUT_S)
    hits = doc.get("hits") or []
    reached = doc.get("peers_reached")
    elapsed = doc.get("elapsed_ms")
    where = f"asked {reached} peer{'s' if reached != 1 else ''}" if reached is not None else "asked the network"
    if elapsed is not None:
        where += f" in {float(elapsed):.0f} ms"
    if as_json:
        env.json(doc)
        if not hits:
            raise NothingFound(f"no peer holds {name!r} ({where})")
        return 0
    if not hits:
        raise NothingFound(f"no peer holds {name!r} ({where})")
    env.print(hits_table(hits))
    holders = len({h.get("peer") for h in hits})
    env.print(f"{len(hits)} hit{'s' if len(hits) != 1 else ''} on {holders} peer{'s' if holders != 1 else ''} ({where})")
    return 0


@click.command("files")
@click.option("--network", is_flag=True, help="Every reachable peer's files, by peer.")
@node_options
@json_option
@click.pass_obj
def files(env: Env, network: bool, as_json: bool) -> int:
    """The node's shared files (name, size, sha256); --network: every reachable peer's."""
    return do_files(env, network, as_json)


@click.command("locate")
@click.argument("name")
@click.option("--ttl", type=click.IntRange(min=0), help="How many hops the query may travel (0 = only this node; capped at 7).")
@node_options
@json_option
@click.pass_obj
def locate(env: Env, name: str, ttl: int | None, as_json: bool) -> int:
    """Flood a query and list every peer holding NAME (also a glob like '*.txt', or sha256:<hex>, where 8+ digits are enough)."""
    return do_locate(env, name, ttl, as_json)
