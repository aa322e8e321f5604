"""Transfers survive what really happens: a client killed mid-upload, a source killed mid-download."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from peerkit.errors import IntegrityError
from peerkit.plugins.grpc_transfer.client import download_file
from support.nodes import NodeProcess, free_port, running_network, running_node, write_config
from support.transfer import make_file, sha256_path, temp_files, wait_grpc_serving, wait_until

MiB = 1 << 20

# A client that announces 64 MiB, sends 4 MiB, says so, then stalls until killed.
STALLING_UPLOADER = r"""
import sys, time, grpc
from peerkit.v1 import transfer_pb2 as pb, transfer_pb2_grpc as pbg
def messages():
    yield pb.UploadRequest(header=pb.UploadHeader(name="victim.bin", size=64 << 20, sha256="ab" * 32))
    for _ in range(4):
        yield pb.UploadRequest(data=b"\x01" * (1 << 20))
    print("sent", flush=True)
    time.sleep(60)
stub = pbg.TransferStub(grpc.insecure_channel(sys.argv[1]))
stub.Upload(messages(), timeout=120)
"""


async def test_client_killed_mid_upload_leaves_nothing(tmp_path):
    async with running_node(tmp_path, plugins=["grpc_transfer"]) as node:
        share = Path(node.config.node.shared_dir)
        child = subprocess.Popen(
            [sys.executable, "-c", STALLING_UPLOADER, node.grpc_address], stdout=subprocess.PIPE, start_new_session=True
        )
        try:
            line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 20)
            assert line.strip() == b"sent"
            # The node holds the upload's temp file and has received the 4 MiB.
            assert await wait_until(lambda: any((share / t).stat().st_size >= 4 * MiB for t in temp_files(share)), 10)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
            child.stdout.close()
        assert await wait_until(lambda: os.listdir(share) == [], 10), os.listdir(share)
        await node.store.refresh()
        assert node.store.entries() == []
        index = Path(node.config.node.state_dir) / "file-index.json"
        assert not index.exists() or "victim.bin" not in json.loads(index.read_text())
        assert node.grpc_address  # the node is still serving
        assert (await node.store.list()) == []


async def test_multi_source_download_survives_a_source_killed_midway(tmp_path, processes):
    master = tmp_path / "master.bin"
    digest = make_file(master, 96 * MiB)
    grpc_port = free_port()
    config = write_config(tmp_path, "far", plugins=["grpc_transfer"], grpc_port=grpc_port)
    far_share = tmp_path / "far" / "shared"
    far_share.mkdir(parents=True)
    shutil.copyfile(master, far_share / "movie.bin")
    far = NodeProcess(config)
    processes.append(far)
    far.start()
    far_address = f"127.0.0.1:{grpc_port}"
    await wait_grpc_serving(far_address)

    async with running_network(tmp_path, 2, plugins=["grpc_transfer"]) as nodes:
        for node in nodes:
            shutil.copyfile(master, Path(node.config.node.shared_dir) / "movie.bin")
        sources = [far_address, *(n.grpc_address for n in nodes)]
        killed = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done >= total // 4 and not killed.is_set():
                far.signal(signal.SIGKILL)
                killed.set()

        dest = tmp_path / "got" / "movie.bin"
        dest.parent.mkdir()
        result = await asyncio.wait_for(download_file(sources, dest, name="movie.bin", progress=progress), 60)
        assert killed.is_set() and far.proc.wait(5) == -signal.SIGKILL
        assert sha256_path(dest) == digest and result.sha256 == digest
        delivered = result.extra["delivered"]
        assert 0 < delivered[far_address] < 96 * MiB  # the killed source had started: it died mid-way
        assert sum(delivered.values()) >= 96 * MiB
        assert set(result.sources) == set(sources)


def corrupt_in_place(path: Path, at: int) -> None:
    """Flip bytes at ``at`` keeping size and mtime, so the node's hash cache still
    vouches for the old sha256: a source that serves wrong bytes under a true-looking name."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(at)
        old = f.read(16)
        f.seek(at)
        f.write(bytes(b ^ 0xFF for b in old))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


async def test_a_source_serving_corrupt_bytes_is_found_and_skipped(tmp_path):
    master = tmp_path / "master.bin"
    size = 24 * MiB
    digest = make_file(master, size)
    async with running_network(tmp_path, 3, plugins=["grpc_transfer"]) as nodes:
        shares = [Path(n.config.node.shared_dir) / "movie.bin" for n in nodes]
        for share in shares:
            shutil.copyfile(master, share)
        for node in nodes:  # index (and hash) the good bytes first
            assert (await node.store.get("movie.bin")).sha256 == digest
        bad = nodes[1]
        for at in range(0, size, 4 * MiB):  # every piece the bad source could be handed
            corrupt_in_place(shares[1], at + 1000)
        assert (await bad.store.get("movie.bin")).sha256 == digest  # still claims the good hash
        good = [n.grpc_address for n in nodes if n is not bad]

        # All three at once: the assembled file fails its sha256. Then each source
        # alone, in the order given: the bad one fails again and is named, the next verifies.
        dest = tmp_path / "got" / "movie.bin"
        dest.parent.mkdir()
        result = await asyncio.wait_for(download_file([bad.grpc_address, *good], dest, name="movie.bin", streams=3), 60)
        assert sha256_path(dest) == digest and result.sha256 == digest
        assert result.extra["attempts"] == 3
        assert result.extra["rejected"] == [bad.grpc_address]
        assert result.sources == [good[0]]
        assert not dest.with_name("movie.bin.part").exists()

        # A good source listed first is used alone right after the failed mix.
        dest2 = tmp_path / "got" / "movie2.bin"
        result = await asyncio.wait_for(download_file([*good, bad.grpc_address], dest2, name="movie.bin", streams=3), 60)
        assert sha256_path(dest2) == digest
        assert result.extra["attempts"] == 2 and result.sources == [good[0]]

        only_bad = tmp_path / "got" / "only-bad.bin"
        with pytest.raises(IntegrityError):
            await download_file([bad.grpc_address], only_bad, name="movie.bin")
        assert not only_bad.exists() and not only_bad.with_name("only-bad.bin.part").exists()


# Reads the first chunks of a Download, says so, then waits to be killed.
SLOW_READER = r"""
import sys, time, grpc
from peerkit.v1 import transfer_pb2 as pb, transfer_pb2_grpc as pbg
stub = pbg.TransferStub(grpc.insecure_channel(sys.argv[1]))
stream = stub.Download(pb.DownloadRequest(name="big.bin"), timeout=120)
next(stream); next(stream)
print("reading", flush=True)
time.sleep(60)
"""


async def test_a_downloader_killed_mid_stream_leaves_no_traceback(tmp_path, caplog):
    async with running_node(tmp_path, plugins=["grpc_transfer"]) as node:
        share = Path(node.config.node.shared_dir)
        make_file(share / "big.bin", 64 * MiB)
        await node.store.refresh()
        for _ in range(3):
            child = subprocess.Popen(
                [sys.executable, "-c", SLOW_READER, node.grpc_address], stdout=subprocess.PIPE, start_new_session=True
            )
            try:
                line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 20)
                assert line.strip() == b"reading"
            finally:
                os.kill(child.pid, signal.SIGKILL)
                child.wait(10)
                child.stdout.close()
        assert await wait_until(lambda: node.metrics.get("grpc_downloads_served") == 3, 10)
    assert "Traceback" not in caplog.text and "ExecuteBatchError" not in caplog.text
