"""The result cache: resolved hashes on disk per FOD and platform, and its export/import format.

Keys are digests of the normalised FOD (docs/design.md, "Cache key"); values are JSON text, never
pickles, so the cache outlives changes to fodhash's classes. diskcache keeps it in SQLite,
which makes concurrent fodhash processes safe. The file format is docs/cache-format.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import diskcache  # type: ignore[import-untyped]

from fodhash.errors import FodhashError, HashError, UsageError
from fodhash.files.patch import atomic_write
from fodhash.hashes.encoding import Encoding, Hash, parse_hash
from fodhash.nix.derivations import Derivation

log = logging.getLogger(__name__)
DATABASE = "cache.db"  # diskcache's SQLite file in the cache folder
FORMAT = "fodhash-cache"
VERSION = 1
KEY_RE = re.compile(r"[0-9a-f]{64}")
# Field name -> accepted JSON types, in the order the format documents them.
FIELDS: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "hash": (str,),
    "platform": (str,),
    "name": (str,),
    "nix_version": (str,),
    "time": (int, float),
}
_TOP_LEVEL = frozenset({"format", "version", "entries", "checksum"})


@dataclass(frozen=True)
class Entry:
    key: str  # hex digest of the normalised FOD (key_for)
    hash: Hash  # the true output hash
    platform: str  # the derivation's system, e.g. x86_64-linux
    name: str  # the FOD's name
    nix_version: str
    time: float  # unix time it was computed

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "hash": self.hash.sri,
            "platform": self.platform,
            "name": self.name,
            "nix_version": self.nix_version,
            "time": self.time,
        }


@dataclass(frozen=True)
class CacheInfo:
    location: Path
    size: int  # bytes on disk
    platforms: dict[str, int] = field(default_factory=dict)  # entries per platform

    @property
    def total(self) -> int:
        return sum(self.platforms.values())


def cache_dir() -> Path:
    """$FODHASH_CACHE_DIR, else $XDG_CACHE_HOME/fodhash, else ~/.cache/fodhash."""
    own = os.environ.get("FODHASH_CACHE_DIR")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "fodhash"
    return Path.home() / ".cache" / "fodhash"


def key_for(drv: Derivation) -> str:
    """The cache key of a FOD: the one place that defines it (docs/design.md, "Cache key").

    Compute it on the non-fake form of the derivation (sentinel or real hash): fetchers
    change their environment when the hash is a fake.
    """
    return drv.digest()


def checksum(entries: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the entries list, as the export format defines it."""
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _entry_problem(raw: object) -> str | None:
    """What is wrong with one raw entry of a cache file, or None if it is well-formed."""
    if not isinstance(raw, dict):
        return f"is a {type(raw).__name__}, not an object"
    for name, types in FIELDS.items():
        if name not in raw:
            return f"lacks the field {name!r}"
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(_json_type(t) for t in types)
            return f"field {name!r} is {_json_type(type(value))}, expected {wanted}"
    extra = sorted(set(raw) - set(FIELDS))
    if extra:
        return f"has unknown field(s) {', '.join(map(repr, extra))}"
    if not KEY_RE.fullmatch(raw["key"]):
        return f"key {raw['key']!r} is not 64 lowercase hex digits"
    try:
        parsed = parse_hash(raw["hash"])
    except HashError as error:
        return f"hash {raw['hash']!r} is not a hash: {error}"
    if parsed.encoding is not Encoding.SRI:
        return f"hash {raw['hash']!r} is not in SRI form (algo-base64)"
    if parsed.hash.is_fake:
        return f"hash {raw['hash']!r} is the fake all-zero hash, not a resolved one"
    if not raw["platform"]:
        return "platform is empty"
    return None


def _json_type(kind: type) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
             dict: "an object", list: "an array", type(None): "null"}
    return names.get(kind, kind.__name__)


def _entry(raw: dict[str, Any]) -> Entry:
    return Entry(key=raw["key"], hash=parse_hash(raw["hash"]).hash, platform=raw["platform"],
                 name=raw["name"], nix_version=raw["nix_version"], time=float(raw["time"]))


