"""The transfer progress bar: ``rich.progress`` on stderr, only when stderr is a terminal.

Pass a :class:`TransferBar` wherever a ``progress(done, total)`` callback is
expected. Without a terminal it records the numbers and draws nothing, so logs
and pipes get only the command's summary line.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class TransferBar:
    def __init__(self, console: Console, description: str, total: int | None = None, *, live: bool = True) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if live:
            self._progress = Progress(
                TextColumn("{task.fields[label]}"),
                BarColumn(bar_width=None),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                expand=False,
            )

    def __enter__(self) -> TransferBar:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("", total=self.total, label=Text(self.description, style="bold"))
        return self

    def __call__(self, done: int, total: int) -> None:
        """The progress callback: ``done`` of ``total`` bytes so far."""
        self.done, self.total = done, total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total or None)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
