"""Options shared by many commands.

``--peer``/``--token``/``--cacert``/``--cert``/``--key``/``--debug`` work before the command (``peerkit --peer
URL status``, where the env vars PEERKIT_PEER/PEERKIT_TOKEN are read) and after
it (``peerkit status --peer URL``, which wins).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import rich_click as click

from .client import normalize_url
from .console import Env

F = TypeVar("F", bound=Callable[..., Any])

PEER_HELP = "The node's REST URL (env PEERKIT_PEER; default http://127.0.0.1:5001)."
TOKEN_HELP = "Bearer token, when the node requires one (env PEERKIT_TOKEN)."
CACERT_HELP = "CA bundle (PEM) to verify an https node and its TLS gRPC with (env PEERKIT_CACERT)."
CERT_HELP = "Client certificate (PEM) for nodes that demand one: tls_client_auth (env PEERKIT_CERT)."
KEY_HELP = "The private key (PEM) of --cert (env PEERKIT_KEY)."


def _env(ctx: click.Context) -> Env:
    env = ctx.find_object(Env)
    if env is None:  # invoked without the group (tests of a single command)
        env = ctx.ensure_object(Env)
    return env


def _set_peer(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        try:
            _env(ctx).peer = normalize_url(value)
        except Exception as err:
            raise click.BadParameter(str(err), param_hint="--peer") from None


def _setter(field: str) -> Any:
    """A click callback storing a given value on the Env (options not given leave its default)."""

    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value:
            setattr(_env(ctx), field, value)

    return store


_set_token, _set_cacert, _set_cert, _set_key, _set_debug = (
    _setter(f) for f in ("token", "cacert", "cert", "key", "debug")
)


def debug_option(f: F) -> F:
    return click.option(
        "--debug", is_flag=True, expose_value=False, callback=_set_debug, is_eager=True, help="Show tracebacks."
    )(f)


def node_options(f: F) -> F:
    """``--peer`` and ``--token`` (and ``--debug``) on a client command."""
    f = click.option("--key", metavar="PATH", expose_value=False, callback=_set_key, help=KEY_HELP)(f)
    f = click.option("--cert", metavar="PATH", expose_value=False, callback=_set_cert, help=CERT_HELP)(f)
    f = click.option("--cacert", metavar="PATH", expose_value=False, callback=_set_cacert, help=CACERT_HELP)(f)
    f = click.option("--token", metavar="TOKEN", expose_value=False, callback=_set_token, help=TOKEN_HELP)(f)
    f = click.option("--peer", "-p", metavar="URL", expose_value=False, callback=_set_peer, help=PEER_HELP)(f)
    return debug_option(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else.")(f)


def group_options(f: F) -> F:
    """The same options on the ``peerkit`` group itself, reading the environment."""
    f = click.option("--key", metavar="PATH", envvar="PEERKIT_KEY", expose_value=False, callback=_set_key, help=KEY_HELP)(f)
    f = click.option("--cert", metavar="PATH", envvar="PEERKIT_CERT", expose_value=False, callback=_set_cert, help=CERT_HELP)(f)
    f = click.option(
        "--cacert", metavar="PATH", envvar="PEERKIT_CACERT", expose_value=False, callback=_set_cacert, help=CACERT_HELP
    )(f)
    f = click.option("--token", metavar="TOKEN", envvar="PEERKIT_TOKEN", expose_value=False, callback=_set_token, help=TOKEN_HELP)(f)
    f = click.option("--peer", "-p", metavar="URL", envvar="PEERKIT_PEER", expose_value=False, callback=_set_peer, help=PEER_HELP)(f)
    return click.option(
        "--debug", is_flag=True, envvar="PEERKIT_DEBUG", expose_value=False, callback=_set_debug, help="Show tracebacks and debug logs."
    )(f)


def size_type(text: str) -> int:
    """Click converter for sizes like 100MB, 1GiB, 4096."""
    from peerkit.utils import parse_size

    try:
        return parse_size(text)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
