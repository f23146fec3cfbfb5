"""What a run works on: the selected sites of the targets, and a resolver session over them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from fodhash.cache.store import ResultCache, Results
from fodhash.config import Config, Platform, Target
from fodhash.errors import UsageError
from fodhash.files.patch import Transaction, apply_edits
from fodhash.files.place import Place, Unfaithful, check_copy
from fodhash.hashes.encoding import Hash
from fodhash.nix import process as nix
from fodhash.protocol import Resolver, Tree
from fodhash.protocol.state import Options, SiteRun
from fodhash.sites.json_file import read_source, sites_of, slot_any
from fodhash.sites.nix_file import Site, select
from fodhash.ui.progress import view


@dataclass
class Plan:
    selected: list[tuple[Target, Site]]
    sources: dict[Path, bytes]  # original bytes of every file holding a selected site
    located: dict[Path, list[Site]]  # every site of those files


def plan(targets: list[Target], platforms: Callable[[], list[str]],
         read: Callable[[Path], bytes] = read_source) -> Plan:
    """Locate and select every target's sites; any bad input fails here, before Nix runs.

    A target's sites are its file's and those of the JSON files it reads or fodhash.toml
    lists for it (fodhash.json_sites). A system-keyed attrset (or JSON object) with no entry
    for one of `platforms` gets an insertion point for it (a missing site); `platforms` is
    asked only when there is such an attrset. A file that two targets reach, directly and
    through a symlink, is one file with one set of sites.
    """
    sources: dict[Path, bytes] = {}
    located: dict[Path, list[Site]] = {}
    selected: list[tuple[Target, Site]] = []
    seen: set[tuple[Path, int]] = set()
    for target in targets:
        sites = sites_of(target, sources, located, read)
        if not sites:
            raise UsageError(
                f"{target.file}: no hash site found (no hash, outputHash, vendorHash, "
                "npmDepsHash, sha256, ... bound to a hash string or lib.fakeHash, in it or in "
                f"a JSON file it reads); check `file` (or `json`) of target {target.name!r}"
            )
        chosen = select(sites, target.site, f"target {target.name!r}")
        groups: dict[tuple[Path, str], list[Site]] = {}
        for site in chosen:
            if site.platform is not None:
                groups.setdefault((site.file, site.binding), []).append(site)
        for (file, binding), group in groups.items():
            have = {s.platform for s in located[file] if s.binding == binding}
            if len(group) < len(have):
                continue  # the selector names one platform's entry: add no other
            for system in platforms():
                slot = None if system in have else slot_any(sources[file], group, system)
                if slot is not None:
                    chosen.append(slot)
        for site in chosen:
            if (site.file, site.start) not in seen:
                seen.add((site.file, site.start))
                selected.append((target, site))
    return Plan(selected, sources, located)


def upstream_candidates(config: Config, targets: list[Target], work: Plan,
                        read: Callable[[Path], bytes]) -> list[tuple[Target, Site]]:
    """Every site of the other configured targets: a selected site's FOD may consume one of
    theirs, and a verdict must not hang on what the store holds of it (the resolver keeps
    only those some selected FOD consumes). A target that cannot be read is passed over."""
    names = {t.name for t in targets}
    seen = {(s.file, s.start) for _, s in work.selected}
    extra: list[tuple[Target, Site]] = []
    for target in config.targets.values():
        if target.name in names:
            continue
        try:
            every = sites_of(target, work.sources, work.located, read)
            sites = select(every, target.site, f"target {target.name!r}")
        except UsageError:
            continue
        for site in sites:
            if (site.file, site.start) not in seen:
                seen.add((site.file, site.start))
                extra.append((target, site))
    return extra


def known_sites(config: Config, located: dict[Path, list[Site]],
                sources: dict[Path, bytes] | None = None) -> list[tuple[str, Site]]:
    """Every site of every configured target, to name the file of a stale FOD outside a run
    (the files the plan read are not read again)."""
    known: list[tuple[str, Site]] = []
    read, seen = dict(sources or {}), dict(located)  # the run's own are left as they are
    for target in config.targets.values():
        try:
            sites = sites_of(target, read, seen)
        except UsageError:
            continue
        known += [(target.name, s) for s in sites]
    return known


@dataclass
class Session:
    """A finished run: the resolver's results and every file's bytes before and after."""

    platform: Callable[[], str]  # the system it evaluated for (asked of Nix lazily if local)
    resolver: Resolver
    plan: Plan
    finals: dict[Path, bytes]  # what each file holds (update) or would hold (dry run, check)


local_system = nix.current_system  # asked of Nix once per process


def platforms(config: Config, requested: list[str]) -> list[Platform | None]:
    """The platforms a run covers: `all` is every configured one; by default the local one,
    None when fodhash.toml configures none (the local system is then asked of Nix only if a
    system-keyed attrset needs it, which keeps the nothing-changed path fast)."""
    if not requested:
        if not config.platforms:
            return [None]
        return [config.platform(local_system(), local_system())]
    names: list[str] = []
    for name in requested:
        names += sorted(config.platforms) if name == "all" else [name]
    if not names:
        raise UsageError("--platform all: fodhash.toml has no [platforms.SYSTEM] tables")
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


def _sessions(targets: list[Target], config: Config, options: Options, err: Console,
              systems: list[Platform | None], place: Place,
              results: Results | None) -> list[Session]:
    sessions = []
    for asked in systems:
        platform = asked
        if platform is None and any("{system}" in r for t in targets
                                    for r in t.instantiation.flake_refs):
            platform = Platform(local_system())
        if platform is None:
            sessions.append(resolve(targets, config, options, err, local_system, place,
                                    results))
            continue
        if len(systems) > 1:
            err.print(f"[bold]{escape(platform.system)}[/]", highlight=False)
        covered = [platform.apply(t) for t in targets if platform.covers(t, local_system)]
        if covered:
            sessions.append(resolve(covered, config, options, err, constant(platform.system),
                                    place, results, platform))
    if not sessions:
        raise UsageError("no target can be evaluated for the platforms asked for")
    return sessions


def constant(value: str) -> Callable[[], str]:
    return lambda: value


def resolve(targets: list[Target], config: Config, options: Options, err: Console,
            system: Callable[[], str], place: Place, results: Results | None = None,
            platform: Platform | None = None) -> Session:
    """Plan, then run the protocol with live progress; files are restored on any failure.
    `targets` are `platform`'s already; the other targets' sites join the run built as
    theirs are (its build-args: an upstream FOD is of that system too)."""
    nix.require("nix-instantiate")
    work = plan(targets, lambda: [system()], place.read)
    extra = [(platform.apply(t) if platform else t, site)
             for t, site in upstream_candidates(config, targets, work, place.read)]
    place.check_sources(work.sources)
    tx = Transaction(place.recorder)
    trees = [Tree({str(path): tx.document(place.source(path, tree), data,
                                          guarded=not place.in_copy)
                   for path, data in work.sources.items()},
                  [place.target(t, tree) for t in targets])
             for tree in range(place.trees)]
    located = [s for sites in work.located.values() for s in sites]
    with ResultCache() as on_disk, tx.guard():
        resolver = Resolver(trees, work.selected, options,
                            known=known_sites(config, work.located, work.sources),
                            cache=results or on_disk, as_is=targets, prepare=place.materialize,
                            check_sentinels=check_copy(located) if place.in_copy else None,
                            extra=extra)
        with view(err, resolver.runs, options.checking) as events:
            resolver.run(events)
    edits = resolver.final_edits()
    finals = {path: apply_edits(data, edits.get(str(path), {}))
              for path, data in work.sources.items()}
    return Session(system, resolver, work, finals)


def platform_dependent(sessions: list[Session]) -> dict[tuple[Path, str], tuple[SiteRun, dict[str, Hash]]]:
    """Plain sites (not per-platform) whose true hash differs between the sessions' platforms."""
    truths: dict[tuple[Path, str], tuple[SiteRun, dict[str, Hash]]] = {}
    for session in sessions:
        for run in session.resolver.runs:
            if run.site.platform is None and run.new is not None:
                key = (run.site.file, run.site.attrpath)  # bytes may move between sessions
                truths.setdefault(key, (run, {}))[1][session.platform()] = run.new
    return {k: v for k, v in truths.items() if len(set(v[1].values())) > 1}
