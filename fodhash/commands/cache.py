"""`fodhash cache ...`: show, clear, export and import the result cache (fodhash.cache.store)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fodhash.cache.export import EVERY_PLATFORM
from fodhash.cache.store import ResultCache


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
    return f" of platform {escape(platform)}" if platform else ""


def info(*, out: Console) -> int:
    """Where the cache is, how big it is, and how many hashes it holds per platform."""
    with ResultCache() as cache:
        found = cache.info()
    out.print(f"location: {escape(str(found.location))}", highlight=False)
    out.print(f"size:     {_size(found.size)}", highlight=False)
    out.print(f"entries:  {found.total}", highlight=False)
    if found.platforms:
        table = Table("platform", "entries", box=None, pad_edge=False)
        for platform, count in found.platforms.items():
            # Not a platform: the FODs Nix's builtin fetchers build, the same on every one.
            name = "any (Nix's builtin fetchers)" if platform == EVERY_PLATFORM else platform
            table.add_row(escape(name), str(count))
        out.print(table)
    return 0


def clear(platform: str | None, *, out: Console) -> int:
    """Remove every cached hash (or only those of one platform); a damaged cache database is
    replaced by an empty one."""
    with ResultCache(rebuild=platform is None) as cache:
        removed = cache.clear(platform)
    out.print(f"removed {removed} entries{_scope(platform)}", highlight=False)
    return 0


def export(file: Path, platform: str | None, *, out: Console) -> int:
    """Write the cached hashes to a JSON file (a CI artifact for another machine, say)."""
    with ResultCache() as cache:
        count = cache.export(file, platform)
    out.print(f"exported {count} entries{_scope(platform)} to {escape(str(file))}", highlight=False)
    return 0


def import_files(files: list[Path], *, out: Console) -> int:
    """Add the hashes of exported files to the cache: all files are checked first, and a bad
    file imports nothing."""
    with ResultCache() as cache:
        count = cache.import_files(files)
    out.print(f"imported {count} new or updated entries from {len(files)} file(s)", highlight=False)
    return 0
