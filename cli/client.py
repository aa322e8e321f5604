"""A small synchronous client for one node's REST API (``/api/v1``).

Connection failures become :class:`Unreachable` (exit 3); error responses
(RFC 9457 problem details) become the peerkit error that matches the status,
carrying the node's own ``detail`` line.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from peerkit import AlreadyExists, NotFound, PeerkitError, TooLarge, TransportError
from peerkit.tls import Identity, client_ssl_context, is_client_cert_missing, is_verify_failure

from .errors import Rejected, Unreachable, UsageProblem

API = "/api/v1"
DEFAULT_PEER = "http://127.0.0.1:5001"
# Which plugin serves a path, to say what to enable when a route is missing.
ROUTE_PLUGINS = {"/locate": "discovery_flood", "/network/files": "discovery_flood", "/echo": "echo"}


def normalize_url(url: str) -> str:
    """``host:port`` or ``http://host:port/`` → ``http://host:port``; UsageProblem if unusable."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UsageProblem(f"--peer {url!r} is not a URL like http://127.0.0.1:5001") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageProblem(f"--peer {url!r} is not a URL like http://127.0.0.1:5001")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _detail(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        return resp.text.strip()[:200] or resp.reason_phrase
    if isinstance(doc, dict):
        detail = doc.get("detail") or doc.get("title") or resp.reason_phrase
        errors = doc.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict) and errors[0].get("message"):
            key = errors[0].get("key")
            detail = f"{detail}: {key + ': ' if key else ''}{errors[0]['message']}"
        return str(detail)
    return resp.reason_phrase


class NodeClient:
    """``get/post/delete`` on one node; returns decoded JSON."""

    def __init__(
        self, base_url: str, *, token: str | None = None, timeout: float = 10.0, ca: bytes | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.base_url = normalize_url(base_url)
        self._identity = identity
        # ca: PEM bytes to verify an https node; identity: our certificate for nodes that demand one
        verify = client_ssl_context(ca, identity) if ca is not None or identity is not None else True
        headers = {"accept": "application/json", "user-agent": "peerkit-cli"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url + API, headers=headers, timeout=httpx.Timeout(timeout, connect=3.0), verify=verify
        )

    def close(self) -> None:
        self._http.close()

    def _tls_hint(self) -> str:
        return _tls_hint(self.base_url, self._identity)

    def get(self, path: str, *, params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        return self._request("GET", path, params=params, timeout=timeout)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self._request("DELETE", path)

    def _request(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=3.0)
        try:
            resp = self._http.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout) as err:
            raise Unreachable(f"cannot reach the node at {self.base_url}: {_reason(err)}") from None
        except httpx.RemoteProtocolError:
            raise Unreachable(
                f"{self.base_url} does not answer HTTP like a peerkit node (is it the REST port?){self._tls_hint()}"
            ) from None
        except httpx.TimeoutException:
            raise TransportError(f"the node at {self.base_url} did not answer {method} {path} in time") from None
        except httpx.HTTPError as err:
            raise TransportError(f"{method} {self.base_url}{API}{path}: {_reason(err)}") from None
        if resp.status_code < 400:
            return resp.json() if resp.content else None
        raise self._error(resp, path)

    def _error(self, resp: httpx.Response, path: str) -> PeerkitError:
        status, detail = resp.status_code, _detail(resp)
        if status == 404:
            plugin = next((p for prefix, p in ROUTE_PLUGINS.items() if path.startswith(prefix)), None)
            if plugin and detail.lower() in ("not found", ""):
                return NotFound(f"the node does not serve {API}{path} (is the {plugin} plugin enabled?)")
            return NotFound(detail)
        if status == 401:  # the node's own detail names the same options: say it once
            return Rejected("the node refused the request (401): missing or wrong token; give it with --token or PEERKIT_TOKEN")
        if status == 403:
            return Rejected(f"the node refused the request (403): {detail}")
        if status == 409:
            return AlreadyExists(detail)
        if status == 413:
            return TooLarge(detail)
        if status in (400, 422):
            return Rejected(detail)
        return TransportError(f"the node answered {status} to {resp.request.method} {API}{path}: {detail}")


CERT_ADVICE = "give --cert and --key (or PEERKIT_CERT and PEERKIT_KEY)"


def _tls_hint(url: str, identity: Identity | None = None) -> str:
    if url.startswith("http://"):
        return "; if the node uses TLS, use https:// and --cacert"
    if identity is None:  # TLS 1.3 servers drop a client without a certificate after the handshake
        return f"; if it demands a client certificate, {CERT_ADVICE}"
    return ""


def _reason(err: Exception) -> str:
    text = str(err)
    if is_verify_failure(err):
        return "its TLS certificate is not trusted (give the CA bundle with --cacert or PEERKIT_CACERT)"
    if is_client_cert_missing(err):
        return f"the node requires a client certificate ({CERT_ADVICE})"
    if "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused (is it running? start one with `peerkit net up`)"
    return text or type(err).__name__
