"""The rounds of the protocol over its stages (the Resolver), each stage a module of fodhash.protocol:

- `state`: what a run knows of each site (statuses, options), and the events progress receives;
- `evaluate`: instantiate the trees the protocol writes into, read the closures, find each
  site's FODs by its sentinel, and which FODs consume another pending site's;
- `pairing`: find each fake-hash FOD's sentinel twin, hence its site;
- `build`: realise the fake-hash FODs, in lanes that never share an output path, and map
  every `got:` to its site by .drv path (`namesakes`: a derivation of its own for each FOD
  that shares its output path with another);
- `results`: the result cache: lookups before a build, entries after, the nothing-changed
  fast path.

Each round:
1. every pending site holds a unique sentinel in the sentinel tree and its canonical fake in
   the fake tree; the two trees are evaluated at once. The FODs whose output hash is a sentinel belong to
   those sites; a site whose sentinel is absent is not evaluated on this platform; a FOD
   that consumes another pending site's FOD waits for a later round;
2. the ready sites are keyed on their sentinel form and looked up in the cache; the rest
   are paired with their fake-hash twins and built at once (namesakes each under a
   derivation of its own: fodhash.protocol.namesakes), every `got:` mapped by .drv path;
3. the true hashes go into every tree; repeat until no site is pending.
So a round is one evaluation phase and one build phase. A site whose sentinel stops the
evaluation with a download's hash mismatch is an evaluation-time pin (`builtins.fetchTarball`,
niv, npins): the mismatch's other hash is its truth, from a real download (each evaluation
gets a fetcher cache of the run's own, so Nix cannot answer from an earlier download of the
same URL); it goes into every tree and the evaluation runs again, until no pin stops it. An
instantiation that fails for another reason fails the sites of its targets alone, with Nix's
message; every other target goes on. In place (one tree: the user's
files, under a journal) the fake form is evaluated after the sentinel form instead.
"""

from __future__ import annotations

import gc
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from fodhash.cache.export import Entry
from fodhash.cache.store import Results
from fodhash.config import Target
from fodhash.errors import FodhashError
from fodhash.files.patch import Document, Span, apply_edits, deferred_signals, moved_span
from fodhash.hashes.encoding import Hash
from fodhash.nix import calls
from fodhash.nix.calls import EvaluationError, merge, merge_group, together
from fodhash.nix.derivations import Derivation
from fodhash.nix.process import RESTORED, NixTimeout
from fodhash.protocol import evaluate, pairing
from fodhash.protocol.results import Lookups
from fodhash.protocol.state import FROM_CACHE, Events, Options, SiteRun, Status, not_evaluated, silent
from fodhash.sites.pins import maybe_pin, names_source, pin_key, pin_owner
from fodhash.sites.site import Site

if TYPE_CHECKING:
    from fodhash.protocol.build import Build, Builder

Graph = dict[str, Derivation]
SentinelCheck = Callable[[Graph, list[SiteRun]], None]
SENTINEL, FAKE = 0, 1  # the trees, by index


@dataclass(frozen=True)
class Tree:
    """A copy of the repository the protocol writes into: its files (by the user's path)
    and the targets as evaluated there."""

    documents: dict[str, Document]
    targets: Sequence[Target]


