"""A run's sessions: the protocol over the plan, once per platform, with live progress.

Also where the platforms' results differ: plain sites whose true hash depends on the
platform (platform_dependent, for `update --split-platforms` and `check`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.cache.export import Entry
from fodhash.cache.located import Located
from fodhash.cache.store import ResultCache, Results
from fodhash.config import Config, Platform, Target
from fodhash.errors import FodhashError, NixError, UsageError
from fodhash.files.patch import ScratchError, Transaction, apply_edits
from fodhash.files.place import Place, Unfaithful
from fodhash.hashes.encoding import Hash
from fodhash.nix.calls import current_system, instantiate
from fodhash.nix.process import require
from fodhash.protocol.evaluate import check_copy
from fodhash.protocol.rounds import Resolver, Tree
from fodhash.protocol.state import Options, SiteRun, Status
from fodhash.run.plan import Plan, known_sites, plan, upstream_candidates
from fodhash.ui.plain import escape
from fodhash.ui.progress import view

if TYPE_CHECKING:
    from rich.console import Console


@dataclass
class Session:
    """A finished run: the resolver's results and every file's bytes before and after."""

    platform: Callable[[], str]  # the system it evaluated for (asked of Nix lazily if local)
    resolver: Resolver
    plan: Plan
    finals: dict[Path, bytes]  # what each file holds (update) or would hold (dry run, check)


local_system = current_system  # asked of Nix once per process


def platforms(config: Config, requested: list[str]) -> list[Platform | None]:
    """The platforms a run covers: `all` is every configured one and this machine's own
    (which needs no table to be evaluated and built here); by default the local one, None
    when fodhash.toml configures none (the local system is then asked of Nix only if a
    system-keyed attrset needs it, which keeps the nothing-changed path fast)."""
    if not requested:
        if not config.platforms:
            return [None]
        return [config.platform(local_system(), local_system())]
    names: list[str] = []
    for name in requested:
        names += sorted({*config.platforms, local_system()}) if name == "all" else [name]
    return [config.platform(name, local_system()) for name in dict.fromkeys(names)]


def resolve_all(targets: list[Target], config: Config, options: Options, err: Console,
                systems: list[Platform | None], place: Place,
                results: Results | None = None) -> list[Session]:
    """One session per platform, one after the other (each sees the previous one's edits).

    The protocol runs in the place's scratch copy; if the copy turns out not to evaluate as
    the repository does, everything runs again in place.
    """
    try:
        return _sessions(targets, config, options, err, systems, place, results)
    except Unfaithful as why:
        if not place.in_copy:
            raise
        place.fall_back(str(why))
        return _sessions(targets, config, options, err, systems, place, results)


class ThisRun:
    """The results of a run's earlier sessions, before the cache's (if `read`): a FOD that
    two platforms share, such as one of Nix's builtin fetchers (system `builtin`, the same
    derivation on every platform), is built once per run, even with --no-cache."""

    def __init__(self, read: bool) -> None:
        self.read = read
        self.fresh: dict[str, Entry] = {}
        self.backing: Results | None = None  # the cache of the session running now

    def get(self, key: str) -> Entry | None:
        if key in self.fresh:
            return self.fresh[key]
        return self.backing.get(key) if self.read and self.backing is not None else None

    def put(self, entry: Entry) -> None:
        self.fresh[entry.key] = entry
        if self.backing is not None:
            self.backing.put(entry)

    def count(self) -> int:
        known = self.backing.count() if self.read and self.backing is not None else 0
        return len(self.fresh) + known


def _sessions(targets: list[Target], config: Config, options: Options, err: Console,
              systems: list[Platform | None], place: Place,
              results: Results | None) -> list[Session]:
    sessions = []
    this_run = ThisRun(options.use_cache)
    options = replace(options, use_cache=True)  # `this_run` heeds --no-cache
    for asked in systems:
        platform = asked
        if platform is None and any("{system}" in r for t in targets
                                    for r in t.instantiation.flake_refs):
            platform = Platform(local_system())
        if platform is None:
            sessions.append(resolve(targets, config, options, err, local_system, place,
                                    results, this_run=this_run))
            continue
        if len(systems) > 1:
            err.print(f"[bold]{escape(platform.system)}[/]", highlight=False)
        covered = [platform.apply(t) for t in targets if platform.covers(t, local_system)]
        if covered:
            sessions.append(_platform_session(covered, config, options, err, platform, place,
                                              results, this_run, matrix=len(systems) > 1))
    if not sessions:
        raise UsageError("no target can be evaluated for the platforms asked for")
    return sessions


def _platform_session(targets: list[Target], config: Config, options: Options, err: Console,
                      platform: Platform, place: Place, results: Results | None,
                      this_run: ThisRun, *, matrix: bool) -> Session:
    """One platform's session. In a run over several platforms, a target Nix cannot evaluate
    for this one (a flake without packages for it, say) fails on this platform alone: its
    sites are reported failed with Nix's words, and the other targets are resolved."""
    system = constant(platform.system)
    try:
        return resolve(targets, config, options, err, system, place, results, platform,
                       this_run)
    except NixError:
        if not matrix:
            raise
        # Which targets do not evaluate as they are (asked only now: it costs evaluations).
        failing = {t.name: why for t in targets if (why := _evaluation_error(t)) is not None}
        if not failing:
            raise
    rest = [t for t in targets if t.name not in failing]
    session = (resolve(rest, config, options, err, system, place, results, platform, this_run)
               if rest
               else Session(system, Resolver([], [], options), Plan([], {}, {}), {}))
    for target in targets:
        if target.name in failing:
            for _, site in plan([target], lambda: [], place.read).selected:
                message = (f"does not evaluate for {platform.system}, so no hash can be "
                           f"computed for it there: {failing[target.name]}")
                run = SiteRun(target.name, site, len(session.resolver.runs),
                              Status.FAILED, message=message)
                session.resolver.runs.append(run)
                err.print(f"  failed {target.name}: {site.named(config.root)} ({message})",
                          markup=False, highlight=False)
    return session


