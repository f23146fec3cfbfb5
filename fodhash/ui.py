"""Progress while Nix runs: a rich live view on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from fodhash.runs import SiteRun, Status

STYLES = {
    Status.PENDING: "dim",
    Status.WAITING: "dim",
    Status.QUEUED: "cyan",
    Status.BUILDING: "yellow",
    Status.UPDATED: "green",
    Status.CACHED: "green",
    Status.OK: "green",
    Status.SKIPPED: "dim",
    Status.UNKNOWN: "yellow",
    Status.FAILED: "bold red",
}


def label(run: SiteRun, checking: bool) -> str:
    """A site's state as a user reads it: a check edits nothing, so it finds sites stale,
    missing or ok where an update would have updated them."""
    if checking and run.new is not None and run.status in (Status.UPDATED, Status.CACHED,
                                                           Status.OK):
        if run.site.is_missing:
            return "missing"
        return "ok" if run.new == run.site.current else "stale"
    return str(run.status)


class PlainView:
    """One line per status change on stderr: for logs, CI and pipes."""

    def __init__(self, console: Console, checking: bool = False) -> None:
        self.console = console
        self.checking = checking

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def changed(self, run: SiteRun) -> None:
        if run.status in (Status.PENDING, Status.QUEUED):
            return
        detail = f" ({run.message.splitlines()[0]})" if run.message and run.status in (
            Status.WAITING, Status.SKIPPED, Status.FAILED) else ""
        if run.status in (Status.UPDATED, Status.OK) and run.new is not None:
            detail = f" {run.new.sri}"
        self.console.print(f"{label(run, self.checking):>8} {run.target}: {run.site}{detail}",
                           markup=False, highlight=False)

    def log(self, line: str) -> None:
        return None

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class LiveView:
    """A table of every site's FOD (queued, building with elapsed time, resolved, failed)
    and the latest line Nix printed, redrawn while Nix runs."""

    def __init__(self, console: Console, runs: list[SiteRun], checking: bool = False) -> None:
        self.console = console
        self.runs = runs
        self.checking = checking
        self.last_line = ""
        self.live = Live(console=console, get_renderable=self._render, refresh_per_second=8,
                         transient=True)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def _render(self) -> Group:
        table = Table(box=None, show_header=False, pad_edge=False)
        now = time.monotonic()
        for run in self.runs:
            status = label(run, self.checking)
            if run.status is Status.BUILDING and run.started is not None:
                status += f" {now - run.started:4.1f}s"
            table.add_row(Text(status, style=STYLES[run.status]), Text(run.target), Text(str(run.site)),
                          Text((run.message or "").split("\n", 1)[0][:60], style="dim"))
        return Group(table, Text(self.last_line[: self.console.width - 1], style="dim"))

    def changed(self, run: SiteRun) -> None:
        self.live.refresh()

    def log(self, line: str) -> None:
        self.last_line = line.strip()

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def view(console: Console, runs: list[SiteRun], checking: bool = False) -> PlainView | LiveView:
    if console.is_terminal:
        return LiveView(console, runs, checking)
    return PlainView(console, checking)
