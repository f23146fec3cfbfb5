"""What a run reports: the summary table, the JSON document (schema in docs/json.md), diffs."""

from __future__ import annotations

import difflib
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from fodhash.protocol.state import SiteRun, Status
from fodhash.sites.site import relative as _relative
from fodhash.ui.grid import Grid
from fodhash.ui.plain import escape
from fodhash.ui.progress import STYLES

if TYPE_CHECKING:
    from rich.console import Console

JSON_VERSION = 1
relative = _relative  # defined with the Site type; the commands import it from here


class SiteJSON(TypedDict):
    system: str
    target: str
    file: str
    line: int
    site: str
    platform: str | None
    old: str
    new: str | None
    written: str | None
    status: str
    seconds: float
    message: str
    keys: list[str]
    changed: list[str]


Row = tuple[str, SiteRun]  # the system a session evaluated for ("" for the only, local one)


def site_json(system: str, run: SiteRun, root: Path) -> SiteJSON:
    site = run.site
    return {
        "system": system,
        "target": run.target,
        "file": relative(site.file, root),
        "line": site.line,
        "site": site.attrpath,
        "platform": site.platform,
        "old": site.text,
        "new": run.new.sri if run.new else None,
        "written": run.final_text(),
        "status": str(run.status),
        "seconds": round(run.seconds, 3),
        "message": run.message,
        "keys": run.keys,
        "changed": run.changed,
    }


def document(rows: list[Row], root: Path, *, system: str, nix_version: str,
             dry_run: bool, stats: dict[str, int]) -> dict[str, Any]:
    counts: dict[str, int] = {str(s): 0 for s in (Status.UPDATED, Status.OK, Status.CACHED,
                                                  Status.SKIPPED, Status.FAILED)}
    for _, run in rows:
        counts[str(run.status)] = counts.get(str(run.status), 0) + 1
    return {
        "version": JSON_VERSION,
        "system": system,
        "nix": nix_version,
        "dry_run": dry_run,
        "sites": [site_json(label or system, run, root) for label, run in rows],
        "counts": counts,
        "stats": stats,
    }


def changed_lines(run: SiteRun) -> list[str]:
    """What changed in a stale site's FOD since its old hash was verified: one line each."""
    if not run.changed:
        return []
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(run.verified)) if run.verified \
        else "it was verified"
    return [f"  changed since {when}:"] + [f"    {line}" for line in run.changed]


def drift(console: Console, rows: list[Row], root: Path) -> None:
    """Under the table: for each updated site, why its hash changed, if the cache knows."""
    for _, run in rows:
        if lines := changed_lines(run):
            console.print(f"{relative(run.site.file, root)}:{run.site.line}: "
                          f"{run.site.attrpath}:", markup=False, highlight=False)
            for line in lines:
                console.print(line, markup=False, highlight=False)


DRY_RUN = "dry run: no file was written"


def summary(statuses: list[str], stats: dict[str, int], *, dry_run: bool = False) -> str:
    """One line for logs and hooks: what happened to the sites, and what it cost."""
    counts = Counter(statuses)
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    plural = "" if stats["evaluations"] == 1 else "s"
    return (f"{len(statuses)} site(s): {parts}; {stats['evaluations']} evaluation{plural}, "
            f"{stats['builds']} FOD build(s)" + (f"; {DRY_RUN}" if dry_run else ""))


def note(run: SiteRun) -> str:
    """A table row's note: why a site was skipped or is unknown, `from the cache` for one the
    cache confirmed; a failure's message follows the table."""
    if run.status.refused:
        return "see below"
    return run.message.split("\n", 1)[0]


