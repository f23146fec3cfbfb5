"""`fodhash update`: resolve the sites of the chosen targets, patch them, report."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.config import Config, Target
from fodhash.errors import UsageError
from fodhash.files.patch import Transaction
from fodhash.files.place import Place
from fodhash.files.writeback import Outcome, write_back
from fodhash.nix import calls
from fodhash.protocol.state import Options, Status
from fodhash.run.sessions import Session, platform_dependent, platforms, resolve_all
from fodhash.sites.nix_file import split_text, system_expression
from fodhash.sites.read import is_json
from fodhash.ui import report

if TYPE_CHECKING:
    from rich.console import Console


def write_results(place: Place, sessions: list[Session], err: Console) -> list[Outcome]:
    """The one write into the user's files; each file that could not be written is named,
    with why, and with the hashes to write into it by hand. Every file's outcome."""
    outcomes = write_back(place.changes())
    for outcome in (o for o in outcomes if o.problem):
        path = outcome.change.path
        hashes = [f"  {run.site.attrpath} (line {run.site.line}): {run.site.render(run.new)}"
                  for session in sessions for run in session.resolver.runs
                  if run.site.file == path and run.final_text() is not None and run.new]
        err.print(f"{path}: not written, {outcome.problem}; it holds its original bytes. "
                  "The true hashes to write into it:\n" + "\n".join(dict.fromkeys(hashes)),
                  markup=False, highlight=False)
    return outcomes


def _record(place: Place, sessions: list[Session], config: Config, err: Console, *,
            commit: bool, patch: Path | None) -> list[Outcome]:
    """Write the files (and commit exactly those), or write the patch and leave them."""
    from fodhash.commands import record  # noqa: PLC0415 (--commit and --patch only)

    if not place.in_copy:
        raise record.RecordError("fodhash edited the files in place (see above): they hold the "
                                 "true hashes; nothing was " + ("committed" if commit else
                                                                "written to the patch"))
    text = record.message(record.changed_runs(r for s in sessions for r in s.resolver.runs),
                          config.root)
    if patch is not None:
        changes = [record.FileChange(c.path, c.original, c.final) for c in place.changes()
                   if c.final != c.original]
        record.write_patch(patch, changes, text, config.root)
        err.print(f"wrote {patch}: {len(changes)} file(s); the files are unchanged "
                  f"(apply it with `git apply {patch}`, or `git am {patch}` to commit it)"
                  if changes else f"wrote {patch} empty: nothing is stale", highlight=False)
        return []
    outcomes = write_results(place, sessions, err)
    written = [record.FileChange(o.change.path, o.change.original, o.change.final)
               for o in outcomes if o.written]
    if any(o.problem for o in outcomes):
        err.print("not committed: a file could not be written (above)", highlight=False)
    elif written:
        sha = record.commit(written, text, config.root)
        err.print(f"committed {sha[:12]}: {len(written)} file(s)", highlight=False)
    else:
        err.print("nothing to commit: no hash was stale", highlight=False)
    return outcomes


