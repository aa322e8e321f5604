"""Config loading: every kind of mistake is one clear line; env overrides work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from peerkit.config import ConfigError, load_config

GOOD = """
[node]
name = "peer1"
rest_port = 5001
grpc_port = 50051
shared_dir = "shared/peer1"
state_dir = "state/peer1"
plugins = ["rest_litestar", "grpc_transfer"]

[[peers]]
name = "peer2"
rest = "http://127.0.0.1:5002"
grpc = "127.0.0.1:50052"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "peer1.toml"
    path.write_text(text, "utf-8")
    return path


def test_good_config_resolves_dirs_relative_to_file(tmp_path):
    cfg = load_config(write(tmp_path, GOOD), env={})
    assert cfg.node.name == "peer1"
    assert cfg.node.plugins == ["rest_litestar", "grpc_transfer"]
    assert Path(cfg.node.shared_dir) == (tmp_path / "shared/peer1").resolve()
    assert cfg.peers[0].name == "peer2" and cfg.peers[0].grpc == "127.0.0.1:50052"
    assert cfg.advertise == "127.0.0.1"


def test_defaults_enable_the_four_builtin_plugins(tmp_path):
    cfg = load_config(write(tmp_path, '[node]\nname = "solo"\n'), env={})
    assert cfg.node.plugins == ["rest_litestar", "grpc_transfer", "discovery_flood", "echo"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[node\nname="x"', "invalid TOML"),
        ('[node]\nname = "x"\nrest_prot = 1\n', "[node] unknown key rest_prot"),
        ('[node]\nname = "x"\nrest_port = "5001"\n', "[node] rest_port: expected int, got str"),
        ('[node]\nname = "x"\nrest_port = 70000\n', "[node] rest_port: expected a port"),
        ('[node]\nname = "x"\nplugins = ["nope"]\n', "unknown plugin 'nope'"),
        ('[node]\nname = "x"\nplugins = "echo"\n', "[node] plugins: expected array, got str"),
        ('[node]\nrest_port = 1\n', "[node] missing required key name"),
        ('name = "x"\n', "missing [node] table"),
        ('[node]\nname = "x"\n[nodes]\nfoo = 1\n', "unknown table [nodes]"),
        ('[node]\nname = "x"\n[[peers]]\nname = "y"\nrest = "ftp://h"\ngrpc = "h:1"\n', "[[peers]] #1: REST address"),
        ('[node]\nname = "x"\n[[peers]]\nname = "y"\nrest = "http://h:1"\n', "[peers[0]] missing required key grpc"),
        ('[node]\nname = "x"\n[security]\ntoken_file = "missing.txt"\n', "[security] token_file: cannot read"),
        ('[node]\nname = "a b"\n', "[node] name"),
    ],
)
def test_each_kind_of_error_is_one_line_naming_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_environment_overrides_file_values(tmp_path):
    path = write(tmp_path, GOOD + '\n[discovery_flood]\nttl = 2\n')
    text = path.read_text().replace('plugins = ["rest_litestar", "grpc_transfer"]', 'plugins = ["rest_litestar", "grpc_transfer", "discovery_flood"]')
    path.write_text(text)
    env = {
        "PEERKIT_NODE_REST_PORT": "6001",
        "PEERKIT_NODE_ADVERTISE": "10.0.0.5",
        "PEERKIT_NODE_PLUGINS": "rest_litestar,grpc_transfer,discovery_flood",
        "PEERKIT_PEER": "http://ignored-by-config:1",  # a CLI variable, not a config key
    }
    cfg = load_config(path, env=env)
    assert cfg.node.rest_port == 6001
    assert cfg.advertise == "10.0.0.5"
    assert cfg.node.plugins == ["rest_litestar", "grpc_transfer", "discovery_flood"]


def test_environment_override_errors_name_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="PEERKIT_NODE_REST_PORT.*expected int"):
        load_config(write(tmp_path, GOOD), env={"PEERKIT_NODE_REST_PORT": "abc"})
    with pytest.raises(ConfigError, match="PEERKIT_NODE_COLOUR: unknown key 'colour'"):
        load_config(write(tmp_path, GOOD), env={"PEERKIT_NODE_COLOUR": "red"})