def left(rows: list[Row], root: Path) -> list[str]:
    """What a run left as it was, one line per kind, for the end of its output: sites not
    evaluated here (which alone do not fail it), and sites whose hash it could not compute.
    A site that another platform's session resolved is not left."""
    # A site is named by file and attribute path: an earlier platform's session may have
    # moved its bytes (an entry added above it, a placeholder replaced).
    resolved = {(run.site.file, run.site.attrpath) for _, run in rows if run.status.resolved}
    kinds: dict[Status, dict[tuple[Path, str], str]] = {Status.SKIPPED: {}, Status.UNKNOWN: {}}
    branches = {(r.site.file, r.site.attrpath): r for r in untaken(rows)}
    for label, run in rows:
        where = (run.site.file, run.site.attrpath)
        if run.status in kinds and where not in resolved and where not in branches:
            name = f"{relative(run.site.file, root)}:{run.site.line} {run.site.attrpath}"
            kinds[run.status].setdefault(where, f"[{label}] {name}" if label else name)
    lines = [untaken_line(list(branches.values()), root)] if branches else []
    for status, why in ((Status.SKIPPED, "not evaluated on this platform, which alone does not "
                                         "fail the run"),
                        (Status.UNKNOWN, "no true hash could be computed here, so the exit code "
                                         "is 1")):
        if names := list(kinds[status].values()):
            count = "1 site left as it was" if len(names) == 1 else \
                f"{len(names)} sites left as they were"
            lines.append(f"{count}: {', '.join(names)} ({status}: {why})")
    return lines


def untaken(rows: list[Row]) -> list[SiteRun]:
    """The branch literals (`if … then "…" else "…"`) that no platform of the run took: none
    of its evaluations reached them, so nothing here can tell their hash."""
    taken = {(r.site.file, r.site.attrpath) for _, r in rows if r.status is not Status.SKIPPED}
    found: dict[tuple[Path, str], SiteRun] = {}
    for _, run in rows:
        where = (run.site.file, run.site.attrpath)
        if run.site.branch is not None and where not in taken:
            found.setdefault(where, run)
    return list(found.values())


def untaken_line(runs: list[SiteRun], root: Path) -> str:
    names = ", ".join(f"{relative(r.site.file, root)}:{r.site.line} {r.site.attrpath}"
                      for r in runs)
    return (f"{'1 branch' if len(runs) == 1 else f'{len(runs)} branches'} no platform of this "
            f"run takes, left as written: {names} (each is chosen only when its condition "
            "holds; configure a platform that takes it as [platforms.SYSTEM] and run with "
            "--platform SYSTEM)")


def table(console: Console, rows: list[Row], root: Path, *, title: str | None = None) -> None:
    systems = any(label for label, _ in rows)
    notes = any(note(run) for _, run in rows)
    columns = ("system",) * systems + ("target", "site", "file:line", "old -> new", "seconds",
                                       "status") + ("note",) * notes
    grid = Grid(columns, title=title)
    status = len(columns) - 1 - notes
    for label, run in rows:
        site = run.site
        change = site.text or "(no entry)"
        if run.final_text() is not None and run.new is not None:
            new = run.new.sri if site.is_missing else site.render(run.new).strip(chr(34))
            change = f"{change} -> {new}"
        cells = (label,) * systems + (run.target, site.attrpath,
                                      f"{relative(site.file, root)}:{site.line}", change,
                                      f"{run.seconds:.1f}", str(run.status))
        grid.add_row(*cells, *(note(run),) * notes, styles={status: STYLES[run.status]})
    grid.print(console)
    for _, run in rows:
        if run.status.refused:
            console.print(f"[bold red]{run.status}[/] {escape(run.target)}: {escape(str(run.site))} "
                          f"({escape(relative(run.site.file, root))}:{run.site.line})")
            console.print(run.message, markup=False, highlight=False)


def diff(path: Path, before: bytes, after: bytes, root: Path) -> str:
    name = relative(path, root)
    return "".join(difflib.unified_diff(
        before.decode().splitlines(keepends=True), after.decode().splitlines(keepends=True),
        fromfile=f"a/{name}", tofile=f"b/{name}"))
