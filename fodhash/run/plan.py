"""What a run works on: the selected sites of the targets, and the other targets' sites they may consume."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fodhash.config import Config, Target
from fodhash.errors import UsageError
from fodhash.sites.read import read_nix_file, read_source
from fodhash.sites.site import Site, select
from fodhash.sites.syntax import refuse_invalid
from fodhash.sites.target import Memo, sites_of, slot_any


@dataclass
class Plan:
    selected: list[tuple[Target, Site]]
    sources: dict[Path, bytes]  # original bytes of every file holding a selected site
    located: dict[Path, list[Site]]  # every site of those files


def plan(targets: list[Target], platforms: Callable[[], list[str]],
         read: Callable[[Path], bytes] = read_source, memo: Memo | None = None) -> Plan:
    """Locate and select every target's sites; any bad input fails here, before Nix runs.

    A target's sites are its file's and those of the JSON files it reads or fodhash.toml
    lists for it (fodhash.sites.target). A system-keyed attrset (or JSON object) with no entry
    for one of `platforms` gets an insertion point for it (a missing site); `platforms` is
    asked only when there is such an attrset. A file that two targets reach, directly and
    through a symlink, is one file with one set of sites.
    """
    sources: dict[Path, bytes] = {}
    located: dict[Path, list[Site]] = {}
    selected: list[tuple[Target, Site]] = []
    seen: set[tuple[Path, int]] = set()
    for target in targets:
        sites = sites_of(target, sources, located, read, memo)
        check_entry_points(target, sources, memo)
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


def entry_points(target: Target) -> list[Path]:
    """The Nix files Nix starts evaluating a target from: its `build` file (a folder's
    default.nix), or the flake.nix of a flake reference to a folder of the repository."""
    what = target.instantiation
    files = [what.file] if what.file is not None else [
        what.cwd / ref.split("#", 1)[0] / "flake.nix" for ref in what.flake_refs
        if ref.startswith(".")]
    return [f / "default.nix" if f.is_dir() else f for f in files]


def check_entry_points(target: Target, sources: dict[Path, bytes],
                       memo: Memo | None = None) -> None:
    """A syntax error in an entry point that holds no site (the files of sites are judged
    when their sites are located) is a usage error too, with Nix's own message, before Nix
    evaluates anything. A file `memo` knows the grammar reads whole needs no judge."""
    for file in entry_points(target):
        if file not in sources and file.is_file():
            source = read_nix_file(file)
            if memo is None or not memo.whole(file, source):
                refuse_invalid(file, source)


def upstream_candidates(config: Config, targets: list[Target], work: Plan,
                        read: Callable[[Path], bytes],
                        memo: Memo | None = None) -> list[tuple[Target, Site]]:
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
            every = sites_of(target, work.sources, work.located, read, memo)
            sites = select(every, target.site, f"target {target.name!r}")
        except UsageError:
            continue
        for site in sites:
            if (site.file, site.start) not in seen:
                seen.add((site.file, site.start))
                extra.append((target, site))
    return extra


def known_sites(config: Config, located: dict[Path, list[Site]],
                sources: dict[Path, bytes] | None = None,
                memo: Memo | None = None) -> list[tuple[str, Site]]:
    """Every site of every configured target, to name the file of a stale FOD outside a run
    (the files the plan read are not read again)."""
    known: list[tuple[str, Site]] = []
    read, seen = dict(sources or {}), dict(located)  # the run's own are left as they are
    for target in config.targets.values():
        try:
            sites = sites_of(target, read, seen, memo=memo)
        except UsageError:
            continue
        known += [(target.name, s) for s in sites]
    return known
