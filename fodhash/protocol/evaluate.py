"""Evaluate and map: instantiate the trees, read their closures, find each site's FODs by its
sentinel, and which FODs consume another pending site's.

With a scratch copy the protocol has several trees (fodhash.files.place): the sentinel tree
and the fake trees, identical but for the pending sites' literals. They are instantiated at
once, in parallel processes: one evaluation phase per round gives both the sentinel forms
(to map, key and pair) and the fake forms (to build). The first sentinel evaluation in a
copy also tells whether the copy evaluates as the repository does (check_copy).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from fodhash.cache import closures
from fodhash.errors import FodhashError
from fodhash.files.place import Unfaithful
from fodhash.nix import calls
from fodhash.nix.calls import Instantiation
from fodhash.nix.derivations import Derivation, read_closure
from fodhash.nix.process import NixTimeout
from fodhash.protocol.state import SiteRun
from fodhash.sites.site import Site

Graph = dict[str, Derivation]
T = TypeVar("T")


@dataclass(frozen=True)
class Evaluated:
    """One tree's evaluation: the derivations of the instantiations that evaluated, and the
    error of each one that did not (Nix stops a process at its first error, so one failing
    target never hides another's derivations)."""

    graph: Graph
    tops: dict[int, list[str]]  # top-level .drv paths, by instantiation index
    errors: dict[int, FodhashError] = field(default_factory=dict)  # by instantiation index

    @property
    def error(self) -> FodhashError | None:
        return next(iter(self.errors.values()), None)


def instantiate_trees(trees: Sequence[Sequence[Instantiation]], indexes: Iterable[int],
                      timeout: Callable[[], float | None],
                      env: Mapping[str, str] | None = None, *,
                      ahead: bool = False) -> list[Evaluated]:
    """Instantiate the instantiations `indexes` of every tree, all in parallel processes,
    and read each tree's closure. Errors are kept per instantiation, not raised. `ahead`
    (the files as they are): take what was started ahead (fodhash.nix.calls.start_ahead),
    and the closure read before (fodhash.cache.closures)."""
    indexes = list(indexes)
    jobs = [(t, i) for t in range(len(trees)) for i in indexes]
    results: dict[tuple[int, int], list[str] | FodhashError] = {}

    def one(job: tuple[int, int]) -> None:
        tree, index = job
        try:
            results[job] = calls.instantiate(trees[tree][index], timeout(), env, ahead=ahead)
        except NixTimeout:
            raise  # the whole run is over
        except FodhashError as error:
            results[job] = error

    if not jobs:
        pass  # every instantiation set aside (fodhash.protocol.rounds: one that failed)
    elif len(jobs) == 1:
        one(jobs[0])
    else:
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 2)) as pool:
            list(pool.map(one, jobs))
    evaluated = []
    for tree in range(len(trees)):
        outcome = {i: results[(tree, i)] for i in indexes}
        errors = {i: o for i, o in outcome.items() if isinstance(o, FodhashError)}
        tops = {i: o for i, o in outcome.items() if isinstance(o, list)}
        roots = sorted({path for paths in tops.values() for path in paths})
        evaluated.append(Evaluated(_closure(roots, kept=ahead) if roots else {}, tops, errors))
    return evaluated


def _closure(roots: list[str], *, kept: bool) -> Graph:
    """The closure of `roots`; with `kept`, the one kept from an earlier run, or read and
    kept for the next (a closure never changes: fodhash.cache.closures)."""
    if not kept:
        return read_closure(roots)
    graph = closures.load(roots)
    if graph is None:
        graph = read_closure(roots)
        closures.store(roots, graph)
    return graph


def map_sentinels(graph: Graph, pending: Iterable[SiteRun]) -> None:
    """Each pending site's FODs: those whose output hash is its sentinel."""
    by_hash = {run.sentinel: run for run in pending}
    for run in by_hash.values():
        run.drvs = []
    for drv in graph.values():
        if drv.output_hash in by_hash:
            by_hash[drv.output_hash].drvs.append(drv.path)


