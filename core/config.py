"""Node configuration: one TOML file per node, typed with msgspec.

Sections: ``[node]``, ``[[peers]]``, ``[security]`` and one table per plugin,
each validated against the Struct the plugin declares through the
``peerkit_config_schema`` hook. ``PEERKIT_<SECTION>_<KEY>`` environment
variables override file values. Every problem becomes one :class:`ConfigError`
line naming the file, the key and what was expected.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import msgspec

DEFAULT_PLUGINS = ("rest_litestar", "grpc_transfer", "discovery_flood", "echo")
ENV_PREFIX = "PEERKIT_"
MAX_CONFIG_BYTES = 1 << 20
PEERS_ENV = "PEERKIT_PEERS"  # the whole [[peers]] list, as a TOML array of tables


class ConfigError(Exception):
    """A configuration problem; ``str(exc)`` is the one line to show the user."""


class NodeSection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    host: str = "127.0.0.1"
    advertise: str | None = None
    rest_port: int = 5001
    grpc_port: int = 50051
    shared_dir: str = "shared"
    state_dir: str = "state"
    plugins: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_PLUGINS))


class PeerEntry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    rest: str
    grpc: str


class SecuritySection(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: str | None = None
    token_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None  # CA bundle to verify other nodes (default: the system's roots)
    # Mutual TLS: REST and gRPC accept only clients presenting a certificate that
    # chains to tls_ca; the node presents its own tls_cert/tls_key to its peers.
    tls_client_auth: bool = False
    # With mutual TLS: a peer message is taken only if its sender's name is the
    # certificate's common name or one of its DNS names (gRPC Link; the REST link
    # route then refuses peer messages, as uvicorn does not show it the certificate).
    bind_names: bool = False


class Config(msgspec.Struct, kw_only=True):
    """A validated configuration. Paths in ``node`` are absolute after loading."""

    node: NodeSection
    peers: list[PeerEntry] = msgspec.field(default_factory=list)
    security: SecuritySection = msgspec.field(default_factory=SecuritySection)
    sections: dict[str, Any] = msgspec.field(default_factory=dict)  # plugin name -> its Struct
    source: str = "<config>"

    @property
    def advertise(self) -> str:
        return self.node.advertise or (self.node.host if self.node.host not in ("0.0.0.0", "::") else "127.0.0.1")


CORE_SECTIONS: dict[str, type[msgspec.Struct]] = {"node": NodeSection, "security": SecuritySection}


def _describe(err: msgspec.ValidationError) -> tuple[str, str]:
    """Split msgspec's 'Expected `int`, got `str` - at `$.x`' into (key path, message)."""
    text = str(err)
    msg, _, where = text.partition(" - at `")
    path = where.rstrip("`").removeprefix("$").lstrip(".")
    return path, msg.replace("`", "")


def _is_text(field_type: Any) -> bool:
    """True for a setting that can only be text (str, Optional[str], an Annotated str, a Literal of strings)."""
    if typing.get_origin(field_type) is typing.Annotated:
        return _is_text(typing.get_args(field_type)[0])
    if typing.get_origin(field_type) is typing.Literal:
        return all(isinstance(v, str) for v in typing.get_args(field_type))
    if typing.get_origin(field_type) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(field_type) if a is not type(None)]
        return bool(members) and all(_is_text(a) for a in members)
    return field_type is str


def _env_value(raw: str, field_type: Any) -> Any:
    """Parse an environment string as a TOML value, else keep the string (or split lists).

    Text settings keep the string as given: a token ``123456``, a name ``2024``
    or a directory ``2024-01-01`` is text, not a number or a date.
    """
    if _is_text(field_type):
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    origin = typing.get_origin(field_type)
    if origin is list or field_type is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _field_types(struct: type[msgspec.Struct]) -> dict[str, Any]:
    return {f.name: f.type for f in msgspec.structs.fields(struct)}


