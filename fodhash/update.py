"""`fodhash update`: resolve the sites of the chosen targets, patch them, report."""

from __future__ import annotations

import json
from dataclasses import replace

from rich.console import Console

from fodhash import nix, report
from fodhash.config import Config, Target
from fodhash.plan import resolve
from fodhash.resolve import Options, Status


def update(targets: list[Target], config: Config, *, out: Console, err: Console,
           dry_run: bool, as_json: bool, options: Options) -> int:
    session = resolve(targets, config, replace(options, apply=not dry_run), err)
    resolver, runs = session.resolver, session.resolver.runs
    if as_json:
        doc = report.document(runs, config.root, system=nix.current_system(),
                              nix_version=nix.version(), dry_run=dry_run, stats=resolver.stats)
        out.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        report.table(out, runs, config.root)
        for path, data in session.finals.items() if dry_run else ():
            out.print(report.diff(path, session.plan.sources[path], data, config.root),
                      markup=False, highlight=False, end="")
        err.print(report.summary([str(r.status) for r in runs], resolver.stats), highlight=False)
    return 1 if any(r.status is Status.FAILED for r in runs) else 0
