"""`fodhash apply`: patch sites from results exported on other machines (a CI matrix's merge).

Every site is evaluated here for each platform the results cover, its FOD keys computed, and
only a result under exactly that key is written: a result computed before a lockfile (or any
other input) changed has another key and is refused. Nothing is built and nothing but the
given files is trusted. Either every matching site is patched or, on any refusal, none.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from rich.console import Console

from fodhash.cache.export import EVERY_PLATFORM, Entry, FileResults, read_file
from fodhash.config import Config, Target
from fodhash.errors import FodhashError, UsageError
from fodhash.files.patch import Span, apply_edits
from fodhash.files.place import Place
from fodhash.files.writeback import Change, write_back
from fodhash.protocol.state import Options, SiteRun, Status
from fodhash.run.sessions import Session, local_system, resolve_all
from fodhash.ui import report


class RefusedError(FodhashError):
    """A result (an exported one, or a mismatch of a Nix log: fodhash.commands.apply_log)
    cannot be applied to the current files."""


def _refusals(sessions: list[Session], entries: list[Entry]) -> list[str]:
    """Sites evaluated here that some result was meant for, but under another key."""
    by_name = defaultdict(list)
    for entry in entries:
        by_name[(entry.platform, entry.name)].append(entry)
    problems = []
    for session in sessions:
        system = session.platform()
        for run in session.resolver.runs:
            if run.status is not Status.UNKNOWN:
                continue
            name = run.drvs[0].split("-", 1)[-1].removesuffix(".drv") if run.drvs else ""
            for entry in by_name[(system, name)] + by_name[(EVERY_PLATFORM, name)]:
                problems.append(
                    f"{run.site} on {system}: the result for FOD {name!r} was computed from other "
                    f"inputs (key {entry.key[:12]}..., now {', '.join(k[:12] for k in run.keys)}"
                    "...), e.g. before its lockfile changed; compute it again on that platform "
                    "(fodhash check --export FILE) and apply the new file")
    return problems


def _merge(sessions: list[Session]) -> dict[Path, dict[Span, str]]:
    """The edits of every platform's session, per file; new entries at one spot concatenate."""
    merged: dict[Path, dict[Span, str]] = defaultdict(dict)
    for session in sessions:
        for file, edits in session.resolver.final_edits().items():
            for span, text in edits.items():
                known = merged[Path(file)].get(span)
                if known is None or known == text:
                    merged[Path(file)][span] = text
                elif span[0] == span[1]:
                    merged[Path(file)][span] = known + text
                else:
                    raise RefusedError(
                        f"{file}: the results give one site different hashes on different "
                        "platforms; run `fodhash update --split-platforms` first")
    return merged


def apply(targets: list[Target], config: Config, files: list[Path], *, out: Console,
          err: Console, place: Place) -> int:
    entries = [entry for path in files for entry in read_file(path)]
    if not entries:
        raise UsageError("the result files hold no entries")
    # A result of Nix's builtin fetchers holds on every platform: it names none to evaluate.
    systems = sorted({e.platform for e in entries} - {EVERY_PLATFORM}) or [local_system()]
    chosen = [config.platform(s, local_system()) for s in systems]
    options = Options(build=False, apply=False)
    sessions = resolve_all(targets, config, options, err, list(chosen), place,
                           FileResults(entries))
    problems = _refusals(sessions, entries)
    if problems:
        raise RefusedError("refused, no file changed:\n" + "\n".join(problems))
    merged = _merge(sessions)
    sources = {f: data for s in sessions for f, data in s.plan.sources.items()}
    place.changes()  # discards the copy: its links are not the user's
    outcomes = write_back(Change(file, sources[file], apply_edits(sources[file], edits))
                          for file, edits in merged.items())
    problems = [f"{o.change.path}: {o.problem}" for o in outcomes if o.problem]
    if problems:
        raise RefusedError("not written (each file holds its original bytes):\n"
                           + "\n".join(problems))
    rows: list[tuple[str, SiteRun]] = [
        (s.platform(), run) for s in sessions for run in s.resolver.runs
        if run.status is Status.CACHED and run.final_text() is not None]
    report.table(out, rows, config.root)
    err.print(f"applied {len(rows)} result(s) from {len(files)} file(s)", highlight=False)
    return 0
