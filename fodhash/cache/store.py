"""The result cache: resolved hashes on disk per FOD and platform.

Keys are digests of the normalised FOD (docs/design.md, "Cache key"); values are JSON text, never
pickles, so the cache outlives changes to fodhash's classes. diskcache keeps it in SQLite,
which makes concurrent fodhash processes safe. Its entries are those of the export format
(fodhash.cache.export, docs/cache-format.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import diskcache  # type: ignore[import-untyped]

from fodhash.cache.export import Entry, entry_problem, parse_entry, read_file, write_export
from fodhash.errors import FodhashError, UsageError
from fodhash.files.dirs import DATABASE, cache_dir
from fodhash.nix.derivations import Derivation

log = logging.getLogger(__name__)
FORMS_VERSION = 1  # of the form records (ResultCache.forms)
FORMS_KEPT = 4  # hashes per site whose forms are kept


@dataclass(frozen=True)
class CacheInfo:
    location: Path
    size: int  # bytes on disk
    platforms: dict[str, int] = field(default_factory=dict)  # entries per platform

    @property
    def total(self) -> int:
        return sum(self.platforms.values())


def key_for(drv: Derivation) -> str:
    """The cache key of a FOD: the one place that defines it (docs/design.md, "Cache key").

    Compute it on the non-fake form of the derivation (sentinel or real hash): fetchers
    change their environment when the hash is a fake.
    """
    return drv.digest()


class Results(Protocol):
    """What the resolver needs of a cache: the on-disk one, or results read from files."""

    def get(self, key: str) -> Entry | None: ...
    def put(self, entry: Entry) -> None: ...
    def count(self) -> int: ...


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
        if entry_problem(raw) is not None:
            return None  # written by an incompatible fodhash: a miss, never a wrong hash
        return parse_entry(raw)

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
        problem = entry_problem(entry.to_json())
        if problem:
            raise ValueError(f"cache entry {entry.key!r} {problem}")
        try:
            self._cache.set(entry.key, self._dump(entry), retry=True)
        except (OSError, sqlite3.OperationalError) as error:
            log.warning("could not store %s's hash %s in the cache at %s (%s)", entry.name,
                        entry.hash.sri, self.directory, error)

    # ---- forms: what a site's FODs were when a hash of it was verified (drift) ----------
    # Kept beside the entries, under keys of their own that are never entries (no export
    # yet), versioned: a record of another version is ignored, never misread.

    @staticmethod
    def _form_key(site: str) -> str:
        return "form:" + hashlib.sha256(site.encode()).hexdigest()

    def forms(self, site: str) -> dict[str, Any]:
        """Per hash (SRI) verified for the site: {"time": ..., "forms": [...]}."""
        try:
            value = self._cache.get(self._form_key(site), retry=True)
        except sqlite3.DatabaseError as error:
            raise self._damaged(error) from None
        try:
            record = json.loads(value) if isinstance(value, str) else None
        except json.JSONDecodeError:
            return {}
        if not isinstance(record, dict) or record.get("version") != FORMS_VERSION:
            return {}
        hashes = record.get("hashes")
        return hashes if isinstance(hashes, dict) else {}

    def keep_forms(self, site: str, value: str, forms: list[dict[str, Any]], when: float) -> None:
        """Keep the forms of a site's FODs for one verified hash (the last few hashes)."""
        hashes = self.forms(site)
        if hashes.get(value, {}).get("forms") == forms:
            return
        hashes.pop(value, None)
        hashes[value] = {"time": when, "forms": forms}
        newest = sorted(hashes.items(), key=lambda item: float(item[1].get("time", 0)))
        kept = dict(newest[-FORMS_KEPT:])
        record = {"format": "fodhash-forms", "version": FORMS_VERSION, "hashes": kept}
        try:
            self._cache.set(self._form_key(site), json.dumps(record, sort_keys=True), retry=True)
        except (OSError, sqlite3.OperationalError) as error:
            log.warning("could not keep the form of %s in the cache (%s)", site, error)

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