def _evaluation_error(target: Target) -> str | None:
    """Nix's last word on why `target` does not evaluate as it is, or None if it does."""
    try:
        instantiate(target.instantiation)
    except NixError as error:
        return str(error).strip().splitlines()[-1].removeprefix("error: ")
    return None


def constant(value: str) -> Callable[[], str]:
    return lambda: value


def resolve(targets: list[Target], config: Config, options: Options, err: Console,
            system: Callable[[], str], place: Place, results: Results | None = None,
            platform: Platform | None = None, this_run: ThisRun | None = None) -> Session:
    """Plan, then run the protocol with live progress; files are restored on any failure.
    `targets` are `platform`'s already; the other targets' sites join the run built as
    theirs are (its build-args: an upstream FOD is of that system too)."""
    require("nix-instantiate")
    memo = Located()  # what was read of each file before, for the same bytes
    work = plan(targets, lambda: [system()], place.read, memo)
    extra = [(platform.apply(t) if platform else t, site)
             for t, site in upstream_candidates(config, targets, work, place.read, memo)]
    place.check_sources(work.sources)
    tx = Transaction(place.recorder)
    trees = [Tree({str(path): tx.document(place.source(path, tree), data,
                                          guarded=not place.in_copy)
                   for path, data in work.sources.items()},
                  [place.target(t, tree) for t in targets])
             for tree in range(place.trees)]
    located = [s for sites in work.located.values() for s in sites]

    def prepare() -> None:
        for tree in place.materialize():
            for doc in trees[tree].documents.values():
                doc.written = None  # the copy made now holds what this session began with

    with ResultCache() as on_disk, tx.guard():
        cache: Results = results or on_disk
        if this_run is not None:
            this_run.backing = cache
            cache = this_run
        resolver = Resolver(trees, work.selected, options,
                            known=known_sites(config, work.located, work.sources, memo),
                            cache=cache, as_is=targets, prepare=prepare,
                            check_sentinels=check_copy(located) if place.in_copy else None,
                            extra=extra)
        memo.keep()
        with view(err, resolver.runs, options.checking, config.root) as events:
            try:
                resolver.run(events)
            except ScratchError as error:
                raise ScratchError(f"{error}{computed(resolver.runs)}") from None
            except FodhashError as error:
                if not place.lost():
                    raise
                first = str(error).splitlines()[0]
                raise ScratchError(f"the scratch copy was deleted while Nix read it ({first}); "
                                   "every file of yours holds its original bytes; run again"
                                   f"{computed(resolver.runs)}") from None
    edits = resolver.final_edits()
    finals = {path: apply_edits(data, edits.get(str(path), {}))
              for path, data in work.sources.items()}
    if options.apply:
        place.keep(finals)
    return Session(system, resolver, work, finals)


def computed(runs: list[SiteRun]) -> str:
    """The hashes a stopped run computed, to write by hand (they are in the cache too,
    unless its disk is full)."""
    lines = [f"  {run.site.file}: {run.site.attrpath} (line {run.site.line}): "
             f"{run.site.render(run.new)}"
             for run in runs if run.new is not None and run.final_text() is not None]
    if not lines:
        return ""
    return ". The true hashes computed before it stopped, to write by hand:\n" + "\n".join(
        dict.fromkeys(lines))


def platform_dependent(sessions: list[Session]) -> dict[tuple[Path, str], tuple[SiteRun, dict[str, Hash]]]:
    """Plain sites (not per-platform) whose true hash differs between the sessions' platforms."""
    truths: dict[tuple[Path, str], tuple[SiteRun, dict[str, Hash]]] = {}
    for session in sessions:
        for run in session.resolver.runs:
            if run.site.platform is None and run.new is not None:
                key = (run.site.file, run.site.attrpath)  # bytes may move between sessions
                truths.setdefault(key, (run, {}))[1][session.platform()] = run.new
    return {k: v for k, v in truths.items() if len(set(v[1].values())) > 1}
