"""Regenerate the README's terminal screenshots (docs/*.svg) from a real local network.

    .venv/bin/python docs/make_screenshots.py

Starts three nodes with ``peerkit.cli.launcher``, runs the commands in a real
terminal (a detached tmux session, so Rich draws its live progress bar), grabs
the screen with ``tmux capture-pane -e`` and turns the ANSI text into SVG with
Rich's own exporter. Needs tmux.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.text import Text

from peerkit.cli.launcher import LocalNetwork, plan, write_network

DOCS = Path(__file__).resolve().parent
WIDTH, HEIGHT = 96, 40
SESSION = "peerkit-screenshots"
BIG = 512 << 20  # big enough for the bar to be caught mid-way


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def capture(ansi: bool = True) -> str:
    return tmux("capture-pane", "-p", *(["-e"] if ansi else []), "-t", SESSION)


def save_svg(ansi: str, path: Path, title: str) -> None:
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=open("/dev/null", "w"))
    console.print(Text.from_ansi(ansi.rstrip("\n")))
    console.save_svg(str(path), title=title)
    print(f"wrote {path}")


def _midway(screen: str) -> bool:
    """The bar is between a third and nine tenths done (or the download already ended)."""
    m = re.search(r"([0-9.]+)/([0-9.]+) MiB", screen)
    return "Done." in screen or (m is not None and 0.33 <= float(m[1]) / float(m[2]) <= 0.9)


def run_in_pane(command: str, until: str | Callable[[str], bool], timeout: float = 60, clear: bool = True) -> str:
    """Type ``command`` (if any) and return the screen (with colours) once ``until`` shows."""
    if clear:
        tmux("send-keys", "-t", SESSION, "clear", "Enter")
        time.sleep(0.3)
    if command:
        tmux("send-keys", "-t", SESSION, command, "Enter")
    deadline = time.monotonic() + timeout
    seen = until if callable(until) else (lambda screen: until in screen)
    while not seen(plain := capture(ansi=False)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{command!r}: {until!r} not seen; screen:\n{plain}")
        time.sleep(0.02)
    return capture()


def main() -> int:
    if shutil.which("tmux") is None:
        print("tmux is needed", file=sys.stderr)
        return 1
    root = Path(tempfile.mkdtemp(prefix="peerkit-shots-"))
    specs = plan(root, 3, "line", 5001, 50051)
    write_network(specs, BIG)
    net = LocalNetwork(specs)
    bindir = Path(sys.executable).parent
    try:
        net.start()
        net.wait_ready()
        tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(root),
             f"env PATH={bindir}:$PATH PS1='$ ' PEERKIT_PEER={specs[0].rest} bash --norc --noprofile")
        time.sleep(0.5)
        screen = run_in_pane("peerkit files --network", "files on 3 peers")
        save_svg(screen, DOCS / "files-network.svg", "peerkit files --network")
        midway = run_in_pane("peerkit download big.bin -o downloads/", _midway, timeout=120)
        if "Done." not in midway:
            save_svg(midway, DOCS / "download-progress.svg", "peerkit download big.bin (on its way)")
        screen = run_in_pane("", "sha256 verified", timeout=120, clear=False)
        save_svg(screen, DOCS / "download.svg", "peerkit download big.bin")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        net.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
