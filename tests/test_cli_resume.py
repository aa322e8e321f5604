"""An interrupted download (Ctrl-C, or killed outright) leaves a .part that the same command resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class UnderWay:
    node: Any
    sha: str
    dest: Path
    part: Path
    cli: subprocess.Popen


@contextlib.contextmanager
def download_under_way(tmp_path: Path, processes: list, *, capture: bool) -> Iterator[UnderWay]:
    """A node sharing movie.bin and a CLI download of it that has written the file's first bytes.

    On exit the node runs again (SIGCONT) and the CLI, if still alive, is killed.
    """
    (node,) = start_line(tmp_path, ["solo"])
    source = tmp_path / "solo" / "shared" / "movie.bin"
    sha = make_file(source, SIZE)
    with open(source, "rb") as f:
        head = f.read(PREFIX)
    processes.append(node)  # stopped by the fixture even if start-up fails
    node.start()
    dest = tmp_path / "out" / "movie.bin"
    part = dest.with_name("movie.bin.part")
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    cli = subprocess.Popen(
        [*CLI, "--peer", node.rest_url, "download", "movie.bin", "-o", str(dest)],
        stdout=output, stderr=output, text=True, env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while not started(part, head):
            assert cli.poll() is None, f"download ended before it could be interrupted: {cli.communicate() if capture else ''}"
            assert time.monotonic() < deadline, "no .part file appeared"
            time.sleep(0.005)
        yield UnderWay(node, sha, dest, part, cli)
    finally:
        node.signal(signal.SIGCONT)
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_ctrl_c_leaves_a_part_that_the_next_download_resumes(tmp_path, processes):
    with download_under_way(tmp_path, processes, capture=True) as dl:
        dl.node.signal(signal.SIGSTOP)  # freeze the sender so the download is surely mid-way
        time.sleep(0.3)
        os.kill(dl.cli.pid, signal.SIGINT)  # the user's Ctrl-C
        out, err = dl.cli.communicate(timeout=20)
    node, sha, dest, part, cli = dl.node, dl.sha, dl.dest, dl.part, dl.cli
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
    with download_under_way(tmp_path, processes, capture=False) as dl:
        marker = dl.dest.with_name("movie.bin.part.frontier")
        dl.node.signal(signal.SIGSTOP)  # mid-way for sure; the client's checkpoints go on meanwhile
        deadline = time.monotonic() + 30
        while not (marker.exists() and int(marker.read_text().strip() or 0) > 0):
            assert time.monotonic() < deadline, "no frontier was recorded"
            time.sleep(0.05)
        os.kill(dl.cli.pid, signal.SIGKILL)
        dl.cli.wait(10)
    node, sha, dest, part = dl.node, dl.sha, dl.dest, dl.part
    recorded = int(marker.read_text())
    assert 0 < recorded < SIZE and part.stat().st_size >= recorded
    again = peerkit("download", "movie.bin", "-o", str(dest), "--json", peer=node.rest_url)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["resumed_from"] == recorded and doc["sha256"] == sha and doc["verified"]
    assert not part.exists() and not marker.exists() and dest.stat().st_size == SIZE
