"""The node's own query routes: status, neighbour table, file index (content lives in content.py)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from peerkit.store import FileEntry

from .pathname import raw_segment
from .models import PeerIn, PeerOut, StatusOut
from .problems import problem

if TYPE_CHECKING:
    from peerkit import Node

BAD_NAME = problem("The name breaks the share's file-name rules")
NO_FILE = problem("No shared file of that name")


def _peer_out(peer: Any) -> PeerOut:
    return PeerOut(
        name=peer.name, rest=peer.rest, grpc=peer.grpc, state=peer.state, last_seen=peer.last_seen, friend=peer.friend
    )


def node_routes(node: Node) -> list[Any]:
    """Handlers bound to ``node`` (closures: no dependency injection on the hot status path)."""

    @get("/status", summary="The node's name, addresses, plugins, uptime and counters", tags=["node"], sync_to_thread=False)
    def status() -> StatusOut:
        return msgspec.convert(node.status(), StatusOut)

    @get("/peers", summary="The neighbour table", tags=["peers"], sync_to_thread=False)
    def list_peers() -> list[PeerOut]:
        return [_peer_out(p) for p in node.peers.all()]

    @post(
        "/peers",
        summary="Add a neighbour (kept across restarts)",
        tags=["peers"],
        status_code=201,
        responses={409: problem("A peer of that name exists"), 422: problem("Bad name or address")},
    )
    async def add_peer(data: JSONBody[PeerIn]) -> Response[PeerOut]:
        # The table persists with an fsync: off the event loop.
        peer = await asyncio.to_thread(node.peers.add, data.name, data.rest, data.grpc)
        return Response(_peer_out(peer), status_code=201, headers={"Location": f"/api/v1/peers/{peer.name}"})

    @delete(
        "/peers/{name:str}",
        summary="Remove a neighbour (stays removed across restarts)",
        tags=["peers"],
        status_code=204,
        responses={404: problem("No peer of that name")},
    )
    async def remove_peer(name: FromPath[str]) -> None:
        await asyncio.to_thread(node.peers.remove, name)

    @get("/files", summary="This node's shared files", tags=["files"])
    async def list_files() -> list[FileEntry]:
        return await node.store.list()

    @get(
        "/files/{name:str}",
        summary="Metadata of one shared file",
        tags=["files"],
        responses={404: NO_FILE, 422: BAD_NAME},
    )
    async def file_info(request: Request[Any, Any, Any], name: FromPath[str]) -> FileEntry:
        return await node.store.get(raw_segment(request, "name", name))

    return [status, list_peers, add_peer, remove_peer, list_files, file_info]
