"""``peerkit.v1.Transfer``: stream shared files out, take verified files in.

Download reads with ``os.pread``: in the loop when the bytes are in the page
cache, otherwise in a worker thread a batch ahead of the sender, so the loop
never waits on the disk and memory per stream stays at two batches. Streams
are capped in number, and one whose client takes nothing for
``download_idle_timeout_s`` gives back its file and slot.

Upload writes through the store's atomic writer, batched and overlapped with
receiving, hashed and written in cache-sized slices, with writeback to disk
started as it goes: the file appears only after size and sha256 match, and any
failure or cancelled stream removes the temp file. Status codes come from the
one table in ``status.py``.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import re
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import grpc

from peerkit.errors import IntegrityError, NotFound, PeerkitError, Stalled, TooLarge
from peerkit.names import validate_name
from peerkit.pagecache import is_cached
from peerkit.store import AtomicWriter, FileEntry
from peerkit.utils import each_within
from peerkit.v1 import transfer_pb2, transfer_pb2_grpc

from .status import BadRequest, OutOfRange, abort, code_for
from .wire import encode_data_chunk

if TYPE_CHECKING:
    from peerkit import Node

    from .config import TransferConfig

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# grpc.aio raises this (it has no public name) when a write meets a call the client has left.
try:
    from grpc._cython.cygrpc import ExecuteBatchError as _ExecuteBatchError

    _CLIENT_GONE: tuple[type[BaseException], ...] = (_ExecuteBatchError,)
except ImportError:  # another grpc layout: such errors are then logged by grpc, as before
    _CLIENT_GONE = ()
WRITE_BATCH_BYTES = 2 << 20
# Start writeback of every this many uploaded bytes while receiving, so the
# fsync before commit has little left to do: without it the kernel holds the
# whole upload dirty (background writeback starts at 10% of RAM) and the
# final fsync of 1 GiB took 1.3-1.6 s here (bench/README.md, tuning round 2).
WRITEBACK_BYTES = 16 << 20
# Each received chunk is hashed and written in slices of this size, so the
# write copies bytes the hash has just pulled into the CPU cache: hash + write
# of 1 GiB in 1 MiB pieces cost 1.4-1.7 CPU-s here, in 256 KiB slices 1.1.
CACHE_SLICE = 256 << 10
_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc ``sync_file_range`` (Linux only), or None where it is missing."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError, TypeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


SYNC_FILE_RANGE = _sync_file_range()


def file_info(entry: FileEntry) -> transfer_pb2.FileInfo:
    return transfer_pb2.FileInfo(name=entry.name, size=entry.size, sha256=entry.sha256, mtime=entry.mtime)


def check_sha256(value: str) -> str:
    digest = value.strip().lower()
    if not SHA256_HEX.fullmatch(digest):
        raise BadRequest(f"sha256 must be 64 hex digits, got {value[:80]!r}")
    return digest


async def resolve(node: Node, name: str, sha256: str) -> FileEntry:
    """The shared file a request names (by name, by sha256, or both, which must agree)."""
    if not name and not sha256:
        raise BadRequest("give a file name or a sha256")
    if name:
        entry = await node.store.get(name)
        if sha256 and entry.sha256 != check_sha256(sha256):
            raise NotFound(f"{entry.name!r} is here but its sha256 is not {sha256}")
        return entry
    return await node.store.find_sha256(check_sha256(sha256))


class _OpenFile:
    """An open shared file whose (size, mtime) matches its index entry."""

    def __init__(self, fd: int, entry: FileEntry) -> None:
        self.fd = fd
        self.entry = entry


async def _open_checked(node: Node, entry: FileEntry) -> _OpenFile:
    """Open ``entry`` and make sure the bytes behind the fd are the ones indexed.

    A file replaced between the index look-up and open() is re-indexed once;
    rename-based writes never change an fd we already hold.
    """
    for _ in range(2):
        f = await asyncio.to_thread(node.store.open_read, entry.name)
        fd = os.dup(f.fileno())
        f.close()
        st = os.fstat(fd)
        if st.st_size == entry.size and st.st_mtime == entry.mtime:
            return _OpenFile(fd, entry)
        os.close(fd)
        entry = await node.store.get(entry.name)
    raise IntegrityError(f"{entry.name!r} keeps changing on disk; try again")


def _read_batch(fd: int, pos: int, end: int, chunk: int, count: int) -> list[bytes]:
    out = []
    while pos < end and len(out) < count:
        data = os.pread(fd, min(chunk, end - pos), pos)
        if not data:
            break
        out.append(data)
        pos += len(data)
    return out


class ReadAhead:
    """Chunks of ``fd[start:end]``, never waiting on the disk inside the event loop.

    A batch already in the page cache is read right in the loop (a memory
    copy, cheaper than any thread hop); any other is read in a worker thread
    one batch ahead of the sender. One thread hop per READ_BATCH chunks: a
    finished read can wait up to the interpreter's 5 ms switch interval for
    the GIL while the loop is busy, so hops are amortised and overlapped
    rather than paid per chunk. Memory per stream stays at two batches.
    """

    READ_BATCH = 2

    def __init__(self, fd: int, start: int, end: int, chunk: int) -> None:
        self._fd, self._pos, self._end, self._chunk = fd, start, end, chunk
        self._next: asyncio.Future[list[bytes]] | None = None
        self._closed = False

    def _batch_span(self) -> int:
        return min(self._chunk * self.READ_BATCH, self._end - self._pos)

    def _schedule(self) -> None:
        self._next = asyncio.ensure_future(
            asyncio.to_thread(_read_batch, self._fd, self._pos, self._end, self._chunk, self.READ_BATCH)
        )

    async def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        while self._pos < self._end:
            # Probed again right before reading: a slow reader can hold the previous
            # batch long enough for the next one's pages to be evicted.
            if self._next is None and is_cached(self._fd, self._pos, self._batch_span()):
                batch = _read_batch(self._fd, self._pos, self._end, self._chunk, self.READ_BATCH)
            else:
                if self._next is None:
                    self._schedule()
                assert self._next is not None
                batch = await self._next
                self._next = None
            if not batch:
                raise IntegrityError("the file shrank while being sent")
            pos = self._pos
            self._pos += sum(len(b) for b in batch)
            if self._pos < self._end and not is_cached(self._fd, self._pos, self._batch_span()):
                self._schedule()  # from the disk: read while this batch is sent
            for data in batch:
                yield pos, data
                pos += len(data)

    def close(self) -> None:
        """Close the fd once no read is in flight on it (never under a running pread)."""
        if self._closed:
            return
        self._closed = True
        pending = self._next
        if pending is not None and not pending.done():
            pending.add_done_callback(lambda f: (f.cancelled() or f.exception(), os.close(self._fd)))
        else:
            os.close(self._fd)


class _LockedWriter:
    """An AtomicWriter whose thread-side calls never overlap.

    A cancelled ``await asyncio.to_thread(...)`` leaves its thread running; the
    lock makes the clean-up abort wait for an in-flight write instead of
    closing the fd under it.
    """

    def __init__(self, writer: AtomicWriter) -> None:
        self.writer = writer
        self._lock = threading.Lock()
        self._batch: list[bytes | memoryview] = []
        self._batched = 0
        self._pending: asyncio.Future[None] | None = None
        self._sync_fd: int | None = None  # a read-only fd of the temp file, for early writeback
        self._synced = 0

    def _write(self, batch: list[bytes | memoryview]) -> None:
        with self._lock:
            for data in batch:
                view = memoryview(data)
                for at in range(0, len(view), CACHE_SLICE):
                    self.writer.write(view[at : at + CACHE_SLICE])
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Ask the kernel to start writing what is dirty (asynchronous; best effort)."""
        written = self.writer.bytes_written
        if SYNC_FILE_RANGE is None or written - self._synced < WRITEBACK_BYTES or self.writer.done:
            return
        try:
            if self._sync_fd is None:
                self._sync_fd = os.open(self.writer.temp_path, os.O_RDONLY)
            SYNC_FILE_RANGE(self._sync_fd, self._synced, written - self._synced, _SYNC_FILE_RANGE_WRITE)
        except OSError:
            return
        self._synced = written

    def _close_sync_fd(self) -> None:
        if self._sync_fd is not None:
            os.close(self._sync_fd)
            self._sync_fd = None

    def _commit(self) -> FileEntry:
        with self._lock:
            try:
                return self.writer.commit()
            finally:
                self._close_sync_fd()

    def _abort(self) -> None:
        with self._lock:
            try:
                self.writer.abort()
            finally:
                self._close_sync_fd()

    async def write(self, data: bytes | memoryview) -> None:
        """Queue ``data``; a batch goes to the disk thread while the next one is received.

        Batching and overlap matter: one thread hop per 1 MiB message, awaited
        before reading the next, halved upload speed (bench/README.md).
        """
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= WRITE_BATCH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._pending is not None:
            await self._pending  # at most one batch on its way to disk, one being filled
            self._pending = None
        if self._batch:
            batch, self._batch, self._batched = self._batch, [], 0
            self._pending = asyncio.ensure_future(asyncio.to_thread(self._write, batch))

    async def commit(self) -> FileEntry:
        await self._flush()
        if self._pending is not None:
            await self._pending
            self._pending = None
        return await asyncio.to_thread(self._commit)

    async def abort(self) -> None:
        # shield: a second cancellation must not skip the clean-up; the thread runs
        # anyway, and the lock makes it wait for a batch still being written.
        pending, self._pending, self._batch = self._pending, None, []
        if pending is not None:
            pending.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved: no warning
        await asyncio.shield(asyncio.to_thread(self._abort))