class Resolver:
    """Runs the protocol over the selected sites of some targets, for one platform.

    It owns nothing on disk: it writes the files through the trees' Documents and asks the
    cache through `cache`; its results are its SiteRuns. `as_is` (default: the sentinel
    tree's targets) is evaluated for the nothing-changed check, which writes nothing;
    `prepare` runs before the first write (it makes the copies), and again before every
    later one (a copy deleted since, with the cache folder, is made again);
    `check_sentinels` sees the first sentinel evaluation (it tells whether a copy evaluates
    as the repository does).
    """

    def __init__(self, trees: Sequence[Tree], selected: Sequence[tuple[Target, Site]],
                 options: Options, known: Iterable[tuple[str, Site]] = (),
                 cache: Results | None = None, *, as_is: Sequence[Target] | None = None,
                 prepare: Callable[[], None] = lambda: None,
                 check_sentinels: SentinelCheck | None = None,
                 extra: Sequence[tuple[Target, Site]] = ()) -> None:
        self.trees = list(trees)
        self.runs = [SiteRun(t.name, s, i) for i, (t, s) in enumerate(selected)]
        self.runs += [SiteRun(t.name, s, len(self.runs) + i, extra=True)
                      for i, (t, s) in enumerate(extra)]
        self.options = options
        self.known = list(known)
        self.lookups = Lookups(cache, options.use_cache)
        self.prepare = prepare
        self.prepared = False  # the copies were made: every write checks they still exist
        self.check_sentinels = check_sentinels
        self.events: Events = silent
        self.deadline = None if options.timeout is None else time.monotonic() + options.timeout
        self.whats = [merge([t.instantiation for t in tree.targets]) for tree in self.trees]
        targets = self.trees[SENTINEL].targets if self.trees else []
        self.as_is = merge([t.instantiation for t in (as_is if as_is is not None else targets)])
        self.build_args = {t.name: t.build_args for t, _ in extra}
        self.build_args |= {t.name: t.build_args for t in targets}
        self.reaches: dict[int, set[SiteRun]] = {}  # whose FODs each instantiation evaluates
        # The targets each instantiation evaluates, and those that failed for good.
        self.members = {i: {t.name for t in targets if merge_group(t.instantiation)
                            == merge_group(what)} for i, what in enumerate(self.whats[SENTINEL])}
        self.broken: set[int] = set()
        self._fetches: str | None = None  # the run's own fetcher cache (XDG_CACHE_HOME)
        self.evaluations = 0
        self.evaluated_in: float | None = None  # seconds of the last evaluation phase
        self.rounds = 0
        self._builder: Builder | None = None

    @property
    def builder(self) -> Builder:
        """The builder, made when the protocol first needs it: a run the fast path answers
        never loads the build modules (docs/performance.md)."""
        if self._builder is None:
            from fodhash.protocol.build import Builder  # noqa: PLC0415

            self._builder = Builder(jobs=self.options.jobs, events=self.events,
                                    set_status=self._set, remaining=self._remaining,
                                    known=self.known, reproducible=self.options.reproducible)
        return self._builder

    # ---- files and Nix ------------------------------------------------------------------

    def final_edits(self, texts: dict[SiteRun, str] | None = None) -> dict[str, dict[Span, str]]:
        """Per file, the spans to replace: `texts`, and the true hash of every resolved site."""
        edits: dict[str, dict[Span, str]] = defaultdict(dict)
        for run in self.runs:
            text = (texts or {}).get(run) or run.final_text()
            if text is not None:
                edits[str(run.site.file)][(run.site.start, run.site.end)] = text
        return edits

    def _write(self, tree: int, texts: dict[SiteRun, str]) -> None:
        """Write every file of `tree` as its original with exactly `texts` (and the true
        hash of every resolved site) applied."""
        edits = self.final_edits(texts)
        if self.prepared:
            self.prepare()  # a copy deleted since the last write is made again first
        for key, doc in self.trees[tree].documents.items():
            doc.write(edits.get(key, {}))

    def _remaining(self) -> float | None:
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise NixTimeout(f"fodhash ran over its {self.options.timeout:g} s --timeout; "
                             f"{RESTORED}")
        return left

    def _evaluate(self, pending: Iterable[SiteRun], trees: Sequence[int]) -> list[evaluate.Evaluated]:
        """One evaluation phase: the instantiations that hold the pending sites' FODs, in
        every tree of `trees` at once, each with the run's own fetcher cache: a pin's
        sentinel must be downloaded for real, never answered from an earlier download."""
        self.evaluations += 1
        wanted = set(pending)
        indexes = [i for i in range(len(self.whats[SENTINEL])) if i not in self.broken
                   and (i not in self.reaches or self.reaches[i] & wanted)]
        light = self.evaluated_in is not None and self.evaluated_in < evaluate.LIGHT
        evaluated = evaluate.instantiate_trees([self.whats[t] for t in trees], indexes,
                                               self._remaining, self._fetch_env(), light=light)
        self.evaluated_in = evaluated[0].seconds
        return evaluated

    def _fetch_env(self) -> dict[str, str]:
        """A fetcher cache of the run's own for Nix (removed at the end of the run)."""
        if self._fetches is None:
            self._fetches = tempfile.mkdtemp(prefix="fodhash-fetches-")
        return {"XDG_CACHE_HOME": self._fetches}

    def _set(self, run: SiteRun, status: Status, message: str = "") -> None:
        """A new status, with the message that explains it (none: an earlier one, such as
        "waits for ...", no longer holds)."""
        run.status = status
        run.message = message
        self.events.changed(run)

    # ---- the rounds ---------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """What the run cost: rounds, evaluation phases, FOD builds."""
        return {"rounds": self.rounds, "evaluations": self.evaluations,
                "builds": self._builder.count if self._builder is not None else 0}

    def run(self, events: Events | None = None) -> list[SiteRun]:
        """Resolve every site; files end with the true hashes or their original bytes."""
        self.events = events or silent
        if self._builder is not None:
            self._builder.events = self.events
        try:
            fast = self._unchanged()
            calls.discard_ahead()  # what the fast path did not take: before the protocol writes
            if not fast:
                gc.enable()  # off while fodhash loads (fodhash.entry); the protocol runs long
            if fast:
                self.rounds = 1
                self._finish()
                return self.runs
            self._cached_pins()
            pending = [r for r in self.runs if not r.status.done]
            if pending or any(r.final_text() is not None for r in self.runs):
                self.prepare()  # the copies, to resolve in or to write a cached pin into
                self.prepared = True
            while pending:
                self.rounds += 1
                pending = self._round(pending)
            self._store_pins()
            self._finish()
            return self.runs
        finally:
            if self._fetches is not None:
                shutil.rmtree(self._fetches, ignore_errors=True)

    def _round(self, pending: list[SiteRun]) -> list[SiteRun]:
        trees = self._write_forms(pending)
        evaluated = self._evaluate(pending, trees)
        evaluated, pending = self._resolve_pins(evaluated, pending)
        if evaluated[SENTINEL].errors:
            # Find the site whose sentinel breaks it, fail that one alone, and go on.
            self._isolate(evaluated[SENTINEL].errors, pending)
            return [r for r in pending if not r.status.done]
        if not pending:
            return []
        graph = evaluated[0].graph
        evaluate.map_sentinels(graph, pending)
        if self.rounds == 1 and self.check_sentinels is not None:
            self.check_sentinels(graph, pending)
        if self.rounds == 1:
            pending = self._keep_needed(graph, pending)
        self.reaches.update(evaluate.reach(graph, evaluated[0].tops, self.runs))
        for run in pending:
            if not run.drvs:
                self._set(run, Status.SKIPPED,
                          not_evaluated(run.site) if self.rounds == 1
                          else "no longer evaluated after the sites it depends on changed")
        pending = [r for r in pending if r.drvs]
        if not pending:
            return []
        ready = self._ready(graph, pending)
        if not ready:
            for run in pending:
                self._set(run, Status.FAILED, "its FOD depends on itself through other sites")
            return []
        unbuilt = self.lookups.resolve_ready(graph, ready, self._set)
        if not self.options.build:
            for run in unbuilt:
                self._set(run, Status.UNKNOWN, "not in the cache, and builds are off")
            unbuilt = []
        if unbuilt:
            fake = self._fake_forms(evaluated, unbuilt, pending)
            unbuilt = [r for r in unbuilt if not r.status.done]
            builds = self._builds(graph, fake, unbuilt)
            gots = self.builder.build(builds, lambda run: self.build_args[run.target])
            self._record(gots, graph)
        self._stop_dependents(pending)
        # Every ready site is done now, so each round makes progress and the loop ends.
        return [r for r in pending if not r.status.done]

    def _write_forms(self, pending: list[SiteRun]) -> list[int]:
        """Write each tree's form of the pending sites; the trees to evaluate."""
        self._write(SENTINEL, {r: r.sentinel_text() for r in pending})
        if len(self.trees) == 1:
            return [SENTINEL]
        self._write(FAKE, {r: r.fake_text() for r in pending})
        return [SENTINEL, FAKE]

    def _fake_forms(self, evaluated: list[evaluate.Evaluated], ready: list[SiteRun],
                    pending: list[SiteRun]) -> Graph:
        """The graph of the fake-hash forms of the ready sites: the fake tree of this phase,
        or, in place, one more evaluation of the one tree."""
        if len(evaluated) == 1:
            waiting = [r for r in pending if r not in ready]
            self._write(SENTINEL, {r: r.fake_text() for r in ready}
                        | {r: r.sentinel_text() for r in waiting})
            [fake] = self._evaluate(ready, [SENTINEL])
        else:
            fake = evaluated[FAKE]
        self._fail_unevaluated(fake.errors, ready, "with fake hashes, its target")
        return fake.graph

    # ---- evaluation-time pins and evaluation errors ---------------------------------------

    def _resolve_pins(self, evaluated: list[evaluate.Evaluated], pending: list[SiteRun]
                      ) -> tuple[list[evaluate.Evaluated], list[SiteRun]]:
        """Resolve every pin whose sentinel stopped an evaluation of the sentinel tree, write
        its truth into every tree and evaluate again, until no pin stops one (Nix stops at
        the first error, so a file with several pins takes one evaluation per pin)."""
        while True:
            by_sentinel = {run.sentinel: run for run in pending}
            found: dict[SiteRun, tuple[Hash, str]] = {}
            for error in evaluated[SENTINEL].errors.values():
                for pin in error.pins if isinstance(error, EvaluationError) else []:
                    owned = pin_owner(pin, by_sentinel.get)
                    if owned is not None:
                        run, truth = owned
                        found[run] = (truth, pin.source)
                        del by_sentinel[run.sentinel]  # a site takes its first pin's truth
            if not found:
                return evaluated, pending
            for run, (truth, source) in found.items():
                run.new, run.pin = truth, source
                run.seconds = 0.0 if run.started is None else time.monotonic() - run.started
                self._set(run, Status.OK if run.site.current == truth else Status.UPDATED)
            pending = [r for r in pending if not r.status.done]
            if not pending:
                return evaluated, pending
            evaluated = self._evaluate(pending, self._write_forms(pending))

    def _fail_unevaluated(self, errors: dict[int, FodhashError], runs: Sequence[SiteRun],
                          what: str) -> None:
        """The pending sites of each instantiation Nix could not evaluate fail, with Nix's
        message; no later phase evaluates it again. Other instantiations go on."""
        for index, error in errors.items():
            self.broken.add(index)
            for run in runs:
                if run.target in self.members.get(index, ()) and not run.status.done:
                    self._set(run, Status.FAILED, f"{what} did not evaluate: {error}")

    def _isolate(self, errors: dict[int, FodhashError], pending: list[SiteRun]) -> None:
        """For each instantiation that failed with the sentinels in place (for a reason
        other than a pin): if it fails as it is too, its sites fail with Nix's message; else
        the site whose sentinel breaks it is found by halving the suspects (one evaluation
        each) and fails alone, with Nix's message. Every call fails a site or sets aside an
        instantiation, so the rounds end."""
        for index, error in errors.items():
            suspects = [r for r in pending
                        if r.target in self.members.get(index, ()) and not r.status.done]
            as_is = self._fails(index, []) if suspects else error
            if as_is is not None:
                self._fail_unevaluated({index: as_is}, suspects, "its target, as it is,")
                continue
            group = suspects
            while len(group) > 1:
                half = group[: len(group) // 2]
                group = half if self._fails(index, half) is not None else group[len(half):]
            culprit = self._fails(index, group) or error
            self._set(group[0], Status.FAILED,
                      f"with a sentinel in this site, its target did not evaluate: {culprit}")

    def _fails(self, index: int, sentinels: list[SiteRun]) -> FodhashError | None:
        """The error of instantiation `index` of the sentinel tree with only `sentinels` in
        place (every other site as the run left it), unless it is one of their pins'. A
        pin that stops it with its own literal (a stale pin the sentinels' error hid) is
        resolved by that download, verified like any other, and the evaluation runs again."""
        mine = {r.sentinel: r for r in sentinels}
        while True:
            self._write(SENTINEL, {r: r.sentinel_text() for r in sentinels})
            self.evaluations += 1
            [evaluated] = evaluate.instantiate_trees([self.whats[SENTINEL]], [index],
                                                     self._remaining, self._fetch_env())
            error = evaluated.errors.get(index)
            pins = error.pins if isinstance(error, EvaluationError) else []
            if any(pin_owner(pin, mine.get) is not None for pin in pins):
                return None
            held = [r for r in self.runs if not r.status.done and r not in sentinels
                    and r.target in self.members.get(index, ())]
            found = False
            for pin in pins:
                owned = pin_owner(pin, partial(self._holder, held, pin.source))
                if owned is None:
                    continue
                holder, truth = owned
                holder.new, holder.pin = truth, pin.source
                self._set(holder, Status.UPDATED)
                found = True
            if not found:
                return error

    def _holder(self, held: list[SiteRun], source: str, wrote: Hash) -> SiteRun | None:
        """The one site of `held` that holds `wrote` and whose file names `source`, what a
        pin fetched; None for none or several."""
        holders = [r for r in held if r.site.current == wrote
                   and names_source(r.site, self._document(r.site), source)]
        return holders[0] if len(holders) == 1 else None

    def _document(self, site: Site) -> bytes:
        return self.trees[SENTINEL].documents[str(site.file)].original

    def _cached_pins(self) -> None:
        """Pins the cache answers for their file as it is (fodhash.sites.pins.pin_key): no
        download. Only a site shaped like a pin is asked."""
        if not self.lookups.can_answer:
            return
        for run in self.runs:
            if run.status.done or run.site.is_missing:
                continue
            source = self._document(run.site)
            if not maybe_pin(run.site, source):
                continue
            entry = self.lookups.pin(pin_key(run.site, source))
            if entry is None:
                continue
            run.new, run.pin, run.keys = entry.hash, entry.name, [pin_key(run.site, source)]
            if run.new == run.site.current:
                self._set(run, Status.OK, FROM_CACHE)
            else:
                self._set(run, Status.CACHED)

    def _store_pins(self) -> None:
        """The pins learnt from a download in this run, keyed on their file as it is and as
        the run leaves it (their own literal masked in both)."""
        final = self.final_edits()
        for run in self.runs:
            if run.pin is None or run.keys or not run.status.resolved:
                continue
            original = self._document(run.site)
            edits = {span: text for span, text in final.get(str(run.site.file), {}).items()
                     if span != (run.site.start, run.site.end)}
            keys = [pin_key(run.site, original)]
            span = moved_span((run.site.start, run.site.end), edits)
            if edits and span is not None:
                moved = replace(run.site, start=span[0], end=span[1])
                keys.append(pin_key(moved, apply_edits(original, edits)))
            run.keys = keys
            self.lookups.store_pin(run, keys)

    def _keep_needed(self, graph: Graph, pending: list[SiteRun]) -> list[SiteRun]:
        """Drop the extra sites no selected site's FOD consumes (unevaluated ones included):
        they are not this run's business, and are not reported."""
        mapped = [r for r in pending if r.drvs]
        keep = evaluate.needed(evaluate.upstream(graph, mapped), self.runs)
        self.runs = [r for r in self.runs if r in keep]
        return [r for r in pending if r in keep]

    def _ready(self, graph: Graph, pending: list[SiteRun]) -> list[SiteRun]:
        ups = evaluate.upstream(graph, pending)
        ready = []
        for run in pending:
            run.upstream = ups[run]
            if run.upstream:
                names = ", ".join(str(u.site) for u in run.upstream)
                self._set(run, Status.WAITING, f"waits for {names}")
            else:
                ready.append(run)
        return ready

    def _builds(self, graph: Graph, fake: Graph, ready: list[SiteRun]) -> list[Build]:
        """What to build for each ready site: its fake FODs, paired with their sentinel
        twins. A site whose fetcher would download without TLS verification is refused,
        not built."""
        twins = [(run, graph[p]) for run in ready for p in run.drvs]
        # A waiting site's fake FOD consumes a ready one's: never a candidate.
        marked = [p for p, d in fake.items() if _is_fake(d)]
        consuming = evaluate.consumers(fake, marked)
        candidates = [fake[p] for p in marked if p not in consuming]
        paired = pairing.pair(twins, candidates)
        both = [*paired.items(), *pairing.shared(twins, candidates)]
        from fodhash.protocol.build import Build  # noqa: PLC0415 (see `builder`)

        builds: list[Build] = []
        for run in ready:
            mine = [fake[p] for p, r in both if r is run]
            if len(mine) != len(run.drvs):
                self._set(run, Status.FAILED,
                          "could not find its FOD again with a fake hash; please report this")
            elif any(d.fetches_insecurely for d in mine):
                self._set(run, Status.FAILED,
                          "with the canonical fake for this hash form the fetcher would download "
                          "without TLS verification, so fodhash will not build it; write "
                          "lib.fakeHash into the site and run again")
            else:
                self._set(run, Status.QUEUED)
                builds += [Build(d, run) for d in mine]
        return builds

    def _record(self, gots: dict[SiteRun, list[Hash]], graph: Graph) -> None:
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
            if run in self.builder.differences:
                self._set(run, Status.NONDETERMINISTIC, self.builder.differences[run])
                continue
            referencing = self.builder.references.get(run)
            if referencing is not None and not self.options.allow_references:
                self._set(run, Status.REFERENCES, referencing)
                continue
            earlier = self.lookups.earlier(run)
            if earlier is not None:  # the same derivation, another hash: never `stale`
                self._set(run, Status.NONDETERMINISTIC,
                          nondeterministic(run, earlier, calls.version()))
                continue
            if referencing is None:  # a hash tied to store paths is never confirmed later
                self.lookups.explain(run, graph)
                self.lookups.store(run, graph)
                self.lookups.remember(run, graph)
            notes = [f"written with --allow-references: {referencing}"] if referencing else []
            if run in self.builder.once:
                notes.append(ONCE)
            self._set(run, Status.OK if run.site.current == run.new else Status.UPDATED,
                      "\n".join(notes))

    def _unchanged(self) -> bool:
        """The fast path for a repository where nothing changed since the last run: one
        evaluation of the files as they are, no write and no build, if every site's literal
        is its FODs' cached true hash. Not tried when the cache cannot answer."""
        if not self.lookups.can_answer:
            return False
        if any(run.site.current is None for run in self.runs):
            return False  # a placeholder always needs the protocol
        self.evaluations += 1
        whats = together(self.as_is)  # one process for them all where Nix allows it
        [evaluated] = evaluate.instantiate_trees([whats], range(len(whats)), self._remaining,
                                                 ahead=True)
        if evaluated.errors:
            return False  # the protocol tells which sites it stops, and why
        verdicts = self.lookups.unchanged(evaluated.graph, self.runs)
        if verdicts is None:
            return False
        pins: dict[SiteRun, str] = {}
        for run, keys in verdicts:
            source = self._document(run.site)
            if keys or not maybe_pin(run.site, source):
                continue
            # No FOD carries it: a pin, unless the cache says what this file's pin holds.
            key = pin_key(run.site, source)
            entry = self.lookups.pin(key)
            if entry is None or entry.hash != run.site.current:
                return False
            pins[run] = key
        keep = evaluate.needed(evaluate.upstream(evaluated.graph, self.runs), self.runs)
        self.runs = [r for r in self.runs if r in keep]
        for run, found in verdicts:
            if run not in keep:
                continue
            keys = [pins[run]] if run in pins else found
            run.keys = keys
            run.new = run.site.current if keys else None
            if keys:  # already true: confirmed by the cache, nothing written
                self._set(run, Status.OK, FROM_CACHE)
            else:
                self._set(run, Status.SKIPPED, not_evaluated(run.site))
        return True

    def _stop_dependents(self, pending: list[SiteRun]) -> None:
        """A site waiting for one that failed (or stays unknown) cannot be resolved either."""
        for run in pending:
            blocked = [u for u in run.upstream if u.status.refused or u.status is Status.UNKNOWN]
            if run.status is Status.WAITING and blocked:
                names = ", ".join(str(u.site) for u in blocked)
                status = Status.UNKNOWN if all(u.status is Status.UNKNOWN for u in blocked) \
                    else Status.FAILED
                self._set(run, status, f"depends on {names}, which was not resolved")

    def _finish(self) -> None:
        """Write the result into the sentinel tree (the one the place writes back from, or
        the user's files in place): the true hashes (update), or every original byte. The
        other trees are rewritten whole by their next write."""
        with deferred_signals():  # in place, these are the final writes: never cut short
            if self.options.apply:
                self._write(SENTINEL, {})
            else:
                docs = self.trees[SENTINEL].documents.values()
                if self.prepared:
                    self.prepare()
                for doc in docs:
                    doc.write({})


# --reproducible, for a FOD namesakes.copies could not copy faithfully.
ONCE = ("built once, not twice: its derivation cannot be copied faithfully (structured "
        "attributes, several outputs, or builds in another store), so --reproducible proves "
        "nothing for it")


def nondeterministic(run: SiteRun, earlier: Entry, nix_version: str) -> str:
    """Why a site whose FOD built to another hash than the cache holds for it is not stale."""
    assert run.new is not None
    # Another Nix can hash the same download differently (Nix's own git NAR change).
    other = (f" The cache's hash was computed by Nix {earlier.nix_version}, this one by Nix "
             f"{nix_version}: if the FOD fetches with Nix itself (builtins.fetchGit, "
             "fetchTree), that change may be Nix's, not the FOD's.") \
        if earlier.nix_version != nix_version else ""
    return (f"its FOD is not reproducible: this build gave {run.new.sri} ({_when(time.time())}), "
            f"and the cache holds {earlier.hash.sri} for the very same derivation (seen "
            f"{_when(earlier.time)}, Nix {earlier.nix_version}); whichever is written, the next "
            "build may differ again. Make the output deterministic (no timestamp, no .git "
            "folder, no unordered cache index), then `fodhash check --reproducible` proves it"
            + other)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _is_fake(drv: Derivation) -> bool:
    return drv.output_hash is not None and drv.output_hash.is_fake