def owners_below(graph: Graph, owner: Mapping[str, T], roots: Iterable[str]) -> dict[str, frozenset[T]]:
    """For every derivation reachable from `roots`, the owners (sites, say) of the marked
    derivations in its closure, itself excluded. One pass over the graph, whatever the
    number of owners: no closure is walked per site. Iterative, for closures thousands deep."""
    below: dict[str, frozenset[T]] = {}
    for root in roots:
        stack: list[tuple[str, bool]] = [(root, False)]
        while stack:
            path, inputs_done = stack.pop()
            if path in below:
                continue
            drv = graph.get(path)
            inputs = drv.input_drvs if drv is not None else ()
            if inputs_done:
                found: set[T] = set()
                for dep in inputs:
                    found |= below.get(dep, frozenset())
                    if dep in owner:
                        found.add(owner[dep])
                below[path] = frozenset(found)
            else:
                stack.append((path, True))
                stack.extend((dep, False) for dep in inputs if dep not in below)
    return below


def upstream(graph: Graph, pending: Sequence[SiteRun]) -> dict[SiteRun, set[SiteRun]]:
    """For each pending site, the other pending sites whose FODs its FODs consume."""
    owner = {path: run for run in pending for path in run.drvs}
    below = owners_below(graph, owner, owner)
    return {run: set[SiteRun]().union(*(below[p] for p in run.drvs)) - {run} for run in pending}


def consumers(graph: Graph, marked: Iterable[str]) -> set[str]:
    """The derivations of `graph` that have one of `marked` in their closure."""
    below = owners_below(graph, {path: path for path in marked}, graph)
    return {path for path, found in below.items() if found}


def reach(graph: Graph, tops: Mapping[int, list[str]],
          runs: Sequence[SiteRun]) -> dict[int, set[SiteRun]]:
    """Which sites' FODs each instantiation evaluates (so that a later round instantiates
    only what holds the sites still pending)."""
    owner = {path: run for run in runs for path in run.drvs}
    below = owners_below(graph, owner, [p for paths in tops.values() for p in paths])
    return {index: {owner[p] for p in paths if p in owner}.union(*(below[p] for p in paths))
            for index, paths in tops.items()}


def needed(ups: Mapping[SiteRun, set[SiteRun]], runs: Iterable[SiteRun]) -> set[SiteRun]:
    """The runs a verdict depends on: every run that is not extra, and every extra one
    that such a run consumes, directly or through others."""
    keep = {run for run in runs if not run.extra}
    stack = list(keep)
    while stack:
        for up in ups.get(stack.pop(), set()):
            if up not in keep:
                keep.add(up)
                stack.append(up)
    return keep


def check_copy(located: Iterable[Site]) -> Callable[[Graph, list[SiteRun]], None]:
    """A check of the first sentinel evaluation in the copy: a site whose sentinel no FOD
    carries, while some FOD carries the site's own literal (or, for a placeholder, a fake),
    was evaluated from the user's file rather than the copy's, unless another site that
    holds no sentinel explains that hash."""
    sites = list(located)

    def check(graph: Graph, pending: list[SiteRun]) -> None:
        selected = {(r.site.file, r.site.start) for r in pending}
        others = [s for s in sites if (s.file, s.start) not in selected]
        explained = {s.current for s in others if s.current is not None}
        placeholder_elsewhere = any(s.current is None for s in others)
        hashes = {d.output_hash for d in graph.values() if d.output_hash is not None}
        for run in pending:
            if run.drvs:
                continue
            current = run.site.current
            if current is not None and current in hashes and current not in explained:
                raise Unfaithful(f"the copy evaluates {run.site} from the repository itself "
                                 "(an absolute path into it?)")
            placeholder = current is None and not run.site.is_missing
            if placeholder and any(h.is_fake for h in hashes) and not placeholder_elsewhere:
                raise Unfaithful(f"the copy evaluates {run.site} from the repository itself "
                                 "(an absolute path into it?)")

    return check
