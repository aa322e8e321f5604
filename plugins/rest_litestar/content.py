"""File bytes over HTTP: ranged, resumable downloads and streamed, atomic uploads.

Downloads stream 1 MiB reads: from the page cache right in the loop, from
the disk in a worker thread, the next read running while the previous chunk
is sent (issue 5 measured streamed 1 MiB reads at 0.98x raw loopback to curl,
Litestar's ``File`` response at 0.61x).
Uploads go through ``FileStore.writer`` (temp file, hash, fsync, rename), so a
half-sent, oversized or mismatched body never becomes visible.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO
from urllib.parse import quote

from litestar import Request, Response, get, head, put
from litestar.exceptions import ClientException
from litestar.plugins.problem_details import ProblemDetailsException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Stream

from peerkit.errors import NotFound, Stalled, TooLarge
from peerkit.names import validate_name
from peerkit.pagecache import is_cached
from peerkit.store import FileEntry
from peerkit.utils import each_within

from .idlestream import FileShrank, IdleTimedStream, install_log_filter
from .pathname import raw_segment
from .problems import problem
from .ranges import (
    RangeNotSatisfiable,
    etag_for,
    etag_matches,
    expected_sha256,
    http_date,
    if_range_allows,
    parse_range,
)

if TYPE_CHECKING:
    from peerkit import Node

    from .config import RestConfig

CHUNK = 1 << 20  # 1 MiB: big enough that a thread hop per read costs nothing measurable
OCTETS = "application/octet-stream"
log = logging.getLogger("peerkit.rest")
OPEN_RETRIES = 3


async def _open_consistent(node: Node, name: str) -> tuple[BinaryIO, FileEntry]:
    """Open a shared file and its index entry, making sure both describe the same bytes.

    The file may be replaced between the two steps; an open file keeps its
    inode, so re-reading the entry until it matches the open file gives an
    ETag that is true for every byte sent.
    """
    for _ in range(OPEN_RETRIES):
        f = await asyncio.to_thread(node.store.open_read, name)
        try:
            st = os.fstat(f.fileno())
            entry = await node.store.get(name)
        except BaseException:
            f.close()
            raise
        if entry.size == st.st_size and entry.mtime == st.st_mtime:
            return f, entry
        f.close()
    raise NotFound(f"{name!r} keeps changing; try again")


def _in_thread(fn: Any, *args: Any) -> asyncio.Future[Any]:
    """Run ``fn`` in the default executor; the future is never cancelled by our own awaits (see shield)."""
    return asyncio.get_running_loop().run_in_executor(None, fn, *args)


def _after(fut: asyncio.Future[Any], action: Any) -> None:
    """Run ``action()`` once ``fut`` (a thread's work) is over; errors of a moot read/write are dropped."""

    def done(f: asyncio.Future[Any]) -> None:
        if not f.cancelled():
            f.exception()
        action()

    fut.add_done_callback(done)


async def _read_span(f: BinaryIO, start: int, length: int, count: Any) -> AsyncIterator[bytes]:
    """Yield ``length`` bytes from ``start`` in 1 MiB reads that never block the loop on the disk.

    A chunk already in the page cache is read right here (a memory copy);
    any other is read in a worker thread, started before the previous chunk
    is sent. Thread reads are shielded: when the client goes away the
    generator is cancelled but a read already running is not, and the file is
    closed only after it ends (an fd closed under a running pread could be reused).
    """
    fd = f.fileno()
    pos, remaining = start, length
    pending: asyncio.Future[bytes] | None = None
    try:
        while remaining > 0:
            size = min(CHUNK, remaining)
            # Probed again right before reading (not only when deciding on read-ahead):
            # a slow client can hold the previous chunk long enough for pages to be evicted.
            if pending is None and is_cached(fd, pos, size):
                data = os.pread(fd, size, pos)
            else:
                if pending is None:
                    pending = _in_thread(os.pread, fd, size, pos)
                data = await asyncio.shield(pending)
                pending = None
            if not data:
                log.warning("stopped sending %s at byte %d: the file got shorter while being sent", getattr(f, "name", "?"), pos)
                raise FileShrank(f"file shrank while being sent (at byte {pos})")
            pos += len(data)
            remaining -= len(data)
            if remaining > 0 and not is_cached(fd, pos, min(CHUNK, remaining)):
                pending = _in_thread(os.pread, fd, min(CHUNK, remaining), pos)
            yield data
            count.inc(len(data))
    finally:
        if pending is not None and not pending.done():
            _after(pending, f.close)
        else:
            f.close()


class _SerialWriter:
    """An AtomicWriter whose thread-side calls run one at a time, whoever is cancelled meanwhile.

    A write still running in a thread when the request is cancelled must end
    before the temp file is closed and removed; a lock taken in the thread
    orders them without any await (which a cancelled task cannot rely on).
    """

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self._lock = threading.Lock()

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(*args)

    def write(self, data: bytes | bytearray) -> asyncio.Future[None]:
        return _in_thread(self._locked, self.writer.write, data)

    async def commit(self) -> FileEntry:
        return await asyncio.shield(_in_thread(self._locked, self.writer.commit))

    def discard(self) -> asyncio.Future[None]:
        """Abort (idempotent) after any write in flight; scheduled even if the caller is being cancelled."""
        fut = _in_thread(self._locked, self.writer.abort)
        _after(fut, lambda: None)
        return fut


def _validators(entry: FileEntry) -> dict[str, str]:
    return {
        "ETag": etag_for(entry.sha256),
        "Last-Modified": http_date(entry.mtime),
        "Accept-Ranges": "bytes",
        "Cache-Control": "no-cache",
    }


def _plan(
    entry: FileEntry, range_: str | None, if_range: str | None, if_none_match: str | None
) -> tuple[int, int, int, dict[str, str]]:
    """(status, start, length, headers) for a GET/HEAD of ``entry`` under the request's conditional headers."""
    headers = _validators(entry)
    if etag_matches(if_none_match, headers["ETag"]):
        return 304, 0, 0, headers
    span = None
    if if_range_allows(if_range, headers["ETag"], entry.mtime):
        try:
            span = parse_range(range_, entry.size)
        except RangeNotSatisfiable:
            raise ProblemDetailsException(
                status_code=416,
                title="Range Not Satisfiable",
                detail=f"the file is {entry.size} bytes long",
                headers={"Content-Range": f"bytes */{entry.size}", **headers},
            ) from None
    if span is None:
        headers["Content-Length"] = str(entry.size)
        return 200, 0, entry.size, headers
    start, end = span
    headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
    headers["Content-Length"] = str(end - start + 1)
    return 206, start, end - start + 1, headers


RangeHeader = Annotated[
    str | None, HeaderParameter(name="Range", description="`bytes=first-last`, `bytes=first-` or `bytes=-suffix` (one range)")
]
IfRangeHeader = Annotated[str | None, HeaderParameter(name="If-Range", description="Honour Range only if this ETag (or date) still holds")]
IfNoneMatchHeader = Annotated[str | None, HeaderParameter(name="If-None-Match", description="304 when the ETag matches")]
XSha256Header = Annotated[str | None, HeaderParameter(name="X-Sha256", description="Expected sha256 of the body, 64 hex digits")]
DigestHeader = Annotated[str | None, HeaderParameter(name="Digest", description="`sha-256=<base64>` (RFC 3230)")]
ContentDigestHeader = Annotated[str | None, HeaderParameter(name="Content-Digest", description="`sha-256=:<base64>:` (RFC 9530)")]

CONTENT_RESPONSES = {
    206: ResponseSpec(bytes, description="Partial content (a Range was honoured)", media_type=OCTETS, generate_examples=False),
    304: ResponseSpec(None, description="Not modified (If-None-Match matched the ETag)"),
    404: problem("No shared file of that name"),
    416: problem("The Range starts past the end of the file"),
    422: problem("The name breaks the share's file-name rules"),
}


def content_routes(node: Node, config: RestConfig) -> list[Any]:
    sent = node.metrics.bytes_sent.labels("rest")
    received = node.metrics.bytes_received.labels("rest")
    install_log_filter()

    def on_stall() -> None:
        node.metrics.inc("downloads_stalled")

    @get(
        "/files/{name:str}/content",
        summary="Download a shared file (Range, If-Range; ETag is the sha256)",
        description="Resumable: `curl -C -` and `wget -c` work. Multi-range requests get the whole file.",
        tags=["files"],
        media_type=OCTETS,
        responses=CONTENT_RESPONSES,
    )
    async def download(
        request: Request[Any, Any, Any],
        name: FromPath[str],
        range_: RangeHeader = None,
        if_range: IfRangeHeader = None,
        if_none_match: IfNoneMatchHeader = None,
    ) -> Stream:
        name = raw_segment(request, "name", name)
        f, entry = await _open_consistent(node, name)
        try:
            status, start, length, headers = _plan(entry, range_, if_range, if_none_match)
        except BaseException:
            f.close()
            raise
        if status == 304:
            f.close()
            return Stream(iter(()), status_code=304, headers=headers)
        return IdleTimedStream(
            _read_span(f, start, length, sent),
            idle=config.download_idle_timeout_s or None,
            on_stall=on_stall,
            status_code=status,
            headers=headers,
            media_type=OCTETS,
        )

    @head(
        "/files/{name:str}/content",
        summary="Headers of a download (size, ETag, Accept-Ranges) without the bytes",
        tags=["files"],
        media_type=OCTETS,
        responses=CONTENT_RESPONSES,
    )
    async def download_head(
        request: Request[Any, Any, Any],
        name: FromPath[str],
        range_: RangeHeader = None,
        if_range: IfRangeHeader = None,
        if_none_match: IfNoneMatchHeader = None,
    ) -> Response[None]:
        name = raw_segment(request, "name", name)
        entry = await node.store.get(name)
        status, _start, _length, headers = _plan(entry, range_, if_range, if_none_match)
        # Litestar leaves HEAD headers as given: say what a GET would carry.
        return Response(b"", status_code=status, headers={**headers, "Content-Type": OCTETS})

    @put(
        "/files/{name:str}/content",
        summary="Upload a file: the raw body, streamed to disk, shared only once complete and verified",
        description=(
            "Send `X-Sha256: <hex>` or `Digest: sha-256=<base64>` to have the body checked (422 on mismatch). "
            "201 for a new file, 200 when `overwrite=true` replaced one; 409 if it exists otherwise. "
            "Bodies over `[rest_litestar] max_upload_bytes` get 413, before reading when Content-Length says so."
        ),
        tags=["files"],
        status_code=201,
        request_max_body_size=None,  # enforced below, against the configured limit
        responses={
            200: ResponseSpec(FileEntry, description="Replaced an existing file (overwrite=true)", generate_examples=False),
            409: problem("The file exists and overwrite was not requested, or another upload won"),
            408: problem("The body stopped arriving for longer than `[rest_litestar] upload_idle_timeout_s`"),
            413: problem("The body is over the size limit"),
            422: problem("Bad file name, or the body does not match the announced sha256/size"),
        },
    )
    async def upload(
        request: Request[Any, Any, Any],
        name: FromPath[str],
        overwrite: Annotated[bool, QueryParameter(description="Replace an existing file")] = False,
        x_sha256: XSha256Header = None,
        digest_: DigestHeader = None,
        content_digest: ContentDigestHeader = None,
    ) -> Response[FileEntry]:
        name = validate_name(raw_segment(request, "name", name))
        limit = config.max_upload_bytes
        size = _content_length(request)
        if size is not None and size > limit:
            raise TooLarge(f"{size} bytes is over the upload limit of {limit} bytes")
        try:
            digest = expected_sha256(x_sha256, digest_, content_digest)
        except ValueError as err:
            raise ClientException(detail=str(err)) from None
        existed = await asyncio.to_thread(os.path.lexists, node.store.path_for(name))
        writer = _SerialWriter(
            await asyncio.to_thread(
                node.store.writer, name, overwrite=overwrite, expected_size=size, expected_sha256=digest, max_size=limit
            )
        )
        try:
            await _receive_into(request, writer, limit, received, config.upload_idle_timeout_s or None)
            entry = await writer.commit()
        except Stalled:
            node.metrics.inc("uploads_stalled")
            raise
        finally:
            if not writer.writer.done:
                # Scheduled at once (survives our cancellation); awaited so the error reply comes after cleanup.
                await asyncio.shield(writer.discard())
        status = 200 if existed and overwrite else 201
        location = f"/api/v1/files/{quote(entry.name, safe='')}"
        return Response(entry, status_code=status, headers={"Location": location} if status == 201 else None)

    return [download, download_head, upload]


def _content_length(request: Request[Any, Any, Any]) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit():
        raise ClientException(detail="Content-Length must be a non-negative integer")
    return int(raw)


async def _receive_into(
    request: Request[Any, Any, Any], writer: _SerialWriter, limit: int, count: Any, idle: float | None
) -> None:
    """Stream the body into ``writer``: 1 MiB batches, each written in a thread while the next arrives.

    A body that stops arriving for ``idle`` seconds ends the upload (Stalled: 408).
    """
    buf = bytearray()
    total = 0
    pending: asyncio.Future[None] | None = None
    try:
        async for chunk in each_within(request.stream(), idle, "upload"):
            if not chunk:
                continue
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"upload exceeds the limit of {limit} bytes")
            count.inc(len(chunk))
            buf += chunk
            if len(buf) >= CHUNK:
                if pending is not None:
                    await asyncio.shield(pending)
                data, buf = buf, bytearray()
                pending = writer.write(data)
        if pending is not None:
            await asyncio.shield(pending)
            pending = None
        if buf:
            await asyncio.shield(writer.write(buf))
    except BaseException:
        if pending is not None and not pending.done():
            _after(pending, lambda: None)  # its outcome is moot now; don't leave it unretrieved
        raise
