"""Files move through peerkit.v1.Transfer byte-exact, verified, and never half-stored."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest

from peerkit.errors import AlreadyExists, InvalidName, NotFound, PeerkitError, TooLarge, TransportError
from peerkit.plugins.grpc_transfer.client import download_file, stat_file, upload_file
from peerkit.plugins.grpc_transfer.config import DEFAULT_CHUNK_SIZE
from peerkit.v1 import transfer_pb2, transfer_pb2_grpc
from support.nodes import free_port, running_network, running_node
from support.transfer import evict, make_file, open_fds_of, sha256_path, temp_files, wait_until

PLUGINS = ["grpc_transfer"]
MiB = 1 << 20


def shared(node) -> Path:
    return Path(node.config.node.shared_dir)


def indexed_names(node) -> set[str]:
    path = Path(node.config.node.state_dir) / "file-index.json"
    on_disk = set(json.loads(path.read_text())) if path.exists() else set()
    return on_disk | {e.name for e in node.store.entries()}


async def raw_upload(address: str, messages: list[transfer_pb2.UploadRequest]) -> transfer_pb2.UploadReply:
    async def gen():
        for m in messages:
            yield m

    async with grpc.aio.insecure_channel(address) as channel:
        return await transfer_pb2_grpc.TransferStub(channel).Upload(gen(), timeout=10)


def header(name: str, data: bytes, **kw) -> transfer_pb2.UploadRequest:
    import hashlib

    fields = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), **kw}
    return transfer_pb2.UploadRequest(header=transfer_pb2.UploadHeader(**fields))


def data(b: bytes) -> transfer_pb2.UploadRequest:
    return transfer_pb2.UploadRequest(data=b)


@pytest.mark.parametrize(
    "size", [0, 1, DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE + 1, 100 * MiB], ids=["0B", "1B", "chunk", "chunk+1", "100MiB"]
)
async def test_round_trip_is_byte_exact(tmp_path, size):
    src = tmp_path / "src.bin"
    digest = make_file(src, size)
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        up = await upload_file(node.grpc_address, src, name="file.bin")
        assert (up.name, up.size, up.sha256) == ("file.bin", size, digest)
        assert sha256_path(shared(node) / "file.bin") == digest
        assert "file.bin" in indexed_names(node)

        seen: list[tuple[int, int]] = []
        dest = tmp_path / "out" / "file.bin"
        dest.parent.mkdir()
        down = await download_file([node.grpc_address], dest, name="file.bin", progress=lambda d, t: seen.append((d, t)))
        assert (down.size, down.sha256, down.resumed_from) == (size, digest, 0)
        assert down.sources == [node.grpc_address]
        assert sha256_path(dest) == digest and dest.stat().st_size == size
        assert not dest.with_name("file.bin.part").exists()
        assert seen[-1] == (size, size)


async def test_download_of_a_file_partly_out_of_the_page_cache_is_byte_exact(tmp_path):
    """The node reads cached batches in its loop and the rest in threads: same bytes either way."""
    size = 5 * DEFAULT_CHUNK_SIZE + 17
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "file.bin", size)
        for n, (start, length) in enumerate([(2 * DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE), (0, 0), (3 * DEFAULT_CHUNK_SIZE, 0)]):
            evict(shared(node) / "file.bin", start, length)
            dest = tmp_path / f"out{n}.bin"
            down = await download_file([node.grpc_address], dest, name="file.bin", parallel=False)
            assert down.sha256 == digest and sha256_path(dest) == digest


async def test_one_source_is_still_read_over_parallel_streams(tmp_path):
    """streams=3 from a single source splits the file into more, smaller ranges, fetched at once."""
    size = 48 * MiB
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "file.bin", size)
        served = node.metrics.get("grpc_downloads_served")
        one = await download_file([node.grpc_address], tmp_path / "one.bin", name="file.bin", parallel=False)
        single_calls = node.metrics.get("grpc_downloads_served") - served
        three = await download_file([node.grpc_address], tmp_path / "three.bin", name="file.bin", streams=3)
        parallel_calls = node.metrics.get("grpc_downloads_served") - served - single_calls
        assert one.sha256 == three.sha256 == digest == sha256_path(tmp_path / "three.bin")
        assert three.extra["streams"] == 3 and three.extra["attempts"] == 1
        assert (single_calls, parallel_calls) == (4, 12)  # 12 MiB pieces for one worker, 4 MiB for three


async def test_stat_and_download_by_sha256_with_ranges(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "r.bin", 3 * MiB + 5)
        content = (shared(node) / "r.bin").read_bytes()
        entry = await stat_file(node.grpc_address, sha256=digest)
        assert (entry.name, entry.size, entry.sha256) == ("r.bin", 3 * MiB + 5, digest)
        assert entry.mtime == pytest.approx((shared(node) / "r.bin").stat().st_mtime, abs=1e-3)
        assert (await stat_file(node.grpc_address, name="r.bin")).sha256 == digest

        async with grpc.aio.insecure_channel(node.grpc_address) as ch:
            stub = transfer_pb2_grpc.TransferStub(ch)
            msgs = [m async for m in stub.Download(transfer_pb2.DownloadRequest(sha256=digest, offset=MiB - 3, length=MiB + 10))]
            assert msgs[0].info.sha256 == digest and msgs[0].info.size == len(content)
            assert b"".join(m.data for m in msgs) == content[MiB - 3 : 2 * MiB + 7]
            assert [m.offset for m in msgs[1:]] == [MiB - 3, 2 * MiB - 3]
            tail = [m async for m in stub.Download(transfer_pb2.DownloadRequest(name="r.bin", offset=len(content)))]
            assert len(tail) == 1 and not tail[0].data
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in stub.Download(transfer_pb2.DownloadRequest(name="r.bin", offset=len(content) + 1)):
                    pass
            assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
            for req, code in [
                (transfer_pb2.DownloadRequest(name="missing.bin"), grpc.StatusCode.NOT_FOUND),
                (transfer_pb2.DownloadRequest(sha256="0" * 64), grpc.StatusCode.NOT_FOUND),
                (transfer_pb2.DownloadRequest(name="r.bin", sha256="1" * 64), grpc.StatusCode.NOT_FOUND),
                (transfer_pb2.DownloadRequest(sha256="xyz"), grpc.StatusCode.INVALID_ARGUMENT),
                (transfer_pb2.DownloadRequest(), grpc.StatusCode.INVALID_ARGUMENT),
            ]:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    async for _ in stub.Download(req):
                        pass
                assert err.value.code() == code, req
        with pytest.raises(NotFound):
            await stat_file(node.grpc_address, name="missing.bin")


async def test_resume_continues_a_partial_file(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "big.bin", 20 * MiB + 7)
        content = (shared(node) / "big.bin").read_bytes()
        dest = tmp_path / "big.bin"
        dest.with_name("big.bin.part").write_bytes(content[: 7 * MiB + 1])
        result = await download_file([node.grpc_address], dest, name="big.bin")
        assert result.resumed_from == 7 * MiB + 1
        assert sha256_path(dest) == digest

        # A stale .part with other bytes fails verification once, then starts over.
        dest.unlink()
        dest.with_name("big.bin.part").write_bytes(b"\0" * MiB)
        result = await download_file([node.grpc_address], dest, sha256=digest)
        assert result.resumed_from == 0 and sha256_path(dest) == digest


async def test_cancelled_download_keeps_part_then_resumes(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "big.bin", 64 * MiB)
        dest = tmp_path / "big.bin"
        part = dest.with_name("big.bin.part")
        hit = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done >= 8 * MiB:
                hit.set()

        task = asyncio.create_task(download_file([node.grpc_address], dest, name="big.bin", progress=progress))
        await asyncio.wait_for(hit.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        kept = part.stat().st_size
        assert 0 < kept < 64 * MiB and not dest.exists()
        with open(shared(node) / "big.bin", "rb") as f:
            assert part.read_bytes() == f.read(kept)  # contiguous, no holes
        result = await download_file([node.grpc_address], dest, name="big.bin")
        assert result.resumed_from == kept and sha256_path(dest) == digest


async def test_upload_with_wrong_sha256_or_size_is_data_loss_and_leaves_nothing(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        body = os.urandom(3 * MiB)
        cases = [
            [header("bad.bin", body, sha256="0" * 64), data(body[:MiB]), data(body[MiB:])],
            [header("bad.bin", body), data(body[:-1])],
            [header("bad.bin", body), data(body), data(b"x")],
        ]
        for messages in cases:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await raw_upload(node.grpc_address, messages)
            assert err.value.code() == grpc.StatusCode.DATA_LOSS
        assert os.listdir(shared(node)) == []
        await node.store.refresh()
        assert "bad.bin" not in indexed_names(node)


async def test_upload_message_order_is_checked(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        body = b"hello"
        for messages in (
            [data(body), header("x.txt", body)],
            [header("x.txt", body), header("x.txt", body), data(body)],
            [],
            [transfer_pb2.UploadRequest()],
            [transfer_pb2.UploadRequest(header=transfer_pb2.UploadHeader(name="x.txt", size=5, sha256="nothex"))],
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await raw_upload(node.grpc_address, messages)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, messages
        assert os.listdir(shared(node)) == []


async def test_existing_name_needs_overwrite(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        first, second = tmp_path / "a", tmp_path / "b"
        first.write_bytes(b"one")
        d2 = make_file(second, 1000)
        await upload_file(node.grpc_address, first, name="same.txt")
        with pytest.raises(AlreadyExists):
            await upload_file(node.grpc_address, second, name="same.txt")
        assert (shared(node) / "same.txt").read_bytes() == b"one"
        result = await upload_file(node.grpc_address, second, name="same.txt", overwrite=True)
        assert result.sha256 == d2 == sha256_path(shared(node) / "same.txt")
        assert temp_files(shared(node)) == []


async def test_size_limit_on_header_and_on_bytes(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS, grpc_transfer={"max_upload_bytes": "1MiB"}) as node:
        big = tmp_path / "big"
        make_file(big, MiB + 1)
        with pytest.raises(TooLarge):
            await upload_file(node.grpc_address, big)
        # A header that lies about the size is caught on the bytes actually received
        # (bytes past the announced size but under the limit are DATA_LOSS, tested above).
        body = os.urandom(2 * MiB)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await raw_upload(node.grpc_address, [header("lie.bin", b"tiny"), data(body)])
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert os.listdir(shared(node)) == []


async def test_a_stalled_upload_is_ended_and_frees_its_slot(tmp_path):
    """A client that sends a header and then nothing loses the call after the idle timeout, not the node's slots."""
    config = {"upload_idle_timeout_s": 0.5, "max_concurrent_uploads": 1}
    async with running_node(tmp_path, plugins=PLUGINS, grpc_transfer=config) as node:
        body = os.urandom(3000)

        async def stall():
            yield header("stalled.bin", body)
            yield data(body[:1000])
            await asyncio.sleep(20)  # the node must not wait this long
            yield data(body[1000:])

        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            started = asyncio.get_running_loop().time()
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await transfer_pb2_grpc.TransferStub(channel).Upload(stall(), timeout=15)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "nothing received for 0.5 s" in err.value.details()
            assert asyncio.get_running_loop().time() - started < 10
        assert await wait_until(lambda: temp_files(shared(node)) == [], 5)
        assert "stalled.bin" not in indexed_names(node)
        assert node.metrics.get("uploads_stalled") == 1
        src = tmp_path / "next.bin"
        make_file(src, 1000)
        assert (await upload_file(node.grpc_address, src)).size == 1000  # the one slot is free again


