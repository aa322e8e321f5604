"""Every client command as a user runs it: plain output, --json, exit codes.

One line network of three real node processes (near — mid — far) serves the
whole module; each test uses its own names so the order does not matter.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import httpx
import pytest

from support.cli import as_json, one_error_line, peerkit, start_all, start_line
from support.nodes import free_port, write_config

pytestmark = pytest.mark.xdist_group("cli_commands")

FAR_SIZE = 3 * (1 << 20) + 4321
ODD_NAME = "[bold]odd name.txt"  # markup in a file name must be shown as is


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    base = tmp_path_factory.mktemp("clinet")
    procs = start_line(base, ["near", "mid", "far"], discovery_flood={"learn_peers": False})
    (base / "near" / "shared").mkdir(parents=True)
    (base / "near" / "shared" / "alpha.txt").write_text("alpha\n")
    (base / "mid" / "shared").mkdir(parents=True)
    (base / "mid" / "shared" / "beta.txt").write_text("beta\n")
    far_shared = base / "far" / "shared"
    far_shared.mkdir(parents=True)
    far_data = os.urandom(FAR_SIZE)
    (far_shared / "far.bin").write_bytes(far_data)
    (far_shared / ODD_NAME).write_text("odd\n")
    try:
        start_all(procs)
        yield {
            "base": base,
            "near": procs[0].rest_url,
            "mid": procs[1].rest_url,
            "far": procs[2].rest_url,
            "far_sha": hashlib.sha256(far_data).hexdigest(),
        }
    finally:
        for p in procs:
            p.stop()


def test_status_plain_and_json(net):
    plain = peerkit("status", peer=net["near"])
    assert plain.returncode == 0, plain.stderr
    assert "near" in plain.stdout and "echo" in plain.stdout and "Uptime" in plain.stdout
    doc = as_json(peerkit("status", "--json", peer=net["near"]))
    assert doc["name"] == "near" and doc["rest"] == net["near"]
    assert {"queries_received", "hits_returned"} <= set(doc["counters"])
    # --peer after the command wins over the one before it
    assert as_json(peerkit("status", "--json", "--peer", net["far"], peer=net["near"]))["name"] == "far"
    # and PEERKIT_PEER is read from the environment
    assert as_json(peerkit("status", "--json", PEERKIT_PEER=net["mid"]))["name"] == "mid"


def test_peers_plain_and_json(net):
    plain = peerkit("peers", peer=net["mid"])
    assert plain.returncode == 0, plain.stderr
    assert "near" in plain.stdout and "far" in plain.stdout and "alive" in plain.stdout
    doc = as_json(peerkit("peers", "--json", peer=net["mid"]))
    assert {p["name"] for p in doc} >= {"near", "far"}


def test_peer_add_and_remove(net):
    args = ["--rest", "http://127.0.0.1:9", "--grpc", "127.0.0.1:9"]
    added = peerkit("peer", "add", "ghost1", *args, peer=net["near"])
    assert added.returncode == 0, added.stderr
    assert "Added ghost1" in added.stdout
    again = peerkit("peer", "add", "ghost1", *args, peer=net["near"])
    assert again.returncode == 1 and "already exists" in one_error_line(again)
    assert "ghost1" in {p["name"] for p in as_json(peerkit("peers", "--json", peer=net["near"]))}
    removed = as_json(peerkit("peer", "remove", "ghost1", "--json", peer=net["near"]))
    assert removed == {"removed": "ghost1"}
    gone = peerkit("peer", "remove", "ghost1", peer=net["near"])
    assert gone.returncode == 1 and "ghost1" in one_error_line(gone)
    added_json = as_json(peerkit("peer", "add", "ghost2", *args, "--json", peer=net["near"]))
    assert added_json["name"] == "ghost2" and added_json["grpc"] == "127.0.0.1:9"
    assert peerkit("peer", "remove", "ghost2", peer=net["near"]).returncode == 0
    bad = peerkit("peer", "add", "ghost3", "--rest", "not a url", "--grpc", "127.0.0.1:9", peer=net["near"])
    assert bad.returncode == 2 and "REST address" in one_error_line(bad)


def test_files_plain_and_json(net):
    plain = peerkit("files", peer=net["far"])
    assert plain.returncode == 0, plain.stderr
    assert "far.bin" in plain.stdout and ODD_NAME in plain.stdout and "2 files" in plain.stdout
    doc = as_json(peerkit("files", "--json", peer=net["far"]))
    by_name = {f["name"]: f for f in doc}
    assert by_name["far.bin"]["size"] == FAR_SIZE and by_name["far.bin"]["sha256"] == net["far_sha"]


def test_files_network_plain_and_json(net):
    plain = peerkit("files", "--network", peer=net["near"])
    assert plain.returncode == 0, plain.stderr
    for word in ("near", "mid", "far", "alpha.txt", "beta.txt", "far.bin", ODD_NAME):
        assert word in plain.stdout
    doc = as_json(peerkit("files", "--network", "--json", peer=net["near"]))
    peers = {p["peer"]: {f["name"] for f in p["files"]} for p in doc["peers"]}
    assert peers["far"] >= {"far.bin", ODD_NAME} and peers["mid"] >= {"beta.txt"}


def test_locate_plain_json_ttl_and_nothing_found(net):
    plain = peerkit("locate", "far.bin", peer=net["near"])
    assert plain.returncode == 0, plain.stderr
    assert "far" in plain.stdout and "1 hit on 1 peer" in plain.stdout
    doc = as_json(peerkit("locate", "far.bin", "--json", peer=net["near"]))
    assert [(h["peer"], h["hops"], h["sha256"]) for h in doc["hits"]] == [("far", 2, net["far_sha"])]
    assert as_json(peerkit("locate", "*.txt", "--json", peer=net["near"]))["hits"]
    # one hop is not enough to reach the far node: found nothing → exit 1, JSON still printed
    short = peerkit("locate", "far.bin", "--ttl", "1", "--json", peer=net["near"])
    assert short.returncode == 1
    assert as_json(short)["hits"] == []
    # a TTL over the cap is capped (as on REST), not a usage error
    far = peerkit("locate", "far.bin", "--ttl", "9", "--json", peer=net["near"])
    assert far.returncode == 0 and [h["peer"] for h in as_json(far)["hits"]] == ["far"]
    # the 12-digit sha256 the tables show finds it too
    by_prefix = as_json(peerkit("locate", f"sha256:{net['far_sha'][:12]}", "--json", peer=net["near"]))
    assert [(h["peer"], h["name"]) for h in by_prefix["hits"]] == [("far", "far.bin")]
    typo = peerkit("locate", "sha256:far", peer=net["near"])
    assert typo.returncode == 2 and "hex digits" in one_error_line(typo)
    assert peerkit("locate", "", peer=net["near"]).returncode == 2
    for path_like in ("../etc/passwd", "a\\b"):
        wrong = peerkit("download", path_like, peer=net["near"])  # refused before anything is written
        assert wrong.returncode == 2 and "one path component" in one_error_line(wrong)
    missing = peerkit("locate", "no-such-file.txt", peer=net["near"])
    assert missing.returncode == 1
    assert "no peer holds 'no-such-file.txt'" in one_error_line(missing)
    assert missing.stdout == ""


def test_download_plain_json_and_from(net, tmp_path):
    plain = peerkit("download", "far.bin", "-o", str(tmp_path) + "/", peer=net["near"])
    assert plain.returncode == 0, plain.stderr
    assert "sha256 verified" in plain.stdout and "Done." in plain.stdout
    assert hashlib.sha256((tmp_path / "far.bin").read_bytes()).hexdigest() == net["far_sha"]
    assert not (tmp_path / "far.bin.part").exists()
    # already there and identical: nothing to do
    again = peerkit("download", "far.bin", "-o", str(tmp_path / "far.bin"), peer=net["near"])
    assert again.returncode == 0 and "Already there" in again.stdout
    assert peerkit("download", "sha256:12", "-o", str(tmp_path / "typo.bin"), peer=net["near"]).returncode == 2
    by_prefix = peerkit("download", f"sha256:{net['far_sha'][:12]}", "-o", str(tmp_path / "by-hash.bin"), peer=net["near"])
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert hashlib.sha256((tmp_path / "by-hash.bin").read_bytes()).hexdigest() == net["far_sha"]
    doc = as_json(peerkit("download", "far.bin", "-o", str(tmp_path / "copy.bin"), "--from", "far", "--json", peer=net["mid"]))
    assert doc["sha256"] == net["far_sha"] and doc["size"] == FAR_SIZE and doc["verified"] is True
    assert doc["peers"] == ["far"] and doc["path"] == str(tmp_path / "copy.bin")
    wrong_peer = peerkit("download", "far.bin", "-o", str(tmp_path / "x.bin"), "--from", "mid", peer=net["near"])
    assert wrong_peer.returncode == 1 and "on mid" in one_error_line(wrong_peer)
    (tmp_path / "differs.bin").write_bytes(b"not the same")
    clash = peerkit("download", "far.bin", "-o", str(tmp_path / "differs.bin"), peer=net["near"])
    assert clash.returncode == 1 and "--force" in one_error_line(clash)
    os.mkfifo(tmp_path / "pipe")  # --force replaces files, never a device or a FIFO (as root: /dev/null)
    fifo = peerkit("download", "far.bin", "-o", str(tmp_path / "pipe"), "--force", peer=net["near"])
    assert fifo.returncode == 2 and "not a regular file" in one_error_line(fifo)
    assert (tmp_path / "pipe").is_fifo()


def test_download_of_missing_or_ambiguous_file_exits_1(net, tmp_path):
    result = peerkit("download", "nothing-like-this.bin", cwd=tmp_path, peer=net["near"])
    assert result.returncode == 1
    assert "nothing-like-this.bin" in one_error_line(result)
    several = peerkit("download", "*.txt", cwd=tmp_path, peer=net["near"])
    assert several.returncode == 1 and "matches" in one_error_line(several)
    assert list(tmp_path.iterdir()) == []


def test_upload_plain_json_and_missing_file(net, tmp_path):
    src = tmp_path / "report.txt"
    src.write_bytes(b"quarterly numbers\n" * 1000)
    plain = peerkit("upload", str(src), peer=net["mid"])
    assert plain.returncode == 0, plain.stderr
    assert "sha256 verified" in plain.stdout and "report.txt" in plain.stdout
    doc = as_json(peerkit("upload", str(src), "--as", "report-copy.txt", "--json", peer=net["mid"]))
    assert doc["name"] == "report-copy.txt" and doc["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    shared = net["base"] / "mid" / "shared"
    assert (shared / "report-copy.txt").read_bytes() == (shared / "report.txt").read_bytes() == src.read_bytes()
    exists = peerkit("upload", str(src), peer=net["mid"])
    assert exists.returncode == 1 and "exists" in one_error_line(exists)
    assert as_json(peerkit("upload", str(src), "--overwrite", "--json", peer=net["mid"]))["name"] == "report.txt"
    missing = peerkit("upload", str(tmp_path / "nope.txt"), peer=net["mid"])
    assert missing.returncode == 1 and "no such file" in one_error_line(missing)
    bad_name = peerkit("upload", str(src), "--as", "../escape.txt", peer=net["mid"])
    assert bad_name.returncode == 2 and "cannot share as" in one_error_line(bad_name)


def test_echo_prints_throughput(net):
    down = peerkit("echo", "download", "--size", "20MB", peer=net["near"])
    assert down.returncode == 0, down.stderr
    assert "20000000 bytes" in down.stdout and "MB/s" in down.stdout and " s, " in down.stdout
    up = as_json(peerkit("echo", "upload", "--size", "5MB", "--json", peer=net["near"]))
    assert up["bytes"] == 5_000_000 and up["seconds"] > 0 and up["mb_per_s"] > 0 and len(up["sha256"]) == 64
    rest = as_json(peerkit("echo", "download", "--size", "1MiB", "--via", "rest", "--json", peer=net["near"]))
    assert rest["bytes"] == 1 << 20 and rest["transport"] == "rest"
    huge = peerkit("echo", "download", "--size", "5GiB", peer=net["near"])
    assert huge.returncode == 1 and "limit" in one_error_line(huge)


def test_plugins_plain_json_and_config(tmp_path):
    plain = peerkit("plugins")
    assert plain.returncode == 0
    for name in ("rest_litestar", "grpc_transfer", "discovery_flood", "echo"):
        assert name in plain.stdout
    config = write_config(tmp_path, "cfg", plugins=["rest_litestar", "echo"])
    doc = as_json(peerkit("plugins", "-c", str(config), "--json"))
    enabled = {p["name"]: p["enabled"] for p in doc["installed"]}
    assert enabled["echo"] and enabled["rest_litestar"] and not enabled["grpc_transfer"]
    assert doc["enabled"] == ["rest_litestar", "echo"]
    (tmp_path / "broken.toml").write_text("[node]\nname = 'x'\nrest_port = 'high'\n")
    broken = peerkit("plugins", "-c", str(tmp_path / "broken.toml"))
    assert broken.returncode == 2 and "rest_port" in one_error_line(broken)


def test_usage_errors_exit_2():
    assert peerkit("status", "--no-such-option").returncode == 2
    assert peerkit("download").returncode == 2  # missing NAME
    assert peerkit("echo", "download", "--size", "lots").returncode == 2
    assert peerkit("no-such-command").returncode == 2
    bad_url = peerkit("status", "--peer", "http://[::1")
    assert bad_url.returncode == 2


def test_unreachable_node_exits_3(tmp_path):
    nobody = f"http://127.0.0.1:{free_port()}"
    for args in (["status"], ["files", "--json"], ["download", "x"]):
        result = peerkit(*args, peer=nobody, cwd=tmp_path)
        assert result.returncode == 3, (args, result.stderr)
        assert "cannot reach the node" in one_error_line(result)
        assert result.stdout == ""


def test_debug_shows_the_traceback(tmp_path):
    nobody = f"http://127.0.0.1:{free_port()}"
    result = peerkit("--debug", "status", peer=nobody)
    assert result.returncode == 3
    assert "Traceback" in result.stderr and "cannot reach the node" in result.stderr


def test_console_script_and_version():
    result = subprocess.run([sys.executable, "-m", "peerkit.cli.main", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "0.1.0" in result.stdout


def test_token_goes_to_rest_and_grpc(tmp_path, processes):
    (node,) = start_line(tmp_path, ["locked"], security={"token": "s3cret"})
    port, node.rest_port = node.rest_port, None
    processes.append(node.start())  # NodeProcess waits without a token: wait here instead
    node.rest_port = port
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{node.rest_url}/api/v1/status", headers={"authorization": "Bearer s3cret"}).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and node.proc.poll() is None, "locked node did not start"
        time.sleep(0.1)
    refused = peerkit("status", peer=node.rest_url)
    assert refused.returncode == 1 and "--token" in one_error_line(refused)
    assert one_error_line(refused).count("PEERKIT_TOKEN") == 1  # the advice once, not twice
    assert as_json(peerkit("status", "--json", "--token", "s3cret", peer=node.rest_url))["name"] == "locked"
    src = tmp_path / "key.txt"
    src.write_text("locked in\n")
    # PEERKIT_TOKEN reaches the gRPC calls too (echo, upload)
    echo = as_json(peerkit("echo", "download", "--size", "1MB", "--json", peer=node.rest_url, PEERKIT_TOKEN="s3cret"))
    assert echo["bytes"] == 1_000_000
    up = peerkit("upload", str(src), peer=node.rest_url, PEERKIT_TOKEN="s3cret")
    assert up.returncode == 0, up.stderr
