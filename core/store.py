"""The file store: the shared directory's index and the only door to its files.

Every name passes :func:`peerkit.names.validate_name`; every path is checked to
stay inside the share (symlinks included). Hashes are cached by
(size, mtime_ns) in ``state_dir`` so a restart does not rehash unchanged files,
and the directory is rescanned on each listing, so files dropped in while the
node runs appear. Writes are atomic: a temp file in the share itself (same
filesystem), fsync, then rename; a crash leaves only a temp file, removed at
the next start.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import os
import stat as _stat
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

import msgspec

from .errors import AlreadyExists, IntegrityError, NotFound, TooLarge
from .names import InvalidName, validate_name

TEMP_PREFIX = ".peerkit-tmp-"
HASH_CHUNK = 1 << 20  # 1 MiB reads: hashing runs at disk/sha256 speed, memory stays flat
INDEX_FILE = "file-index.json"


class FileEntry(msgspec.Struct, frozen=True):
    """One shared file as peers see it."""

    name: str
    size: int
    sha256: str
    mtime: float


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Index and guarded access to one shared directory."""

    def __init__(self, root: str | os.PathLike[str], state_dir: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.state_dir = Path(state_dir)
        self._cache: dict[str, tuple[int, int, str]] = {}  # name -> (size, mtime_ns, sha256)
        self._entries: dict[str, FileEntry] = {}
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # concurrent commits each save the index: one at a time
        self._scan_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ setup
    def open(self) -> None:
        """Create the directories, remove stale temp files, load the hash cache, scan."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._real_root = os.path.realpath(self.root)
        for entry in os.scandir(self.root):
            if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass
        try:
            raw = json.loads((self.state_dir / INDEX_FILE).read_text("utf-8"))
            self._cache = {k: (int(v[0]), int(v[1]), str(v[2])) for k, v in raw.items()}
        except (OSError, ValueError, TypeError, IndexError, AttributeError):
            self._cache = {}
        self.scan()

    # ------------------------------------------------------------ name → path
    def path_for(self, name: str) -> Path:
        """The path of ``name`` in the share; raises InvalidName for a refused name."""
        return self.root / validate_name(name)

    def _inside(self, path: Path) -> bool:
        real = os.path.realpath(path)
        return real == self._real_root or real.startswith(self._real_root + os.sep)

    def _readable_path(self, name: str) -> Path:
        path = self.path_for(name)
        if not os.path.lexists(path):
            raise NotFound(f"no shared file named {validate_name(name)!r}")
        if not self._inside(path) or not os.path.isfile(path):
            raise NotFound(f"no shared file named {validate_name(name)!r}")
        return path

    # ------------------------------------------------------------------ index
    def _stat_entry(self, name: str, path: Path) -> FileEntry | None:
        """Entry for one path, hashing only when (size, mtime) changed; None if not shareable."""
        try:
            if os.path.islink(path) and not self._inside(path):
                return None
            st = os.stat(path)
        except OSError:
            return None

        if not _stat.S_ISREG(st.st_mode):
            return None
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[0] == st.st_size and cached[1] == st.st_mtime_ns:
            digest = cached[2]
        else:
            try:
                digest = sha256_file(path)
            except OSError:
                return None
            with self._lock:
                self._cache[name] = (st.st_size, st.st_mtime_ns, digest)
                self._dirty = True
        return FileEntry(name=name, size=st.st_size, sha256=digest, mtime=st.st_mtime)

    def scan(self) -> list[FileEntry]:
        """Rescan the share (blocking: call through :meth:`refresh` from async code)."""
        self._dirty = False
        entries: dict[str, FileEntry] = {}
        for de in os.scandir(self.root):
            name = de.name
            try:
                if validate_name(name) != name:
                    continue  # not NFC on disk: unreachable by any valid name
            except InvalidName:
                continue  # dotfiles, our temp files, hostile names dropped in by hand
            entry = self._stat_entry(name, Path(de.path))
            if entry is not None:
                entries[name] = entry
        with self._lock:
            gone = set(self._cache) - set(entries)
            for name in gone:
                del self._cache[name]
            self._entries = entries
            dirty = self._dirty or bool(gone)
        if dirty:
            self._save_cache()
        return sorted(entries.values(), key=lambda e: e.name)

    def _save_cache(self) -> None:
        with self._save_lock:
            with self._lock:
                data = {k: list(v) for k, v in self._cache.items()}
            tmp = self.state_dir / (INDEX_FILE + ".tmp")
            tmp.write_text(json.dumps(data), "utf-8")
            os.replace(tmp, self.state_dir / INDEX_FILE)

    async def refresh(self) -> list[FileEntry]:
        """Rescan off the event loop; concurrent callers share one scan at a time."""
        if self._scan_lock is None:
            self._scan_lock = asyncio.Lock()
        async with self._scan_lock:
            return await asyncio.to_thread(self.scan)

    def entries(self) -> list[FileEntry]:
        """The last scanned index, without touching the disk."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.name)

    def count(self) -> int:
        """Number of files in the last scanned index."""
        return len(self._entries)

    async def list(self) -> list[FileEntry]:
        """A fresh index: rescans so files dropped in meanwhile appear."""
        return await self.refresh()

    async def get(self, name: str) -> FileEntry:
        """Metadata of one file (fresh from disk); NotFound or InvalidName otherwise."""
        path = self._readable_path(name)
        entry = await asyncio.to_thread(self._stat_entry, validate_name(name), path)
        if entry is None:
            raise NotFound(f"no shared file named {validate_name(name)!r}")
        with self._lock:
            self._entries[entry.name] = entry
        return entry

    async def find_sha256(self, digest: str) -> FileEntry:
        digest = digest.lower()
        for entry in await self.refresh():
            if entry.sha256 == digest:
                return entry
        raise NotFound(f"no shared file with sha256 {digest}")

    async def match(self, query: str) -> list[FileEntry]:
        """Files matching an exact name, a glob (``*.txt``) or ``sha256:<hex>`` (8 or more digits: a prefix)."""
        entries = await self.refresh()
        return match_entries(entries, query)

    # ------------------------------------------------------------------ read
    def open_read(self, name: str) -> BinaryIO:
        """Open a shared file for reading (blocking; use a thread for big reads)."""
        path = self._readable_path(name)
        return open(os.path.realpath(path), "rb")

    def real_path(self, name: str) -> Path:
        """The checked on-disk path of a shared file (for sendfile-style responses)."""
        return Path(os.path.realpath(self._readable_path(name)))

    # ----------------------------------------------------------------- write
    def writer(
        self,
        name: str,
        *,
        overwrite: bool = False,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        max_size: int | None = None,
    ) -> AtomicWriter:
        """Start an atomic write of ``name``; nothing is visible until commit()."""
        final = self.path_for(name)
        if expected_size is not None and max_size is not None and expected_size > max_size:
            raise TooLarge(f"{expected_size} bytes is over the limit of {max_size}")
        if not overwrite and os.path.lexists(final):
            raise AlreadyExists(f"{final.name!r} already exists (overwrite not requested)")
        return AtomicWriter(self, final, overwrite, expected_size, expected_sha256, max_size)

    def _committed(self, path: Path, size: int, digest: str) -> FileEntry:
        st = os.stat(path)
        entry = FileEntry(name=path.name, size=size, sha256=digest, mtime=st.st_mtime)
        with self._lock:
            self._cache[path.name] = (st.st_size, st.st_mtime_ns, digest)
            self._entries[path.name] = entry
        self._save_cache()
        return entry


SHA256_PREFIX_MIN = 8  # like git's short hashes; the CLI shows 12


def sha256_query(query: str) -> str | None:
    """The lower-case hex of a ``sha256:<hex>`` query (a prefix of 8 to 64 digits), None if not one.

    ValueError for ``sha256:`` followed by anything else, so a typo is an error, not "no hits".
    """
    if not query.startswith("sha256:"):
        return None
    digest = query[7:].lower()
    if not SHA256_PREFIX_MIN <= len(digest) <= 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"sha256: needs {SHA256_PREFIX_MIN} to 64 hex digits (a prefix is enough), got {query[7:]!r}")
    return digest