async def test_a_download_nobody_reads_is_ended_and_frees_its_slot(tmp_path):
    """A client that stops taking chunks loses the stream after the idle timeout; the node closes the file."""
    config = {"download_idle_timeout_s": 0.5, "max_concurrent_downloads": 1}
    async with running_node(tmp_path, plugins=PLUGINS, grpc_transfer=config) as node:
        big = shared(node) / "big.bin"
        make_file(big, 96 * MiB)  # more than the HTTP/2 windows and socket buffers hold
        await node.store.refresh()
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:
            stub = transfer_pb2_grpc.TransferStub(channel)
            stalled = stub.Download(transfer_pb2.DownloadRequest(name="big.bin"), timeout=60)
            assert (await stalled.read()).info.size == 96 * MiB
            assert open_fds_of(big) == 1
            with pytest.raises(grpc.aio.AioRpcError) as err:  # the only slot is taken
                async for _ in stub.Download(transfer_pb2.DownloadRequest(name="big.bin"), timeout=10):
                    pass
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at most 1 downloads at once" in err.value.details()
            # Not reading: the node's writes fill the windows, then its timer ends the stream.
            assert await wait_until(lambda: node.metrics.get("downloads_stalled") == 1, 20)
            assert await wait_until(lambda: open_fds_of(big) == 0, 5)
            # The slot is free while the stalled call is still open.
            result = await download_file([node.grpc_address], tmp_path / "out.bin", name="big.bin")
            assert result.size == 96 * MiB and sha256_path(tmp_path / "out.bin") == sha256_path(big)
            # Reading again, the stalled client drains what was in flight, then learns why it ended.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                while await stalled.read() is not grpc.aio.EOF:
                    pass
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "no progress for 0.5 s" in err.value.details()


