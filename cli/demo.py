"""The scripted tour of ``peerkit net up --demo``: what a newcomer would type, run for them.

Each step shows the command line, then runs the very function that command
runs (``do_*``), against the right node. Any step failing fails the tour.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from pathlib import Path

from rich.rule import Rule
from rich.text import Text

from .client import DEFAULT_PEER
from .cmd_echo import do_echo
from .cmd_files import do_files, do_locate
from .cmd_info import do_status
from .cmd_transfer import do_download, do_upload
from .console import Env
from .errors import CliError
from .launcher import BIG_FILE, NodeSpec


class DemoFailed(CliError):
    """A step of the tour did not do what it should."""


def _command(spec: NodeSpec, *args: str) -> str:
    peer = [] if spec.rest == DEFAULT_PEER else ["--peer", spec.rest]
    return shlex.join(["peerkit", *args, *peer])


def _step(env: Env, number: int, title: str, line: str) -> None:
    env.print()
    env.print(Rule(Text(f"{number}. {title}", style="bold"), align="left", style="dim"))
    env.print(Text.assemble(("$ ", "dim"), (line, "bold green")))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def run_tour(env: Env, specs: list[NodeSpec], workdir: Path) -> int:
    first, far = specs[0], specs[-1]
    near = env.for_peer(first.rest)
    remote = env.for_peer(far.rest)
    downloads = workdir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, str, Callable[[], int]]] = []

    def check(title: str, code: int) -> None:
        if code != 0:
            raise DemoFailed(f"demo step {title!r} failed (exit {code})")

    steps.append(("Ask the first node how it is", _command(first, "status"), lambda: do_status(near, False)))
    steps.append(("Every file on the network", _command(first, "files", "--network"), lambda: do_files(near, True, False)))
    steps.append(
        (f"Find {BIG_FILE}, which only {far.name} (the far node) shares", _command(first, "locate", BIG_FILE),
         lambda: do_locate(near, BIG_FILE, None, False))
    )
    steps.append(
        (f"Download it from {far.name} over gRPC", _command(first, "download", BIG_FILE, "-o", f"{downloads}/"),
         lambda: do_download(near, BIG_FILE, f"{downloads}/", None, None, True, False))
    )
    try:
        for i, (title, line, action) in enumerate(steps, 1):
            _step(env, i, title, line)
            check(title, action())

        n = len(steps) + 1
        _step(env, n, "Verify it against the far node's copy", shlex.join(["sha256sum", str(downloads / BIG_FILE)]))
        got = _sha256(downloads / BIG_FILE)
        want = _sha256(far.shared_dir / BIG_FILE)
        if got != want:
            raise DemoFailed(f"{BIG_FILE}: downloaded sha256 {got} differs from {far.name}'s {want}")
        env.print(Text.assemble(("✓ ", "bold green"), f"{got}  identical to {far.name}'s {BIG_FILE}"))

        greeting = downloads / "greetings.txt"
        greeting.write_text(f"Hello from the peerkit demo, uploaded to {first.name}.\n", "utf-8")
        name = "demo-greetings.txt"
        _step(env, n + 1, f"Upload a file to {first.name}", _command(first, "upload", str(greeting), "--as", name))
        check("upload", do_upload(near, str(greeting), name, True, False))
        _step(env, n + 2, f"{far.name} can find it now", _command(far, "locate", name))
        check("locate the upload", do_locate(remote, name, None, False))
        _step(env, n + 3, "Measure the path without touching disk (ECO)", _command(first, "echo", "download", "--size", "50MB"))
        check("echo", do_echo(near, "download", 50_000_000, None, "grpc", False))
    finally:
        near.close()
        remote.close()
    env.print()
    env.print(Text.assemble(("Demo complete. ", "bold green"), "Start your own network with: ", ("peerkit net up", "bold")))
    return 0
