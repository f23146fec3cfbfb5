"""`fodhash cache ...`: show, clear, export and import the result cache (logic in cache.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fodhash.ui import help
from fodhash.ui.boundary import console, guarded

# Each command imports the cache (diskcache, SQLite) and rich when it runs: `fodhash --help`
# never does.
# ruff: noqa: PLC0415

app = typer.Typer(
    help="Show, clear, export and import the cache of resolved hashes.",
    no_args_is_help=True,
    **help.SETTINGS,
)

PlatformOption = Annotated[
    str | None,
    typer.Option("--platform", metavar="SYSTEM",
                 help="Only entries of this platform, e.g. x86_64-linux."),
]


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _scope(platform: str | None) -> str:
    return f" of platform {_escape(platform)}" if platform else ""


@app.command("info", cls=help.Command)
@guarded
def info() -> None:
    """Where the cache is, how big it is, and how many hashes it holds per platform."""
    from fodhash.cache.store import ResultCache

    with ResultCache() as cache:
        found = cache.info()
    out = console()
    out.print(f"location: {_escape(str(found.location))}", highlight=False)
    out.print(f"size:     {_size(found.size)}", highlight=False)
    out.print(f"entries:  {found.total}", highlight=False)
    if found.platforms:
        from rich.table import Table

        table = Table("platform", "entries", box=None, pad_edge=False)
        for platform, count in found.platforms.items():
            table.add_row(_escape(platform), str(count))
        out.print(table)


@app.command("clear", cls=help.Command)
@guarded
def clear(platform: PlatformOption = None) -> None:
    """Remove every cached hash (or only those of one platform); a damaged cache database is
    replaced by an empty one."""
    from fodhash.cache.store import ResultCache

    with ResultCache(rebuild=platform is None) as cache:
        removed = cache.clear(platform)
    console().print(f"removed {removed} entries{_scope(platform)}", highlight=False)


@app.command("export", cls=help.Command)
@guarded
def export(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSON file to write (docs/cache-format.md).",
                                         dir_okay=False, show_default=False)],
    platform: PlatformOption = None,
) -> None:
    """Write the cached hashes to a JSON file (a CI artifact for another machine, say)."""
    from fodhash.cache.store import ResultCache

    with ResultCache() as cache:
        count = cache.export(file, platform)
    console().print(f"exported {count} entries{_scope(platform)} to {_escape(str(file))}",
                     highlight=False)


@app.command("import", cls=help.Command)
@guarded
def import_(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="JSON files written by `fodhash cache "
                                                     "export`.", show_default=False)],
) -> None:
    """Add the hashes of exported files to the cache: all files are checked first, and a bad
    file imports nothing."""
    from fodhash.cache.store import ResultCache

    with ResultCache() as cache:
        count = cache.import_files(files)
    console().print(f"imported {count} new or updated entries from {len(files)} file(s)",
                     highlight=False)