async def test_hostile_names_are_refused(tmp_path, name_corpus):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        outside_before = sorted(p.name for p in tmp_path.iterdir())
        async with grpc.aio.insecure_channel(node.grpc_address) as ch:
            stub = transfer_pb2_grpc.TransferStub(ch)
            for name in name_corpus["refused"]:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await raw_upload(node.grpc_address, [header(name, b"evil"), data(b"evil")])
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.Stat(transfer_pb2.StatRequest(name=name))
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    async for _ in stub.Download(transfer_pb2.DownloadRequest(name=name)):
                        pass
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
                with pytest.raises((InvalidName, ValueError)):
                    await upload_file(node.grpc_address, tmp_path / "n1.toml", name=name)
        assert os.listdir(shared(node)) == []
        assert sorted(p.name for p in tmp_path.iterdir()) == outside_before


async def test_accepted_and_normalised_names_work(tmp_path, name_corpus):
    src = tmp_path / "payload"
    src.write_bytes(b"payload")
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        for name in name_corpus["accepted"]:
            result = await upload_file(node.grpc_address, src, name=name)
            assert (await stat_file(node.grpc_address, name=name)).sha256 == result.sha256
        for given, stored in name_corpus["normalised"]:
            result = await upload_file(node.grpc_address, src, name=given, overwrite=True)
            assert result.name == stored
            assert (shared(node) / stored).read_bytes() == b"payload"