def read_file(path: Path) -> list[Entry]:
    """Every entry of an export file, or UsageError naming the file, entry and problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read cache file {path}: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON ({error}); is it truncated?") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a fodhash cache file (no \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise UsageError(f"{path} has format version {version!r}; this fodhash reads "
                         f"version {VERSION} only (upgrade fodhash for newer files)")
    extra = sorted(set(data) - _TOP_LEVEL)
    if extra:
        raise UsageError(f"{path} has unknown top-level field(s) {', '.join(map(repr, extra))}")
    raws = data.get("entries")
    if not isinstance(raws, list):
        raise UsageError(f"{path}: \"entries\" is missing or not an array")
    for index, raw in enumerate(raws):
        problem = _entry_problem(raw)
        if problem:
            raise UsageError(f"{path}: entry {index} {problem}; nothing was imported")
    stated = data.get("checksum")
    if not isinstance(stated, str):
        raise UsageError(f"{path}: \"checksum\" is missing or not a string")
    if stated != checksum(raws):
        raise UsageError(f"{path}: checksum mismatch (the entries were changed after export, "
                         f"or the file is damaged); nothing was imported")
    return [_entry(raw) for raw in raws]


def write_export(path: Path, entries: Sequence[Entry]) -> int:
    """Write entries in the export format (docs/cache-format.md), atomically."""
    raws = [entry.to_json() for entry in entries]
    document = {"format": FORMAT, "version": VERSION, "entries": raws, "checksum": checksum(raws)}
    try:
        atomic_write(path.absolute(), (json.dumps(document, indent=2) + "\n").encode())
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error}") from None
    return len(raws)


class Results(Protocol):
    """What the resolver needs of a cache: the on-disk one, or results read from files."""

    def get(self, key: str) -> Entry | None: ...
    def put(self, entry: Entry) -> None: ...
    def count(self) -> int: ...


class FileResults:
    """Results exported elsewhere (fodhash apply): read-only, nothing else is trusted."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = {e.key: e for e in entries}

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def put(self, entry: Entry) -> None:
        return None  # nothing is built in apply, so nothing new is learnt

    def count(self) -> int:
        return len(self.entries)


