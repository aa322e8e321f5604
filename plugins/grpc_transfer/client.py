"""Client of ``peerkit.v1.Transfer``: resumable multi-source downloads, verified uploads.

Used by the CLI and by other plugins; prints nothing. Failures are peerkit
errors: NotFound, AlreadyExists, InvalidName, IntegrityError, TooLarge, and
TransportError when no source can be reached. ``progress(done, total)`` is
called from the event loop, at most every 50 ms and once at the end.

A download writes ``<dest>.part`` beside the target, continues from its size
on the next attempt, verifies the whole file's sha256 and only then renames
it to ``dest``. Cancelled (Ctrl-C), it keeps the ``.part`` cut to the last
contiguous byte, ready to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from peerkit.errors import IntegrityError, InvalidName, NotFound, PeerkitError, TransportError
from peerkit.names import validate_name
from peerkit.store import FileEntry
from peerkit.tls import Identity
from peerkit.v1 import transfer_pb2, transfer_pb2_grpc

from .channels import aio_channel, metadata, sync_channel
from .config import DEFAULT_CHUNK_SIZE
from .fetch import Download, Source
from .status import error_for
from .wire import encode_upload_data, upload_callable

ProgressCallback = Callable[[int, int], None]  # (bytes_done, total_bytes)

# Streams one download uses when ``parallel`` is on (spread over the sources).
# Measured in bench/README.md: three streams beat one by 1.5-2x on this 2-core box.
DEFAULT_STREAMS = 3
MAX_STREAMS = 8  # one stream per source when there are more sources, up to this many
# Below this, splitting costs more in round trips than it wins.
PARALLEL_MIN_BYTES = 16 << 20
PROGRESS_EVERY_S = 0.05
UPLOAD_CHUNK = DEFAULT_CHUNK_SIZE
HASH_CHUNK = 4 << 20

__all__ = [
    "ProgressCallback",
    "TransferResult",
    "download_file",
    "stat_file",
    "upload_file",
]


@dataclass
class TransferResult:
    """What one transfer did. ``seconds`` is wall time of the whole call;
    ``hash_seconds`` the part of it spent hashing outside the transfer itself
    (an upload hashes the file before sending its header)."""

    path: Path | None
    name: str
    size: int
    sha256: str
    seconds: float
    resumed_from: int
    sources: list[str]
    hash_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float:
        moved = self.size - self.resumed_from
        return moved / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _entry(info: transfer_pb2.FileInfo) -> FileEntry:
    return FileEntry(name=info.name, size=info.size, sha256=info.sha256, mtime=info.mtime)


def _check_query(name: str | None, sha256: str | None) -> tuple[str, str]:
    if not name and not sha256:
        raise ValueError("give a file name or a sha256")
    return (validate_name(name) if name else ""), (sha256.lower() if sha256 else "")


# ---------------------------------------------------------------------- Stat
async def stat_file(
    address: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    timeout: float = 10,
    token: str | None = None,
    tls: bool = False,
    ca: bytes | None = None,
    identity: Identity | None = None,
) -> FileEntry:
    """The metadata ``address`` holds for a file (by name, by sha256, or both).

    ``tls`` (or a ``ca``, PEM bytes to verify the node with) selects a TLS channel;
    ``identity`` is the client certificate for nodes that demand one (mutual TLS).
    """
    qname, qsha = _check_query(name, sha256)
    async with aio_channel(address, secure=tls, ca=ca, identity=identity) as channel:
        stub = transfer_pb2_grpc.TransferStub(channel)
        try:
            info = await stub.Stat(transfer_pb2.StatRequest(name=qname, sha256=qsha), timeout=timeout, metadata=metadata(token))
        except grpc.aio.AioRpcError as err:
            raise error_for(err, address) from None
    return _entry(info)


async def _sources_for(
    sources: list[str], name: str, sha256: str, token: str | None, *, tls: bool = False, ca: bytes | None = None,
    identity: Identity | None = None,
) -> tuple[FileEntry, list[Source]]:
    """Stat every source at once; keep those holding the wanted content (first answer decides it)."""
    if not sources:
        raise ValueError("no source to download from")
    results = await asyncio.gather(
        *(stat_file(a, name=name or None, sha256=sha256 or None, token=token, tls=tls, ca=ca, identity=identity) for a in sources), return_exceptions=True
    )
    chosen: FileEntry | None = None
    picked: list[Source] = []
    errors: list[BaseException] = []
    for address, result in zip(sources, results):
        if isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            errors.append(result)
            continue
        if chosen is None:
            chosen = result
        if result.sha256 == chosen.sha256 and result.size == chosen.size:
            picked.append(Source(address, result.name))
    if chosen is None:
        for kind in (InvalidName, NotFound, PeerkitError):
            for err in errors:
                if isinstance(err, kind) and not isinstance(err, TransportError):
                    raise err
        raise errors[0] if errors else TransportError("no source answered")
    return chosen, picked


# ------------------------------------------------------------------ Download
async def _report(download: Download, base: int, total: int, progress: ProgressCallback) -> None:
    while True:
        progress(base + download.received, total)
        await asyncio.sleep(PROGRESS_EVERY_S)


async def _settle(waiter: asyncio.Future[Any]) -> None:
    """Await ``waiter`` to the end, even through further cancellations (it ends quickly)."""
    while not waiter.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(waiter)


def _open_part(part: Path) -> int:
    """Open (or create) the ``.part`` file itself: never through a symlink, never anything but a regular file.

    In a directory others can write to, a planted ``x.part`` symlink would
    otherwise have the download overwrite whatever it points at.
    """
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise PeerkitError(f"{part} is a symbolic link; not writing through it (remove it to download)") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PeerkitError(f"{part} is not a regular file; not writing into it (remove it to download)")
    os.set_blocking(fd, True)
    return fd


CHECKPOINT_EVERY_S = 0.5


def frontier_file(part: Path) -> Path:
    """Beside ``x.part``: how many leading bytes of it are whole (parallel downloads only)."""
    return part.with_name(part.name + ".frontier")


def _read_frontier(marker: Path) -> int | None:
    try:
        text = marker.read_text("ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else 0  # unreadable: trust nothing of the .part


def _write_frontier(marker: Path, frontier: int) -> None:
    """Atomically, and like the .part never through a planted symlink (O_EXCL after removing any old entry)."""
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(f"{frontier}\n")
    os.replace(tmp, marker)


async def _checkpoint(dl: Download, marker: Path) -> None:
    """Write the contiguous frontier beside the .part every CHECKPOINT_EVERY_S (it only grows)."""
    written = -1
    while True:
        frontier = dl.plan.frontier()
        if frontier != written:
            await asyncio.to_thread(_write_frontier, marker, frontier)
            written = frontier
        await asyncio.sleep(CHECKPOINT_EVERY_S)


async def _fetch_into(
    part: Path, entry: FileEntry, sources: list[Source], *, streams: int, token: str | None,
    progress: ProgressCallback | None, tls: bool = False, ca: bytes | None = None,
    identity: Identity | None = None,
) -> tuple[int, str, Download]:
    """Fill ``part`` up to entry.size from ``sources``; return (resumed_from, sha256 of the whole file)."""
    fd = await asyncio.to_thread(_open_part, part)
    marker = frontier_file(part)
    try:
        have = os.fstat(fd).st_size
        recorded = await asyncio.to_thread(_read_frontier, marker)
        if recorded is not None and recorded < have:  # a killed parallel download: bytes past it may be holes
            have = recorded
            await asyncio.to_thread(os.ftruncate, fd, have)
        if have > entry.size:  # not a prefix of this file: start over
            await asyncio.to_thread(os.ftruncate, fd, 0)
            have = 0
        remaining = entry.size - have
        workers = max(1, streams if remaining >= PARALLEL_MIN_BYTES else 1)
        dl = Download(fd, entry.size, entry.sha256, have, sources, workers, token, secure=tls, ca=ca, identity=identity)
        pool = ThreadPoolExecutor(max_workers=workers + 1, thread_name_prefix="peerkit-fetch")
        reporter = asyncio.create_task(_report(dl, have, entry.size, progress)) if progress else None
        # Several streams write out of order: record how far the file is whole, so a
        # download killed outright (no chance to cut the .part) can still resume.
        checkpoints = asyncio.create_task(_checkpoint(dl, marker)) if workers > 1 else None
        if checkpoints is None and recorded is not None:
            await asyncio.to_thread(marker.unlink, missing_ok=True)  # one stream writes in order: the size says it all
        try:
            hashing = pool.submit(dl.hash_prefix_and_follow)
            first = [sources[i % len(sources)] for i in range(workers)]
            await asyncio.gather(*(asyncio.wrap_future(pool.submit(dl.worker, src)) for src in first))
            if dl.plan.frontier() < entry.size:
                dl.plan.stop()
                raise dl.failure()
            digest = await asyncio.wrap_future(hashing)
        except BaseException:
            dl.cancel()  # also on Ctrl-C: stop the streams, then keep what is contiguous
            # A cancelled asyncio future says nothing about its thread: wait for the
            # threads themselves to let go of the fd before cutting and closing it.
            await _settle(asyncio.ensure_future(asyncio.to_thread(pool.shutdown, True)))
            with contextlib.suppress(OSError):
                os.ftruncate(fd, dl.plan.frontier())
            raise
        finally:
            if reporter is not None:
                reporter.cancel()
            if checkpoints is not None:
                checkpoints.cancel()
                await _settle(checkpoints)
                await asyncio.to_thread(_write_frontier, marker, dl.plan.frontier())
            pool.shutdown(wait=False)
        if progress:
            progress(entry.size, entry.size)
        assert digest is not None
        return have, digest, dl
    finally:
        os.close(fd)


async def download_file(
    sources: list[str],
    dest: Path,
    *,
    name: str | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    parallel: bool = True,
    token: str | None = None,
    streams: int | None = None,
    tls: bool = False,
    ca: bytes | None = None,
    identity: Identity | None = None,
) -> TransferResult:
    """Fetch a file from ``sources`` (gRPC "host:port") to ``dest``, verified and resumable.

    With ``parallel`` the remaining range is split over ``streams`` streams
    spread across every source that holds the same sha256; a source dying
    mid-way hands its unfinished range to the others, and when the assembled
    file does not verify, each source is tried alone so one serving corrupt
    bytes is found and skipped (``extra["rejected"]``). ``dest`` is replaced
    atomically once the sha256 of the whole file matches. ``tls`` (or a
    ``ca``, PEM bytes to verify the sources with) selects TLS channels.
    """
    started = time.perf_counter()
    qname, qsha = _check_query(name, sha256)
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    entry, picked = await _sources_for(list(sources), qname, qsha, token, tls=tls, ca=ca, identity=identity)
    if not picked:
        raise NotFound("no source holds the file")
    nstreams = (streams or DEFAULT_STREAMS) if parallel else 1
    nstreams = max(nstreams, min(len(picked), MAX_STREAMS)) if parallel else 1
    # Attempts, each a set of sources: all of them at once first; after a sha256
    # mismatch of fresh bytes from several sources, each one alone, so one source
    # serving corrupt bytes costs a re-fetch, not the download. A mismatch after a
    # resume may be the old .part's fault: that case starts over from zero first.
    attempts: list[list[Source]] = [picked]
    rejected: list[str] = []
    tries = 0
    while attempts:
        group = attempts.pop(0)
        tries += 1
        for src in picked:
            src.alive, src.error, src.streams, src.delivered = True, None, 0, 0
        try:
            resumed, digest, dl = await _fetch_into(
                part, entry, group, streams=nstreams if group is picked else 1, token=token, progress=progress, tls=tls, ca=ca,
                identity=identity,
            )
        except OSError as err:
            raise PeerkitError(f"cannot write {part}: {err.strerror}") from None
        except PeerkitError:
            if not attempts:
                raise
            continue  # this source alone failed: the next one may not
        if digest == entry.sha256:
            break
        await asyncio.to_thread(part.unlink)
        await asyncio.to_thread(frontier_file(part).unlink, missing_ok=True)
        delivered = [s for s in group if s.delivered > 0]
        if resumed > 0:
            attempts.insert(0, group)
        elif len(delivered) > 1 and not attempts:
            attempts = [[s] for s in delivered]
        else:
            rejected.extend(s.address for s in delivered)
            if not attempts:
                raise IntegrityError(f"sha256 mismatch for {entry.name!r}: got {digest}, expected {entry.sha256}")
    try:
        await asyncio.to_thread(os.replace, part, dest)
    except OSError as err:
        raise PeerkitError(f"cannot move the verified file to {dest}: {err.strerror}") from None
    await asyncio.to_thread(frontier_file(part).unlink, missing_ok=True)
    return TransferResult(
        path=dest,
        name=entry.name,
        size=entry.size,
        sha256=digest,
        seconds=time.perf_counter() - started,
        resumed_from=resumed,
        sources=[s.address for s in picked if s.delivered > 0] or [picked[0].address],  # nothing to move: who answered
        extra={"streams": nstreams, "delivered": {s.address: s.delivered for s in picked}, "rejected": rejected, "attempts": tries},
    )


# -------------------------------------------------------------------- Upload
def _sha256_of(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest(), size



def _upload_messages(f: Any, header: transfer_pb2.UploadHeader, sent: list[int]) -> Iterator[transfer_pb2.UploadRequest | bytes]:
    yield transfer_pb2.UploadRequest(header=header)
    while chunk := f.read(UPLOAD_CHUNK):
        yield encode_upload_data(chunk)  # = UploadRequest(data=chunk), serialised with one copy
        sent[0] += len(chunk)


async def upload_file(
    address: str,
    path: Path,
    *,
    name: str | None = None,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    token: str | None = None,
    tls: bool = False,
    ca: bytes | None = None,
    identity: Identity | None = None,
) -> TransferResult:
    """Send ``path`` to the node at ``address`` as ``name`` (default: the file's own name).

    The file is hashed first (the header carries size and sha256); the node
    stores it only when both match. ``TransferResult.path`` is None (the file
    lives on the node).
    """
    started = time.perf_counter()
    path = Path(path)
    target = validate_name(name if name is not None else path.name)
    try:
        digest, size = await asyncio.to_thread(_sha256_of, path)
        f = await asyncio.to_thread(open, path, "rb")
    except OSError as err:
        raise PeerkitError(f"cannot read {path}: {err.strerror}") from None
    hashed = time.perf_counter()
    header = transfer_pb2.UploadHeader(name=target, size=size, sha256=digest, overwrite=overwrite)
    sent = [0]
    channel = sync_channel(address, secure=tls, ca=ca, identity=identity)
    reporter: asyncio.Task[None] | None = None
    try:
        # The blocking stub reads the request iterator (file reads included) in its own thread.
        future = upload_callable(channel).future(_upload_messages(f, header, sent), metadata=metadata(token))
        if progress:
            async def report() -> None:
                while True:
                    progress(sent[0], size)
                    await asyncio.sleep(PROGRESS_EVERY_S)

            reporter = asyncio.create_task(report())
        try:
            reply = await asyncio.wrap_future(_as_concurrent(future))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except grpc.RpcError as err:
            raise error_for(err, address) from None
    finally:
        if reporter is not None:
            reporter.cancel()
        channel.close()
        f.close()
    if reply.file.sha256 != digest or reply.file.size != size:
        raise IntegrityError(f"the node stored {reply.file.size} bytes with sha256 {reply.file.sha256}, sent {size} with {digest}")
    if progress:
        progress(size, size)
    return TransferResult(
        path=None,
        name=reply.file.name,
        size=size,
        sha256=digest,
        seconds=time.perf_counter() - started,
        resumed_from=0,
        sources=[address],
        hash_seconds=hashed - started,
    )


def _as_concurrent(call: grpc.Future) -> Any:
    """Adapt a grpc.Future (which is not a concurrent.futures.Future) for asyncio."""
    import concurrent.futures

    out: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def done(f: grpc.Future) -> None:
        if f.cancelled():
            out.cancel()
            return
        err = f.exception()
        if err is not None:
            out.set_exception(err)
        else:
            out.set_result(f.result())

    call.add_done_callback(done)
    return out
