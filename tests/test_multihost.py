"""Two hosts for real: nodes in two network namespaces joined by a veth pair.

Each node binds its own host address (not loopback) and advertises it; the
far node is found by flooding and the file fetched over gRPC across the
link, the way a two-machine deployment works. Needs root and iproute2 (CI
has both); the namespaces and links are the test's own and are deleted after.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.nodes import write_config

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 to create network namespaces"
)


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def two_hosts():
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    subnet = random.randrange(256)
    hosts = [(f"pk{tag}a", f"pkv{tag}a", f"10.254.{subnet}.1"), (f"pk{tag}b", f"pkv{tag}b", f"10.254.{subnet}.2")]
    try:
        for ns, _, _ in hosts:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", hosts[0][1], "type", "veth", "peer", "name", hosts[1][1])
        for ns, veth, addr in hosts:
            sh("ip", "link", "set", veth, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", veth)
            sh("ip", "-n", ns, "link", "set", veth, "up")
        yield hosts
    finally:
        for ns, _, _ in hosts:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def peerkit_in(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "peerkit.cli.main", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_locate_and_download_across_two_hosts(tmp_path: Path, two_hosts):
    (ns_a, _, addr_a), (ns_b, _, addr_b) = two_hosts
    procs: list[subprocess.Popen[bytes]] = []
    common = {"rest_port": 5001, "grpc_port": 50051}
    cfg_a = write_config(tmp_path, "hosta", peers=[{"name": "hostb", "rest": f"http://{addr_b}:5001", "grpc": f"{addr_b}:50051"}], **common)
    cfg_b = write_config(tmp_path, "hostb", **common)
    for cfg, addr in ((cfg_a, addr_a), (cfg_b, addr_b)):
        text = cfg.read_text().replace('host = "127.0.0.1"', f'host = "{addr}"')
        cfg.write_text(text)
    payload = os.urandom(3 << 20)
    (tmp_path / "hostb" / "shared").mkdir(parents=True)
    (tmp_path / "hostb" / "shared" / "far.bin").write_bytes(payload)
    try:
        for ns, cfg in ((ns_b, cfg_b), (ns_a, cfg_a)):
            log = open(cfg.with_suffix(".log"), "wb")
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "peerkit.cli.main", "node", "run", "-c", str(cfg)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if peerkit_in(ns_a, "--peer", f"http://{addr_a}:5001", "status", "--json").returncode == 0:
                break
            time.sleep(0.3)
        status = peerkit_in(ns_a, "--peer", f"http://{addr_a}:5001", "status", "--json")
        assert status.returncode == 0, status.stderr
        assert f"{addr_a}:50051" in status.stdout  # advertises its host address, not loopback

        found = peerkit_in(ns_a, "--peer", f"http://{addr_a}:5001", "locate", "far.bin", "--json")
        assert found.returncode == 0, found.stderr
        assert f"{addr_b}:50051" in found.stdout

        out = tmp_path / "got.bin"
        got = peerkit_in(ns_a, "--peer", f"http://{addr_a}:5001", "download", "far.bin", "-o", str(out))
        assert got.returncode == 0, got.stderr
        assert out.read_bytes() == payload
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
