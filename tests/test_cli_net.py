"""``peerkit net up``: N nodes up, reachable, and all gone after Ctrl-C/SIGTERM; the demo tour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import httpx
import pytest

from peerkit.cli.launcher import edges, pick_ports, plan, write_network
from support.cli import CLI, as_json, cli_env, peerkit, pid_alive
from support.nodes import free_port


def wait_for_network(directory: Path, launcher: subprocess.Popen[str], timeout: float = 45) -> dict:
    """The launcher writes network.json when its children are started; then wait for every node."""
    deadline = time.monotonic() + timeout
    state = directory / "network.json"
    while True:
        assert launcher.poll() is None, launcher.communicate()
        assert time.monotonic() < deadline, "net up did not come up"
        if state.exists():
            doc = json.loads(state.read_text())
            if all(answers(n["rest"]) for n in doc["nodes"]):
                return doc
        time.sleep(0.3)


def answers(rest: str) -> bool:
    try:
        return httpx.get(f"{rest}/api/v1/status", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to `cmd &` in a script


@pytest.mark.parametrize(
    ("n", "stop_with", "started_as"),
    [(3, signal.SIGINT, "foreground"), (1, signal.SIGTERM, "foreground"), (2, signal.SIGINT, "background")],
)
def test_net_up_starts_n_nodes_and_stops_them_all(tmp_path, n, stop_with, started_as):
    base = free_port()
    launcher = subprocess.Popen(
        [*CLI, "net", "up", "--peers", str(n), "--dir", str(tmp_path), "--topology", "ring",
         "--base-port", str(base), "--grpc-base-port", str(free_port()), "--big-size", "1MB"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True,
        preexec_fn=_ignore_sigint if started_as == "background" else None,
    )
    pids: list[int] = []
    try:
        doc = wait_for_network(tmp_path, launcher)
        pids = [n["pid"] for n in doc["nodes"]]
        names = [f"peer{i + 1}" for i in range(n)]
        assert [node["name"] for node in doc["nodes"]] == names
        assert all(pid_alive(p) for p in pids)
        first = doc["nodes"][0]["rest"]
        status = as_json(peerkit("status", "--json", peer=first))
        assert status["name"] == "peer1" and status["files"] >= 3
        peers = {p["name"] for p in as_json(peerkit("peers", "--json", peer=first))}
        assert peers == set(names[1:])  # in a ring of up to three every other node is a friend
        launcher.send_signal(stop_with)  # Ctrl-C (or a service manager's SIGTERM)
        out, err = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in [p for p in pids if pid_alive(p)]:  # never leave our children behind, even on failure
            os.kill(pid, signal.SIGKILL)
    assert launcher.returncode == 0, err
    assert "peer1" in out and "Ctrl-C" in out and "peerkit files --network" in out
    assert f"Stopped {n} node" in err
    assert wait_gone(pids) == []
    assert not (tmp_path / "network.json").exists()


def test_nodes_die_with_a_killed_launcher(tmp_path):
    launcher = subprocess.Popen(
        [*CLI, "net", "up", "--peers", "1", "--dir", str(tmp_path), "--base-port", str(free_port()),
         "--grpc-base-port", str(free_port()), "--big-size", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(), start_new_session=True,
    )
    pids: list[int] = []
    try:
        pids = [n["pid"] for n in wait_for_network(tmp_path, launcher)["nodes"]]
        launcher.kill()  # SIGKILL: no chance to clean up, the kernel tells the children
        launcher.wait(10)
        assert wait_gone(pids) == []
    finally:
        for pid in [p for p in pids if pid_alive(p)]:
            os.kill(pid, signal.SIGKILL)


def test_net_up_demo_runs_the_tour_and_exits_0(tmp_path):
    result = subprocess.run(
        [*CLI, "net", "up", "--demo", "--dir", str(tmp_path), "--base-port", str(free_port()),
         "--grpc-base-port", str(free_port()), "--big-size", "4MB"],
        capture_output=True, text=True, timeout=90, env=cli_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for expected in ("peerkit status", "peerkit files --network", "peerkit locate big.bin", "peerkit download big.bin",
                     "sha256 verified", "identical to peer3's big.bin", "peerkit upload", "demo-greetings.txt",
                     "Echo download", "Demo complete"):
        assert expected in out, expected
    assert "Traceback" not in result.stderr
    assert "Stopped 3 nodes." in result.stderr
    assert (tmp_path / "downloads" / "big.bin").stat().st_size == 4_000_000
    assert not (tmp_path / "network.json").exists()


def test_net_up_tls_runs_the_tour_over_mutual_tls(tmp_path):
    result = subprocess.run(
        [*CLI, "net", "up", "--demo", "--tls", "--peers", "2", "--dir", str(tmp_path), "--base-port", str(free_port()),
         "--grpc-base-port", str(free_port()), "--big-size", "2MB"],
        capture_output=True, text=True, timeout=90, env=cli_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "https://127.0.0.1:" in result.stdout and "identical to peer2's big.bin" in result.stdout
    assert "PEERKIT_CERT=" in result.stdout + result.stderr  # how to talk to it afterwards
    config = tomllib.loads((tmp_path / "peer1.toml").read_text())
    assert config["security"] == {
        "tls_cert": "tls/peer1.pem", "tls_key": "tls/peer1.key", "tls_ca": "tls/ca.pem", "tls_client_auth": True,
        "bind_names": True,
    }
    for name in ("peer1", "peer2", "peerkit-cli"):
        assert (tmp_path / "tls" / f"{name}.key").stat().st_mode & 0o777 == 0o600


def test_configs_follow_the_topology(tmp_path):
    assert edges(4, "line") == [(0, 1), (1, 2), (2, 3)]
    assert edges(4, "ring") == [(0, 1), (1, 2), (2, 3), (3, 0)]
    assert len(edges(4, "mesh")) == 6
    specs = plan(tmp_path, 4, "line", free_port(), free_port())
    write_network(specs, big_size=10_000)
    docs = {s.name: tomllib.loads(s.config_path.read_text()) for s in specs}
    assert [p["name"] for p in docs["peer2"]["peers"]] == ["peer1", "peer3"]
    assert [p["name"] for p in docs["peer4"]["peers"]] == ["peer3"]
    assert docs["peer1"]["node"]["shared_dir"] == "peer1/shared"
    files = {s.name: sorted(p.name for p in s.shared_dir.iterdir()) for s in specs}
    assert "big.bin" in files["peer4"] and all("big.bin" not in files[n] for n in ("peer1", "peer2", "peer3"))
    assert len({f for names in files.values() for f in names}) == sum(len(v) for v in files.values())  # distinct
    ports = [s.rest_port for s in specs] + [s.grpc_port for s in specs]
    assert len(set(ports)) == len(ports)


def test_busy_ports_are_skipped():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        picked = pick_ports(2, port)
    assert port not in picked and all(p > port for p in picked)
