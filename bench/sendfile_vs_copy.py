"""Why REST content is not sent with sendfile: serve one file to curl both ways, interleaved.

A plain blocking server (no peerkit, no Python framework) answers one GET by
(a) ``os.sendfile`` of the whole file or (b) 1 MiB ``preadv`` + ``sendall``
(what the REST plugin does, minus Litestar). Runs alternate so machine load
hits both alike; prints MB/s and the server's CPU-s/GB per run and the
median ratio sendfile/copy.

Measured here (2026-11-25, 1 GiB): sendfile/copy 0.71x and 0.83x (medians of
4 pairs); sendfile 1.5-2.3 GB/s at 0.15-0.28 CPU-s/GB, copy 1.7-2.9 GB/s at
0.31-0.55. sendfile halves the server's CPU, but on loopback the receiver
then copies from page-cache pages that are not in the CPU cache, and curl
(one core) gets slower. Across a real NIC the trade-off would differ.

    python bench/sendfile_vs_copy.py [--size 1GiB] [--pairs 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHUNK = 1 << 20


def _serve_once(listener: socket.socket, path: Path, mode: str, out: dict[str, float]) -> None:
    conn, _ = listener.accept()
    with conn, open(path, "rb") as f:
        conn.recv(65536)  # the request; curl sends it in one segment
        fd, size = f.fileno(), os.fstat(f.fileno()).st_size
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
        before = resource.getrusage(resource.RUSAGE_THREAD)
        off = 0
        if mode == "sendfile":
            while off < size:
                off += os.sendfile(conn.fileno(), fd, off, size - off)
        else:
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            while off < size:
                n = os.preadv(fd, [buf], off)
                conn.sendall(view[:n])
                off += n
        after = resource.getrusage(resource.RUSAGE_THREAD)
        out["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def one_run(path: Path, mode: str) -> tuple[float, float]:
    """(MB/s seen by curl, server CPU-s/GB) for one GET."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        out: dict[str, float] = {}
        server = threading.Thread(target=_serve_once, args=(listener, path, mode, out))
        server.start()
        t = time.perf_counter()
        subprocess.run(["curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{port}/"], check=True, timeout=300)
        seconds = time.perf_counter() - t
        server.join(60)
    size = path.stat().st_size
    return size / seconds / 1e6, out.get("cpu", float("nan")) / (size / 1e9)


def warm(path: Path) -> None:
    """Read the file through the page cache (this machine evicts pages idle for about a minute)."""
    with open(path, "rb") as f:
        while f.readinto(bytearray(CHUNK)):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=lambda s: int(s.removesuffix("GiB")) << 30 if s.endswith("GiB") else int(s), default=1 << 30)
    parser.add_argument("--pairs", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed (apt-get install curl)")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        with open(path, "wb") as f:
            for _ in range(args.size // CHUNK):
                f.write(os.urandom(CHUNK))
        ratios = []
        print(f"{'run':<12}{'MB/s':>8}{'server cpu-s/GB':>18}")
        for i in range(args.pairs):
            speeds = {}
            for mode in ("copy", "sendfile") if i % 2 == 0 else ("sendfile", "copy"):
                warm(path)
                speeds[mode], cpu = one_run(path, mode)
                print(f"{mode:<12}{speeds[mode]:>8.0f}{cpu:>18.2f}")
            ratios.append(speeds["sendfile"] / speeds["copy"])
        print(f"sendfile / copy, median of {args.pairs} pairs: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
