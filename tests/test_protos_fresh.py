"""The checked-in generated gRPC code matches protos/ (regenerate: python scripts/gen_protos.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_modules_import_from_the_installed_package():
    from peerkit.v1 import echo_pb2_grpc, link_pb2_grpc, transfer_pb2, transfer_pb2_grpc

    assert transfer_pb2.DESCRIPTOR.package == "peerkit.v1"
    assert hasattr(transfer_pb2_grpc, "TransferStub") and hasattr(echo_pb2_grpc, "EchoStub")
    assert hasattr(link_pb2_grpc, "LinkStub")
