"""File content over a real uvicorn on a free port: ranges, resume with curl, uploads, limits, hostile names."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from support.nodes import running_node
from support.rest import PROBLEM_JSON, raw_request, tree
from support.transfer import evict, open_fds_of, wait_until

SIZE = 3 * 1024 * 1024 + 123  # a few chunks and a ragged tail
MiB = 1 << 20


def pattern(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB of non-repeating-looking bytes
    return (block * (size // len(block) + 1))[:size]


async def run(*argv: str, timeout: float = 60.0) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode, out.decode(), err.decode()


def temp_files(node) -> list[str]:
    return [p.name for p in node.store.root.iterdir() if p.name.startswith(".")]


@pytest.fixture
async def node(tmp_path):
    async with running_node(tmp_path, plugins=["rest_litestar"], rest_litestar={"max_upload_bytes": 200 * MiB}) as n:
        yield n


@pytest.fixture
async def http(node):
    async with httpx.AsyncClient(base_url=f"{node.rest_url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def data(node) -> bytes:
    body = pattern(SIZE)
    (node.store.root / "data.bin").write_bytes(body)
    return body


async def test_download_whole_file_with_validators(http, data):
    resp = await http.get("/files/data.bin/content")
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.headers["content-length"] == str(SIZE)
    assert resp.headers["content-type"] == "application/octet-stream"
    head = await http.head("/files/data.bin/content")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(SIZE)
    assert head.headers["etag"] == resp.headers["etag"]
    again = await http.get("/files/data.bin/content", headers={"if-none-match": resp.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 0),  # first byte
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE - 1),  # last byte
        ("bytes=-100", SIZE - 100, SIZE - 1),  # suffix
        (f"bytes={MiB - 1}-{2 * MiB}", MiB - 1, 2 * MiB),  # across chunk boundaries
        ("bytes=5-", 5, SIZE - 1),
    ],
)
async def test_range_edges(http, data, header, start, end):
    resp = await http.get("/files/data.bin/content", headers={"range": header})
    assert resp.status_code == 206
    assert resp.content == data[start : end + 1]
    assert resp.headers["content-range"] == f"bytes {start}-{end}/{SIZE}"
    assert resp.headers["content-length"] == str(end - start + 1)


@pytest.mark.parametrize("evicted", [(MiB, MiB), (0, 0), (2 * MiB, 0)], ids=["middle", "all", "tail"])
async def test_content_partly_out_of_the_page_cache_is_byte_exact(node, http, data, evicted):
    """Cached chunks are read in the loop, the rest in threads: the bytes must not care."""
    evict(node.store.root / "data.bin", *evicted)
    resp = await http.get("/files/data.bin/content")
    assert resp.status_code == 200 and resp.content == data
    evict(node.store.root / "data.bin", *evicted)
    resp = await http.get("/files/data.bin/content", headers={"range": f"bytes={MiB // 2}-"})
    assert resp.status_code == 206 and resp.content == data[MiB // 2 :]


async def test_range_past_end_is_416(http, data):
    resp = await http.get("/files/data.bin/content", headers={"range": f"bytes={SIZE}-"})
    assert resp.status_code == 416
    assert resp.headers["content-range"] == f"bytes */{SIZE}"
    assert resp.headers["content-type"].startswith(PROBLEM_JSON)


async def test_if_range_mismatch_sends_the_whole_file(http, data):
    resp = await http.get("/files/data.bin/content", headers={"range": "bytes=0-9", "if-range": '"' + "0" * 64 + '"'})
    assert resp.status_code == 200 and resp.content == data
    etag = resp.headers["etag"]
    resp = await http.get("/files/data.bin/content", headers={"range": "bytes=0-9", "if-range": etag})
    assert resp.status_code == 206 and resp.content == data[:10]


async def test_curl_resumes_a_partial_download(node, data, tmp_path):
    out = tmp_path / "resumed.bin"
    out.write_bytes(data[: SIZE // 3])
    url = f"{node.rest_url}/api/v1/files/data.bin/content"
    code, stdout, err = await run("curl", "-sS", "-C", "-", "-o", str(out), "-w", "%{http_code}", url)
    assert code == 0, err
    assert stdout == "206"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_put_zero_bytes(http, node):
    resp = await http.put("/files/empty.txt/content", content=b"")
    assert resp.status_code == 201
    assert resp.json()["size"] == 0
    assert resp.json()["sha256"] == hashlib.sha256(b"").hexdigest()
    assert (node.store.root / "empty.txt").read_bytes() == b""
    got = await http.get("/files/empty.txt/content")
    assert got.status_code == 200 and got.content == b""
    assert (await http.get("/files/empty.txt/content", headers={"range": "bytes=0-"})).status_code == 416


async def test_put_100_mib_streamed_with_checksum(http, node):
    size, chunk = 100 * MiB, pattern(MiB, seed=7)
    digest = hashlib.sha256(chunk * 100).hexdigest()

    async def body():
        for _ in range(size // MiB):
            yield chunk

    resp = await http.put("/files/big.bin/content", content=body(), headers={"x-sha256": digest, "content-length": str(size)})
    assert resp.status_code == 201, resp.text
    assert resp.json()["size"] == size and resp.json()["sha256"] == digest
    assert os.path.getsize(node.store.root / "big.bin") == size
    assert temp_files(node) == []
    listed = {f["name"]: f for f in (await http.get("/files")).json()}
    assert listed["big.bin"]["sha256"] == digest


async def test_put_existing_name_and_overwrite(http, node):
    assert (await http.put("/files/a.txt/content", content=b"one")).status_code == 201
    resp = await http.put("/files/a.txt/content", content=b"two")
    assert resp.status_code == 409 and resp.headers["content-type"].startswith(PROBLEM_JSON)
    assert (node.store.root / "a.txt").read_bytes() == b"one"
    resp = await http.put("/files/a.txt/content", params={"overwrite": "true"}, content=b"three")
    assert resp.status_code == 200
    assert (node.store.root / "a.txt").read_bytes() == b"three"


async def test_put_checksum_mismatch_leaves_nothing(http, node):
    resp = await http.put("/files/bad.bin/content", content=b"payload", headers={"x-sha256": "0" * 64})
    assert resp.status_code == 422 and resp.headers["content-type"].startswith(PROBLEM_JSON)
    resp = await http.put("/files/bad.bin/content", content=b"payload", headers={"digest": "sha-256=" + "A" * 43 + "="})
    assert resp.status_code == 422
    assert not (node.store.root / "bad.bin").exists()
    assert temp_files(node) == []
    good = hashlib.sha256(b"payload").digest()
    import base64

    resp = await http.put("/files/ok.bin/content", content=b"payload", headers={"digest": "sha-256=" + base64.b64encode(good).decode()})
    assert resp.status_code == 201


@pytest.fixture
async def small_node(tmp_path):
    async with running_node(tmp_path, "small", plugins=["rest_litestar"], rest_litestar={"max_upload_bytes": MiB}) as n:
        yield n


async def test_put_over_the_limit_with_content_length_is_413_before_reading(small_node, tmp_path):
    src = tmp_path / "two-mib.bin"
    src.write_bytes(pattern(2 * MiB))
    url = f"{small_node.rest_url}/api/v1/files/over.bin/content"
    code, stdout, err = await run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_upload}", "-T", str(src), url)
    assert code == 0, err
    status, uploaded = stdout.split()
    assert status == "413"
    assert int(uploaded) < MiB  # curl waited for 100-continue and never sent the body
    assert not (small_node.store.root / "over.bin").exists()
    assert temp_files(small_node) == []


async def test_a_put_whose_body_stalls_is_408_and_leaves_nothing(tmp_path):
    async with running_node(tmp_path, plugins=["rest_litestar"], rest_litestar={"upload_idle_timeout_s": 0.5}) as node:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
        try:
            writer.write(
                b"PUT /api/v1/files/stalled.bin/content HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + b"a" * 1000
            )
            await writer.drain()
            started = asyncio.get_running_loop().time()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # then the client says nothing more
            assert asyncio.get_running_loop().time() - started < 8
        finally:
            writer.close()
        assert head.startswith(b"HTTP/1.1 408 ")
        assert PROBLEM_JSON.encode() in head.lower()
        assert await wait_until(lambda: temp_files(node) == [], 5)
        assert not (node.store.root / "stalled.bin").exists()
        assert node.metrics.get("uploads_stalled") == 1


async def test_a_download_nobody_reads_is_cut_off_and_closes_the_file(tmp_path, capfd):
    config = {"download_idle_timeout_s": 0.5}
    async with running_node(tmp_path, plugins=["rest_litestar"], rest_litestar=config) as node:
        big = node.store.root / "big.bin"
        big.write_bytes(pattern(64 * MiB))  # more than the socket buffers hold
        reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
        try:
            writer.write(b"GET /api/v1/files/big.bin/content HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert open_fds_of(big) == 1
            # Then the client reads nothing: the node gives up, closes the file, keeps serving.
            assert await wait_until(lambda: node.metrics.get("downloads_stalled") == 1, 20)
            assert await wait_until(lambda: open_fds_of(big) == 0, 5)
            got = 0
            while chunk := await asyncio.wait_for(reader.read(MiB), 10):  # what was in flight, then EOF
                got += len(chunk)
            assert len(head) + got < 64 * MiB
        finally:
            writer.close()
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"{node.rest_url}/api/v1/files/big.bin/content")
            assert resp.status_code == 200 and len(resp.content) == 64 * MiB
    assert "Exception in ASGI application" not in capfd.readouterr().err  # an expected ending, not an error


async def test_put_over_the_limit_while_streaming_is_413(small_node):
    async def body():  # no Content-Length: chunked, so only the bytes can tell
        for _ in range(2 * 16):
            yield b"z" * (64 * 1024)
            await asyncio.sleep(0)

    url = f"{small_node.rest_url}/api/v1/files/over.bin/content"
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            resp = await client.put(url, content=body())
        except httpx.HTTPError:
            resp = None  # the server may close while the client still writes; the share is what matters
    if resp is not None:
        assert resp.status_code == 413 and resp.headers["content-type"].startswith(PROBLEM_JSON)
    assert not (small_node.store.root / "over.bin").exists()
    assert temp_files(small_node) == []
    # exactly the limit is fine
    async with httpx.AsyncClient(timeout=30) as client:
        resp = await client.put(url, content=b"k" * MiB)
    assert resp.status_code == 201


async def test_concurrent_puts_one_wins_never_a_mix(node):
    url = f"{node.rest_url}/api/v1/files/race.bin/content"
    size = 4 * MiB

    def body(i: int):
        async def gen():
            for _ in range(size // (256 * 1024)):
                yield bytes([65 + i]) * (256 * 1024)
                await asyncio.sleep(0)

        return gen()

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=8)) as client:
        resps = await asyncio.gather(*(client.put(url, content=body(i)) for i in range(6)))
        codes = sorted(r.status_code for r in resps)
        assert codes == [201] + [409] * 5, codes
        content = (node.store.root / "race.bin").read_bytes()
        assert len(content) == size and len(set(content)) == 1
        winner = next(r for r in resps if r.status_code == 201)
        assert winner.json()["sha256"] == hashlib.sha256(content).hexdigest()

        resps = await asyncio.gather(*(client.put(url, params={"overwrite": "true"}, content=body(i)) for i in range(4)))
        assert all(r.status_code in (200, 201) for r in resps), [r.status_code for r in resps]
        content = (node.store.root / "race.bin").read_bytes()
        assert len(content) == size and len(set(content)) == 1
    assert temp_files(node) == []


async def test_hostile_names_are_refused_and_touch_nothing(tmp_path, name_corpus):
    async with running_node(tmp_path, plugins=["rest_litestar"]) as node:
        (node.store.root / "keep.txt").write_bytes(b"keep")
        (tmp_path / "outside.txt").write_bytes(b"outside")
        (tmp_path / "x").write_bytes(b"x outside")
        before = {k: v for k, v in tree(tmp_path).items() if "/state/" not in f"/{k}"}
        segments = list(name_corpus["url_encoded_refused"])
        segments += [quote(name, safe="") for name in name_corpus["refused"]]
        for seg in segments:
            for method, target, body in (
                ("GET", f"/api/v1/files/{seg}", b""),
                ("GET", f"/api/v1/files/{seg}/content", b""),
                ("HEAD", f"/api/v1/files/{seg}/content", b""),
                ("PUT", f"/api/v1/files/{seg}/content", b"evil"),
                ("PUT", f"/api/v1/files/{seg}/content?overwrite=true", b"evil"),
            ):
                if target == "/api/v1/files/":
                    continue  # the empty name is the index route, GET /files/
                status, resp_body = await raw_request(node.rest_port, method, target, body)
                assert status == 422, (method, target, status)  # the contract: refused names are 422
                assert b"outside" not in resp_body and b"keep" not in resp_body
        after = {k: v for k, v in tree(tmp_path).items() if "/state/" not in f"/{k}"}
        assert after == before
        assert (await raw_request(node.rest_port, "GET", "/api/v1/status"))[0] == 200  # still serving


async def test_accepted_and_normalised_names_round_trip(http, node, name_corpus):
    for i, name in enumerate(name_corpus["accepted"]):
        body = f"file {i}".encode()
        resp = await http.put(f"/files/{quote(name, safe='')}/content", content=body)
        assert resp.status_code == 201, (name, resp.text)
        assert resp.json()["name"] == name
        got = await http.get(f"/files/{quote(name, safe='')}/content")
        assert got.content == body
    for given, stored in name_corpus["normalised"]:
        resp = await http.put(f"/files/{quote(given, safe='')}/content", content=b"nfc")
        assert resp.status_code == 201 and resp.json()["name"] == stored
        assert (node.store.root / stored).read_bytes() == b"nfc"
        assert (await http.get(f"/files/{quote(stored, safe='')}/content")).content == b"nfc"
        assert (await http.get(f"/files/{quote(given, safe='')}")).json()["name"] == stored


async def test_symlink_out_of_the_share_is_not_served(http, node, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"secret")
    Path(node.store.root / "link.txt").symlink_to(secret)
    resp = await http.get("/files/link.txt/content")
    assert resp.status_code == 404 and b"secret" not in resp.content
    resp = await http.put("/files/link.txt/content", params={"overwrite": "true"}, content=b"x")
    assert resp.status_code in (200, 201)
    assert secret.read_bytes() == b"secret"  # the link was replaced, never written through


async def test_clients_that_vanish_leave_nothing_behind(node, data, caplog):
    fds_before = len(os.listdir("/proc/self/fd"))
    # an upload announcing 10 MiB that stops after 3 MiB
    reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
    writer.write(
        b"PUT /api/v1/files/cut.bin/content HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (10 * MiB)
        + b"c" * (3 * MiB)
    )
    await writer.drain()
    writer.close()
    # a download abandoned after the first bytes
    reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
    writer.write(b"GET /api/v1/files/data.bin/content HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readexactly(1000)
    writer.close()
    for _ in range(100):  # bounded: up to 5 s for the server to notice
        if not temp_files(node) and len(os.listdir("/proc/self/fd")) <= fds_before:
            break
        await asyncio.sleep(0.05)
    assert temp_files(node) == []
    assert not (node.store.root / "cut.bin").exists()
    assert len(os.listdir("/proc/self/fd")) <= fds_before  # the file being sent was closed
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{node.rest_url}/api/v1/status")).status_code == 200
        metrics = (await client.get(f"{node.rest_url}/metrics")).text
    # A client hanging up is the client's doing: no error logged, no 5xx counted.
    assert "REST handler failed" not in caplog.text and "unexpected error" not in caplog.text
    assert 'status="500"' not in metrics


async def test_many_clients_at_once_all_get_exact_bytes(node, data):
    """64 downloads, 64 status reads and 8 uploads at the same time on one node: every one complete and exact."""
    url = f"{node.rest_url}/api/v1"
    limits = httpx.Limits(max_connections=136, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        async def download(i: int) -> bool:
            if i % 2:  # half of them ask for a range
                resp = await client.get("/files/data.bin/content", headers={"range": f"bytes={i * 1000}-"})
                assert resp.status_code == 206
                return resp.content == data[i * 1000 :]
            resp = await client.get("/files/data.bin/content")
            return resp.status_code == 200 and resp.content == data

        async def status(_: int) -> bool:
            resp = await client.get("/status")
            return resp.status_code == 200 and resp.json()["name"] == node.name

        async def upload(i: int) -> bool:
            body = pattern(MiB + i, seed=i)
            resp = await client.put(f"/files/up-{i}.bin/content", content=body, headers={"x-sha256": hashlib.sha256(body).hexdigest()})
            return resp.status_code == 201 and (node.store.root / f"up-{i}.bin").read_bytes() == body

        results = await asyncio.wait_for(
            asyncio.gather(*(download(i) for i in range(64)), *(status(i) for i in range(64)), *(upload(i) for i in range(8))), 120
        )
    assert all(results), [i for i, ok in enumerate(results) if not ok]
    assert temp_files(node) == []


async def test_oversized_or_trickling_request_headers_are_cut_off(tmp_path):
    from peerkit.plugins.rest_litestar.config import RestConfig

    async with running_node(tmp_path, plugins=["rest_litestar"], rest_litestar={"max_header_bytes": 65536, "header_timeout_s": 0.5}) as node:
        # 2 MiB of one header, sent in pieces: refused before it is all read.
        reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
        writer.write(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(32):
                writer.write(b"a" * 65536)
                await writer.drain()
        except ConnectionError:
            pass  # the node closed first
        writer.write(b"\r\n\r\n")  # complete, so a node without the limit would answer 200
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            answer = b"(reset)"  # closed with our bytes unread: the kernel resets, the 431 may be lost
        assert answer.startswith((b"HTTP/1.1 431 ", b"(reset)")), answer[:80]
        writer.close()
        # Headers trickling in: 408 once header_timeout_s has passed since their first byte.
        reader, writer = await asyncio.open_connection("127.0.0.1", node.rest_port)
        writer.write(b"GET /api/v1/status HTTP/1.1\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        writer.close()
        # Ordinary requests, and a keep-alive connection carrying several, are untouched.
        async with httpx.AsyncClient(base_url=node.rest_url) as client:
            for _ in range(3):
                assert (await client.get("/api/v1/status", headers={"X-Pad": "p" * 8000})).status_code == 200
    assert RestConfig().max_header_bytes == 1 << 20 and RestConfig().header_timeout_s == 10.0


async def test_a_file_truncated_while_sent_cuts_the_response_without_a_traceback(tmp_path, capfd):
    async with running_node(tmp_path, plugins=["rest_litestar"]) as node:
        big = node.store.root / "shrinks.bin"
        big.write_bytes(pattern(32 * MiB))
        async with httpx.AsyncClient(timeout=10) as client:
            with pytest.raises(httpx.HTTPError):  # the body ends short of Content-Length
                async with client.stream("GET", f"{node.rest_url}/api/v1/files/shrinks.bin/content") as resp:
                    assert resp.status_code == 200
                    got = 0
                    async for chunk in resp.aiter_raw():
                        if got == 0:
                            os.truncate(big, MiB)  # replaced in place, as a careless writer would
                        got += len(chunk)
            assert got < 32 * MiB
            assert (await client.get(f"{node.rest_url}/api/v1/status")).status_code == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in ASGI application" not in err
