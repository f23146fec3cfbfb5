"""What was read of a file before, kept by its path and its bytes.

Locating a file's sites parses it with tree-sitter and walks the tree (40 ms for a file of
256 sites), and following a target's imports walks it again: work that gives the same
answer for the same bytes read by the same fodhash. A run where nothing changed (the
pre-commit hook, a CI check) reads those answers from here instead (docs/performance.md).

One small JSON file per file path in `located/` of the cache folder (JSON, like the result
cache: never pickles), the KEEP most recently used kept. An entry answers only for the
bytes it was computed from (their sha256) and for the code that computed it (the size and
modification time of every module of fodhash.sites and fodhash.hashes). A file whose syntax
the grammar could not read whole is never kept: Nix judges it, and the warning that names
its unreadable lines is printed on every run. A file that cannot be read or written is
passed over: the answer is computed as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from fodhash.cache import kept
from fodhash.errors import HashError
from fodhash.files.dirs import cache_dir
from fodhash.hashes.encoding import Algo, Encoding, Hash, HashText
from fodhash.sites.site import Site
from fodhash.sites.target import read_whole

log = logging.getLogger(__name__)
VERSION = 1  # of the file format below; another version is read as absent
KEEP = 512  # files kept: a few repositories' worth, each a few KB
_FIELDS = ("attrpath", "binding", "platform", "line", "start", "end", "text", "branch")


def folder() -> Path:
    return cache_dir() / "located"


@cache
def _code() -> str:
    """The identity of the code that locates: a change to any of its modules (an upgrade,
    an edit in a checkout) makes every entry absent."""
    package = Path(__file__).resolve().parent.parent
    parts = []
    for sub in ("sites", "hashes"):
        for module in sorted((package / sub).glob("*.py")):
            stat = module.stat()
            parts.append(f"{sub}/{module.name}:{stat.st_size}:{stat.st_mtime_ns}")
    if not parts:  # no source to tell one fodhash from another: nothing kept is answered
        return os.urandom(16).hex()
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _file(path: Path) -> Path:
    return folder() / f"{hashlib.sha256(os.fsencode(path)).hexdigest()}.json"


class Located:
    """fodhash.sites.target's Memo, kept in the cache folder."""

    def __init__(self) -> None:
        self._entries: dict[Path, dict[str, Any]] = {}  # read this run, by file
        self._new: set[Path] = set()  # those with an answer found this run: to keep

    def keep(self) -> None:
        """Write what was found this run (each file's entry whole, or not at all)."""
        for path in sorted(self._new):
            _write(path, self._entries[path])
        self._new.clear()

    def _entry(self, path: Path, source: bytes) -> dict[str, Any]:
        """The entry of `path` for the bytes `source`: the kept one, or a new one."""
        digest = hashlib.sha256(source).hexdigest()
        entry = self._entries.get(path)
        if entry is not None and entry["digest"] == digest:
            return entry
        entry = {"version": VERSION, "file": str(path), "code": _code(), "digest": digest}
        try:
            kept = json.loads(_file(path).read_bytes())
        except (OSError, ValueError):
            kept = None  # none kept, or damaged: a new one
        if isinstance(kept, dict) and all(kept.get(k) == v for k, v in entry.items()):
            entry = kept
            with contextlib.suppress(OSError):
                os.utime(_file(path))  # recently used: kept longest
        self._entries[path] = entry
        return entry

    def sites(self, file: Path, source: bytes,
              find: Callable[[Path, bytes], list[Site]]) -> list[Site]:
        entry = self._entry(file, source)
        if "sites" in entry:
            try:
                return _decode_sites(file, entry["sites"])
            except (ValueError, TypeError, IndexError, HashError):
                del entry["sites"]  # damaged: found again below
        sites = find(file, source)
        if self.whole(file, source):
            entry["sites"] = _encode_sites(sites)
            self._new.add(file)
        return sites

    def paths(self, kind: str, file: Path, source: bytes,
              find: Callable[[Path, bytes], list[Path]]) -> list[Path]:
        entry = self._entry(file, source)
        kept = entry.get(kind)
        if isinstance(kept, list) and all(isinstance(p, str) for p in kept):
            return [Path(p) for p in kept]
        paths = find(file, source)
        entry[kind] = [str(p) for p in paths]
        self._new.add(file)
        return paths

    def whole(self, file: Path, source: bytes) -> bool:
        entry = self._entry(file, source)
        kept = entry.get("whole")
        if isinstance(kept, bool):
            return kept
        whole = entry["whole"] = read_whole(file, source)
        self._new.add(file)
        return whole


def _write(path: Path, entry: dict[str, Any]) -> None:
    try:
        kept.write(_file(path), entry, KEEP)
    except OSError as error:  # a full disk, a read-only cache: computed again next time
        log.debug("what was read of %s not kept in %s: %s", path, folder(), error)


# ---- sites as JSON -----------------------------------------------------------------------


def _text(form: HashText | None) -> list[Any] | None:
    if form is None:
        return None
    return [str(form.hash.algo), form.hash.digest.hex(), str(form.encoding), form.prefixed]


def _form(record: list[Any] | None) -> HashText | None:
    if record is None:
        return None
    algo, digest, encoding, prefixed = record
    return HashText(Hash(Algo(algo), bytes.fromhex(digest)), Encoding(encoding), bool(prefixed))


def _encode_sites(sites: list[Site]) -> list[Any]:
    return [[*(getattr(site, name) for name in _FIELDS), str(site.algo), _text(site.form),
             list(site.wrap), _text(site.style)] for site in sites]


def _decode_sites(file: Path, records: list[Any]) -> list[Site]:
    sites = []
    for record in records:
        attrpath, binding, platform, line, start, end, text, branch, algo, form, wrap, style \
            = record
        sites.append(Site(file=file, attrpath=attrpath, binding=binding, platform=platform,
                          line=line, start=start, end=end, text=text, algo=Algo(algo),
                          form=_form(form), wrap=(wrap[0], wrap[1]), branch=branch,
                          style=_form(style)))
    return sites
