"""--reproducible: each FOD built twice at once, and what differs when the two disagree.

The second build is a namesake copy of the first (fodhash.protocol.namesakes, with a salt of
its own): the same builder, arguments and environment (hence the same TLS decision), another
declared hash, so another output path, so both build in parallel and the extra wall time is
the slower build, not the sum. After the mismatches Nix holds both outputs in the store,
each under the path of its got: hash; they are compared file by file here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fodhash.hashes.encoding import Hash

SALT = b"fodhash reproducible\0"  # the twin's declared hash differs from any namesake copy's
SMALL = 1 << 20  # bytes: a file this small is read to show where it first differs
SHOWN = 8  # differing paths listed


@dataclass(frozen=True)
class Difference:
    paths: tuple[str, ...]  # relative paths that differ (or exist in one output only)
    first: str  # the first differing bytes of a small differing file, or ""
    cause: str  # a likely cause, or ""


def _entries(root: Path) -> Iterator[tuple[str, Path]]:
    if not root.is_dir() or root.is_symlink():
        yield ".", root
        return
    for path in sorted(root.rglob("*")):
        yield str(path.relative_to(root)), path


def _signature(path: Path) -> tuple[str, bytes | str]:
    if path.is_symlink():
        return "link", os.readlink(path)
    if path.is_dir():
        return "dir", ""
    return ("exe" if os.access(path, os.X_OK) else "file"), path.read_bytes()


def compare(a: str, b: str) -> Difference:
    """What differs between two outputs of the same FOD."""
    one = dict(_entries(Path(a)))
    two = dict(_entries(Path(b)))
    differing = [name for name in sorted(set(one) | set(two))
                 if name not in one or name not in two
                 or _signature(one[name]) != _signature(two[name])]
    first = ""
    for name in differing:
        if name in one and name in two and one[name].is_file() and two[name].is_file() \
                and not one[name].is_symlink() and one[name].stat().st_size <= SMALL:
            first = f"{name}: " + _first_difference(one[name].read_bytes(),
                                                     two[name].read_bytes())
            break
    return Difference(tuple(differing), first, likely_cause(differing, first))


def _first_difference(x: bytes, y: bytes) -> str:
    at = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q),
              min(len(x), len(y)))
    start = max(0, at - 16)
    return (f"at byte {at}: {x[start:at + 24]!r} vs {y[start:at + 24]!r}")


_TIME = re.compile(rb"\d{9,}|\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\d\d:\d\d:\d\d")


def likely_cause(paths: list[str], first: str) -> str:
    """A cause recognisable from the differing paths or bytes, or ""."""
    parts = {p for path in paths for p in Path(path).parts}
    if ".git" in parts:
        return ("a .git folder (fetchgit with leaveDotGit, or deepClone): its index and packs "
                "differ from clone to clone; drop it, or keep only what the build needs")
    if "_cacache" in parts or any("index-v5" in p for p in paths):
        return ("npm's cache index (_cacache/index-v5) records the time of each entry: "
                "remove it after `npm ci`, or use fetchNpmDeps / buildNpmPackage")
    if any(p.startswith(".pnpm-store") or "/.pnpm-store/" in p or p.endswith("index.json")
           for p in paths) and any("pnpm" in p for p in paths):
        return ("pnpm's store index records times: pin pnpm's `fetcherVersion` and remove "
                "the store's index files")
    if first and _TIME.search(first.encode(errors="replace")):
        return "a timestamp: the differing bytes look like a date or a time"
    return ""


def message(got: tuple[Hash, Hash], outputs: tuple[str | None, str | None],
            difference: Difference | None) -> str:
    """The verdict's evidence, for a person."""
    text = (f"built twice at once, two hashes: {got[0].sri} and {got[1].sri}; its output "
            "is not reproducible, so no hash is written")
    if difference is None:
        return text + " (the outputs could not be compared: "\
            f"{outputs[0] or '?'} and {outputs[1] or '?'})"
    shown = list(difference.paths[:SHOWN])
    more = len(difference.paths) - len(shown)
    lines = [f"differing in {outputs[0]} and {outputs[1]}:"]
    lines += [f"  {p}" for p in shown] + ([f"  ... and {more} more"] if more else [])
    if difference.first:
        lines.append(f"first difference: {difference.first}")
    if difference.cause:
        lines.append(f"likely cause: {difference.cause}")
    return text + "\n" + "\n".join(lines)
