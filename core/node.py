"""A running peer: config, peer table, file store, plugins and the servers they asked for.

The node is the only object plugins get. It starts the REST server (uvicorn,
in this asyncio loop) and the gRPC server (grpc.aio) only when some plugin
contributed to them, and stops everything within a few seconds on
SIGINT/SIGTERM or :meth:`Node.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import time
from collections.abc import Coroutine
from typing import Any

import pluggy

from . import __version__
from .config import Config
from .errors import PeerkitError, TransportError
from .grpc_server import GrpcService, build_server
from .memory import tune_malloc
from .messages import MessageRouter
from .metrics import Metrics
from .peers import Peer, PeerTable
from .host import make_plugin_manager, plugin_names
from .grpc_malformed import RefuseMalformedRequests
from .security import TokenInterceptor, TokenMiddleware, bearer
from .statelock import StateDirInUse, StateLock
from .store import FileEntry, FileStore
from .tls import Identity, read_pem, server_credentials
from .transport import Transport
from .utils import await_me_maybe

log = logging.getLogger("peerkit.node")

TRANSPORT_PREFERENCE = ("grpc", "rest")
SHUTDOWN_HOOK_TIMEOUT_S = 3.0
SERVER_STOP_GRACE_S = 2.0


class StartupError(PeerkitError):
    """The node could not start (port taken, directory not writable...)."""


def _listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise StartupError(f"cannot listen for REST on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _embedded_uvicorn(config: Any) -> Any:
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        """uvicorn without its own signal handlers: the node owns SIGINT/SIGTERM."""

        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()

    return EmbeddedServer(config)


class Node:
    """One peer. Build it from a :class:`Config`; ``await node.start()`` / ``await node.stop()``."""

    def __init__(self, config: Config, *, pm: pluggy.PluginManager | None = None) -> None:
        self.config = config
        self.name = config.node.name
        self.pm = pm if pm is not None else make_plugin_manager(config.node.plugins)
        self.store = FileStore(config.node.shared_dir, config.node.state_dir)
        self.peers = PeerTable(config.node.state_dir, self_name=self.name)
        self.metrics = Metrics()
        self.messages = MessageRouter()
        self.transports: list[Transport] = []
        self.rest_port: int | None = None  # actual ports once listening (config may say 0)
        self.grpc_port: int | None = None
        self.uvicorn_options: dict[str, Any] = {}  # plugins may tune (e.g. access_log) in peerkit_configure
        self.started_at: float | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._state_lock = StateLock(config.node.state_dir)
        self._uvicorn: Any = None
        self._uvicorn_task: asyncio.Task[Any] | None = None
        self._grpc_server: Any = None
        self._stopping = False
        self._stopped = asyncio.Event()
        self._plugin_names = plugin_names(self.pm)
        self._rest_url: str | None = None  # cached: status() is on the hot path
        self._grpc_address: str | None = None
        self.tls_ca: bytes | None = None  # PEM of [security] tls_ca, read at start (peers verify with it)
        self._grpc_credentials: Any = None  # grpc.ServerCredentials when tls_cert/tls_key are set
        self.tls_identity: Identity | None = None  # tls_cert/tls_key, presented to peers that ask (mutual TLS)

    # ------------------------------------------------------------ properties
    @property
    def plugins(self) -> list[str]:
        return list(self._plugin_names)

    def plugin_config(self, table: str) -> Any:
        """The validated config Struct of a plugin table (declared via peerkit_config_schema)."""
        return self.config.sections[table]

    @property
    def token(self) -> str | None:
        """The network's shared token (``[security]``), or None for an open node."""
        return self.config.security.token

    @property
    def auth_header(self) -> str | None:
        """``Authorization`` value for calls to peers (same token network-wide)."""
        return bearer(self.token)

    @property
    def tls(self) -> bool:
        """Whether this node serves TLS (then its peers, in the same network, do too)."""
        return bool(self.config.security.tls_cert)

    @property
    def tls_ca_path(self) -> str | None:
        return self.config.security.tls_ca

    @property
    def advertise(self) -> str:
        return self.config.advertise

    @property
    def rest_url(self) -> str | None:
        if self.rest_port is None:
            return None
        host = self.advertise
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.rest_port}"

    @property
    def grpc_address(self) -> str | None:
        if self.grpc_port is None:
            return None
        host = self.advertise
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{self.grpc_port}"

    @property
    def uptime_s(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def status(self) -> dict[str, Any]:
        """The node's status document (CONTRACT.md, ``GET /status``); cheap: it is polled."""
        total, alive = self.peers.counts()
        return {
            "name": self.name,
            "version": __version__,
            "uptime_s": round(self.uptime_s, 3),
            "plugins": list(self._plugin_names),
            "rest": self._rest_url,
            "grpc": self._grpc_address,
            "files": self.store.count(),
            "peers": total,
            "peers_alive": alive,
            "counters": self.metrics.counters(),
        }

    # ---------------------------------------------------------- tasks & I/O
    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run a background coroutine that stop() cancels; failures are logged, never fatal."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)

        def _done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("%s: background task %s failed: %s", self.name, t.get_name(), t.exception())

        task.add_done_callback(_done)
        return task

    def transport(self, name: str | None = None) -> Transport:
        """The transport called ``name``, or the preferred one available."""
        if not self.transports:
            raise TransportError("no transport plugin is enabled (enable grpc_transfer or rest_litestar)")
        if name is None or name == "auto":
            return self.transports[0]
        for t in self.transports:
            if t.name == name:
                return t
        raise TransportError(f"transport {name!r} is not available (have: {', '.join(t.name for t in self.transports)})")

    async def call_peer(
        self, peer: Peer, method: str, payload: bytes, *, timeout: float, transport: str | None = None
    ) -> bytes:
        """Send a message to ``peer`` and return its reply; TransportError on any failure."""
        if timeout <= 0:
            raise TransportError(f"no time left to reach {peer.name}")
        return await self.transport(transport).call(peer, method, payload, timeout=timeout)

    async def local_query(self, query: str) -> list[FileEntry]:
        """Every plugin's answer to ``query`` from this node, de-duplicated by name."""
        results = self.pm.hook.peerkit_local_query(node=self, query=query)
        seen: dict[str, FileEntry] = {}
        for result in results:
            for entry in (await await_me_maybe(result)) or []:
                seen.setdefault(entry.name, entry)
        return sorted(seen.values(), key=lambda e: e.name)

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Open state, let plugins configure, start servers, then run start-up hooks."""
        tune_malloc()  # a node moves bulk data: keep transfer buffers off the page-fault path
        try:
            await asyncio.to_thread(self._state_lock.acquire)
        except StateDirInUse as err:
            raise StartupError(str(err)) from None
        except (FileExistsError, NotADirectoryError):
            raise StartupError(f"state_dir {self.config.node.state_dir} is not a directory") from None
        except OSError as err:
            raise StartupError(f"cannot use state_dir {self.config.node.state_dir}: {err.strerror}") from None
        try:
            await self._open_state()
        except BaseException:
            self._state_lock.release()
            raise
        self.pm.hook.peerkit_configure(node=self)
        transports = [t for result in self.pm.hook.peerkit_transports(node=self) for t in (result or [])]
        rank = {name: i for i, name in enumerate(TRANSPORT_PREFERENCE)}
        self.transports = sorted(transports, key=lambda t: rank.get(t.name, len(rank)))
        try:
            await self._start_grpc()
            await self._start_rest()
            self.started_at = time.monotonic()
            self._rest_url, self._grpc_address = self.rest_url, self.grpc_address
            for result in self.pm.hook.peerkit_startup(node=self):
                await await_me_maybe(result)
        except BaseException:
            await self.stop()
            raise
        log.info("%s: started (rest=%s grpc=%s)", self.name, self.rest_url, self.grpc_address)

    async def _open_state(self) -> None:
        try:
            await asyncio.to_thread(self.store.open)
        except (FileExistsError, NotADirectoryError):
            raise StartupError(f"shared_dir {self.config.node.shared_dir} is not a directory") from None
        except OSError as err:
            raise StartupError(f"cannot open shared_dir {self.config.node.shared_dir}: {err.strerror}") from None
        self.peers.load([(p.name, p.rest, p.grpc) for p in self.config.peers])
        await self._load_tls()

    async def _load_tls(self) -> None:
        security = self.config.security
        try:
            if security.tls_ca:
                self.tls_ca = await asyncio.to_thread(read_pem, security.tls_ca)
            if security.tls_cert and security.tls_key:
                self.tls_identity = await asyncio.to_thread(Identity.load, security.tls_cert, security.tls_key)
                client_ca = self.tls_ca if security.tls_client_auth else None
                self._grpc_credentials = server_credentials(self.tls_identity.cert, self.tls_identity.key, client_ca)
        except OSError as err:
            raise StartupError(f"cannot read TLS file {err.filename}: {err.strerror}") from None
        except ValueError as err:
            raise StartupError(f"TLS: {err}") from None

    async def _start_grpc(self) -> None:
        services: list[GrpcService] = [s for result in self.pm.hook.peerkit_grpc_services(node=self) for s in (result or [])]
        if not services:
            return
        interceptors = [TokenInterceptor(self.token)] if self.token else []
        interceptors.append(RefuseMalformedRequests())  # inside the token check: strangers learn nothing
        server, _health = await build_server(services, interceptors)
        host, port = self.config.node.host, self.config.node.grpc_port
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self._grpc_credentials is not None:
                bound = server.add_secure_port(target, self._grpc_credentials)
            else:
                bound = server.add_insecure_port(target)
        except RuntimeError as err:
            raise StartupError(f"cannot listen for gRPC on {target}: {err}") from None
        if not bound:
            raise StartupError(f"cannot listen for gRPC on {target}: address in use?")
        await server.start()
        self._grpc_server = server
        self.grpc_port = bound

    async def _start_rest(self) -> None:
        routes = [r for result in self.pm.hook.peerkit_rest_routes(node=self) for r in (result or [])]
        app = self.pm.hook.peerkit_rest_app(node=self, routes=routes)
        if app is None:
            return
        import uvicorn

        sock = _listen_socket(self.config.node.host, self.config.node.rest_port)
        options: dict[str, Any] = {
            "log_level": "warning",
            "access_log": False,
            "lifespan": "on",
            "timeout_graceful_shutdown": SERVER_STOP_GRACE_S,
            "server_header": False,
        }
        if self.tls:
            options["ssl_certfile"] = self.config.security.tls_cert
            options["ssl_keyfile"] = self.config.security.tls_key
            if self.config.security.tls_client_auth:
                options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
                options["ssl_ca_certs"] = self.config.security.tls_ca
        options.update(self.uvicorn_options)
        if self.token:
            app = TokenMiddleware(app, self.token)
        config = uvicorn.Config(app, **options)
        server = _embedded_uvicorn(config)
        self.rest_port = sock.getsockname()[1]
        self._uvicorn = server
        self._uvicorn_task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{self.name}-uvicorn")
        while not server.started:
            if self._uvicorn_task.done():
                exc = self._uvicorn_task.exception() if not self._uvicorn_task.cancelled() else None
                raise StartupError(f"REST server failed to start: {exc}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop plugins, cancel background tasks, stop servers; idempotent."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            for result in self.pm.hook.peerkit_shutdown(node=self):
                try:
                    await asyncio.wait_for(await_me_maybe(result), SHUTDOWN_HOOK_TIMEOUT_S)
                except Exception as err:  # a plugin's failure must not keep the node up
                    log.warning("%s: shutdown hook failed: %s", self.name, err)
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=SERVER_STOP_GRACE_S)
            if self._uvicorn is not None and self._uvicorn_task is not None:
                self._uvicorn.should_exit = True
                try:
                    await asyncio.wait_for(asyncio.shield(self._uvicorn_task), SERVER_STOP_GRACE_S + 1)
                except (asyncio.TimeoutError, Exception):
                    self._uvicorn.force_exit = True
                    self._uvicorn_task.cancel()
            if self._grpc_server is not None:
                await self._grpc_server.stop(SERVER_STOP_GRACE_S)
            for t in self.transports:
                with contextlib.suppress(Exception):
                    await t.close()
        finally:
            self._state_lock.release()
            self._stopped.set()

    async def run_until_signal(self) -> None:
        """Start, serve until SIGINT/SIGTERM, then stop cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
