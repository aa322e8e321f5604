"""Peer messages reach another node over both transports."""

from __future__ import annotations

import pytest

from support.nodes import running_network


@pytest.mark.parametrize("transport", ["grpc", "rest"])
async def test_message_round_trip(tmp_path, transport):
    async with running_network(tmp_path, 2, plugins=["rest_litestar", "grpc_transfer"]) as (a, b):
        async def echo(payload: bytes, sender: str) -> bytes:
            return sender.encode() + b":" + payload

        b.messages.register("test.echo", echo)
        peer = a.peers.get("p1")
        reply = await a.call_peer(peer, "test.echo", b"hello", timeout=5, transport=transport)
        assert reply == b"p0:hello"
