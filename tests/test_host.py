"""The plugin host: built-ins by name, third parties by entry point, only what the config lists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pluggy
import pytest

from peerkit import ConfigError, hookimpl, installed_plugins, make_plugin_manager
from peerkit.host import plugin_names
from support.nodes import NodeProcess, free_port, running_node, write_config

ROOT = Path(__file__).resolve().parent.parent
BUILTINS = ["rest_litestar", "grpc_transfer", "discovery_flood", "echo"]


def test_builtins_are_installed_and_registered_by_name():
    assert set(BUILTINS) <= set(installed_plugins(autoload=False))
    pm = make_plugin_manager(BUILTINS, autoload=False)
    assert plugin_names(pm) == BUILTINS
    pm2 = make_plugin_manager(["echo"], autoload=False)
    assert plugin_names(pm2) == ["echo"]
    assert pm.get_plugin("echo") is not pm2.get_plugin("echo")  # per-manager instances


def test_unknown_plugin_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown plugin 'nope'"):
        make_plugin_manager(["nope"], autoload=False)


def test_misspelled_hookimpl_is_caught_at_startup(monkeypatch):
    class Typo:
        @hookimpl
        def peerkit_rest_route(self, node):  # missing "s"
            return []

    import peerkit.host as host

    monkeypatch.setattr(host, "load_plugin", lambda name, autoload=None: Typo())
    with pytest.raises(ConfigError, match="peerkit_rest_route"):
        make_plugin_manager(["typo"])


async def test_node_with_the_four_builtins_reports_them(tmp_path):
    async with running_node(tmp_path, "n1", plugins=BUILTINS) as node:
        assert node.status()["plugins"] == BUILTINS
        assert node.rest_url and node.grpc_address
        async with httpx.AsyncClient() as client:
            resp = await client.get(f"{node.rest_url}/api/v1/status")
        assert resp.status_code == 200
        assert resp.json()["plugins"] == BUILTINS


async def test_servers_start_only_when_a_plugin_contributes(tmp_path):
    async with running_node(tmp_path, "quiet", plugins=[]) as node:
        assert node.rest_url is None and node.grpc_address is None
    async with running_node(tmp_path, "grpc-only", plugins=["grpc_transfer"]) as node:
        assert node.rest_url is None and node.grpc_address is not None


@pytest.fixture(scope="module")
def hello_site(tmp_path_factory) -> Path:
    """The example plugin package, pip-installed into a private directory."""
    target = tmp_path_factory.mktemp("hello-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT / "examples" / "peerkit-hello")],
        check=True, timeout=300, capture_output=True,
    )
    return target


def test_example_plugin_is_listed_via_its_entry_point(hello_site):
    env = {"PYTHONPATH": str(hello_site)}
    out = subprocess.run(
        [sys.executable, "-m", "peerkit.cli.main", "plugins", "--json"],
        capture_output=True, text=True, timeout=60, env={**_env(), **env},
    )
    assert out.returncode == 0, out.stderr
    assert "hello" in out.stdout and "peerkit-hello" in out.stdout


@pytest.mark.parametrize("enabled", [True, False])
def test_example_plugin_works_only_when_listed(tmp_path, hello_site, processes, enabled):
    rest = free_port()
    plugins = ["rest_litestar", "hello"] if enabled else ["rest_litestar"]
    cfg = write_config(tmp_path, "h1", plugins=plugins, rest_port=rest, grpc_port=free_port(),
                       **({"hello": {"greeting": "hi from"}} if enabled else {}))
    node = NodeProcess(cfg, rest_port=rest, env={"PYTHONPATH": str(hello_site)})
    processes.append(node.start())
    resp = httpx.get(f"{node.rest_url}/api/v1/hello", timeout=5)
    if enabled:
        assert resp.status_code == 200
        assert resp.json()["message"] == "hi from h1"
        httpx.get(f"{node.rest_url}/api/v1/hello", timeout=5)
        status = httpx.get(f"{node.rest_url}/api/v1/status", timeout=5).json()
        assert "hello" in status["plugins"]
        assert status["counters"]["hello_requests"] == 2
    else:
        assert resp.status_code == 404
        assert "hello" not in httpx.get(f"{node.rest_url}/api/v1/status", timeout=5).json()["plugins"]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_tracing_env_shows_hook_calls(tmp_path):
    code = "from peerkit import make_plugin_manager as m; pm = m(['echo'], autoload=False); pm.hook.peerkit_config_schema()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**_env(), "PEERKIT_TRACE_HOOKS": "1"})
    assert "peerkit_config_schema" in out.stderr


def test_pluggy_project_name():
    pm = make_plugin_manager([], autoload=False)
    assert isinstance(pm, pluggy.PluginManager) and pm.project_name == "peerkit"
