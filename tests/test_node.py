"""A node process runs until SIGINT/SIGTERM, then stops cleanly and quickly."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

from peerkit import Node
from support.nodes import NodeProcess, free_port, make_config, write_config


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_node_stops_cleanly_on_signal(tmp_path, processes, sig):
    rest = free_port()
    cfg = write_config(tmp_path, "n1", rest_port=rest, grpc_port=free_port())
    node = NodeProcess(cfg, rest_port=rest)
    processes.append(node.start())
    assert httpx.get(f"{node.rest_url}/api/v1/status", timeout=5).status_code == 200
    started = time.monotonic()
    node.signal(sig)
    assert node.proc.wait(10) == 0
    assert time.monotonic() - started < 8
    assert "Traceback" not in node.log_path.read_text()


def test_port_in_use_is_one_clear_line(tmp_path, processes):
    rest = free_port()
    first = NodeProcess(write_config(tmp_path, "a", rest_port=rest, grpc_port=free_port()), rest_port=rest)
    processes.append(first.start())
    second = NodeProcess(write_config(tmp_path, "b", rest_port=rest, grpc_port=free_port()))
    processes.append(second.start())
    assert second.proc.wait(20) == 1
    text = second.log_path.read_text()
    assert "cannot listen for REST" in text and "Traceback" not in text


async def test_two_nodes_cannot_share_a_state_dir(tmp_path):
    """They would overwrite each other's peer table and index: the second refuses to start, naming the first."""
    from peerkit.node import StartupError

    first = Node(make_config(tmp_path, "one", plugins=["rest_litestar"]))
    doc = make_config(tmp_path, "two", plugins=["rest_litestar"])
    doc.node.state_dir = first.config.node.state_dir
    await first.start()
    try:
        second = Node(doc)
        with pytest.raises(StartupError, match=rf"state_dir .* is in use by another node \(pid {os.getpid()}\)"):
            await second.start()
    finally:
        await first.stop()
    await second.start()  # free again once the first has stopped
    await second.stop()


async def test_a_state_or_shared_dir_that_is_a_file_is_named_in_the_error(tmp_path):
    from peerkit.node import StartupError

    config = make_config(tmp_path, "f", plugins=["rest_litestar"])
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    config.node.state_dir = str(blocker)
    with pytest.raises(StartupError, match=f"state_dir {blocker} is not a directory"):
        await Node(config).start()
    config = make_config(tmp_path, "g", plugins=["rest_litestar"])
    config.node.shared_dir = str(blocker)
    with pytest.raises(StartupError, match=f"shared_dir {blocker} is not a directory"):
        await Node(config).start()