def _apply_env(
    tables: dict[str, Any], schemas: Mapping[str, type[msgspec.Struct]], env: Mapping[str, str], origins: dict[tuple[str, str], str]
) -> None:
    # Longest section names first so PEERKIT_DISCOVERY_FLOOD_TTL is not read as section "discovery".
    for section in sorted(schemas, key=len, reverse=True):
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        types = _field_types(schemas[section])
        for var, raw in env.items():
            if not var.startswith(prefix):
                continue
            key = var[len(prefix):].lower()
            if any(var.startswith(f"{ENV_PREFIX}{other.upper()}_") and len(other) > len(section) for other in schemas):
                continue
            if key not in types:
                raise ConfigError(f"environment {var}: unknown key {key!r} in [{section}] (known: {', '.join(sorted(types))})")
            table = tables.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"environment {var}: [{section}] is not a table")
            table[key] = _env_value(raw, types[key])
            origins[(section, key)] = var


def _convert(
    source: str, section: str, table: Any, struct: type[msgspec.Struct], origins: Mapping[tuple[str, str], str]
) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [{section}] must be a table, got {type(table).__name__}")
    try:
        return msgspec.convert(table, struct)
    except msgspec.ValidationError as err:
        path, msg = _describe(err)
        var = origins.get((section, path.split(".")[0].split("[")[0]))
        if var:
            source = f"{source} (from environment {var})"
        if msg.startswith("Object contains unknown field"):
            key = msg.rsplit(" ", 1)[-1]
            known = ", ".join(f.name for f in msgspec.structs.fields(struct))
            raise ConfigError(f"{source}: [{section}] unknown key {key} (expected one of: {known})") from None
        if msg.startswith("Object missing required field"):
            key = msg.rsplit(" ", 1)[-1]
            raise ConfigError(f"{source}: [{section}] missing required key {key}") from None
        msg = f"{msg[:1].lower()}{msg[1:]}"
        if not path:  # raised by a Struct's __post_init__, already "key: what was expected"
            var = origins.get((section, msg.partition(":")[0].strip()))
            if var:
                source = f"{source} (from environment {var})"
            raise ConfigError(f"{source}: [{section}] {msg}") from None
        raise ConfigError(f"{source}: [{section}] {path}: {msg}") from None


def _resolve_tls(security: SecuritySection, base: Path, source: str) -> None:
    """Make the TLS paths absolute and check the pair is complete and readable."""
    if bool(security.tls_cert) != bool(security.tls_key):
        have, missing = ("tls_cert", "tls_key") if security.tls_cert else ("tls_key", "tls_cert")
        raise ConfigError(f"{source}: [security] {have} is set but {missing} is missing (give both, or neither)")
    if security.tls_client_auth and not (security.tls_cert and security.tls_ca):
        missing = "tls_cert and tls_key" if not security.tls_cert else "tls_ca"
        raise ConfigError(
            f"{source}: [security] tls_client_auth needs {missing} (clients' certificates are checked against tls_ca)"
        )
    for key in ("tls_cert", "tls_key", "tls_ca"):
        value = getattr(security, key)
        if not value:
            setattr(security, key, None)
            continue
        path = (base / value).resolve()
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError as err:
            raise ConfigError(f"{source}: [security] {key}: cannot read {value}: {err.strerror}") from None
        if b"-----BEGIN" not in head:
            raise ConfigError(f"{source}: [security] {key}: {value} is not a PEM file")
        setattr(security, key, str(path))


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)  # bounded: -c /dev/zero must not eat the machine
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{p}: over {MAX_CONFIG_BYTES} bytes, not a node config")
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(f"{p}: permission denied") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{p}: invalid TOML: {err}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    plugin_schemas: Callable[[list[str]], dict[str, type[msgspec.Struct]]] | None = None,
) -> Config:
    """Read, override from the environment and validate a node config file."""
    return parse_config(read_toml(path), source=str(path), base_dir=Path(path).resolve().parent, env=env, plugin_schemas=plugin_schemas)


