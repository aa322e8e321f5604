"""Regenerate peerkit's gRPC code from protos/ into core/v1/ (installed as peerkit.v1).

protoc writes under OUT/peerkit/v1/ because the .proto files live at
protos/peerkit/v1/; compiling into a temporary directory and moving the files
keeps the generated imports (`from peerkit.v1 import transfer_pb2`) correct for
editable and wheel installs alike (grpc/grpc#29459).

Usage: python scripts/gen_protos.py [--check]
  --check   regenerate into a temp dir and exit 1 if core/v1 differs (stale).
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "core" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi", "_pb2_grpc.pyi")


def generate(out: Path) -> list[Path]:
    from grpc_tools import protoc  # dev dependency

    # protoc-gen-mypy (mypy-protobuf) sits beside this interpreter, maybe off PATH.
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "peerkit" / "v1").glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"--proto_path={PROTOS}",
        f"--proto_path={include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out / "peerkit" / "v1").iterdir())


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        files = [f for f in generate(Path(tmp)) if f.name.endswith(GENERATED_SUFFIXES)]
        if check:
            stale = [f.name for f in files if not (TARGET / f.name).exists() or not filecmp.cmp(f, TARGET / f.name, shallow=False)]
            if stale:
                print("stale generated code:", ", ".join(stale), "- run: python scripts/gen_protos.py")
                return 1
            return 0
        TARGET.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copyfile(f, TARGET / f.name)
            print("wrote", (TARGET / f.name).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