class ResultCache:
    """Resolved hashes on disk, safe to share between concurrent fodhash processes."""

    def __init__(self, directory: Path | None = None, *, rebuild: bool = False) -> None:
        """Open the cache; `rebuild` replaces a damaged database with an empty one (for
        `fodhash cache clear`, which must work whatever state the database is in)."""
        self.directory = directory if directory is not None else cache_dir()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = self._open()
        except sqlite3.OperationalError as error:  # locked beyond the timeout, disk full
            raise FodhashError(f"cannot open the cache at {self.directory}: {error} (is its "
                               "disk full? free some space, or set FODHASH_CACHE_DIR elsewhere); "
                               "no file of yours was changed") from None
        except sqlite3.DatabaseError as error:
            if not rebuild:
                raise self._damaged(error) from None
            for path in self.directory.glob(f"{DATABASE}*"):
                path.unlink()
            self._cache = self._open()
        except OSError as error:
            raise UsageError(f"cannot open the cache at {self.directory}: {error}") from None

    def _open(self) -> Any:
        # eviction_policy "none": diskcache's default drops old entries past 1 GB, and a
        # silently forgotten hash costs a rebuild. Its default 60 s SQLite timeout plus
        # retry=True on writes makes concurrent writers wait instead of failing.
        return diskcache.Cache(str(self.directory), eviction_policy="none")

    def _damaged(self, error: sqlite3.Error) -> UsageError:
        return UsageError(
            f"the cache database {self.directory / DATABASE} is damaged ({error}); "
            "`fodhash cache clear` replaces it with an empty one (cached hashes are "
            "computed again on the next run)")

    # Values are JSON text: diskcache stores short str values as SQLite TEXT, not pickles.
    def _load(self, key: str, value: object) -> Entry | None:
        if not isinstance(value, str):
            return None
        try:
            raw = json.loads(value)
        except json.JSONDecodeError:
            return None
        if not isinstance(raw, dict):
            return None
        raw["key"] = key
        if _entry_problem(raw) is not None:
            return None  # written by an incompatible fodhash: a miss, never a wrong hash
        return _entry(raw)

    @staticmethod
    def _dump(entry: Entry) -> str:
        record = entry.to_json()
        del record["key"]
        return json.dumps(record, sort_keys=True)

    def get(self, key: str) -> Entry | None:
        try:
            return self._load(key, self._cache.get(key, retry=True))
        except sqlite3.DatabaseError as error:
            raise self._damaged(error) from None

    def count(self) -> int:
        """How many entries (diskcache keeps the count: no scan)."""
        try:
            return len(self._cache)
        except sqlite3.DatabaseError as error:
            raise self._damaged(error) from None

    def put(self, entry: Entry) -> None:
        """Store (or replace) the entry. Raises ValueError for an entry export would refuse.
        A cache that cannot store (disk full) costs a rebuild later, never the run: it is
        said and the run goes on."""
        problem = _entry_problem(entry.to_json())
        if problem:
            raise ValueError(f"cache entry {entry.key!r} {problem}")
        try:
            self._cache.set(entry.key, self._dump(entry), retry=True)
        except (OSError, sqlite3.OperationalError) as error:
            log.warning("could not store %s's hash %s in the cache at %s (%s)", entry.name,
                        entry.hash.sri, self.directory, error)

    def entries(self, platform: str | None = None) -> list[Entry]:
        """Every entry (of one platform), sorted by platform, name and key."""
        found: list[Entry] = []
        with self._cache.transact(retry=True):  # one consistent snapshot
            for key in self._cache.iterkeys():
                entry = self._load(key, self._cache.get(key))
                if entry is not None and platform in (None, entry.platform):
                    found.append(entry)
        return sorted(found, key=lambda e: (e.platform, e.name, e.key))

    def info(self) -> CacheInfo:
        counts = Counter(entry.platform for entry in self.entries())
        return CacheInfo(self.directory, int(self._cache.volume()), dict(sorted(counts.items())))

    def clear(self, platform: str | None = None) -> int:
        """Remove every entry (of one platform); return how many were removed."""
        if platform is None:
            return int(self._cache.clear(retry=True))
        removed = 0
        with self._cache.transact(retry=True):
            for key in list(self._cache.iterkeys()):
                entry = self._load(key, self._cache.get(key))
                if entry is not None and entry.platform == platform:
                    removed += bool(self._cache.delete(key))
        return removed

    def export(self, path: Path, platform: str | None = None) -> int:
        """Write the entries (of one platform) to `path` atomically; return how many."""
        return write_export(path, self.entries(platform))

    def import_files(self, paths: Sequence[Path]) -> int:
        """Import export files, all or nothing; return how many entries were added or changed.

        Every file is validated before anything is written. For a key present both in the
        cache and in a file, the entry computed last (by `time`) wins.
        """
        chosen: dict[str, tuple[Entry, Path, int]] = {}
        for path in paths:
            for index, entry in enumerate(read_file(path)):
                seen = chosen.get(entry.key)
                if seen is None:
                    chosen[entry.key] = (entry, path, index)
                    continue
                other, other_path, other_index = seen
                if other.hash != entry.hash:
                    raise UsageError(
                        f"{path}: entry {index} conflicts with {other_path} entry "
                        f"{other_index}: key {entry.key} has hash {other.hash.sri} there "
                        f"and {entry.hash.sri} here; nothing was imported")
                if entry.time > other.time:
                    chosen[entry.key] = (entry, path, index)
        written = 0
        with self._cache.transact(retry=True):  # one SQLite transaction: all or nothing
            for entry, _path, _index in chosen.values():
                current = self._load(entry.key, self._cache.get(entry.key))
                if current == entry or (current is not None and current.time > entry.time):
                    continue
                self._cache.set(entry.key, self._dump(entry))
                written += 1
        return written

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
