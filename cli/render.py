"""Turning documents from the node into Rich tables and one-line summaries.

Every string that came from the network is wrapped in :class:`Text`, so a
file called ``[bold]x`` is shown as itself, never interpreted as markup.
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from peerkit.utils import human_bytes

STATE_STYLE = {"alive": "green", "suspect": "yellow", "dead": "red"}
SHORT_SHA = 12


def t(value: Any, style: str = "") -> Text:
    return Text("" if value is None else str(value), style=style)


def size(n: int | float | None) -> str:
    return "?" if n is None else human_bytes(n)


def rate(n_bytes: int, seconds: float) -> str:
    """Decimal MB/s, as network people quote speeds (kB/s for trickles)."""
    if seconds <= 0:
        return "instant"
    per_s = n_bytes / seconds
    if per_s >= 100e6:
        return f"{per_s / 1e6:.0f} MB/s"
    if per_s >= 1e6:
        return f"{per_s / 1e6:.1f} MB/s"
    return f"{per_s / 1e3:.1f} kB/s"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, s = divmod(int(seconds), 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}h{m:02d}m" if hours else f"{m}m{s:02d}s"


def ago(epoch: float | None) -> str:
    if not epoch:
        return "never"
    return f"{duration(max(0.0, time.time() - epoch))} ago"


def short_sha(digest: str | None) -> Text:
    return t((digest or "")[:SHORT_SHA], "dim")


def summary(n_bytes: int, seconds: float, *, verified: bool = False, prefix: str = "Done.") -> str:
    """``Done. 1.0 GiB in 2.4 s (427 MB/s), sha256 verified``."""
    line = f"{prefix} {human_bytes(n_bytes)} in {duration(seconds)} ({rate(n_bytes, seconds)})"
    return line + (", sha256 verified" if verified else "")


def table(*columns: str, title: str | None = None, **kwargs: Any) -> Table:
    tab = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", title_style="bold", **kwargs)
    for col in columns:
        justify = "right" if col in ("Size", "Hops", "Files") else "left"
        tab.add_column(col, justify=justify, no_wrap=col in ("Size", "SHA-256", "Hops", "State"))
    return tab


def files_table(entries: list[dict[str, Any]], *, title: str | None = None) -> Table:
    tab = table("Name", "Size", "SHA-256", title=title)
    for e in entries:
        tab.add_row(t(e.get("name"), "bold"), size(e.get("size")), short_sha(e.get("sha256")))
    return tab


def files_footer(entries: list[dict[str, Any]]) -> str:
    total = sum(int(e.get("size") or 0) for e in entries)
    return f"{len(entries)} file{'s' if len(entries) != 1 else ''}, {human_bytes(total)}"


def peers_table(peers: list[dict[str, Any]]) -> Table:
    tab = table("Name", "REST", "gRPC", "State", "Last seen", "Friend")
    # Addresses are what people copy: narrow terminals squeeze the other columns first.
    for col, key in ((tab.columns[1], "rest"), (tab.columns[2], "grpc")):
        col.min_width = max((len(str(p.get(key) or "")) for p in peers), default=0)
    for p in peers:
        state = str(p.get("state", "?"))
        tab.add_row(
            t(p.get("name"), "bold"),
            t(p.get("rest")),
            t(p.get("grpc")),
            t(state, STATE_STYLE.get(state, "")),
            ago(p.get("last_seen")),
            "yes" if p.get("friend") else "",
        )
    return tab


def hits_table(hits: list[dict[str, Any]]) -> Table:
    tab = table("Peer", "Name", "Size", "SHA-256", "Hops", "gRPC")
    for h in hits:
        tab.add_row(
            t(h.get("peer"), "bold"), t(h.get("name")), size(h.get("size")), short_sha(h.get("sha256")),
            t(h.get("hops")), t(h.get("grpc"), "dim"),
        )
    return tab


def status_table(doc: dict[str, Any]) -> Table:
    tab = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    tab.add_column(style="bold")
    tab.add_column()
    peers_alive, peers = doc.get("peers_alive", 0), doc.get("peers")
    rows: list[tuple[str, Any]] = [
        ("Name", t(doc.get("name"), "bold cyan")),
        ("Version", t(doc.get("version"))),
        ("Uptime", duration(float(doc.get("uptime_s") or 0))),
        ("REST", t(doc.get("rest") or "-")),
        ("gRPC", t(doc.get("grpc") or "-")),
        ("Plugins", t(", ".join(doc.get("plugins") or []) or "-")),
        ("Files", t(doc.get("files"))),
        ("Peers", t(f"{peers_alive} alive" + (f" of {peers}" if peers is not None else ""))),
    ]
    counters = doc.get("counters") or {}
    if counters:
        rows.append(("Counters", t(", ".join(f"{k} {v}" for k, v in sorted(counters.items())))))
    for key, value in rows:
        tab.add_row(key, value)
    return tab
