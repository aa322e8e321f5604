"""Drive ``peerkit`` as a user does: a subprocess, real nodes, stdout/stderr/exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from support.nodes import NodeProcess, free_port, write_config

CLI = [sys.executable, "-m", "peerkit.cli.main"]


def cli_env(**extra: str) -> dict[str, str]:
    """The environment minus the user's PEERKIT_* settings; wide columns so tables never wrap."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERKIT_")}
    env.update(COLUMNS="200", NO_COLOR="1", **extra)
    return env


def peerkit(*args: str, peer: str | None = None, timeout: float = 60, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``peerkit ARGS`` (with ``--peer`` first when given) and wait for it."""
    argv = [*CLI, *(["--peer", peer] if peer else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=cli_env(**env), cwd=cwd)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    """stdout must be exactly one JSON document (json.loads refuses anything more)."""
    return json.loads(result.stdout)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def start_line(base: Path, names: list[str], **kwargs: Any) -> list[NodeProcess]:
    """Node processes named ``names``, friends in a line, on pre-picked free ports (not yet started)."""
    ports = {n: (free_port(), free_port()) for n in names}
    procs = []
    for i, name in enumerate(names):
        friends = [names[j] for j in (i - 1, i + 1) if 0 <= j < len(names)]
        peers = [{"name": f, "rest": f"http://127.0.0.1:{ports[f][0]}", "grpc": f"127.0.0.1:{ports[f][1]}"} for f in friends]
        config = write_config(base, name, rest_port=ports[name][0], grpc_port=ports[name][1], peers=peers, **kwargs)
        procs.append(NodeProcess(config, rest_port=ports[name][0]))
    return procs


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def start_all(procs: list[NodeProcess], timeout: float = 30.0) -> None:
    """Start every node at once, then wait for each (parallel start-up halves the wait)."""
    ports = [p.rest_port for p in procs]
    for p in procs:
        p.rest_port = None  # start() without waiting
        p.start()
    for p, port in zip(procs, ports):
        p.rest_port = port
        p.wait_ready(timeout)