async def test_fifty_concurrent_downloads_are_byte_exact(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        digest = make_file(shared(node) / "pop.bin", 4 * MiB + 123)
        out = tmp_path / "out"
        out.mkdir()
        results = await asyncio.wait_for(
            asyncio.gather(*(download_file([node.grpc_address], out / f"c{i}.bin", name="pop.bin") for i in range(50))),
            60,
        )
        assert all(r.sha256 == digest for r in results)
        assert all(sha256_path(out / f"c{i}.bin") == digest for i in range(50))
        assert sorted(os.listdir(out)) == sorted(f"c{i}.bin" for i in range(50))


async def test_download_skips_sources_without_the_file_and_reports_unreachable(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    async with running_network(tmp_path, 2, plugins=PLUGINS) as (a, b):
        digest = make_file(shared(b) / "only-b.bin", 5 * MiB)
        dest = tmp_path / "x.bin"
        result = await download_file([dead, a.grpc_address, b.grpc_address], dest, name="only-b.bin")
        assert result.sources == [b.grpc_address] and sha256_path(dest) == digest
        with pytest.raises(NotFound):
            await download_file([a.grpc_address, dead], tmp_path / "y.bin", name="only-b.bin")
        with pytest.raises(TransportError):
            await download_file([dead], tmp_path / "z.bin", name="only-b.bin")
        with pytest.raises(TransportError):
            await upload_file(dead, dest)
        assert not (tmp_path / "y.bin.part").exists()


async def test_download_refuses_a_name_whose_sha256_differs(tmp_path):
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        make_file(shared(node) / "f.bin", MiB)
        with pytest.raises(NotFound):
            await download_file([node.grpc_address], tmp_path / "f.bin", name="f.bin", sha256="a" * 64)
        assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


async def test_token_protected_node_needs_the_token(tmp_path):
    from peerkit.errors import PeerkitError

    async with running_node(tmp_path, plugins=PLUGINS, security={"token": "s3cret"}) as node:
        digest = make_file(shared(node) / "t.bin", 2 * MiB)
        with pytest.raises(PeerkitError, match="UNAUTHENTICATED"):
            await download_file([node.grpc_address], tmp_path / "t.bin", name="t.bin")
        result = await download_file([node.grpc_address], tmp_path / "t.bin", name="t.bin", token="s3cret")
        assert result.sha256 == digest
        up = await upload_file(node.grpc_address, tmp_path / "t.bin", name="t2.bin", token="s3cret")
        assert up.sha256 == digest


async def test_cancelled_upload_leaves_nothing_on_the_node(tmp_path):
    src = tmp_path / "up.bin"
    make_file(src, 200 * MiB)
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        started = asyncio.Event()

        def progress(done: int, total: int) -> None:
            if done >= 4 * MiB:
                started.set()

        task = asyncio.create_task(upload_file(node.grpc_address, src, name="up.bin", progress=progress))
        await asyncio.wait_for(started.wait(), 20)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await wait_until(lambda: os.listdir(shared(node)) == [], 10), os.listdir(shared(node))
        await node.store.refresh()
        assert "up.bin" not in indexed_names(node)


def test_config_defaults_and_errors():
    from peerkit.config import ConfigError, parse_config

    def section(table: dict):
        raw = {"node": {"name": "n", "plugins": ["grpc_transfer"]}, "grpc_transfer": table}
        return parse_config(raw, env={}).sections["grpc_transfer"]

    cfg = section({"max_upload_bytes": "2GiB"})
    assert (cfg.chunk_size, cfg.upload_limit, cfg.max_concurrent_uploads, cfg.upload_idle_timeout_s) == (MiB, 2 << 30, 32, 60.0)
    assert section({"max_upload_bytes": 0}).upload_limit is None
    assert (cfg.max_concurrent_downloads, cfg.download_idle_timeout_s) == (256, 60.0)
    for table, needle in (
        ({"chunk_size": "8MiB"}, "chunk_size: expected 1 to"),
        ({"upload_idle_timeout_s": -1}, "upload_idle_timeout_s: expected >= 0"),
        ({"max_concurrent_uploads": -2}, "max_concurrent_uploads"),
        ({"max_concurrent_downloads": -1}, "max_concurrent_downloads: expected >= 0"),
        ({"download_idle_timeout_s": -0.5}, "download_idle_timeout_s: expected >= 0"),
        ({"max_upload_bytes": "lots"}, "max_upload_bytes"),
        ({"chunksize": 5}, "unknown key chunksize"),
    ):
        with pytest.raises(ConfigError, match=needle) as err:
            section(table)
        assert "[grpc_transfer]" in str(err.value) and "\n" not in str(err.value)


async def test_a_planted_part_symlink_is_not_written_through(tmp_path):
    """In a directory others can write to, dest.part -> somewhere must not make the download overwrite somewhere."""
    async with running_node(tmp_path, plugins=PLUGINS) as node:
        make_file(shared(node) / "mid.bin", 3 * MiB)
        await node.store.refresh()
        victim = tmp_path / "victim.txt"
        victim.write_bytes(b"precious")
        out = tmp_path / "out"
        out.mkdir()
        (out / "mid.bin.part").symlink_to(victim)
        with pytest.raises(PeerkitError, match="symbolic link"):
            await download_file([node.grpc_address], out / "mid.bin", name="mid.bin")
        assert victim.read_bytes() == b"precious" and not (out / "mid.bin").exists()
        os.mkfifo(out / "fifo.bin.part")
        with pytest.raises(PeerkitError, match="not a regular file"):
            await download_file([node.grpc_address], out / "fifo.bin", name="mid.bin")
