"""Peer messages reach another node over both transports."""

from __future__ import annotations

import asyncio

import pytest

from support.nodes import running_network, running_node


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_message_round_trip(tmp_path, transport):
    async with running_network(tmp_path, 2, plugins=["rest_litestar", "grpc_transfer"]) as (a, b):
        async def echo(payload: bytes, sender: str) -> bytes:
            return sender.encode() + b":" + payload

        b.messages.register("test.echo", echo)
        peer = a.peers.get("p1")
        reply = await a.call_peer(peer, "test.echo", b"hello", timeout=5, transport=transport)
        assert reply == b"p0:hello"


async def test_grpc_link_reaches_a_restarted_peer_at_once(tmp_path):
    """A peer that died and came back answers the very next call: no waiting out a reconnect backoff."""
    from peerkit import Node
    from peerkit.errors import TransportError
    from support.nodes import free_port, make_config

    async with running_node(tmp_path / "a", "a", plugins=["grpc_transfer"]) as a:
        b = Node(make_config(tmp_path / "b", "b", plugins=["grpc_transfer"], grpc_port=free_port()))
        await b.start()
        a.peers.add("b", "http://127.0.0.1:1", b.grpc_address, friend=True)
        peer = a.peers.get("b")
        b.messages.register("test.echo", _echo)
        assert await a.call_peer(peer, "test.echo", b"1", timeout=5, transport="grpc") == b"b:1"
        await b.stop()
        for _ in range(6):  # each failed connect doubles grpc's backoff, up to its maximum
            with pytest.raises(TransportError):
                await a.call_peer(peer, "test.echo", b"x", timeout=0.5, transport="grpc")
            await asyncio.sleep(0.3)
        b2 = Node(b.config)  # same name and ports: the peer is back
        b2.messages.register("test.echo", _echo)
        await b2.start()
        try:
            assert await a.call_peer(peer, "test.echo", b"2", timeout=5, transport="grpc") == b"b:2"
        finally:
            await b2.stop()


async def _echo(payload: bytes, sender: str) -> bytes:
    return b"b:" + payload


@pytest.mark.parametrize("sender", ["x" * (3 << 20), "../etc", "a b", "-lead"])
async def test_a_sender_that_is_not_a_peer_name_is_refused(tmp_path, sender):
    """Handlers key state by sender (rate limits): only peer names get in, and the refusal does not echo a huge one."""
    import grpc

    from peerkit.v1 import link_pb2, link_pb2_grpc

    async with running_node(tmp_path, plugins=["grpc_transfer"]) as node:
        calls = []

        async def record(payload: bytes, who: str) -> bytes:
            calls.append(who)
            return b"ok"

        node.messages.register("test.record", record)
        options = [("grpc.max_send_message_length", 8 << 20)]
        async with grpc.aio.insecure_channel(node.grpc_address, options=options) as channel:
            stub = link_pb2_grpc.LinkStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.Call(link_pb2.LinkMessage(method="test.record", payload=b"", sender=sender), timeout=10)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "sender must be a peer name" in err.value.details() and len(err.value.details()) < 200
            reply = await stub.Call(link_pb2.LinkMessage(method="test.record", payload=b"", sender="peer-7"), timeout=10)
            assert reply.payload == b"ok" and calls == ["peer-7"]
