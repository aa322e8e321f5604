"""A local peerkit network: configs, sample files and child node processes.

Used by ``peerkit net up``; prints nothing. Every node is a child process
(``python -m peerkit.cli.main node run -c ...``) in its own session, so a
Ctrl-C in the terminal reaches only the launcher, which then stops each child
by PID: SIGTERM, a grace period, SIGKILL. On Linux the children also get
SIGTERM if the launcher itself dies (PR_SET_PDEATHSIG), so none is orphaned.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from peerkit.config import DEFAULT_PLUGINS
from peerkit.tls import Identity, client_ssl_context

from .certs import Pki, make_pki
from .errors import CliError, UsageProblem

LOOPBACK = "127.0.0.1"
TOPOLOGIES = ("line", "ring", "mesh")
STATE_FILE = "network.json"
BIG_FILE = "big.bin"
TLS_DIR = "tls"
STOP_GRACE_S = 5.0
READY_TIMEOUT_S = 30.0


class NetworkError(CliError):
    """A node of the local network failed to start."""


@dataclass
class NodeSpec:
    name: str
    rest_port: int
    grpc_port: int
    directory: Path
    friends: list[str] = field(default_factory=list)
    tls: bool = False  # mutual TLS with certificates under <directory>/tls (net up --tls)

    @property
    def rest(self) -> str:
        return f"{'https' if self.tls else 'http'}://{LOOPBACK}:{self.rest_port}"

    @property
    def grpc(self) -> str:
        return f"{LOOPBACK}:{self.grpc_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / f"{self.name}.toml"

    @property
    def shared_dir(self) -> Path:
        return self.directory / self.name / "shared"

    @property
    def state_dir(self) -> Path:
        return self.directory / self.name / "state"

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"


def edges(n: int, topology: str) -> list[tuple[int, int]]:
    """Undirected links between node indexes for a topology."""
    if topology == "line":
        return [(i, i + 1) for i in range(n - 1)]
    if topology == "ring":
        return [(i, (i + 1) % n) for i in range(n)] if n > 2 else [(i, i + 1) for i in range(n - 1)]
    if topology == "mesh":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    raise UsageProblem(f"unknown topology {topology!r} (expected {', '.join(TOPOLOGIES)})")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def pick_ports(count: int, base: int, taken: Iterable[int] = ()) -> list[int]:
    """``count`` free loopback ports from ``base`` upwards, skipping busy ones and ``taken``."""
    avoid = set(taken)
    ports: list[int] = []
    port = base
    while len(ports) < count:
        if port > 65535:
            raise UsageProblem(f"not enough free ports from {base} upwards")
        if port not in avoid and port_free(port):
            ports.append(port)
        port += 1
    return ports


def plan(directory: Path, n: int, topology: str, rest_base: int, grpc_base: int, *, tls: bool = False) -> list[NodeSpec]:
    """Names, free ports and friends for ``n`` nodes called peer1..peerN."""
    if n < 1:
        raise UsageProblem("--peers must be at least 1")
    rest_ports = pick_ports(n, rest_base)
    grpc_ports = pick_ports(n, grpc_base, taken=rest_ports)
    specs = [NodeSpec(f"peer{i + 1}", rest_ports[i], grpc_ports[i], directory, tls=tls) for i in range(n)]
    for a, b in edges(n, topology):
        specs[a].friends.append(specs[b].name)
        specs[b].friends.append(specs[a].name)
    return specs


def config_doc(spec: NodeSpec, by_name: dict[str, NodeSpec]) -> dict[str, object]:
    """The node's TOML config; paths relative to the config file so the folder can move."""
    doc: dict[str, object] = {
        "node": {
            "name": spec.name,
            "host": LOOPBACK,
            "rest_port": spec.rest_port,
            "grpc_port": spec.grpc_port,
            "shared_dir": f"{spec.name}/shared",
            "state_dir": f"{spec.name}/state",
            "plugins": list(DEFAULT_PLUGINS),
        },
        "peers": [{"name": f, "rest": by_name[f].rest, "grpc": by_name[f].grpc} for f in spec.friends],
        # Keep the chosen topology: learning peers from pongs would soon make any line a mesh,
        # and the far node would no longer be far.
        "discovery_flood": {"learn_peers": False},
    }
    if spec.tls:
        doc["security"] = {
            "tls_cert": f"{TLS_DIR}/{spec.name}.pem",
            "tls_key": f"{TLS_DIR}/{spec.name}.key",
            "tls_ca": f"{TLS_DIR}/ca.pem",
            "tls_client_auth": True,
            "bind_names": True,  # each certificate carries its node's name (cli/certs.py)
        }
    return doc


def _write_random(path: Path, size: int, seed: int) -> None:
    """Deterministic incompressible bytes, written 1 MiB at a time (memory stays flat)."""
    if path.exists() and path.stat().st_size == size:
        return
    rng = random.Random(seed)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(rng.randbytes(n))
            left -= n
    os.replace(tmp, path)


