"""The result cache in the protocol: lookups before a build, entries after, and the fast path
for a repository where nothing changed.

A key is computed on the sentinel (or real) form of a FOD, never the fake one: fetchers change
their environment for a fake hash (docs/design.md, "Cache key").
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from fodhash.cache.export import Entry
from fodhash.cache.store import ResultCache, Results, key_for
from fodhash.hashes.encoding import Hash
from fodhash.nix import calls
from fodhash.nix.derivations import Derivation
from fodhash.protocol import drift
from fodhash.protocol.state import FROM_CACHE, SiteRun, Status

Graph = dict[str, Derivation]
PIN_PLATFORM = "builtin"  # Nix's name for what runs the same everywhere (builtin:fetchurl)


class Lookups:
    def __init__(self, cache: Results | None, use: bool) -> None:
        self.cache = cache
        self.use = use and cache is not None
        self._nix_version: str | None = None

    @property
    def can_answer(self) -> bool:
        """False when a lookup cannot find anything (no cache, or an empty one): then no
        evaluation is spent on the fast path."""
        return self.use and self.cache is not None and self.cache.count() > 0

    def resolve_ready(self, graph: Graph, ready: Sequence[SiteRun],
                      set_status: Callable[..., None]) -> list[SiteRun]:
        """Key every ready site (its sentinel form is final: it consumes no pending site) and
        patch those whose FODs are all cached; return the rest, which need a build."""
        for run in ready:
            run.keys = [key_for(graph[p]) for p in run.drvs]
        if not self.use or self.cache is None:
            return list(ready)
        unbuilt = []
        for run in ready:
            entries = [self.cache.get(key) for key in run.keys]
            values = {e.hash for e in entries if e is not None}
            if None in entries or len(values) != 1:
                unbuilt.append(run)
                continue
            run.new = values.pop()
            self.explain(run, graph)
            self.remember(run, graph)
            if run.new == run.site.current:  # already true: the cache confirms it
                set_status(run, Status.OK, FROM_CACHE)
            else:
                set_status(run, Status.CACHED)
        return unbuilt

    def earlier(self, run: SiteRun) -> Entry | None:
        """An entry the cache holds for one of the site's FODs (the very same derivation)
        with another hash than this run built: proof the FOD is not reproducible. Asked
        even with --no-cache: a lookup skipped is not a fact forgotten."""
        cache = self._behind()
        if cache is None or run.new is None:
            return None
        for key in run.keys:
            entry = cache.get(key)
            if entry is not None and entry.hash != run.new:
                return entry
        return None

    def _behind(self) -> Results | None:
        """The cache itself, even where this run's own results stand in front of it and hide
        it (fodhash.run.sessions.ThisRun, under --no-cache): what the cache knows is
        evidence even when it may not answer."""
        backing = getattr(self.cache, "backing", None)
        return backing if backing is not None else self.cache

    def _forms_cache(self) -> ResultCache | None:
        cache = self._behind()
        return cache if isinstance(cache, ResultCache) else None

    @staticmethod
    def _site_id(run: SiteRun, graph: Graph) -> str:
        system = graph[run.drvs[0]].system if run.drvs else ""
        return f"{run.site.file}\0{run.site.attrpath}\0{system}"

    def remember(self, run: SiteRun, graph: Graph) -> None:
        """Keep the form of the site's FODs for its verified hash (`new`)."""
        cache = self._forms_cache()
        if cache is None or run.new is None or not run.drvs:
            return
        cache.keep_forms(self._site_id(run, graph), run.new.sri,
                         [drift.form(graph[p]) for p in run.drvs], time.time())

    def explain(self, run: SiteRun, graph: Graph) -> None:
        """A stale site: what changed in its FODs since the hash its literal holds was
        verified (`changed`), if this cache kept their form then."""
        cache = self._forms_cache()
        current = run.site.current
        if cache is None or current is None or run.new == current or not run.drvs:
            return
        kept = cache.forms(self._site_id(run, graph)).get(current.sri)
        if not isinstance(kept, dict) or not isinstance(kept.get("forms"), list):
            return
        run.changed = drift.changes(kept["forms"], [drift.form(graph[p]) for p in run.drvs])
        run.verified = float(kept.get("time", 0)) or None

    def store(self, run: SiteRun, graph: Graph) -> None:
        if self.cache is None or run.new is None:
            return
        if self._nix_version is None:
            self._nix_version = calls.version()
        for path, key in zip(run.drvs, run.keys, strict=True):
            drv = graph[path]
            self.cache.put(Entry(key=key, hash=run.new, platform=drv.system, name=drv.name,
                                 nix_version=self._nix_version, time=time.time()))

    def pin(self, key: str) -> Entry | None:
        """The cached true hash of a pin (fodhash.sites.pins.pin_key), if the cache may answer."""
        return self.cache.get(key) if self.use and self.cache is not None else None

    def store_pin(self, run: SiteRun, keys: Sequence[str]) -> None:
        """A pin's true hash, learnt from a real download in this run, under each of `keys`.
        Its platform is `builtin`: a download is the same on every platform."""
        if self.cache is None or run.new is None:
            return
        if self._nix_version is None:
            self._nix_version = calls.version()
        for key in dict.fromkeys(keys):
            self.cache.put(Entry(key=key, hash=run.new, platform=PIN_PLATFORM,
                                 name=run.pin or str(run.site), nix_version=self._nix_version,
                                 time=time.time()))

    def unchanged(self, graph: Graph, runs: Sequence[SiteRun]) -> list[tuple[SiteRun, list[str]]] | None:
        """Whether the files, evaluated as they are, hold only cached true hashes: each FOD
        whose output hash is a site's literal belongs to it (every upstream hash is then
        real, so every key is final). If so, each site's FODs go into its `drvs` and its
        keys are returned; None otherwise."""
        if self.cache is None:
            return None
        by_hash: dict[Hash, list[Derivation]] = defaultdict(list)
        for drv in graph.values():
            if drv.output_hash is not None:
                by_hash[drv.output_hash].append(drv)
        verdicts = []
        for run in runs:
            current = run.site.current
            drvs = by_hash.get(current, []) if current else []
            keys = [key_for(d) for d in drvs]
            entries = [self.cache.get(key) for key in keys]
            if any(e is None or e.hash != current for e in entries):
                return None
            run.drvs = [d.path for d in drvs]
            verdicts.append((run, keys))
        return verdicts
