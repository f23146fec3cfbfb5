"""`fodhash update`: plan the sites of the chosen targets, resolve them, patch, report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fodhash import nix, report
from fodhash.config import Config, Target
from fodhash.errors import UsageError
from fodhash.patch import Document, Transaction
from fodhash.resolve import Options, Resolver, SiteRun, Status
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
    documents: dict[str, Document] = {
        str(path): tx.document(path, data) for path, data in work.sources.items()
    }
    resolver = Resolver(targets, work.selected, documents, options, known=known_sites(config))
    with tx.guard():
        with view(err, resolver.runs) as events:
            runs = resolver.run(events)
        finals = {Path(key): doc.written or doc.original for key, doc in documents.items()}
        if dry_run:
            tx.restore()
    _report(runs, config.root, out=out, as_json=as_json, dry_run=dry_run,
            diffs=[report.diff(path, work.sources[path], data, config.root)
                   for path, data in finals.items()] if dry_run else [])
    return 1 if any(r.status is Status.FAILED for r in runs) else 0


def _report(runs: list[SiteRun], root: Path, *, out: Console, as_json: bool, dry_run: bool,
            diffs: list[str]) -> None:
    if as_json:
        doc = report.document(runs, root, system=nix.current_system(),
                              nix_version=nix.version(), dry_run=dry_run)
        out.file.write(json.dumps(doc, indent=2) + "\n")
        return
    report.table(out, runs, root)
    for text in diffs:
        if text:
            out.print(text, markup=False, highlight=False, end="")

