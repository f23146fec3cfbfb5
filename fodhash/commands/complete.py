"""Shell completion of what fodhash.toml names: target names (and the .nix files a TARGET may
also be), and the systems of its [platforms.*] tables for --platform.

A completion runs on every Tab press: it reads fodhash.toml and nothing else (no Nix call),
and a missing or broken fodhash.toml completes nothing rather than printing an error into
the user's command line.
"""

from __future__ import annotations

from pathlib import Path

from fodhash import config
from fodhash.errors import FodhashError


def _config(path: Path | None, cwd: Path) -> config.Config | None:
    try:
        found = path or config.find_config(cwd)
        return config.load(found) if found is not None else None
    except (FodhashError, OSError, ValueError):
        return None


def _nix_files(incomplete: str, cwd: Path) -> list[str]:
    """The .nix files (and folders, to go on into) whose path starts with `incomplete`."""
    folder, _, stem = incomplete.rpartition("/")
    base = cwd / folder if folder else cwd
    prefix = f"{folder}/" if folder else ""
    try:
        entries = sorted(base.iterdir())
    except OSError:
        return []
    return [prefix + entry.name + ("/" if entry.is_dir() else "") for entry in entries
            if entry.name.startswith(stem) and not entry.name.startswith(".")
            and (entry.is_dir() or entry.suffix == ".nix")]


def targets(path: Path | None, cwd: Path, incomplete: str) -> list[str]:
    """The target names starting with `incomplete`; a path-like word completes .nix files."""
    cfg = _config(path, cwd)
    names = sorted(cfg.targets) if cfg is not None else []
    matching = [name for name in names if name.startswith(incomplete)]
    if "/" in incomplete or incomplete.startswith(".") or not matching:
        return matching + _nix_files(incomplete, cwd)
    return matching


def platforms(path: Path | None, cwd: Path, incomplete: str, *, with_all: bool) -> list[str]:
    """The systems of fodhash.toml's [platforms.*] tables (and `all` where it is accepted)."""
    cfg = _config(path, cwd)
    systems = sorted(cfg.platforms) if cfg is not None else []
    return [s for s in (["all"] if with_all else []) + systems if s.startswith(incomplete)]
