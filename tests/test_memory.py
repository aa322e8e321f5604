"""Transfer buffers stay off the page-fault path: malloc keeps them instead of returning them each time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from peerkit.memory import tune_malloc
from peerkit.plugins.grpc_transfer.client import download_file, upload_file
from support.nodes import NodeProcess, free_port, write_config
from support.transfer import make_file, sha256_path, wait_grpc_serving

MiB = 1 << 20
SIZE = 64 * MiB


def minor_faults(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])  # minflt (field 10 of stat; 8th after the command name)


async def transfer_faults(tmp_path: Path, processes: list[NodeProcess], env: dict[str, str]) -> tuple[int, int]:
    """Page faults of a node process while it serves one SIZE download and takes one SIZE upload."""
    grpc_port = free_port()
    config = write_config(tmp_path, "n", plugins=["grpc_transfer"], grpc_port=grpc_port)
    shared = tmp_path / "n" / "shared"
    digest = make_file(shared / "big.bin", SIZE)
    node = NodeProcess(config, env=env)
    processes.append(node)
    node.start()
    address = f"127.0.0.1:{grpc_port}"
    await wait_grpc_serving(address)
    warm = tmp_path / "warm.bin"
    # First use of each direction grows the heap to its working size once: not what is measured.
    await download_file([address], warm, name="big.bin", parallel=False)
    await upload_file(address, warm, name="warm-up.bin")
    before = minor_faults(node.pid)
    got = tmp_path / "got.bin"
    await download_file([address], got, name="big.bin", parallel=False)
    after_download = minor_faults(node.pid)
    await upload_file(address, got, name="up.bin")
    after_upload = minor_faults(node.pid)
    assert sha256_path(got) == digest == sha256_path(shared / "up.bin")
    return after_download - before, after_upload - after_download


@pytest.mark.skipif(not tune_malloc(), reason="needs glibc's mallopt")
async def test_a_node_moves_64_mib_with_few_page_faults(tmp_path, processes):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    download, upload = await transfer_faults(tmp_path, processes, env)
    # Untuned glibc took ~129,000 faults per GiB sent here, ~8,000 per 64 MiB.
    assert download < 1500, download
    assert upload < 5000, upload  # untuned: ~15,000
