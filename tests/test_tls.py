"""TLS end to end: config, both transports between nodes, clients, and the CLI with --cacert."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import trustme

from peerkit.config import ConfigError, parse_config
from peerkit.errors import TransportError
from peerkit.plugins.echo import client as echo_client
from peerkit.plugins.grpc_transfer.client import download_file, stat_file, upload_file
from peerkit.tls import Identity, client_ssl_context
from peerkit.v1 import transfer_pb2, transfer_pb2_grpc

from support.cli import one_error_line, peerkit
from support.nodes import LOOPBACK, NodeProcess, config_dict, free_port, link, running_network, running_node, write_config


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(tmp_path: Path, ca: trustme.CA) -> dict[str, Path]:
    """cert/key for 127.0.0.1 issued by ``ca``, and the CA bundle, as PEM files."""
    cert = ca.issue_cert(LOOPBACK)
    files = {"cert": tmp_path / "node.pem", "key": tmp_path / "node.key", "ca": tmp_path / "ca.pem"}
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    return files


def security(files: dict[str, Path]) -> dict[str, str]:
    return {"tls_cert": str(files["cert"]), "tls_key": str(files["key"]), "tls_ca": str(files["ca"])}


# ------------------------------------------------------------------ config
def test_tls_paths_resolve_relative_to_the_config_file(tmp_path, tls_files):
    raw = config_dict(tmp_path, "n1")
    raw["security"] = {"tls_cert": "node.pem", "tls_key": "node.key", "tls_ca": "ca.pem"}
    config = parse_config(raw, source="n1.toml", base_dir=tmp_path, env={})
    assert config.security.tls_cert == str(tls_files["cert"].resolve())
    assert config.security.tls_key == str(tls_files["key"].resolve())
    assert config.security.tls_ca == str(tls_files["ca"].resolve())


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"tls_cert": "node.pem"}, "tls_cert is set but tls_key is missing"),
        ({"tls_key": "node.key"}, "tls_key is set but tls_cert is missing"),
        ({"tls_cert": "node.pem", "tls_key": "missing.key"}, "tls_key: cannot read missing.key"),
        ({"tls_cert": "node.pem", "tls_key": "node.key", "tls_ca": "nope.pem"}, "tls_ca: cannot read nope.pem"),
        ({"tls_cert": "n1.toml", "tls_key": "node.key"}, "tls_cert: n1.toml is not a PEM file"),
    ],
)
def test_bad_tls_config_is_one_line(tmp_path, tls_files, section, expected):
    (tmp_path / "n1.toml").write_text("[node]\nname = 'n1'\n")
    raw = config_dict(tmp_path, "n1")
    raw["security"] = section
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="n1.toml", base_dir=tmp_path, env={})
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------- node to node
@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_tls_nodes_talk_over_both_transports(tmp_path, tls_files, transport):
    async with running_network(tmp_path, 2, plugins=["rest_litestar", "grpc_transfer"], security=security(tls_files)) as (a, b):
        assert a.rest_url.startswith("https://") and a.tls and a.tls_ca == tls_files["ca"].read_bytes()

        async def echo(payload: bytes, sender: str) -> bytes:
            return sender.encode() + b":" + payload

        b.messages.register("test.echo", echo)
        reply = await a.call_peer(a.peers.get("p1"), "test.echo", b"over tls", timeout=5, transport=transport)
        assert reply == b"p0:over tls"


async def test_tls_peer_with_an_unknown_ca_is_refused(tmp_path, tls_files, ca):
    """A node trusting another CA cannot reach a TLS peer (the certificate is really checked)."""
    other = trustme.CA()
    other_ca = tmp_path / "other-ca.pem"
    other.cert_pem.write_to_path(other_ca)
    async with running_node(tmp_path, "b", plugins=["rest_litestar", "grpc_transfer"], security=security(tls_files)) as b:
        sec = {**security(tls_files), "tls_ca": str(other_ca)}
        async with running_node(tmp_path, "a", plugins=["rest_litestar", "grpc_transfer"], security=sec) as a:
            a.peers.add("b", b.rest_url, b.grpc_address, friend=True)
            b.messages.register("test.echo", lambda payload, sender: payload)
            for transport in ("grpc", "rest"):
                with pytest.raises(TransportError):
                    await a.call_peer(a.peers.get("b"), "test.echo", b"x", timeout=3, transport=transport)


# ------------------------------------------------------------------ clients
async def test_plain_clients_cannot_talk_to_a_tls_node(tmp_path, tls_files):
    async with running_node(tmp_path, "n1", security=security(tls_files)) as node:
        port = node.rest_port
        async with httpx.AsyncClient(verify=client_ssl_context(tls_files["ca"].read_bytes())) as http:
            assert (await http.get(f"{node.rest_url}/api/v1/status")).json()["rest"] == node.rest_url
        with pytest.raises(httpx.HTTPError):  # plain http to the https port
            async with httpx.AsyncClient() as http:
                await http.get(f"http://{LOOPBACK}:{port}/api/v1/status", timeout=3)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # https without the CA
            async with httpx.AsyncClient() as http:
                await http.get(f"{node.rest_url}/api/v1/status", timeout=3)
        async with grpc.aio.insecure_channel(node.grpc_address) as channel:  # plaintext gRPC to the TLS port
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await transfer_pb2_grpc.TransferStub(channel).Stat(transfer_pb2.StatRequest(name="x"), timeout=3)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(TransportError):  # TLS without the CA: untrusted
            await stat_file(node.grpc_address, name="x", tls=True, timeout=3)


async def test_transfer_and_echo_clients_over_tls(tmp_path, tls_files):
    ca_pem = tls_files["ca"].read_bytes()
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 4000)
    async with running_node(tmp_path, "n1", security=security(tls_files)) as node:
        up = await upload_file(node.grpc_address, src, ca=ca_pem)
        assert up.sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
        assert (await stat_file(node.grpc_address, name="data.bin", ca=ca_pem)).sha256 == up.sha256
        dest = tmp_path / "out" / "data.bin"
        dest.parent.mkdir()
        got = await download_file([node.grpc_address], dest, name="data.bin", ca=ca_pem)
        assert got.sha256 == up.sha256 and dest.read_bytes() == src.read_bytes()
        with pytest.raises(TransportError):  # plaintext client against the TLS port
            await download_file([node.grpc_address], tmp_path / "plain.bin", name="data.bin")

        assert (await echo_client.grpc_download(node.grpc_address, 100_000, tls=True, ca=ca_pem)).bytes == 100_000
        assert (await echo_client.grpc_upload(node.grpc_address, 100_000, ca=ca_pem)).bytes == 100_000
        assert (await echo_client.rest_download(node.rest_url, 100_000, ca=ca_pem)).bytes == 100_000
        assert (await echo_client.rest_upload(node.rest_url, 100_000, ca=ca_pem)).bytes == 100_000
        with pytest.raises(TransportError):
            await echo_client.rest_download(node.rest_url, 1000)  # system roots do not know this CA


# --------------------------------------------------------------------- CLI
class TlsNodeProcess(NodeProcess):
    """A NodeProcess whose REST is https, polled for readiness with the test CA."""

    def __init__(self, config_path: Path, *, rest_port: int, ca: Path, identity: Identity | None = None, **kwargs: Any) -> None:
        super().__init__(config_path, rest_port=rest_port, **kwargs)
        self.ca, self.identity = ca, identity

    @property
    def rest_url(self) -> str:
        return f"https://{LOOPBACK}:{self.rest_port}"

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        verify = client_ssl_context(self.ca.read_bytes(), self.identity)
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(f"{self.rest_url}/api/v1/status", timeout=1.0, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"node at {self.rest_url} not ready after {timeout}s")


def test_cli_status_and_download_need_the_ca(tmp_path, tls_files):
    rest, grpc_port = free_port(), free_port()
    config = write_config(tmp_path, "t1", rest_port=rest, grpc_port=grpc_port, security=security(tls_files))
    shared = tmp_path / "t1" / "shared"
    shared.mkdir(parents=True)
    (shared / "hello.txt").write_bytes(b"hello over tls\n" * 1000)
    proc = TlsNodeProcess(config, rest_port=rest, ca=tls_files["ca"])
    try:
        proc.start()
        url, ca = proc.rest_url, str(tls_files["ca"])

        ok = peerkit("status", "--json", "--cacert", ca, peer=url)
        assert ok.returncode == 0, ok.stderr
        assert '"rest": "https://' in ok.stdout
        env_ok = peerkit("status", "--json", peer=url, PEERKIT_CACERT=ca)
        assert env_ok.returncode == 0, env_ok.stderr

        refused = peerkit("status", "--json", peer=url)
        assert refused.returncode == 3
        assert "--cacert" in one_error_line(refused)

        out = tmp_path / "dl"
        got = peerkit("download", "hello.txt", "-o", f"{out}/", "--json", "--cacert", ca, peer=url)
        assert got.returncode == 0, got.stderr
        assert (out / "hello.txt").read_bytes() == b"hello over tls\n" * 1000

        failed = peerkit("download", "hello.txt", "-o", f"{tmp_path / 'dl2'}/", peer=url)
        assert failed.returncode in (1, 3)
        one_error_line(failed)
    finally:
        proc.stop()


def test_cli_node_with_cert_but_no_key_exits_2(tmp_path, tls_files):
    config = write_config(tmp_path, "bad", rest_port=free_port(), grpc_port=free_port(), security={"tls_cert": str(tls_files["cert"])})
    result = peerkit("node", "run", "-c", str(config), timeout=30)
    assert result.returncode == 2
    assert "tls_key is missing" in one_error_line(result)


async def test_untrusted_grpc_certificate_is_one_error_not_grpc_noise(tmp_path, tls_files):
    """A client that does not trust the node's certificate gets peerkit's error, and grpc prints nothing."""
    import asyncio
    import os
    import sys

    async with running_node(tmp_path, plugins=["grpc_transfer"], security=security(tls_files)) as node:
        code = (
            "import asyncio\n"
            "from peerkit.plugins.grpc_transfer.client import stat_file\n"
            "try:\n"
            f"    asyncio.run(stat_file({node.grpc_address!r}, name='x.txt', tls=True, timeout=5))\n"
            "except Exception as err:\n"
            "    print(type(err).__name__)\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert out.decode().strip() == "TransportError"
    assert err.decode() == ""



# --------------------------------------------------------------- mutual TLS
def client_identity(ca: trustme.CA, directory: Path, name: str = "peerkit-client.example") -> Identity:
    """A client certificate issued by ``ca``, written as PEM files and loaded."""
    cert = ca.issue_cert(name)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    return Identity.load(cert_file, key_file)


def mutual(files: dict[str, Path]) -> dict[str, Any]:
    return {**security(files), "tls_client_auth": True}


def test_client_auth_needs_a_ca(tmp_path, tls_files):
    doc = config_dict(tmp_path, "m", security={"tls_cert": str(tls_files["cert"]), "tls_key": str(tls_files["key"]), "tls_client_auth": True})
    with pytest.raises(ConfigError, match="tls_client_auth needs tls_ca") as err:
        parse_config(doc, source="m.toml", base_dir=tmp_path, env={})
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_mutual_tls_nodes_talk_and_a_stranger_is_refused(tmp_path, tls_files, transport):
    async with running_network(tmp_path, 2, plugins=["rest_litestar", "grpc_transfer"], security=mutual(tls_files)) as (a, b):
        async def echo(payload: bytes, sender: str) -> bytes:
            return sender.encode() + b":" + payload

        b.messages.register("test.echo", echo)
        assert await a.call_peer(a.peers.get("p1"), "test.echo", b"hi", timeout=5, transport=transport) == b"p0:hi"

        # A node that trusts the network's CA but holds a certificate from elsewhere.
        other = trustme.CA()
        stranger_cert = other.issue_cert(LOOPBACK)
        stranger_files = {"cert": tmp_path / "s.pem", "key": tmp_path / "s.key", "ca": tls_files["ca"]}
        stranger_cert.cert_chain_pems[0].write_to_path(stranger_files["cert"])
        stranger_cert.private_key_pem.write_to_path(stranger_files["key"])
        async with running_node(tmp_path, "s", plugins=["rest_litestar", "grpc_transfer"], security=security(stranger_files)) as s:
            s.peers.add("p1", b.rest_url, b.grpc_address, friend=True)
            with pytest.raises(TransportError):
                await s.call_peer(s.peers.get("p1"), "test.echo", b"x", timeout=3, transport=transport)


async def test_clients_of_a_mutual_tls_node_need_a_certificate(tmp_path, tls_files, ca):
    ca_pem = tls_files["ca"].read_bytes()
    me = client_identity(ca, tmp_path)
    src = tmp_path / "data.bin"
    src.write_bytes(b"mutual " * 10000)
    async with running_node(tmp_path, "n1", security=mutual(tls_files)) as node:
        up = await upload_file(node.grpc_address, src, ca=ca_pem, identity=me)
        dest = tmp_path / "out.bin"
        got = await download_file([node.grpc_address], dest, name="data.bin", ca=ca_pem, identity=me)
        assert got.sha256 == up.sha256 and dest.read_bytes() == src.read_bytes()
        async with httpx.AsyncClient(verify=client_ssl_context(ca_pem, me)) as http:
            assert (await http.get(f"{node.rest_url}/api/v1/status")).status_code == 200
        assert (await echo_client.rest_download(node.rest_url, 10_000, ca=ca_pem, identity=me)).bytes == 10_000
        assert (await echo_client.grpc_download(node.grpc_address, 10_000, ca=ca_pem, identity=me)).bytes == 10_000

        with pytest.raises(TransportError):  # trusted server, but no client certificate
            await stat_file(node.grpc_address, name="data.bin", ca=ca_pem, timeout=3)
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(verify=client_ssl_context(ca_pem)) as http:
                await http.get(f"{node.rest_url}/api/v1/status", timeout=3)
        outsider = client_identity(trustme.CA(), tmp_path, "outsider.example")
        with pytest.raises(TransportError):  # a certificate, but not from the network's CA
            await stat_file(node.grpc_address, name="data.bin", ca=ca_pem, identity=outsider, timeout=3)
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(verify=client_ssl_context(ca_pem, outsider)) as http:
                await http.get(f"{node.rest_url}/api/v1/status", timeout=3)


def test_cli_with_cert_and_key_against_a_mutual_tls_node(tmp_path, tls_files, ca):
    me = client_identity(ca, tmp_path)
    rest, grpc_port = free_port(), free_port()
    config = write_config(tmp_path, "m1", rest_port=rest, grpc_port=grpc_port, security=mutual(tls_files))
    shared = tmp_path / "m1" / "shared"
    shared.mkdir(parents=True)
    (shared / "hello.txt").write_bytes(b"hello, mutually\n" * 500)
    proc = TlsNodeProcess(config, rest_port=rest, ca=tls_files["ca"], identity=me)
    try:
        proc.start()
        url, ca_file = proc.rest_url, str(tls_files["ca"])
        creds = ("--cacert", ca_file, "--cert", me.cert_file, "--key", me.key_file)

        ok = peerkit("status", "--json", *creds, peer=url)
        assert ok.returncode == 0, ok.stderr
        env_ok = peerkit("status", "--json", peer=url, PEERKIT_CACERT=ca_file, PEERKIT_CERT=me.cert_file, PEERKIT_KEY=me.key_file)
        assert env_ok.returncode == 0, env_ok.stderr
        got = peerkit("download", "hello.txt", "-o", f"{tmp_path / 'dl'}/", "--json", *creds, peer=url)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "dl" / "hello.txt").read_bytes() == b"hello, mutually\n" * 500

        refused = peerkit("status", "--json", "--cacert", ca_file, peer=url)
        assert refused.returncode == 3
        assert "--cert" in one_error_line(refused)
        half = peerkit("status", "--cacert", ca_file, "--cert", me.cert_file, peer=url)
        assert half.returncode == 2 and "--key" in one_error_line(half)
    finally:
        proc.stop()


def named_tls_files(ca: trustme.CA, directory: Path, name: str) -> dict[str, Path]:
    """A node certificate valid for 127.0.0.1 that also carries ``name`` (as a DNS name)."""
    cert = ca.issue_cert(LOOPBACK, name)
    files = {"cert": directory / f"{name}.pem", "key": directory / f"{name}.key", "ca": directory / "ca.pem"}
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    ca.cert_pem.write_to_path(files["ca"])
    return files


def test_bind_names_needs_client_auth(tmp_path, tls_files):
    doc = config_dict(tmp_path, "m", security={**security(tls_files), "bind_names": True})
    with pytest.raises(ConfigError, match="bind_names needs tls_client_auth") as err:
        parse_config(doc, source="m.toml", base_dir=tmp_path, env={})
    assert "\n" not in str(err.value)
    doc = config_dict(tmp_path, "m", plugins=["rest_litestar"], security={**mutual(tls_files), "bind_names": True})
    with pytest.raises(ConfigError, match="bind_names needs the grpc_transfer plugin"):
        parse_config(doc, source="m.toml", base_dir=tmp_path, env={})


async def test_bound_names_admit_only_the_name_in_the_certificate(tmp_path, ca):
    plugins = ["rest_litestar", "grpc_transfer"]

    def bound(name: str) -> dict[str, Any]:
        return {**mutual(named_tls_files(ca, tmp_path, name)), "bind_names": True}

    async def echo(payload: bytes, sender: str) -> bytes:
        return sender.encode() + b":" + payload

    async with running_node(tmp_path, "p0", plugins=plugins, security=bound("p0")) as a, running_node(
        tmp_path, "p1", plugins=plugins, security=bound("p1")
    ) as b:
        link(a, b)
        b.messages.register("test.echo", echo)
        assert await a.call_peer(a.peers.get("p1"), "test.echo", b"hi", timeout=5) == b"p0:hi"
        # The REST link cannot see certificates, so a bound node takes peer messages over gRPC only.
        with pytest.raises(TransportError, match="gRPC only"):
            await a.call_peer(a.peers.get("p1"), "test.echo", b"hi", timeout=5, transport="rest")
        # A member of the network (its certificate is from the same CA) calling itself p0.
        async with running_node(tmp_path / "liar", "p0", plugins=plugins, security=bound("mallory")) as liar:
            liar.peers.add("p1", b.rest_url, b.grpc_address, friend=True)
            with pytest.raises(TransportError, match="sender 'p0' is not a name in the client's certificate"):
                await liar.call_peer(liar.peers.get("p1"), "test.echo", b"x", timeout=5)
        assert b.metrics.get("link_sender_refused") == 2


async def test_bound_names_keep_a_member_from_announcing_another_name(tmp_path, ca):
    from peerkit.plugins.discovery_flood.messages import ANNOUNCE, PING, Announce, AnnounceReply, Ping, Pong, decode, encode

    plugins = ["rest_litestar", "grpc_transfer", "discovery_flood"]

    def bound(name: str) -> dict[str, Any]:
        return {**mutual(named_tls_files(ca, tmp_path, name)), "bind_names": True}

    async with running_node(tmp_path, "p1", plugins=plugins, security=bound("p1")) as b, running_node(
        tmp_path, "mallory", plugins=plugins, security=bound("mallory")
    ) as m:
        m.peers.add("p1", b.rest_url, b.grpc_address, friend=True)
        target = m.peers.get("p1")
        # An entry for a name that is not mallory's, pointing at mallory's own addresses.
        forged = Announce(name="p2", rest=m.rest_url, grpc=m.grpc_address, friend=True)
        reply = decode(await m.call_peer(target, ANNOUNCE, encode(forged), timeout=5), AnnounceReply)
        assert not reply.accepted and "certificate names 'mallory'" in reply.reason
        assert "p2" not in b.peers
        # Speaking for itself works.
        honest = Announce(name="mallory", rest=m.rest_url, grpc=m.grpc_address, friend=True)
        reply = decode(await m.call_peer(target, ANNOUNCE, encode(honest), timeout=5), AnnounceReply)
        assert "certificate" not in reply.reason  # (mallory's own start-up announce may have got there first)
        assert "mallory" in b.peers
        # A ping in another member's name does not count as that member being alive.
        b.peers.add("p3", "http://127.0.0.1:1", "127.0.0.1:1")

        async def ping_as(name: str) -> bool:
            ping = Ping(name=name, rest=m.rest_url, grpc=m.grpc_address)
            return decode(await m.call_peer(target, PING, encode(ping), timeout=5), Pong).known

        assert await ping_as("p3") is False
        assert await ping_as("mallory") is True
