"""Progress while Nix runs: a rich live view on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from fodhash.nix.mismatch import progress_line
from fodhash.protocol.state import FROM_CACHE, SiteRun, Status

if TYPE_CHECKING:
    from rich.console import Console, Group

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
    Status.NONDETERMINISTIC: "bold red",
    Status.REFERENCES: "bold red",
}


# A check's verdicts where they differ from the status (fodhash.commands.check.Verdict).
VERDICT_STYLES = {"stale": "bold red", "missing": "bold red", "unverified": "yellow"}


def label(run: SiteRun, checking: bool) -> str:
    """A site's state as a user reads it: a check edits nothing, so it finds sites stale,
    missing, ok, unverified (not evaluated or not computable here) or failed where an update
    would have updated, skipped them or not known their hash. fodhash.commands.check's
    verdicts are these words, so the progress lines and its table agree. `skipped`, in a
    check, is an entry of a system-keyed attrset that this platform does not need: no
    verdict."""
    status = run.status
    if not checking or not status.done or status in (Status.NONDETERMINISTIC, Status.REFERENCES):
        return str(status)
    if status.resolved and run.new is not None:
        if run.site.is_missing:
            return "missing"
        return "ok" if run.new == run.site.current else "stale"
    if run.site.is_missing:  # evaluated (its FOD was found): needed, though its hash is unknown
        return "missing" if run.drvs else "skipped"
    return "failed" if status is Status.FAILED else "unverified"


def style(run: SiteRun, checking: bool) -> str:
    return VERDICT_STYLES.get(label(run, checking), STYLES[run.status])


def name(run: SiteRun, root: Path | None) -> str:
    """The site as a progress line names it: its file relative to the repository's root."""
    return str(run.site) if root is None else run.site.named(root)


class PlainView:
    """One line per status change on stderr: for logs, CI and pipes. A site the cache
    confirms says nothing new (the report lists it): such sites are counted, and one line
    says how many, so that a run where nothing changed writes one line, not one a site."""

    def __init__(self, console: Console, checking: bool = False,
                 root: Path | None = None) -> None:
        self.console = console
        self.checking = checking
        self.root = root
        self.confirmed = 0  # sites the cache confirmed: ok, nothing written, nothing built

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.confirmed:
            self.console.file.write(f"{'ok':>8} {self.confirmed} site(s) {FROM_CACHE}: "
                                    "each literal is its FODs' cached true hash\n")

    def changed(self, run: SiteRun) -> None:
        if run.status in (Status.PENDING, Status.QUEUED):
            return
        if run.status is Status.OK and run.message == FROM_CACHE:
            self.confirmed += 1
            return
        detail = f" {run.new.sri}" if run.status.resolved and run.new is not None else ""
        if run.message:  # why it waits, was skipped, is unknown or failed; "from the cache"
            detail += f" ({run.message.splitlines()[0]})"
        # Written as it is: rich's print lays out each line (1 ms a line, 0.3 s a warm run
        # of 256 sites), for a console that is no terminal.
        self.console.file.write(
            f"{label(run, self.checking):>8} {run.target}: {name(run, self.root)}{detail}\n")

    def log(self, line: str) -> None:
        return None

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class LiveView:
    """A table of every site's FOD (queued, building with elapsed time, resolved, failed)
    and the latest line Nix printed, redrawn while Nix runs."""

    def __init__(self, console: Console, runs: list[SiteRun], checking: bool = False,
                 root: Path | None = None) -> None:
        self.console = console
        self.runs = runs
        self.checking = checking
        self.root = root
        self.last_line = ""
        from rich.live import Live  # noqa: PLC0415 (a terminal only: pipes take PlainView)

        self.live = Live(console=console, get_renderable=self._render, refresh_per_second=8,
                         transient=True)

    def __enter__(self) -> LiveView:
        self.live.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.__exit__(exc_type, exc, tb)

    def _render(self) -> Group:
        from rich.console import Group  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        now = time.monotonic()
        rows = []
        for run in self.runs:
            status = label(run, self.checking)
            if run.status is Status.BUILDING and run.started is not None:
                status += f" {now - run.started:4.1f}s"
            # The message explains the current status only (fodhash.protocol sets them
            # together): no "waits for ..." once the site builds.
            rows.append((Text(status, style=style(run, self.checking)), Text(run.target),
                         Text(name(run, self.root)), Text(run.message.split("\n", 1)[0], style="dim")))
        # One line per site: the message gets what the other columns leave, cut with "…".
        widths = [max((row[i].cell_len for row in rows), default=0) for i in range(3)]
        room = max(self.console.width - sum(widths) - 2 * len(widths) - 1, 10)
        table = Table(box=None, show_header=False, pad_edge=False)
        for _ in range(4):
            table.add_column(no_wrap=True)
        for *cells, message in rows:
            message.truncate(room, overflow="ellipsis")
            table.add_row(*cells, message)
        return Group(table, Text(self.last_line[: self.console.width - 1], style="dim"))

    def changed(self, run: SiteRun) -> None:
        self.live.refresh()

    def log(self, line: str) -> None:
        shown = progress_line(line)  # an expected mismatch reads calmly, not as an error
        if shown:
            self.last_line = shown

    def note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def view(console: Console, runs: list[SiteRun], checking: bool = False,
         root: Path | None = None) -> PlainView | LiveView:
    if console.is_terminal:
        return LiveView(console, runs, checking, root)
    return PlainView(console, checking, root)
