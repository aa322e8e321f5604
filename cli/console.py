"""The CLI's environment: consoles for stdout/stderr, the node to talk to, output helpers.

Nothing below the CLI prints; commands write through an :class:`Env`. Data
(tables, summary lines, JSON) goes to stdout; progress, notes and errors go to
stderr, so ``peerkit files --json | jq`` always gets one clean document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.text import Text

from peerkit.tls import Identity

from .client import DEFAULT_PEER, NodeClient
from .errors import UsageProblem

T = TypeVar("T")


@dataclass
class Env:
    debug: bool = False
    peer: str = DEFAULT_PEER
    token: str | None = None
    cacert: str | None = None  # --cacert / PEERKIT_CACERT: CA bundle for https nodes and TLS gRPC
    cert: str | None = None  # --cert / PEERKIT_CERT and --key / PEERKIT_KEY: our client certificate
    key: str | None = None  # for nodes with [security] tls_client_auth (mutual TLS)
    stdout: Console = field(default_factory=lambda: Console(soft_wrap=True))
    stderr: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))
    _client: NodeClient | None = field(default=None, repr=False)
    _ca: bytes | None = field(default=None, repr=False)
    _identity: Identity | None = field(default=None, repr=False)

    @property
    def ca(self) -> bytes | None:
        """The PEM bytes of ``--cacert`` (read once), or None."""
        if self.cacert and self._ca is None:
            try:
                self._ca = Path(self.cacert).expanduser().read_bytes()
            except OSError as err:
                raise UsageProblem(f"--cacert {self.cacert}: cannot read it: {err.strerror}") from None
        return self._ca

    @property
    def identity(self) -> Identity | None:
        """``--cert``/``--key`` loaded (once), or None; both or neither."""
        if self._identity is None and (self.cert or self.key):
            if not (self.cert and self.key):
                have, missing = ("--cert", "--key") if self.cert else ("--key", "--cert")
                raise UsageProblem(f"{have} needs {missing} too (the client certificate and its private key)")
            try:
                self._identity = Identity.load(Path(self.cert).expanduser(), Path(self.key).expanduser())
            except OSError as err:
                raise UsageProblem(f"cannot read {err.filename}: {err.strerror}") from None
            except ValueError as err:
                raise UsageProblem(str(err)) from None
        return self._identity

    @property
    def tls(self) -> bool:
        """An https ``--peer`` means a TLS network: gRPC goes over TLS too."""
        return self.peer.startswith("https://")

    def for_peer(self, peer: str) -> Env:
        """The same environment aimed at another node (the demo tours several)."""
        return dataclasses.replace(self, peer=peer, _client=None)

    def client(self) -> NodeClient:
        if self._client is None:
            self._client = NodeClient(self.peer, token=self.token, ca=self.ca, identity=self.identity)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ------------------------------------------------------------- output
    def json(self, doc: Any) -> None:
        """Exactly one JSON document on stdout, no markup, no wrapping."""
        out = self.stdout.file
        out.write(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
        out.flush()

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.stdout.print(*objects, **kwargs)

    def note(self, text: str | Text, style: str = "dim") -> None:
        """A side remark on stderr (never mixed into stdout data)."""
        self.stderr.print(text if isinstance(text, Text) else Text(text, style=style), highlight=False)

    def error(self, text: str) -> None:
        self.stderr.print(Text.assemble(("error: ", "bold red"), text), highlight=False)

    @property
    def live_progress(self) -> bool:
        """Live bars only on a terminal; pipes and logs get the summary line alone."""
        return self.stderr.is_terminal


def run(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run with uvloop when it is installed; Ctrl-C cancels the coroutine cleanly."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)