def test_cli_prints_one_line_and_exits_2_on_a_bad_config(tmp_path):
    path = write(tmp_path, '[node]\nname = "x"\nrest_port = "high"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "peerkit.cli.main", "node", "run", "-c", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "rest_port" in lines[0] and str(path) in lines[0]
    assert "Traceback" not in proc.stderr


def test_text_settings_from_the_environment_stay_text(tmp_path):
    """A token, name or directory that looks like a number, date or boolean is still the text given."""
    env = {
        "PEERKIT_SECURITY_TOKEN": "123456",
        "PEERKIT_NODE_NAME": "2024",
        "PEERKIT_NODE_SHARED_DIR": "2024-01-01",
        "PEERKIT_NODE_ADVERTISE": "true",
    }
    cfg = load_config(write(tmp_path, GOOD), env=env)
    assert cfg.security.token == "123456"
    assert cfg.node.name == "2024"
    assert cfg.node.shared_dir == str((tmp_path / "2024-01-01").resolve())
    assert cfg.node.advertise == "true"
    # Non-text settings are still parsed: numbers, booleans, lists.
    cfg = load_config(write(tmp_path, GOOD), env={"PEERKIT_NODE_REST_PORT": "6001", "PEERKIT_REST_LITESTAR_ACCESS_LOG": "true"})
    assert cfg.node.rest_port == 6001 and cfg.sections["rest_litestar"].access_log is True


def test_a_plugin_check_failing_on_an_environment_value_names_the_variable(tmp_path):
    path = write(tmp_path, GOOD.replace('["rest_litestar", "grpc_transfer"]', '["rest_litestar", "grpc_transfer", "discovery_flood"]'))
    with pytest.raises(ConfigError, match=r"\(from environment PEERKIT_DISCOVERY_FLOOD_TTL\): \[discovery_flood\] ttl"):
        load_config(path, env={"PEERKIT_DISCOVERY_FLOOD_TTL": "8"})
    with pytest.raises(ConfigError, match=r"\(from environment PEERKIT_NODE_NAME\): \[node\] name"):
        load_config(path, env={"PEERKIT_NODE_NAME": "x y"})


def test_token_file_is_read_relative_to_the_config(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token.txt").write_text("  from-a-file\n")
    path = write(tmp_path, GOOD + '\n[security]\ntoken_file = "secrets/token.txt"\n')
    assert load_config(path, env={}).security.token == "from-a-file"


def test_peers_from_the_environment_replace_the_files(tmp_path):
    env = {"PEERKIT_PEERS": '[{name = "peer7", rest = "http://10.0.0.7:5001", grpc = "10.0.0.7:50051"}]'}
    cfg = load_config(write(tmp_path, GOOD), env=env)
    assert [(p.name, p.rest, p.grpc) for p in cfg.peers] == [("peer7", "http://10.0.0.7:5001", "10.0.0.7:50051")]
    assert load_config(write(tmp_path, GOOD), env={"PEERKIT_PEERS": ""}).peers == []
    for bad, needle in (
        ("peer7", "PEERKIT_PEERS: expected a TOML array of tables"),
        ('[{name = "peer7"}]', "(from environment PEERKIT_PEERS): [peers[0]] missing required key rest"),
        ('[{name = "peer7", rest = "ftp://x", grpc = "10.0.0.7:50051"}]', "(from environment PEERKIT_PEERS): [[peers]] #1"),
        ('["peer7"]', "(from environment PEERKIT_PEERS): [[peers]] must be an array of tables"),
    ):
        with pytest.raises(ConfigError) as err:
            load_config(write(tmp_path, GOOD), env={"PEERKIT_PEERS": bad})
        assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)


def test_an_empty_token_is_an_error_not_an_open_node(tmp_path):
    (tmp_path / "empty.txt").write_text("\n")
    for security, needle in (('token = ""', "token is empty"), ('token_file = "empty.txt"', "token_file empty.txt is empty")):
        with pytest.raises(ConfigError, match=re.escape(needle)):
            load_config(write(tmp_path, GOOD + f"\n[security]\n{security}\n"), env={})
    with pytest.raises(ConfigError, match="token is empty"):
        load_config(write(tmp_path, GOOD), env={"PEERKIT_SECURITY_TOKEN": " "})


@pytest.mark.parametrize(
    "table,key", [("rest_litestar", "upload_idle_timeout_s"), ("rest_litestar", "header_timeout_s"), ("grpc_transfer", "download_idle_timeout_s")]
)
def test_nan_and_inf_timeouts_are_refused(tmp_path, table, key):
    for value in ("nan", "inf"):
        with pytest.raises(ConfigError, match=key):
            load_config(write(tmp_path, GOOD + f"\n[{table}]\n{key} = {value}\n"), env={})


def test_a_huge_config_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.toml"
    path.write_bytes(GOOD.encode() + b"#" * (2 << 20))
    with pytest.raises(ConfigError, match="not a node config"):
        load_config(path, env={})