def update(targets: list[Target], config: Config, *, out: Console, err: Console,
           dry_run: bool, as_json: bool, options: Options, systems: list[str],
           place: Place, commit: bool = False, patch: Path | None = None) -> int:
    chosen = platforms(config, systems)
    sessions = resolve_all(targets, config, replace(options, apply=not dry_run), err, chosen,
                           place)
    if dry_run:
        outcomes = []
    elif commit or patch is not None:
        outcomes = _record(place, sessions, config, err, commit=commit, patch=patch)
    else:
        outcomes = write_results(place, sessions, err)
    unwritten = [o for o in outcomes if o.problem]
    labelled = len(sessions) > 1
    rows = [(s.platform() if labelled else "", run) for s in sessions for run in s.resolver.runs]
    stats = {k: sum(s.resolver.stats[k] for s in sessions) for k in sessions[0].resolver.stats}
    if as_json:
        doc = report.document(rows, config.root, system=calls.current_system(),
                              nix_version=calls.version(), dry_run=dry_run, stats=stats)
        doc["unwritten"] = [{"file": report.relative(o.change.path, config.root),
                             "problem": o.problem} for o in unwritten]
        kept = {o.change.path for o in unwritten}
        for site, (_, run) in zip(doc["sites"], rows, strict=True):
            if Path(os.path.realpath(run.site.file)) in kept:
                site["written"] = None  # its file keeps its text (docs/json.md)
        out.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        report.table(out, rows, config.root, title=report.DRY_RUN if dry_run else None)
        report.drift(out, rows, config.root)
        for session in sessions if dry_run else ():
            for path, data in session.finals.items():
                out.print(report.diff(path, session.plan.sources[path], data, config.root),
                          markup=False, highlight=False, end="")
        err.print(report.summary([str(r.status) for _, r in rows], stats, dry_run=dry_run),
                  highlight=False)
        for line in report.left(rows, config.root):
            err.print(line, markup=False, highlight=False)
    differing = platform_dependent(sessions)
    for run, hashes in differing.values():
        err.print(f"{run.site.named(config.root)}: the true hash differs between platforms ("
                  + ", ".join(f"{s} {h.sri}" for s, h in sorted(hashes.items()))
                  + f"); one string cannot hold both: `fodhash update --split-platforms "
                  f"{run.target}` makes it a per-platform attrset", markup=False, highlight=False)
    # A site no machine here can compute is not resolved: never a silent success.
    failed = any(r.status.refused or r.status is Status.UNKNOWN for _, r in rows)
    return 1 if differing or failed or unwritten else 0


def split_platforms(targets: list[Target], config: Config, *, out: Console, err: Console,
                    options: Options, systems: list[str], place: Place) -> int:
    """Rewrite each plain site whose true hash differs between platforms into a per-platform
    attrset selected by the host system expression the file already uses; then resolve."""
    chosen = platforms(config, systems or ["all"])
    if len(chosen) < 2:
        raise UsageError("--split-platforms compares two or more platforms: configure them as "
                         "[platforms.SYSTEM] in fodhash.toml (or name them with --platform)")
    sessions = resolve_all(targets, config, replace(options, apply=False), err, chosen, place)
    split = platform_dependent(sessions)
    if not split:
        err.print("nothing to split: no site's true hash differs between "
                  + ", ".join(s.platform() for s in sessions), highlight=False)
        return 0
    place.materialize()  # the splits go where the protocol's edits go
    tx = Transaction(place.recorder)
    with tx.guard():
        for file in sorted({file for file, _ in split}):
            source = sessions[0].plan.sources[file]
            if is_json(file):
                raise UsageError(f"{file}: a JSON string holds one hash; make its value an "
                                 "object keyed by system (\"x86_64-linux\": ...) and select "
                                 "it with .${system} where Nix reads the file, then run again")
            selector = system_expression(source)
            if selector is None:
                raise UsageError(f"{file}: no host system expression to select a per-platform "
                                 "attrset with (such as stdenv.hostPlatform.system or a `system` "
                                 "argument); add one and run again")
            edits = {}
            for (where, _), (run, hashes) in split.items():
                if where == file:
                    name = run.drvs[0].split("-", 1)[-1].removesuffix(".drv") if run.drvs else "fod"
                    span, text = split_text(source, run.site, hashes, selector, name)
                    edits[span] = text
                    err.print(f"split {run.site.named(config.root)}: " + ", ".join(
                        f"{s} {h.sri}" for s, h in sorted(hashes.items())), markup=False,
                        highlight=False)
            document = tx.document(place.source(file), source, guarded=not place.in_copy)
            place.keep({file: document.write(edits)})
    # Resolve again on every platform: each new entry must now check out (from the cache).
    return update(targets, config, out=out, err=err, dry_run=False, as_json=False,
                  options=options, systems=[s.platform() for s in sessions], place=place)
