"""The resolution protocol: sentinels to map sites to FODs, canonical fakes to build, rounds.

See docs/design.md. Each round:
1. write a unique sentinel into every pending site and evaluate: the FODs whose output hash is
   a sentinel belong to those sites; a site whose sentinel is absent is not evaluated on
   this platform; a FOD that depends on another pending site's FOD waits for a later round;
2. write the canonical all-zero fake into the ready sites and evaluate again; pair each
   fake-hash FOD with its sentinel twin;
3. realise exactly those FOD .drv files in one `nix-store --realise --keep-going` call and
   map every `got:` to its site by .drv path; write the true hashes; repeat.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from fodhash import mismatch, nix
from fodhash.cache import Entry, Results, key_for
from fodhash.config import Target
from fodhash.drv import Derivation, closure, difference, read_closure
from fodhash.hashes import Hash
from fodhash.nix import Instantiation, NixTimeout
from fodhash.patch import Document, Span, deferred_signals
from fodhash.runs import Events, Options, SiteRun, Status, silent
from fodhash.sites import Site

SentinelCheck = Callable[[dict[str, Derivation], list["SiteRun"]], None]


class Resolver:
    """Runs the protocol over the selected sites of some targets, for one platform.

    It owns nothing on disk: it writes the files through their Documents (which point into
    a scratch copy, or journal every write in place) and asks the cache through `cache`; its
    results are its SiteRuns. `targets` are evaluated for the protocol (in the copy); `as_is`
    (default: the same) for the nothing-changed check, which writes nothing. `prepare` runs
    before the first write (it makes the copy); `check_sentinels` sees the first sentinel
    evaluation (it tells whether the copy evaluates as the repository does).
    """

    def __init__(self, targets: Sequence[Target], selected: Sequence[tuple[Target, Site]],
                 documents: dict[str, Document], options: Options,
                 known: Iterable[tuple[str, Site]] = (), cache: Results | None = None, *,
                 as_is: Sequence[Target] | None = None, prepare: Callable[[], None] = lambda: None,
                 check_sentinels: SentinelCheck | None = None) -> None:
        self.targets = list(targets)
        self.as_is = nix.merge([t.instantiation for t in as_is]) if as_is is not None else None
        self.prepare = prepare
        self.check_sentinels = check_sentinels
        self.runs = [SiteRun(t.name, s, i) for i, (t, s) in enumerate(selected)]
        self.build_args = {t.name: t.build_args for t in targets}
        self.documents = documents
        self.events: Events = silent
        self.options = options
        self.known = list(known)
        self.cache = cache
        self._nix_version: str | None = None
        self.deadline = None if options.timeout is None else time.monotonic() + options.timeout
        self.evaluations = 0
        self.instantiations = nix.merge([t.instantiation for t in targets])
        self.reaches: dict[Instantiation, set[SiteRun]] = {}  # whose FODs each one evaluates
        self._last_tops: dict[Instantiation, list[str]] = {}
        self.builds = 0  # FOD .drv files realised
        self._sentinel_graph: dict[str, Derivation] = {}
        self.rounds = 0

    # ---- files --------------------------------------------------------------------------

    def final_edits(self, texts: dict[SiteRun, str] | None = None) -> dict[str, dict[Span, str]]:
        """Per file, the spans to replace: `texts`, and the true hash of every resolved site."""
        edits: dict[str, dict[Span, str]] = defaultdict(dict)
        for run in self.runs:
            text = (texts or {}).get(run) or run.final_text()
            if text is not None:
                edits[str(run.site.file)][(run.site.start, run.site.end)] = text
        return edits

    def _write(self, texts: dict[SiteRun, str]) -> None:
        """Write every file as its original with exactly `texts` (plus final hashes) applied."""
        edits = self.final_edits(texts)
        for key, doc in self.documents.items():
            doc.write(edits.get(key, {}))

    # ---- Nix ----------------------------------------------------------------------------

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NixTimeout(f"fodhash ran over its {self.options.timeout:g} s --timeout; "
                             f"{nix.RESTORED}")
        return left

    def _evaluate(self, runs: Iterable[SiteRun],
                  whats: Sequence[Instantiation] | None = None) -> dict[str, Derivation]:
        """Instantiate what holds the FODs of `runs` (all, before the first evaluation) and
        read the closure; remember which instantiation reaches which site's FODs."""
        self.evaluations += 1
        wanted = set(runs)
        needed = [i for i in whats or self.instantiations
                  if i not in self.reaches or self.reaches[i] & wanted]
        tops = nix.instantiate_all(needed, timeout=self._remaining())
        graph = read_closure(sorted({t for ts in tops.values() for t in ts}))
        self._last_tops = tops
        return graph

    def _learn_reach(self, graph: dict[str, Derivation]) -> None:
        owner = {path: run for run in self.runs for path in run.drvs}
        for what, tops in self._last_tops.items():
            reach = set(tops).union(*(closure(graph, t) for t in tops))
            self.reaches[what] = {owner[p] for p in reach if p in owner}

    # ---- the protocol -------------------------------------------------------------------

    def _set(self, run: SiteRun, status: Status, message: str = "") -> None:
        run.status = status
        if message:
            run.message = message
        self.events.changed(run)

    def _map_sentinels(self, graph: dict[str, Derivation], pending: list[SiteRun]) -> None:
        by_hash = {run.sentinel: run for run in pending}
        for run in pending:
            run.drvs = []
        for drv in graph.values():
            if drv.output_hash in by_hash:
                by_hash[drv.output_hash].drvs.append(drv.path)

    def _ready(self, graph: dict[str, Derivation], pending: list[SiteRun]) -> list[SiteRun]:
        owner = {path: run for run in pending for path in run.drvs}
        ready = []
        for run in pending:
            upstream = {owner[p] for d in run.drvs for p in closure(graph, d) if p in owner}
            upstream.discard(run)
            run.upstream = upstream
            if upstream:
                names = ", ".join(str(u.site) for u in upstream)
                self._set(run, Status.WAITING, f"waits for {names}")
            else:
                ready.append(run)
        return ready

    def _pair_fakes(self, sentinel_graph: dict[str, Derivation], fake_graph: dict[str, Derivation],
                    ready: list[SiteRun]) -> dict[str, SiteRun]:
        """Pair each fake-hash FOD with the sentinel FOD it came from.

        By name and system first; where names repeat (fetchers call everything `source`),
        by the smallest difference between the derivations, ignoring what fetchers change
        for a fake hash.
        """
        twins = [(run, sentinel_graph[p]) for run in ready for p in run.drvs]
        fakes = [d for d in fake_graph.values() if d.output_hash is not None and d.output_hash.is_fake]
        candidates = sorted(
            (difference(twin, fake), i, j)
            for i, (_, twin) in enumerate(twins)
            for j, fake in enumerate(fakes)
            if twin.name == fake.name and twin.system == fake.system
            and twin.output_hash is not None and fake.output_hash is not None
            and twin.output_hash.algo is fake.output_hash.algo
        )
        paired: dict[str, SiteRun] = {}
        used_twins: set[int] = set()
        used_fakes: set[int] = set()
        for _, i, j in candidates:
            if i in used_twins or j in used_fakes:
                continue
            used_twins.add(i)
            used_fakes.add(j)
            paired[fakes[j].path] = twins[i][0]
        return paired

    def _outside_message(self, found: mismatch.Mismatch) -> str:
        name = found.path.split("-", 1)[-1].removesuffix(".drv")
        where = ""
        for target, site in self.known:
            if found.specified is not None and site.current == found.specified:
                where = (f" It is set at {site.file}:{site.line} ({site.attrpath}); "
                         f"run `fodhash update {target}`.")
                break
        else:
            where = " Update the file that sets it (fodhash update FILE) and run again."
        specified = found.specified.sri if found.specified else "?"
        return (f"FOD {name!r} ({found.path}), outside what this run updates, has a stale hash: "
                f"specified {specified}, got {found.got.sri}.{where}")

    @staticmethod
    def _waves(fakes: dict[str, SiteRun], graph: dict[str, Derivation]) -> list[list[str]]:
        """Split the builds so that no two in one `nix-store` call share an output path.

        FODs with the same name and fake share an output path; in one call Nix builds them
        one after another and polls the path's lock every 5 s (Nix 2.8). Successive calls
        build them back to back instead.
        """
        waves: list[list[str]] = []
        taken: list[set[str]] = []
        for path in fakes:
            outputs = set(graph[path].output_paths)
            for wave, used in zip(waves, taken, strict=True):
                if not outputs & used:
                    wave.append(path)
                    used.update(outputs)
                    break
            else:
                waves.append([path])
                taken.append(outputs)
        return waves

    def _build(self, fakes: dict[str, SiteRun], graph: dict[str, Derivation]) -> None:
        stale = nix.leftovers([o for path in fakes for o in graph[path].output_paths])
        if stale:
            nix.remove_leftovers(stale)
        for run in set(fakes.values()):
            run.started = time.monotonic()
            self._set(run, Status.BUILDING)
        gots: dict[SiteRun, list[Hash]] = defaultdict(list)
        for wave in self._waves(fakes, graph):
            by_args: dict[tuple[str, ...], list[str]] = defaultdict(list)
            for path in wave:
                by_args[self.build_args[fakes[path].target]].append(path)
            for build_args, paths in by_args.items():
                self._realise(paths, build_args, fakes, gots)
        for run, values in gots.items():
            if run.status.done:
                continue
            run.seconds = time.monotonic() - (run.started or 0.0)
            if len(set(values)) > 1:
                self._set(run, Status.FAILED,
                          "its hash is used by several derivations whose outputs differ: "
                          + ", ".join(g.sri for g in values))
                continue
            run.new = values[0]
            self._store(run)
            self._set(run, Status.OK if run.site.current == run.new else Status.UPDATED)

    def _realise(self, paths: list[str], build_args: tuple[str, ...], fakes: dict[str, SiteRun],
                 gots: dict[SiteRun, list[Hash]]) -> None:
        """One `nix-store --realise --keep-going`; every got: mapped to its site by .drv path."""
        jobs = self.options.jobs or len(paths)
        self.builds += len(paths)
        result = nix.realise(paths, jobs=jobs, on_line=self.events.log, nix_args=build_args,
                             timeout=self._remaining())
        failures = {f.path: f for f in mismatch.parse_failures(result.stdout)}
        refusals = {r.path: r for r in mismatch.parse_refusals(result.stdout)}
        unbuildable = mismatch.parse_unbuildable(result.stdout)
        outside: list[str] = []
        found_paths: set[str] = set()
        for found in mismatch.parse_mismatches(result.stdout):
            if found.path in fakes:
                gots[fakes[found.path]].append(found.got)
                found_paths.add(found.path)
            else:
                outside.append(self._outside_message(found))
        for path in paths:
            run = fakes[path]
            if path in found_paths or run.status.done:
                continue
            run.seconds = time.monotonic() - (run.started or 0.0)
            if path in unbuildable:
                self._set(run, Status.UNKNOWN,
                          f"no machine here builds {unbuildable[path]}: give that platform "
                          "`build-args` with a builder in fodhash.toml, or import its results "
                          "from a machine that can (fodhash cache import / fodhash apply)")
                continue
            if path in refusals:  # Nix 2.26: refused before the hash check, so no got: to write
                refusal, name = refusals[path], path.split("-", 1)[-1].removesuffix(".drv")
                what = f"the store path {refusal.example}" if refusal.example else "a store path"
                more = (refusal.count or 1) - 1
                self._set(run, Status.FAILED,
                          f"Nix refuses FOD {name!r} ({path}): its output references {what}"
                          + (f" and {more} more" if more else "") + ". A fixed-output "
                          "derivation's output must contain no store path: not in a file's "
                          "contents, a file's name or a symlink's target. Copy an input under a "
                          "name of its own (`cp ${./lock} $out/lock`, not `cp ${./lock} $out/`, "
                          "which names the copy after its store path), copy files instead of "
                          "linking to the store, and write no store path into a file (as patched "
                          "shebangs and wrappers do)")
                continue
            if path in failures:
                log = nix.build_log(path)
                message = f"the builder failed: {failures[path].message}"
                message += f"\nlast lines of its log:\n{log}" if log else ""
            elif outside:
                message = "\n".join(outside)
            elif result.ok:
                message = ("built with a fake hash without a mismatch: the fake's output "
                           "path is already valid in the store; fodhash cannot learn the hash")
            else:
                message = f"a dependency failed to build:\n{result.tail()}"
            self._set(run, Status.FAILED, message)

    def _from_cache(self, graph: dict[str, Derivation], ready: list[SiteRun]) -> list[SiteRun]:
        """Patch the ready sites whose FODs are all in the cache; the rest need a build.

        The key is taken from the sentinel form: a ready FOD consumes no sentinel, and a
        fetcher's environment is the same for a sentinel as for a real hash.
        """
        for run in ready:
            run.keys = [key_for(graph[p]) for p in run.drvs]
        if self.cache is None or not self.options.use_cache:
            return ready
        unbuilt = []
        for run in ready:
            entries = [self.cache.get(key) for key in run.keys]
            values = {e.hash for e in entries if e is not None}
            if None in entries or len(values) != 1:
                unbuilt.append(run)
                continue
            run.new = values.pop()
            self._set(run, Status.CACHED)
        return unbuilt

    def _store(self, run: SiteRun) -> None:
        if self.cache is None or run.new is None:
            return
        if self._nix_version is None:
            self._nix_version = nix.version()
        for path, key in zip(run.drvs, run.keys, strict=True):
            drv = self._sentinel_graph[path]
            self.cache.put(Entry(key=key, hash=run.new, platform=drv.system, name=drv.name,
                                 nix_version=self._nix_version, time=time.time()))

    def _unchanged(self) -> bool:
        """The fast path for a repository where nothing changed since the last run.

        Evaluate the files as they are: each FOD whose output hash is a site's literal
        belongs to it (every upstream hash is then real, so every key is final at once). If
        every such FOD is in the cache with exactly that hash, every site is correct: no
        write, no build, one evaluation. Otherwise nothing is concluded and the protocol runs.
        """
        if self.cache is None or not self.options.use_cache:
            return False
        if any(run.site.current is None for run in self.runs):
            return False  # a placeholder always needs the protocol
        graph = self._evaluate(self.runs, self.as_is)
        verdicts: list[tuple[SiteRun, list[str]]] = []
        for run in self.runs:
            keys = [key_for(d) for d in graph.values() if d.output_hash == run.site.current]
            entries = [self.cache.get(key) for key in keys]
            if any(e is None or e.hash != run.site.current for e in entries):
                return False
            verdicts.append((run, keys))
        for run, keys in verdicts:
            run.keys = keys
            run.new = run.site.current if keys else None
            status = Status.CACHED if keys else Status.SKIPPED
            self._set(run, status, "not evaluated on this platform" if run.new is None else "")
        return True

    @property
    def stats(self) -> dict[str, int]:
        """What the run cost: rounds of the protocol, Nix evaluations, FOD builds."""
        return {"rounds": self.rounds, "evaluations": self.evaluations, "builds": self.builds}

    def run(self, events: Events | None = None) -> list[SiteRun]:
        """Resolve every site; files end with the true hashes or their original bytes."""
        self.events = events or silent
        if self._unchanged():
            self.rounds = 1
            self._finish()
            return self.runs
        self.reaches.clear()  # learnt from sentinel forms only
        pending = [r for r in self.runs if not r.status.done]
        if pending:
            self.prepare()
        while pending:
            self.rounds += 1
            self._write({r: r.sentinel_text() for r in pending})
            sentinel_graph = self._evaluate(pending)
            self._map_sentinels(sentinel_graph, pending)
            if self.rounds == 1 and self.check_sentinels is not None:
                self.check_sentinels(sentinel_graph, pending)
            self._learn_reach(sentinel_graph)
            for run in pending:
                if not run.drvs:
                    reason = ("not evaluated on this platform" if self.rounds == 1
                              else "no longer evaluated after the sites it depends on changed")
                    self._set(run, Status.SKIPPED, reason)
            pending = [r for r in pending if r.drvs]
            if not pending:
                break
            self._sentinel_graph = sentinel_graph
            ready = self._ready(sentinel_graph, pending)
            if not ready:
                for run in pending:
                    self._set(run, Status.FAILED, "its FOD depends on itself through other sites")
                break
            waiting = [r for r in pending if r not in ready]
            ready = self._from_cache(sentinel_graph, ready)
            if not self.options.build:
                for run in ready:
                    self._set(run, Status.UNKNOWN, "not in the cache, and builds are off")
                ready = []
            if not ready:  # everything ready was cached: on to the sites that waited for it
                self._stop_dependents(pending)
                pending = [r for r in pending if not r.status.done]
                continue
            texts = {r: r.fake_text() for r in ready} | {r: r.sentinel_text() for r in waiting}
            self._write(texts)
            fake_graph = self._evaluate(ready)
            fakes = self._pair_fakes(sentinel_graph, fake_graph, ready)
            for run in ready:
                mine = [p for p, r in fakes.items() if r is run]
                insecure = [p for p in mine if fake_graph[p].fetches_insecurely]
                if len(mine) != len(run.drvs):
                    self._set(run, Status.FAILED,
                              "could not find its FOD again with a fake hash; please report this")
                elif insecure:
                    self._set(run, Status.FAILED,
                              "with the canonical fake for this hash form the fetcher would "
                              "download without TLS verification, so fodhash will not build it; "
                              "write lib.fakeHash into the site and run again")
                else:
                    self._set(run, Status.QUEUED)
            fakes = {p: r for p, r in fakes.items() if r.status is Status.QUEUED}
            if fakes:
                self._build(fakes, fake_graph)
            self._stop_dependents(pending)
            # Every ready site is done now, so each round makes progress and the loop ends.
            pending = [r for r in pending if not r.status.done]
        self._finish()
        return self.runs

    def _stop_dependents(self, pending: list[SiteRun]) -> None:
        """A site waiting for one that failed (or stays unknown) cannot be resolved either."""
        for run in pending:
            blocked = [u for u in run.upstream if u.status in (Status.FAILED, Status.UNKNOWN)]
            if run.status is Status.WAITING and blocked:
                names = ", ".join(str(u.site) for u in blocked)
                status = Status.UNKNOWN if all(u.status is Status.UNKNOWN for u in blocked) \
                    else Status.FAILED
                self._set(run, status, f"depends on {names}, which was not resolved")

    def _finish(self) -> None:
        """Write the result: the true hashes (update), or every original byte (check)."""
        with deferred_signals():  # in place, these are the final writes: never cut short
            if self.options.apply:
                self._write({})
            else:
                for doc in self.documents.values():
                    doc.write({})