class TransferServicer(transfer_pb2_grpc.TransferServicer):
    def __init__(self, node: Node, config: TransferConfig) -> None:
        self._node = node
        self._chunk = int(config.chunk_size)
        self._max_upload = config.upload_limit
        self._max_uploads = config.max_concurrent_uploads
        self._idle = config.upload_idle_timeout_s or None
        self._uploads = 0
        self._max_downloads = config.max_concurrent_downloads
        self._download_idle = config.download_idle_timeout_s or None
        self._downloads = 0

    # ------------------------------------------------------------------ Stat
    async def Stat(self, request: transfer_pb2.StatRequest, context: grpc.aio.ServicerContext) -> transfer_pb2.FileInfo:
        try:
            entry = await resolve(self._node, request.name, request.sha256)
        except (PeerkitError, ValueError) as err:
            await abort(context, err)
        return file_info(entry)

    # -------------------------------------------------------------- Download
    async def Download(self, request: transfer_pb2.DownloadRequest, context: grpc.aio.ServicerContext) -> None:
        # Written with context.write rather than as a generator, so a client that
        # stops reading can be timed out here and its file and slot released.
        if self._max_downloads and self._downloads >= self._max_downloads:
            await abort(context, TooLarge(f"this node serves at most {self._max_downloads} downloads at once; retry later"))
        self._downloads += 1
        released = False

        def release() -> None:  # idempotent: a stalled stream gives its slot back before its call ends
            nonlocal released
            if not released:
                released = True
                self._downloads -= 1

        try:
            await self._download(request, context, release)
        finally:
            release()

    async def _download(
        self, request: transfer_pb2.DownloadRequest, context: grpc.aio.ServicerContext, release: Callable[[], None]
    ) -> None:
        try:
            entry = await resolve(self._node, request.name, request.sha256)
            if request.offset > entry.size:
                raise OutOfRange(f"offset {request.offset} is past the end of {entry.name!r} ({entry.size} bytes)")
            opened = await _open_checked(self._node, entry)
        except (PeerkitError, ValueError) as err:
            await abort(context, err)
        entry = opened.entry
        start = request.offset
        end = entry.size if not request.length else min(entry.size, start + request.length)
        reads = ReadAhead(opened.fd, start, end, self._chunk)
        sent = 0
        idle = self._download_idle
        loop = asyncio.get_running_loop()
        try:
            # One timer for the whole stream, pushed forward by every chunk the client takes.
            async with asyncio.timeout(idle) as no_progress:
                # The first message carries the metadata only, so a client can check
                # the sha256 it expects before any data moves.
                await context.write(transfer_pb2.DownloadChunk(info=file_info(entry), offset=start))
                async for pos, data in reads:
                    if idle is not None:
                        no_progress.reschedule(loop.time() + idle)
                    await context.write(encode_data_chunk(pos, data))  # = DownloadChunk(offset=pos, data=data)
                    sent += len(data)
        except _CLIENT_GONE:
            # A write found the call dead (the client vanished before grpc noticed): what
            # grpc does for a client's cancel, without logging a traceback for it.
            raise asyncio.CancelledError from None
        except TimeoutError:
            # The file and the slot go now. The status has to queue behind the chunk
            # the client is not taking: it gets it if it reads again, else grpc drops
            # the call when the client goes away (HTTP/2 keepalive finds dead ones).
            reads.close()
            release()
            self._node.metrics.inc("downloads_stalled")
            await abort(context, Stalled(f"the download made no progress for {idle:g} s (client not reading?)"))
        except IntegrityError as err:
            await abort(context, err)
        finally:
            reads.close()
            self._node.metrics.bytes_sent.labels("grpc").inc(sent)
            self._node.metrics.inc("grpc_downloads_served")

    # ---------------------------------------------------------------- Upload
    async def Upload(
        self, request_iterator: AsyncIterator[transfer_pb2.UploadRequest | memoryview], context: grpc.aio.ServicerContext
    ) -> transfer_pb2.UploadReply:
        if self._max_uploads and self._uploads >= self._max_uploads:
            await abort(context, TooLarge(f"this node takes at most {self._max_uploads} uploads at once; retry later"))
        self._uploads += 1
        writer: _LockedWriter | None = None
        received = 0
        try:
            async for msg in each_within(request_iterator, self._idle, "upload"):
                # Data arrives as a memoryview of the received bytes (wire.decode_upload), the rest as messages.
                data = msg if isinstance(msg, memoryview) else (msg.data if msg.WhichOneof("body") == "data" else None)
                kind = "data" if data is not None else msg.WhichOneof("body")
                if data is not None:
                    if writer is None:
                        raise BadRequest("data before the header: the first message of an upload must be its header")
                    received += len(data)
                    # Checked here too, not only in the disk thread: refuse at once, buffer nothing.
                    if self._max_upload is not None and received > self._max_upload:
                        raise TooLarge(f"upload exceeds this node's limit of {self._max_upload} bytes")
                    if received > writer.writer.expected_size:
                        raise IntegrityError(f"received more than the announced {writer.writer.expected_size} bytes")
                    await writer.write(data)
                elif kind == "header":
                    if writer is not None:
                        raise BadRequest("the upload header was sent twice")
                    writer = self._open(msg.header)
                else:
                    raise BadRequest("an upload message must carry a header or data")
            if writer is None:
                raise BadRequest("empty upload: no header was sent")
            entry = await writer.commit()
        except (PeerkitError, ValueError) as err:
            if writer is not None:
                await writer.abort()
            if isinstance(err, Stalled):
                self._node.metrics.inc("uploads_stalled")
            if code_for(err) is None:
                raise
            await abort(context, err)
        finally:
            self._uploads -= 1
            self._node.metrics.bytes_received.labels("grpc").inc(received)
            if writer is not None and not writer.writer.done:
                await writer.abort()  # cancelled or broken stream: leave nothing behind
        self._node.metrics.inc("grpc_uploads_stored")
        return transfer_pb2.UploadReply(file=file_info(entry))

    def _open(self, header: transfer_pb2.UploadHeader) -> _LockedWriter:
        name = validate_name(header.name)
        digest = check_sha256(header.sha256)
        if self._max_upload is not None and header.size > self._max_upload:
            raise TooLarge(f"{header.size} bytes is over this node's upload limit of {self._max_upload}")
        writer = self._node.store.writer(
            name,
            overwrite=header.overwrite,
            expected_size=header.size,
            expected_sha256=digest,
            max_size=self._max_upload,
        )
        return _LockedWriter(writer)

