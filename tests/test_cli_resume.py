"""Ctrl-C during a download keeps a .part file; the same command again resumes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from support.cli import CLI, cli_env, peerkit, start_line
from support.transfer import make_file

SIZE = 48 << 20
PREFIX = 256 << 10


def started(part, head: bytes) -> bool:
    """The .part holds the file's first bytes (parallel streams also write further on, sparse)."""
    try:
        with open(part, "rb") as f:
            return f.read(len(head)) == head
    except FileNotFoundError:
        return False


def test_ctrl_c_leaves_a_part_that_the_next_download_resumes(tmp_path, processes):
    (node,) = start_line(tmp_path, ["solo"])
    source = tmp_path / "solo" / "shared" / "movie.bin"
    sha = make_file(source, SIZE)
    with open(source, "rb") as f:
        head = f.read(PREFIX)
    processes.append(node)  # stopped by the fixture even if start-up fails
    node.start()
    dest = tmp_path / "out" / "movie.bin"
    part = dest.with_name("movie.bin.part")
    cli = subprocess.Popen(
        [*CLI, "--peer", node.rest_url, "download", "movie.bin", "-o", str(dest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not started(part, head):
            assert cli.poll() is None, f"download ended before it could be interrupted: {cli.communicate()}"
            assert time.monotonic() < deadline, "no .part file appeared"
            time.sleep(0.005)
        node.signal(signal.SIGSTOP)  # freeze the sender so the download is surely mid-way
        time.sleep(0.3)
        os.kill(cli.pid, signal.SIGINT)  # the user's Ctrl-C
        out, err = cli.communicate(timeout=20)
    finally:
        node.signal(signal.SIGCONT)
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 130, err
    assert "Traceback" not in err and "run the same command again to resume" in err
    assert not dest.exists()
    kept = part.stat().st_size
    assert 0 < kept < SIZE

    again = peerkit("download", "movie.bin", "-o", str(dest), "--json", peer=node.rest_url)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["resumed_from"] > 0 and doc["sha256"] == sha and doc["verified"]
    assert not part.exists() and dest.stat().st_size == SIZE


def test_a_killed_parallel_download_still_resumes(tmp_path, processes):
    """SIGKILL leaves no chance to cut the .part, and parallel streams leave holes: the .frontier file says what is whole."""
    (node,) = start_line(tmp_path, ["solo"])
    source = tmp_path / "solo" / "shared" / "movie.bin"
    sha = make_file(source, SIZE)
    with open(source, "rb") as f:
        head = f.read(PREFIX)
    processes.append(node)
    node.start()
    dest = tmp_path / "out" / "movie.bin"
    part = dest.with_name("movie.bin.part")
    marker = dest.with_name("movie.bin.part.frontier")
    cli = subprocess.Popen(
        [*CLI, "--peer", node.rest_url, "download", "movie.bin", "-o", str(dest)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not started(part, head):
            assert cli.poll() is None, "download ended before it could be killed"
            assert time.monotonic() < deadline, "no .part file appeared"
            time.sleep(0.005)
        node.signal(signal.SIGSTOP)  # mid-way for sure; the client's checkpoints go on meanwhile
        while not (marker.exists() and int(marker.read_text().strip() or 0) > 0):
            assert time.monotonic() < deadline, "no frontier was recorded"
            time.sleep(0.05)
        os.kill(cli.pid, signal.SIGKILL)
        cli.wait(10)
    finally:
        node.signal(signal.SIGCONT)
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    recorded = int(marker.read_text())
    assert 0 < recorded < SIZE and part.stat().st_size >= recorded
    again = peerkit("download", "movie.bin", "-o", str(dest), "--json", peer=node.rest_url)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["resumed_from"] == recorded and doc["sha256"] == sha and doc["verified"]
    assert not part.exists() and not marker.exists() and dest.stat().st_size == SIZE
