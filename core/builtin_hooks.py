"""The core's own hook implementations, registered in every manager as "core"."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookimpl

if TYPE_CHECKING:
    from .node import Node
    from .store import FileEntry


class CoreHooks:
    @hookimpl
    async def peerkit_local_query(self, node: Node, query: str) -> list[FileEntry]:
        return await node.store.match(query)