def parse_config(
    raw: dict[str, Any],
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    plugin_schemas: Callable[[list[str]], dict[str, type[msgspec.Struct]]] | None = None,
) -> Config:
    """Validate an already-parsed TOML document.

    ``plugin_schemas(enabled)`` returns the config Struct of each enabled plugin
    that has one (and raises ConfigError for an unknown plugin); the default
    asks the plugin host.
    """
    env = os.environ if env is None else env
    raw = dict(raw)
    origins: dict[tuple[str, str], str] = {}
    _apply_env(raw, CORE_SECTIONS, env, origins)
    if "node" not in raw:
        raise ConfigError(f"{source}: missing [node] table (with at least name = \"...\")")
    node: NodeSection = _convert(source, "node", raw.pop("node"), NodeSection, origins)
    if not node.name or not node.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        var = origins.get(("node", "name"))
        where = f"{source} (from environment {var})" if var else source
        raise ConfigError(f"{where}: [node] name: expected letters, digits, '.', '_' or '-', got {node.name!r}")
    for key in ("rest_port", "grpc_port"):
        port = getattr(node, key)
        if not 0 <= port <= 65535:
            raise ConfigError(f"{source}: [node] {key}: expected a port 0-65535, got {port}")
    security = _convert(source, "security", raw.pop("security", {}), SecuritySection, origins)
    peers_raw = raw.pop("peers", [])
    peers_source = source
    if (peers_env := env.get(PEERS_ENV)) is not None:
        # The friend list is an array of tables: the variable holds it as TOML, replacing the file's.
        peers_source = f"{source} (from environment {PEERS_ENV})"
        try:
            peers_raw = tomllib.loads(f"v = {peers_env}")["v"] if peers_env.strip() else []
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(
                f"environment {PEERS_ENV}: expected a TOML array of tables, e.g. "
                f'[{{name = "peer2", rest = "http://10.0.0.2:5001", grpc = "10.0.0.2:50051"}}] ({err})'
            ) from None
    if not isinstance(peers_raw, list) or not all(isinstance(p, dict) for p in peers_raw):
        raise ConfigError(f"{peers_source}: [[peers]] must be an array of tables")
    peers: list[PeerEntry] = []
    from .peers import validate_grpc_address, validate_peer_name, validate_rest_url

    for i, entry in enumerate(peers_raw):
        peer = _convert(peers_source, f"peers[{i}]", entry, PeerEntry, origins)
        try:
            validate_peer_name(peer.name)
            peer.rest = validate_rest_url(peer.rest)
            validate_grpc_address(peer.grpc)
        except ValueError as err:
            raise ConfigError(f"{peers_source}: [[peers]] #{i + 1}: {err}") from None
        peers.append(peer)

    if len(set(node.plugins)) != len(node.plugins):
        raise ConfigError(f"{source}: [node] plugins: a plugin is listed twice: {node.plugins}")
    if plugin_schemas is None:
        from .host import config_schemas_for

        plugin_schemas = config_schemas_for
    try:
        schemas = plugin_schemas(list(node.plugins))
    except ConfigError as err:
        raise ConfigError(f"{source}: [node] plugins: {err}") from None
    _apply_env(raw, schemas, env, origins)
    sections: dict[str, Any] = {}
    for name, struct in schemas.items():
        sections[name] = _convert(source, name, raw.pop(name, {}), struct, origins)
    if raw:
        from .host import installed_plugins

        installed = installed_plugins()
        for name in list(raw):
            if name in installed:  # a disabled plugin's table: kept, not validated
                raw.pop(name)
        if raw:
            name = sorted(raw)[0]
            raise ConfigError(
                f"{source}: unknown table [{name}] (expected node, peers, security or an enabled plugin's table: "
                f"{', '.join(sorted(schemas)) or 'none'})"
            )

    base = base_dir or Path.cwd()
    node.shared_dir = str((base / node.shared_dir).resolve())
    node.state_dir = str((base / node.state_dir).resolve())
    if security.token_file and not security.token:
        try:
            security.token = (base / security.token_file).read_text("utf-8").strip()
        except OSError as err:
            raise ConfigError(f"{source}: [security] token_file: cannot read {security.token_file}: {err.strerror}") from None
    if security.token is not None and not security.token.strip():
        # An empty token would mean "no token": an open node the config meant to close.
        where = "token_file " + str(security.token_file) + " is empty" if security.token_file else "token is empty"
        raise ConfigError(f"{source}: [security] {where} (remove the key for an open node)")
    _resolve_tls(security, base, source)
    if security.bind_names and not security.tls_client_auth:
        raise ConfigError(f"{source}: [security] bind_names needs tls_client_auth = true (names are checked against client certificates)")
    if security.bind_names and "grpc_transfer" not in node.plugins:
        raise ConfigError(f"{source}: [security] bind_names needs the grpc_transfer plugin (peer messages are checked on gRPC)")
    return Config(node=node, peers=peers, security=security, sections=sections, source=source)
