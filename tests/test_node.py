"""A node process runs until SIGINT/SIGTERM, then stops cleanly and quickly."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from support.nodes import NodeProcess, free_port, write_config


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
