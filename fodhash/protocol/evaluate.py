"""Evaluate and map: instantiate the trees, read their closures, find each site's FODs by its
sentinel, and which FODs consume another pending site's.

With a scratch copy the protocol has several trees (fodhash.files.place): the sentinel tree
and the fake trees, identical but for the pending sites' literals. They are instantiated at
once (in parallel processes, or one process per file for all trees: `_across`): one
evaluation phase per round gives both the sentinel forms (to map, key and pair) and the
fake forms (to build). The first sentinel evaluation in a
copy also tells whether the copy evaluates as the repository does (check_copy).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
    seconds: float = 0.0  # the phase's, all trees at once

    @property
    def error(self) -> FodhashError | None:
        return next(iter(self.errors.values()), None)


def instantiate_trees(trees: Sequence[Sequence[Instantiation]], indexes: Iterable[int],
                      timeout: Callable[[], float | None],
                      env: Mapping[str, str] | None = None, *,
                      ahead: bool = False, light: bool = False) -> list[Evaluated]:
    """Instantiate the instantiations `indexes` of every tree, all at once (`_across`: which
    share a process), and read each tree's closure. Errors are kept per instantiation, not raised. `ahead`
    (the files as they are): take what was started ahead (fodhash.nix.calls.start_ahead),
    and the closure read before (fodhash.cache.closures). `light`: an earlier phase of the
    run took less than LIGHT, so the trees share processes even where a core stays idle."""
    start = time.monotonic()
    indexes = list(indexes)
    workers = os.cpu_count() or 2
    together = _across(trees, indexes, 1 if light else workers)
    jobs = _jobs(trees, indexes, together)
    results: dict[tuple[int, int], list[str] | FodhashError] = {}

    def separately(tree: int, index: int) -> None:
        try:
            results[tree, index] = calls.instantiate(trees[tree][index], timeout(), env,
                                                     ahead=ahead)
        except NixTimeout:
            raise  # the whole run is over
        except FodhashError as error:
            results[tree, index] = error

    def one(job: Job) -> None:
        tree, index = job
        if tree is not None:
            separately(tree, index)
            return
        try:
            split = _split(calls.instantiate(together[index], timeout(), env), len(trees))
        except NixTimeout:
            raise
        except FodhashError:
            split = None  # whose error? Nix stopped at the first: ask each tree alone
        if split is None:
            for tree in range(len(trees)):
                separately(tree, index)
        else:
            results.update({(tree, index): tops for tree, tops in enumerate(split)})

    if not jobs:
        pass  # every instantiation set aside (fodhash.protocol.rounds: one that failed)
    elif len(jobs) == 1:
        one(jobs[0])
    else:
        with ThreadPoolExecutor(max_workers=min(len(jobs), workers)) as pool:
            list(pool.map(one, jobs))
    evaluated = []
    for tree in range(len(trees)):
        outcome = {i: results[(tree, i)] for i in indexes}
        errors = {i: o for i, o in outcome.items() if isinstance(o, FodhashError)}
        tops = {i: o for i, o in outcome.items() if isinstance(o, list)}
        roots = sorted({path for paths in tops.values() for path in paths})
        evaluated.append(Evaluated(_closure(roots, kept=ahead) if roots else {}, tops, errors,
                                   time.monotonic() - start))
    return evaluated


Job = tuple[int | None, int]  # (tree, index) of an instantiation; tree None: every tree's


def _jobs(trees: Sequence[Sequence[Instantiation]], indexes: Sequence[int],
          together: Mapping[int, Instantiation]) -> list[Job]:
    """The processes of a phase in the order they start: flakes first. A flake's evaluation
    (locking it, copying its source into the store) is a phase's longest, and only as many
    processes run at once as there are cores: started last, it ran alone at the end of each
    of the example's phases (docs/performance.md)."""
    jobs: list[Job] = [*((None, i) for i in indexes if i in together),
                       *((t, i) for t in range(len(trees)) for i in indexes if i not in together)]
    return sorted(jobs, key=lambda job: not trees[job[0] or 0][job[1]].flake_refs)


# An evaluation phase shorter than this is mostly Nix starting and writing .drv files, which
# processes do one at a time: two 40 ms evaluations of the trees took 60-100 ms at once and
# 30-40 ms in one process (docs/performance.md). Longer ones evaluate (nixpkgs), a core each.
LIGHT = 0.2


def _across(trees: Sequence[Sequence[Instantiation]], indexes: Sequence[int],
            workers: int) -> dict[int, Instantiation]:
    """Instantiations evaluated for every tree in one Nix process (`nix-instantiate
    tree-0/f.nix tree-1/f.nix -A a`), by index: each process costs 20-40 ms of Nix's start
    and store lock, most of a small repository's evaluation (docs/performance.md). Only
    where that leaves no core idle that separate processes would use (one process evaluates
    the trees one after the other), only files (`nix path-info` of several flakes prints
    its paths sorted, not in order), and only arguments that mean the same whatever the
    working directory (the process runs in the first tree's)."""
    if len(trees) < 2:
        return {}
    merged: dict[int, Instantiation] = {}
    for index in indexes:
        whats = [tree[index] for tree in trees]
        first = whats[0]
        if (first.file is None or first.flake_refs or first.also
                or any(w.attrs != first.attrs or w.nix_args != first.nix_args
                       or w.file is None or w.flake_refs or w.also for w in whats)
                or not _cwd_free(first.nix_args)):
            continue
        merged[index] = replace(first, also=tuple(w.file for w in whats[1:] if w.file))
    jobs = len(merged) + (len(indexes) - len(merged)) * len(trees)
    return merged if jobs >= workers else {}


_INCLUDE = ("-I", "--include")
_URL = re.compile(r"[a-z][a-z0-9+.-]*:(//)?\S*")  # channel:x, https://x, flake:x


def _cwd_free(args: Sequence[str]) -> bool:
    """Whether Nix reads these arguments alike in any working directory: no relative path
    (`./x`, `x/y`, `-I dir`)."""
    for before, arg in zip(("", *args), args, strict=False):
        value = _URL.sub(" ", arg.split("=", 1)[-1] if before in _INCLUDE else arg)
        if before in _INCLUDE and value.strip() and not value.startswith("/"):
            return False
        for word in value.split():
            path = word.lstrip("(<[{\"'")
            if "/" in path and not path.startswith(("/", "<")):
                return False
    return True


def _split(tops: list[str], trees: int) -> list[list[str]] | None:
    """The top-level .drv paths of one process that evaluated the same instantiation in
    each tree, per tree: Nix prints them file after file, and the trees, identical but for
    hash literals, give as many derivations each, named alike in the same order. None where
    they do not (code that branches on a hash): then each tree is evaluated alone."""
    if len(tops) % trees:
        return None
    size = len(tops) // trees
    parts = [tops[t * size:(t + 1) * size] for t in range(trees)]
    names = [[_name(p) for p in part] for part in parts]
    return parts if all(n == names[0] for n in names[1:]) else None


def _name(drv: str) -> str:
    return drv.rsplit("/", 1)[-1].split("-", 1)[-1]


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
