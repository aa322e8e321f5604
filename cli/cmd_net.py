"""``peerkit net up``: a local network of N nodes for trying peerkit (and ``--demo``, a guided tour)."""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from types import FrameType

import rich_click as click
from rich.text import Text

from .client import DEFAULT_PEER
from .console import Env
from .certs import Pki
from .launcher import BIG_FILE, STATE_FILE, TOPOLOGIES, LocalNetwork, NodeSpec, plan, write_network
from .options import debug_option, size_type
from .render import table, t

WATCH_INTERVAL_S = 0.5


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _try_lines(specs: list[NodeSpec], pki: Pki | None = None) -> list[str]:
    first, far = specs[0], specs[-1]
    lines = [] if first.rest == DEFAULT_PEER else [f"export PEERKIT_PEER={first.rest}"]
    if pki is not None:
        lines.append(pki.exports())
    lines += [
        "peerkit status",
        "peerkit peers",
        "peerkit files --network",
        f"peerkit locate {BIG_FILE}",
        f"peerkit download {BIG_FILE} -o /tmp/",
        "peerkit upload README.md",
        "peerkit echo download --size 100MB",
        f"peerkit --peer {far.rest} files",
    ]
    return lines


def _show_network(env: Env, net: LocalNetwork, topology: str) -> None:
    tab = table("Node", "REST", "gRPC", "PID", "Friends", title=f"peerkit network: {len(net.specs)} nodes, {topology}")
    pids = net.pids()
    for spec in net.specs:
        tab.add_row(t(spec.name, "bold cyan"), t(spec.rest), t(spec.grpc), t(pids.get(spec.name)), t(", ".join(spec.friends) or "-"))
    env.print(tab)
    env.print(Text(f"Configs, shared files and logs are in {net.directory}", style="dim"))
    env.print(Text("Try, in another terminal:", style="bold"))
    for line in _try_lines(net.specs, net.pki):
        env.print(Text.assemble("  ", (line, "green")))
    env.print(Text("Press Ctrl-C to stop every node.", style="bold"))


def do_net_up(
    env: Env,
    peers: int,
    directory: str | None,
    topology: str,
    base_port: int,
    grpc_base_port: int,
    big_size: int,
    demo: bool,
    tls: bool = False,
) -> int:
    temp_dir: Path | None = None
    if directory is None:
        if demo:
            temp_dir = Path(tempfile.mkdtemp(prefix="peerkit-demo-"))
            root = temp_dir
        else:
            root = Path("peerkit-net")
    else:
        root = Path(directory)
    root = root.expanduser().resolve()
    specs = plan(root, peers, topology, base_port, grpc_base_port, tls=tls)
    pki = write_network(specs, big_size)
    net = LocalNetwork(specs, pki)
    if pki is not None:  # this process (the demo tour) talks to the nodes as the CLI would
        env.cacert, env.cert, env.key = str(pki.ca), str(pki.client_cert), str(pki.client_key)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    # Installed explicitly: a shell starting `peerkit net up &` in a script sets
    # SIGINT to ignored, and `kill -INT` must still stop the network.
    previous_int = signal.signal(signal.SIGINT, _raise_interrupt)
    code = 0
    try:
        net.start()
        env.note(f"Starting {len(specs)} nodes ({topology}) in {root} ...")
        net.wait_ready()
        if pki is not None and demo:  # (without --demo the try-lines below say it)
            env.note(f"Mutual TLS: clients need  {pki.exports()}")
        if demo:
            from .demo import run_tour

            code = run_tour(env, specs, root)
        else:
            _show_network(env, net, topology)
            env.note(f"PIDs and addresses: {root / STATE_FILE}")
            warned: set[str] = set()
            while True:
                time.sleep(WATCH_INTERVAL_S)
                for name, rc in net.exited().items():
                    if name not in warned:
                        warned.add(name)
                        env.error(f"{name} stopped on its own (exit {rc}); see {root / (name + '.log')}")
                if len(warned) == len(specs):
                    code = 1
                    break
    except KeyboardInterrupt:
        if demo:
            raise
    finally:
        # a second Ctrl-C must not cut the clean-up short and leave nodes behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            killed = net.stop()
            forced = f" ({', '.join(killed)} did not stop in time and were killed)" if killed else ""
            env.note(f"Stopped {len(net.procs)} node{'s' if len(net.procs) != 1 else ''}.{forced}")
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous)
    return code


@click.group("net")
def net() -> None:
    """Run a local network of nodes for trying peerkit."""


@net.command("up")
@click.option("--peers", "-n", type=click.IntRange(1, 50), default=3, show_default=True, help="How many nodes.")
@click.option("--dir", "directory", metavar="DIR", help="Where configs, shared files and logs go (default: ./peerkit-net; a temp dir with --demo).")
@click.option("--topology", type=click.Choice(TOPOLOGIES), default="line", show_default=True, help="Who is friends with whom.")
@click.option("--base-port", type=click.IntRange(1, 65535), default=5001, show_default=True, help="First REST port (busy ones are skipped).")
@click.option("--grpc-base-port", type=click.IntRange(1, 65535), default=50051, show_default=True, help="First gRPC port.")
@click.option("--big-size", type=size_type, default="64MB", show_default=True, help=f"Size of {BIG_FILE}, shared only by the far node.")
@click.option("--demo", is_flag=True, help="Run a scripted tour (status, network files, locate, download, verify, upload), then stop.")
@click.option("--tls", is_flag=True, help="Mutual TLS throughout: a fresh CA and certificates under DIR/tls; prints the exports for clients.")
@debug_option
@click.pass_obj
def net_up(
    env: Env, peers: int, directory: str | None, topology: str, base_port: int, grpc_base_port: int, big_size: int, demo: bool,
    tls: bool,
) -> int:
    """Launch N local nodes with configs and sample files; Ctrl-C (or SIGTERM) stops them all."""
    return do_net_up(env, peers, directory, topology, base_port, grpc_base_port, big_size, demo, tls)
