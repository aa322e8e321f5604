"""A normal (wheel) install lays out peerkit, peerkit.plugins, peerkit.cli and nothing bare."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_maps_core_plugins_and_cli_under_peerkit(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True, timeout=300, capture_output=True,
    )
    (wheel,) = tmp_path.glob("peerkit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "peerkit" in tops
    assert not tops & {"core", "cli", "plugins", "tests", "bench"}
    for required in [
        "peerkit/__init__.py",
        "peerkit/hookspecs.py",
        "peerkit/v1/transfer_pb2_grpc.py",
        "peerkit/v1/transfer_pb2.pyi",
        "peerkit/plugins/rest_litestar/__init__.py",
        "peerkit/plugins/grpc_transfer/__init__.py",
        "peerkit/plugins/discovery_flood/__init__.py",
        "peerkit/plugins/echo/__init__.py",
        "peerkit/cli/main.py",
    ]:
        assert required in names, required
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "peerkit = peerkit.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
