"""Request rate of ``GET /api/v1/status`` on a node vs a bare Litestar hello app, under wrk.

Both servers run the same way: one process, uvicorn embedded in ``uvloop.run``,
httptools, access log off. They are measured alternately in the same run
(``--rounds`` times each, best kept) so machine noise hits both alike.

    .venv/bin/python bench/rest_rate.py            # wrk -t2 -c64 -d5s, 2 rounds
    .venv/bin/python bench/rest_rate.py --json

Target (issue 5): the node at least 0.8x the bare app.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec

HELLO_APP = r"""
import sys, uvicorn, uvloop
from litestar import Litestar, get

@get("/hello", sync_to_thread=False)
def hello() -> dict[str, str]:
    return {"hello": "world"}

app = Litestar([hello])
config = uvicorn.Config(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                        access_log=False, log_level="warning", lifespan="on")
uvloop.run(uvicorn.Server(config).serve())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before serving {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, threads: int, connections: int, duration: str, pid: int | None = None) -> tuple[float, float]:
    """(requests per second, server CPU microseconds per request) for one wrk run."""
    cpu0 = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}", url],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    cpu = (cpu_seconds(pid) - cpu0) if pid else 0.0
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} error responses under load:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rate or not total:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    return float(rate.group(1)), cpu / max(1, int(total.group(1))) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-t", "--threads", type=int, default=2)
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-d", "--duration", default="5s")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")

    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="peerkit-rest-rate-"))
    node_port, hello_port = free_port(), free_port()
    config = {
        "node": {
            "name": "bench",
            "host": "127.0.0.1",
            "rest_port": node_port,
            "grpc_port": 0,
            "shared_dir": str(work / "shared"),
            "state_dir": str(work / "state"),
            "plugins": ["rest_litestar"],
        }
    }
    cfg = work / "bench.toml"
    cfg.write_bytes(msgspec.toml.encode(config))
    env = {**os.environ, "PEERKIT_DISABLE_PLUGIN_AUTOLOAD": "1"}
    node = subprocess.Popen([sys.executable, "-m", "peerkit.cli.main", "node", "run", "-c", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    hello = subprocess.Popen([sys.executable, "-c", HELLO_APP, str(hello_port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    node_url = f"http://127.0.0.1:{node_port}/api/v1/status"
    hello_url = f"http://127.0.0.1:{hello_port}/hello"
    try:
        wait_ready(node_url, node)
        wait_ready(hello_url, hello)
        for url in (node_url, hello_url):  # warm up both (imports, first-request caches)
            wrk(url, 1, 4, "1s")
        node_runs, hello_runs = [], []
        for _ in range(args.rounds):
            hello_runs.append(wrk(hello_url, args.threads, args.connections, args.duration, hello.pid))
            node_runs.append(wrk(node_url, args.threads, args.connections, args.duration, node.pid))
    finally:
        stop(node)
        stop(hello)
        shutil.rmtree(work, ignore_errors=True)

    best_node, best_hello = max(r for r, _ in node_runs), max(r for r, _ in hello_runs)
    # CPU per request barely moves when other processes compete for the cores, unlike req/s.
    cpu_node, cpu_hello = min(c for _, c in node_runs), min(c for _, c in hello_runs)
    result = {
        "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}",
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "node_status_rps": round(best_node),
        "bare_hello_rps": round(best_hello),
        "ratio": round(best_node / best_hello, 3),
        "node_cpu_us_per_req": round(cpu_node, 1),
        "bare_cpu_us_per_req": round(cpu_hello, 1),
        "cpu_ratio": round(cpu_hello / cpu_node, 3),
        "node_runs": [round(r) for r, _ in node_runs],
        "hello_runs": [round(r) for r, _ in hello_runs],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"wrk {result['wrk']}, {args.rounds} rounds each, best kept ({result['cpus']} CPUs, load {load_before})")
    print(f"  node GET /api/v1/status : {best_node:8.0f} req/s  {cpu_node:6.1f} CPU-us/req  runs {result['node_runs']}")
    print(f"  bare Litestar GET /hello: {best_hello:8.0f} req/s  {cpu_hello:6.1f} CPU-us/req  runs {result['hello_runs']}")
    print(f"  ratio (req/s)           : {result['ratio']:.2f}x (target >= 0.80x)")
    print(f"  ratio (CPU per request) : {result['cpu_ratio']:.2f}x (bare cost / node cost)")


if __name__ == "__main__":
    main()