def sample_files(spec: NodeSpec, index: int, n: int, big_size: int) -> list[str]:
    """A few small files distinct to each node, plus ``big.bin`` on the far (last) node."""
    spec.shared_dir.mkdir(parents=True, exist_ok=True)
    texts = {
        f"hello-{spec.name}.txt": f"Hello from {spec.name}, node {index + 1} of {n} in a local peerkit network.\n",
        f"notes-{spec.name}.md": f"# Notes of {spec.name}\n\n- shared by peerkit\n- try `peerkit locate '*.md'`\n",
    }
    for name, text in texts.items():
        path = spec.shared_dir / name
        if not path.exists():
            path.write_text(text, "utf-8")
    names = list(texts)
    _write_random(spec.shared_dir / f"data-{spec.name}.bin", 256 << 10, seed=index)
    names.append(f"data-{spec.name}.bin")
    if index == n - 1 and big_size > 0:
        _write_random(spec.shared_dir / BIG_FILE, big_size, seed=0xB16)
        names.append(BIG_FILE)
    return names


def write_network(specs: list[NodeSpec], big_size: int) -> Pki | None:
    """Configs and sample files (and, for TLS, fresh certificates); each node's state starts fresh."""
    by_name = {s.name: s for s in specs}
    pki = make_pki(specs[0].directory / TLS_DIR, [s.name for s in specs]) if specs and specs[0].tls else None
    for i, spec in enumerate(specs):
        spec.directory.mkdir(parents=True, exist_ok=True)
        if spec.state_dir.is_dir():
            shutil.rmtree(spec.state_dir)  # an old peer table would name stale ports
        spec.config_path.write_bytes(msgspec.toml.encode(config_doc(spec, by_name)))
        sample_files(spec, i, len(specs), big_size)
    return pki


def _child_env() -> dict[str, str]:
    """Our environment minus overrides that would make every node the same (ports, dirs, token)."""
    drop = ("PEERKIT_NODE_", "PEERKIT_SECURITY_", "PEERKIT_PEER", "PEERKIT_TOKEN")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _die_with_parent(parent: int) -> None:  # runs in the child before exec
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the launcher died before prctl took effect
        os._exit(1)


class LocalNetwork:
    """Start, watch and stop the node processes of a planned network."""

    def __init__(self, specs: list[NodeSpec], pki: Pki | None = None) -> None:
        self.specs = specs
        self.pki = pki  # the network's CA and the CLI's certificate, with --tls
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def directory(self) -> Path:
        return self.specs[0].directory

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def start(self) -> None:
        parent = os.getpid()
        env = _child_env()
        for spec in self.specs:
            with open(spec.log_path, "ab") as log:
                self.procs[spec.name] = subprocess.Popen(
                    [sys.executable, "-m", "peerkit.cli.main", "node", "run", "-c", str(spec.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.directory,
                    start_new_session=True,
                    preexec_fn=lambda: _die_with_parent(parent),
                )
        self._write_state()

    def _write_state(self) -> None:
        doc: dict[str, Any] = {
            "launcher_pid": os.getpid(),
            "nodes": [
                {"name": s.name, "rest": s.rest, "grpc": s.grpc, "pid": self.procs[s.name].pid,
                 "config": str(s.config_path), "log": str(s.log_path)}
                for s in self.specs if s.name in self.procs
            ],
        }
        if self.pki is not None:
            doc["tls"] = {"ca": str(self.pki.ca), "cert": str(self.pki.client_cert), "key": str(self.pki.client_key)}
        tmp = self.directory / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(doc, indent=2), "utf-8")
        os.replace(tmp, self.directory / STATE_FILE)

    def _log_tail(self, spec: NodeSpec) -> str:
        try:
            lines = [ln for ln in spec.log_path.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1] if lines else ""

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every node answers ``GET /api/v1/status``; NetworkError if one exits or stays silent."""
        deadline = time.monotonic() + timeout
        pending = list(self.specs)
        verify: Any = True
        if self.pki is not None:
            identity = Identity.load(self.pki.client_cert, self.pki.client_key)
            verify = client_ssl_context(self.pki.ca.read_bytes(), identity)
        with httpx.Client(timeout=1.0, verify=verify) as http:
            while pending:
                for spec in list(pending):
                    proc = self.procs[spec.name]
                    if proc.poll() is not None:
                        raise NetworkError(
                            f"{spec.name} exited with code {proc.returncode}: {self._log_tail(spec)} (log: {spec.log_path})"
                        )
                    try:
                        if http.get(f"{spec.rest}/api/v1/status").status_code == 200:
                            pending.remove(spec)
                    except httpx.HTTPError:
                        pass
                if pending:
                    if time.monotonic() > deadline:
                        names = ", ".join(s.name for s in pending)
                        raise NetworkError(f"{names} did not answer within {timeout:.0f} s (logs in {self.directory})")
                    time.sleep(0.1)

    def exited(self) -> dict[str, int]:
        """Nodes that stopped on their own, with their exit codes."""
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def stop(self, grace: float = STOP_GRACE_S) -> list[str]:
        """SIGTERM every child by PID, wait up to ``grace``, then SIGKILL what is left. Idempotent.

        Returns the names of the nodes that had to be killed.
        """
        killed: list[str] = []
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
                proc.kill()
                proc.wait(5)
        try:
            (self.directory / STATE_FILE).unlink()
        except FileNotFoundError:
            pass
        return killed
