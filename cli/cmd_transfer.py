"""``peerkit download`` and ``peerkit upload``: files over gRPC, with a progress bar.

download: locate NAME through the node (REST), then fetch it over gRPC from
every holder of the same content (same sha256) at once; the client keeps a
``.part`` file beside the destination, so Ctrl-C and the same command again
resumes where it stopped, and the result is verified against the sha256.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import rich_click as click
from rich.text import Text

from peerkit import AlreadyExists, InvalidName, validate_name
from peerkit.utils import human_bytes

from .cmd_files import LOCATE_HTTP_TIMEOUT_S, locate_params
from .console import Env, run
from .errors import CliError, Interrupted, NothingFound, UsageProblem
from .options import json_option, node_options
from .progress import TransferBar
from .render import summary


class Ambiguous(CliError):
    """A glob matched several different names; a download needs exactly one."""


def part_path(dest: Path) -> Path:
    """Where the transfer client keeps an unfinished download (beside ``dest``)."""
    return dest.with_name(dest.name + ".part")


def choose_source_group(hits: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]], int]:
    """The content to fetch: the sha256 most peers hold (then fewest hops); its hits, and how many variants exist."""
    by_sha: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for hit in hits:
        by_sha[hit["sha256"]].append(hit)
    best = max(by_sha, key=lambda s: (len(by_sha[s]), -min(int(h.get("hops") or 0) for h in by_sha[s])))
    group = sorted(by_sha[best], key=lambda h: int(h.get("hops") or 0))
    return best, group, len(by_sha)


def destination(output: str | None, name: str) -> Path:
    if output is None:
        return Path.cwd() / name
    out = Path(output).expanduser()
    if out.is_dir() or output.endswith(("/", os.sep)):
        return out / name
    return out


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def do_download(
    env: Env, name: str, output: str | None, from_peer: str | None, ttl: int | None, force: bool, as_json: bool
) -> int:
    from peerkit.plugins.grpc_transfer.client import download_file

    params = locate_params(name, ttl)
    doc = env.client().get("/locate", params=params, timeout=LOCATE_HTTP_TIMEOUT_S)
    hits = [h for h in doc.get("hits") or [] if h.get("grpc")]
    if from_peer:
        hits = [h for h in hits if from_peer in (h.get("peer"), h.get("grpc"), h.get("rest"))]
    if not hits:
        where = f" on {from_peer}" if from_peer else ""
        raise NothingFound(f"no peer holds {name!r}{where} (asked {doc.get('peers_reached', '?')} peers)")
    names = sorted({h["name"] for h in hits})
    if len(names) > 1:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise Ambiguous(f"{name!r} matches {len(names)} files ({shown}); download them one by one")
    sha256, group, variants = choose_source_group(hits)
    file_name, size = group[0]["name"], int(group[0]["size"])
    if variants > 1:
        env.note(
            f"{variants} different files are called {file_name!r}; fetching the one {len(group)} peer(s) share "
            f"(sha256 {sha256[:12]}…). Ask for sha256:<hex> to pick another."
        )
    dest = destination(output, file_name)
    if (dest.exists() or dest.is_symlink()) and not dest.is_file():
        # --force replaces files; a device, FIFO or socket is not something to replace with a download.
        raise UsageProblem(f"{dest} exists and is not a regular file; choose another --output")
    if dest.exists() and not force:
        if dest.is_file() and dest.stat().st_size == size and _sha256_file(dest) == sha256:
            if as_json:
                env.json({"name": file_name, "path": str(dest), "size": size, "sha256": sha256, "verified": True, "skipped": True})
            else:
                env.print(f"Already there: {dest} (sha256 verified)")
            return 0
        raise AlreadyExists(f"{dest} exists and differs; use --force to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    sources = list(dict.fromkeys(h["grpc"] for h in group))
    holders = list(dict.fromkeys(h["peer"] for h in group))
    label = f"{file_name} ← {holders[0]}" + (f" +{len(holders) - 1}" if len(holders) > 1 else "")
    try:
        with TransferBar(env.stderr, label, size, live=env.live_progress and not as_json) as bar:
            result = run(download_file(sources, dest, name=file_name, sha256=sha256, progress=bar, token=env.token, tls=env.tls, ca=env.ca, identity=env.identity))
    except KeyboardInterrupt:
        part = part_path(dest)
        kept = f"{human_bytes(part.stat().st_size)} kept in {part}; " if part.exists() else ""
        raise Interrupted(f"download interrupted; {kept}run the same command again to resume") from None
    info = {
        "name": result.name,
        "path": str(result.path or dest),
        "size": result.size,
        "sha256": result.sha256,
        "verified": True,
        "seconds": round(result.seconds, 3),
        "mb_per_s": round(result.size / result.seconds / 1e6, 1) if result.seconds > 0 else None,
        "resumed_from": result.resumed_from,
        "sources": list(result.sources),
        "peers": [h["peer"] for h in group if h["grpc"] in result.sources] or holders,
        # peers whose bytes failed the sha256 when fetched alone (skipped; the file came from others)
        "rejected": [h["peer"] for h in group if h["grpc"] in result.extra.get("rejected", [])],
    }
    if as_json:
        env.json(info)
        return 0
    moved = result.size - result.resumed_from
    env.print(summary(moved, result.seconds, verified=True))
    extra = f"; resumed at {human_bytes(result.resumed_from)}" if result.resumed_from else ""
    env.print(Text(f"Saved {info['path']} (from {', '.join(info['peers'])}{extra})", style="dim"))
    if info["rejected"]:
        env.print(Text(f"Skipped {', '.join(info['rejected'])}: sent bytes that did not match the sha256", style="yellow"))
    return 0


def do_upload(env: Env, path: str, as_name: str | None, overwrite: bool, as_json: bool) -> int:
    from peerkit.plugins.grpc_transfer.client import upload_file

    src = Path(path).expanduser()
    if not src.is_file():
        raise CliError(f"no such file: {path}" if not src.exists() else f"not a regular file: {path}")
    try:
        name = validate_name(as_name if as_name is not None else src.name)
    except InvalidName as err:
        raise UsageProblem(f"cannot share as {as_name or src.name!r}: {err} (choose another with --as NAME)") from None
    status = env.client().get("/status")
    address = status.get("grpc")
    if not address:
        raise CliError(f"{status.get('name', 'the node')} serves no gRPC (enable the grpc_transfer plugin)")
    size = src.stat().st_size
    try:
        with TransferBar(env.stderr, f"{name} → {status.get('name')}", size, live=env.live_progress and not as_json) as bar:
            result = run(upload_file(address, src, name=name, overwrite=overwrite, progress=bar, token=env.token, tls=env.tls, ca=env.ca, identity=env.identity))
    except KeyboardInterrupt:
        raise Interrupted("upload interrupted; the node keeps nothing of it") from None
    info = {
        "name": result.name,
        "peer": status.get("name"),
        "size": result.size,
        "sha256": result.sha256,
        "verified": True,
        "seconds": round(result.seconds, 3),
        "mb_per_s": round(result.size / result.seconds / 1e6, 1) if result.seconds > 0 else None,
    }
    if as_json:
        env.json(info)
        return 0
    env.print(summary(result.size, result.seconds, verified=True))
    env.print(Text(f"Shared as {result.name} on {status.get('name')}", style="dim"))
    return 0


@click.command("download")
@click.argument("name")
@click.option("-o", "--output", metavar="PATH", help="Where to save (a file, or a directory). Default: ./NAME.")
@click.option("--from", "from_peer", metavar="PEER", help="Fetch only from this peer (its name or gRPC address).")
@click.option("--ttl", type=click.IntRange(min=0), help="How far the locate may travel (hops; capped at 7).")
@click.option("--force", is_flag=True, help="Replace an existing different file at the destination.")
@node_options
@json_option
@click.pass_obj
def download(env: Env, name: str, output: str | None, from_peer: str | None, ttl: int | None, force: bool, as_json: bool) -> int:
    """Locate NAME, fetch it over gRPC (several sources in parallel), verify sha256; resumes a .part file."""
    return do_download(env, name, output, from_peer, ttl, force, as_json)


@click.command("upload")
@click.argument("path")
@click.option("--as", "as_name", metavar="NAME", help="Share it under this name (default: the file's name).")
@click.option("--overwrite", is_flag=True, help="Replace a file of the same name on the node.")
@node_options
@json_option
@click.pass_obj
def upload(env: Env, path: str, as_name: str | None, overwrite: bool, as_json: bool) -> int:
    """Send a file to the node over gRPC; the node verifies it and shares it."""
    return do_upload(env, path, as_name, overwrite, as_json)