def match_entries(entries: list[FileEntry], query: str) -> list[FileEntry]:
    """Pure matching rule shared by every query path: sha256: (whole or prefix), glob, or exact (NFC) name."""
    try:
        digest = sha256_query(query)
    except ValueError:
        return []
    if digest is not None:
        return [e for e in entries if e.sha256.startswith(digest)]
    if any(ch in query for ch in "*?["):
        return [e for e in entries if fnmatch.fnmatchcase(e.name, query)]
    try:
        name = validate_name(query)
    except InvalidName:
        return []
    return [e for e in entries if e.name == name]


class AtomicWriter:
    """Writes a file into the share atomically, hashing as it goes.

    Blocking methods (write/commit/abort) have async twins that run in a
    thread, so servers never block their event loop on disk.
    """

    def __init__(
        self,
        store: FileStore,
        final: Path,
        overwrite: bool,
        expected_size: int | None,
        expected_sha256: str | None,
        max_size: int | None,
    ) -> None:
        self._store = store
        self.final = final
        self.overwrite = overwrite
        self.expected_size = expected_size
        self.expected_sha256 = expected_sha256.lower() if expected_sha256 else None
        self.max_size = max_size
        fd, tmp = tempfile.mkstemp(dir=store.root, prefix=TEMP_PREFIX, suffix=".part")
        self._fd: int | None = fd
        self.temp_path = Path(tmp)
        self._hash = hashlib.sha256()
        self.bytes_written = 0
        self.done = False

    @property
    def name(self) -> str:
        return self.final.name

    def write(self, data: bytes | memoryview) -> None:
        if self._fd is None:
            raise RuntimeError("writer is closed")
        n = len(data)
        new_total = self.bytes_written + n
        if self.max_size is not None and new_total > self.max_size:
            self.abort()
            raise TooLarge(f"upload exceeds the limit of {self.max_size} bytes")
        if self.expected_size is not None and new_total > self.expected_size:
            self.abort()
            raise IntegrityError(f"received more than the announced {self.expected_size} bytes")
        self._hash.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.bytes_written = new_total

    def commit(self) -> FileEntry:
        """Verify, fsync and rename into place; raises and cleans up on any mismatch."""
        if self._fd is None:
            raise RuntimeError("writer is closed")
        digest = self._hash.hexdigest()
        try:
            if self.expected_size is not None and self.bytes_written != self.expected_size:
                raise IntegrityError(
                    f"received {self.bytes_written} bytes, {self.expected_size} were announced"
                )
            if self.expected_sha256 is not None and digest != self.expected_sha256:
                raise IntegrityError(f"sha256 mismatch: got {digest}, expected {self.expected_sha256}")
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            if self.overwrite:
                os.replace(self.temp_path, self.final)
            else:
                try:
                    os.link(self.temp_path, self.final)  # fails if the name appeared meanwhile
                except FileExistsError:
                    raise AlreadyExists(f"{self.final.name!r} already exists") from None
                os.unlink(self.temp_path)
            _fsync_dir(self.final.parent)
        except BaseException:
            self.abort()
            raise
        self.done = True
        return self._store._committed(self.final, self.bytes_written, digest)

    def abort(self) -> None:
        """Drop the temp file; safe to call more than once."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass
        self.done = True

    async def awrite(self, data: bytes | memoryview) -> None:
        await asyncio.to_thread(self.write, data)

    async def acommit(self) -> FileEntry:
        return await asyncio.to_thread(self.commit)

    async def aabort(self) -> None:
        await asyncio.to_thread(self.abort)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.done:
            self.abort()
