"""`fodhash update`: plan the sites of the chosen targets, resolve them, patch, report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fodhash import nix, report
from fodhash.cache import ResultCache
from fodhash.config import Config, Target
from fodhash.errors import UsageError
from fodhash.patch import Transaction
from fodhash.resolve import Options, Resolver, Status
from fodhash.sites import Site, locate_in_bytes, read_nix_file, select
from fodhash.ui import view


@dataclass
class Plan:
    selected: list[tuple[Target, Site]]
    sources: dict[Path, bytes]  # original bytes of every file holding a selected site


def plan(targets: list[Target]) -> Plan:
    """Locate and select every target's sites; any bad input fails here, before Nix runs."""
    sources: dict[Path, bytes] = {}
    selected: list[tuple[Target, Site]] = []
    seen: set[tuple[Path, int]] = set()
    for target in targets:
        if target.file not in sources:
            sources[target.file] = read_nix_file(target.file)
        sites = locate_in_bytes(target.file, sources[target.file])
        if not sites:
            raise UsageError(
                f"{target.file}: no hash site found (no hash, outputHash, vendorHash, "
                "npmDepsHash, sha256, ... bound to a hash string or lib.fakeHash); "
                f"check `file` of target {target.name!r}"
            )
        for site in select(sites, target.site, f"target {target.name!r}"):
            if (site.file, site.start) not in seen:
                seen.add((site.file, site.start))
                selected.append((target, site))
    return Plan(selected, sources)


def known_sites(config: Config) -> list[tuple[str, Site]]:
    """Every site of every configured target, to name the file of a stale FOD outside a run."""
    known: list[tuple[str, Site]] = []
    for target in config.targets.values():
        try:
            known += [(target.name, s) for s in locate_in_bytes(target.file,
                                                                read_nix_file(target.file))]
        except UsageError:
            continue
    return known


def update(targets: list[Target], config: Config, *, out: Console, err: Console,
           dry_run: bool, as_json: bool, options: Options) -> int:
    nix.require("nix-instantiate")
    work = plan(targets)
    tx = Transaction()
    documents = {str(path): tx.document(path, data) for path, data in work.sources.items()}
    with ResultCache() as cache, tx.guard():
        resolver = Resolver(targets, work.selected, documents, options,
                            known=known_sites(config), cache=cache)
        with view(err, resolver.runs) as events:
            runs = resolver.run(events)
        finals = {Path(key): doc.written or doc.original for key, doc in documents.items()}
        if dry_run:
            tx.restore()
    if as_json:
        stats = {"rounds": resolver.rounds, "evaluations": resolver.evaluations,
                 "builds": resolver.builds}
        doc = report.document(runs, config.root, system=nix.current_system(),
                              nix_version=nix.version(), dry_run=dry_run, stats=stats)
        out.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        report.table(out, runs, config.root)
        for path, data in finals.items() if dry_run else ():
            out.print(report.diff(path, work.sources[path], data, config.root),
                      markup=False, highlight=False, end="")
    return 1 if any(r.status is Status.FAILED for r in runs) else 0
