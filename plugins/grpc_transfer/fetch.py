"""The download engine: byte ranges fetched by worker threads, hashed in order.

Thread-side on purpose: a blocking grpc stream iterated in a thread received
up to 1.25x faster than grpc.aio on this hardware (bench/README.md), and
``os.pwrite`` / ``hashlib`` release the GIL. The asyncio API in ``client.py``
drives this module and never blocks its loop.

The remaining range is cut into pieces handed out in file order. A worker
streams one piece from one source and writes it at its offset in the
``.part`` file; when a source fails, the unfetched rest of the piece goes back
to the queue and the worker moves to another live source. A single stream
writes in file order and hashes each slice right after writing it, while it
is still in the CPU cache; with several streams a hasher thread follows the
contiguous frontier (every byte below it is written) and reads it back. Either
way the sha256 of the whole file is ready moments after the last byte lands.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc

from peerkit.errors import IntegrityError, NotFound, PeerkitError, TransportError
from peerkit.tls import Identity
from peerkit.v1 import transfer_pb2

from .channels import metadata, sync_channel
from .status import error_for
from .wire import decode_chunk, download_callable

HASH_BLOCK = 4 << 20
# A single stream writes and hashes in slices of this size, so the hash reads
# bytes the write has just pulled into the CPU cache (bench/README.md, tuning
# round 2: client 2.4 -> 2.0 CPU-s/GB against a hasher thread reading back).
CACHE_SLICE = 256 << 10
MIN_PIECE = 4 << 20
MAX_PIECE = 64 << 20


@dataclass
class Source:
    """A peer holding the wanted content, under its own name for it."""

    address: str
    name: str
    alive: bool = True
    streams: int = 0
    delivered: int = 0
    error: Exception | None = None


@dataclass
class Piece:
    start: int
    end: int
    pos: int = field(init=False)

    def __post_init__(self) -> None:
        self.pos = self.start


class Plan:
    """Thread-safe bookkeeping of which bytes are fetched, in flight, or still to do."""

    def __init__(self, start: int, end: int, workers: int) -> None:
        self.start, self.end = start, end
        self.cond = threading.Condition()
        piece = max(MIN_PIECE, min(MAX_PIECE, (end - start) // max(1, workers * 4)))
        self._todo = [Piece(p, min(end, p + piece)) for p in range(start, end, piece)]
        self._todo.reverse()  # pop() from the end = lowest offset first
        self._active: list[Piece] = []
        self.stopped = False

    def take(self) -> Piece | None:
        """The next piece; waits while in-flight pieces might still come back; None when all is done."""
        with self.cond:
            while not self._todo and self._active and not self.stopped:
                self.cond.wait(0.5)
            if self.stopped or not self._todo:
                return None
            piece = self._todo.pop()
            self._active.append(piece)
            return piece

    def advance(self, piece: Piece, pos: int) -> None:
        with self.cond:
            piece.pos = pos
            self.cond.notify_all()

    def finish(self, piece: Piece) -> None:
        with self.cond:
            self._active.remove(piece)
            self.cond.notify_all()

    def give_back(self, piece: Piece) -> None:
        with self.cond:
            self._active.remove(piece)
            if piece.pos < piece.end:
                self._todo.append(Piece(piece.pos, piece.end))
                self._todo.sort(key=lambda p: -p.start)
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()

    def frontier(self) -> int:
        """Every byte below this offset is on disk."""
        with self.cond:
            return self._frontier()

    def _frontier(self) -> int:
        marks = [p.pos for p in self._active] + [p.start for p in self._todo]
        return min(marks, default=self.end)

    def wait_frontier(self, beyond: int, timeout: float) -> int:
        with self.cond:
            if self._frontier() <= beyond and not self.stopped:
                self.cond.wait(timeout)
            return self._frontier()


class Download:
    """One file being fetched into an open ``.part`` fd from ``sources``."""

    def __init__(
        self, fd: int, size: int, sha256: str, start: int, sources: list[Source], workers: int, token: str | None,
        *, secure: bool = False, ca: bytes | None = None, identity: Identity | None = None,
    ) -> None:
        self.fd, self.size, self.sha256, self.token = fd, size, sha256, token
        self.secure, self.ca = secure, ca  # TLS to the sources (ca: PEM bytes to verify them)
        self.identity = identity  # our client certificate, for sources that demand one
        self.sources = sources
        self.workers = workers
        self.plan = Plan(start, size, workers)
        self.cancelled = threading.Event()
        self._calls: set[grpc.Call] = set()
        self._lock = threading.Lock()
        self.received = 0  # bytes written this run (progress)
        self.digest: str | None = None
        # One stream writes in file order and hashes as it writes (no read-back
        # of the .part); several write out of order, so a hasher thread reads
        # the contiguous frontier back instead.
        self._inline: Any = hashlib.sha256() if workers == 1 else None
        self._hashed_to = 0  # the inline hash covers exactly [0, _hashed_to)

    # ----------------------------------------------------------- cancellation
    def cancel(self) -> None:
        """Stop every stream now (from any thread); workers then return quickly."""
        self.cancelled.set()
        self.plan.stop()
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.cancel()

    # ------------------------------------------------------------- sources
    def _pick_source(self, previous: Source | None) -> Source | None:
        with self._lock:
            if previous is not None:
                previous.streams -= 1
            live = [s for s in self.sources if s.alive]
            if not live or self.cancelled.is_set():
                return None
            best = min(live, key=lambda s: s.streams)
            best.streams += 1
            return best

    def _drop(self, source: Source, err: Exception) -> None:
        with self._lock:
            source.alive = False
            source.error = err

    # -------------------------------------------------------------- workers
    def worker(self, first: Source) -> None:
        """Fetch pieces until none are left, moving on to another source when one fails."""
        source: Source | None = first
        with self._lock:
            first.streams += 1
        while source is not None and not self.cancelled.is_set():
            try:
                self._fetch_from(source)
                return
            except Exception as err:  # a source failed: remember why, try the next
                if self.cancelled.is_set():
                    return
                self._drop(source, err)
                source = self._pick_source(source)

    def _fetch_from(self, source: Source) -> None:
        channel = sync_channel(source.address, secure=self.secure, ca=self.ca, identity=self.identity)
        try:
            download = download_callable(channel)
            while (piece := self.plan.take()) is not None:
                try:
                    self._fetch_piece(download, source, piece)
                except BaseException:
                    self.plan.give_back(piece)
                    raise
                self.plan.finish(piece)
        finally:
            channel.close()

    def _fetch_piece(self, download: Any, source: Source, piece: Piece) -> None:
        request = transfer_pb2.DownloadRequest(
            name=source.name, sha256=self.sha256, offset=piece.pos, length=piece.end - piece.pos
        )
        call = download(request, metadata=metadata(self.token))
        with self._lock:
            self._calls.add(call)
        if self.cancelled.is_set():
            call.cancel()
        pos = piece.pos
        try:
            for raw in call:
                info, offset, data = decode_chunk(raw)  # data: a view of the received bytes, no copy
                if info is not None and (info.sha256 != self.sha256 or info.size != self.size):
                    raise IntegrityError(f"{source.address} now serves different content as {source.name!r}")
                if not data:
                    continue
                if offset != pos or pos + len(data) > piece.end:
                    raise IntegrityError(f"{source.address} sent bytes at {offset}, expected {pos}")
                if self._inline is not None:
                    self._write_hashed(pos, data)
                else:
                    self._write(pos, data)
                with self._lock:
                    self.received += len(data)
                    source.delivered += len(data)
                pos += len(data)
                self.plan.advance(piece, pos)
        except grpc.RpcError as err:
            raise error_for(err, source.address) from None
        finally:
            with self._lock:
                self._calls.discard(call)
        if pos != piece.end:
            raise TransportError(f"{source.address} ended the stream at byte {pos} of {piece.end}")

    def _write(self, pos: int, data: memoryview) -> None:
        view = data
        while view:
            view = view[os.pwrite(self.fd, view, pos + len(data) - len(view)):]

    def _write_hashed(self, pos: int, data: memoryview) -> None:
        """Write ``data`` at ``pos`` and hash it slice by slice while it is in the CPU cache.

        The hash covers exactly ``[0, _hashed_to)``: bytes below are never hashed
        twice (a re-fetched range), bytes above (the resumed prefix) are read back.
        """
        hasher = self._inline
        if self._hashed_to < pos:
            self._hashed_to = self._hash_range(hasher, self._hashed_to, pos)
        for at in range(0, len(data), CACHE_SLICE):
            part = data[at : at + CACHE_SLICE]
            self._write(pos + at, part)
            skip = self._hashed_to - (pos + at)
            if 0 <= skip < len(part):
                hasher.update(part[skip:])
                self._hashed_to = pos + at + len(part)

    # --------------------------------------------------------------- hashing
    def _hash_range(self, hasher: Any, pos: int, end: int) -> int:
        while pos < end:
            data = os.pread(self.fd, min(HASH_BLOCK, end - pos), pos)
            if not data:
                raise IntegrityError(f"the partial file ended at byte {pos}")
            hasher.update(data)
            pos += len(data)
        return pos

    def hash_prefix_and_follow(self, hasher: hashlib._Hash | None = None) -> str | None:
        """Hash the file from byte 0, following the frontier; the hex digest, or None if stopped."""
        if self._inline is not None:  # the worker hashes; wait for it, then hash what it did not see
            while self.plan.wait_frontier(self.size - 1, 0.25) < self.size:
                if self.plan.stopped:
                    return None
            self._hashed_to = self._hash_range(self._inline, self._hashed_to, self.size)
            self.digest = self._inline.hexdigest()
            return self.digest
        hasher = hasher or hashlib.sha256()
        pos = 0
        while True:
            if pos >= self.size:
                self.digest = hasher.hexdigest()
                return self.digest
            frontier = self.plan.wait_frontier(pos, 0.25) if pos >= self.plan.start else self.plan.start
            pos = self._hash_range(hasher, pos, frontier)
            if self.plan.stopped and pos < self.size:
                return None

    def failure(self) -> Exception:
        """The error to report when every source failed: the most telling one."""
        errors = [s.error for s in self.sources if s.error is not None]
        for kind in (IntegrityError, NotFound, PeerkitError):
            for err in errors:
                if isinstance(err, kind) and not isinstance(err, TransportError):
                    return err
        if errors:
            return errors[-1]
        return TransportError("no source could deliver the file")

