"""`fodhash check`: compute every site's true hash and compare; never change a file."""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fodhash.cache.export import write_export
from fodhash.cache.store import ResultCache
from fodhash.config import Config, Target
from fodhash.files.place import Place
from fodhash.hashes.encoding import Hash
from fodhash.nix import calls
from fodhash.protocol.state import Options, SiteRun, Status
from fodhash.run.sessions import Session, platform_dependent, platforms, resolve_all
from fodhash.ui import report
from fodhash.ui.grid import Grid
from fodhash.ui.progress import label
from fodhash.ui.report import relative

if TYPE_CHECKING:
    from rich.console import Console

JSON_VERSION = 1


class Verdict(enum.StrEnum):
    OK = "ok"
    STALE = "stale"  # the literal is not the true hash (a placeholder is always stale)
    MISSING = "missing"  # a system-keyed attrset has no entry for this platform
    UNVERIFIED = "unverified"  # not evaluated or built here, and nothing cached
    FAILED = "failed"
    NONDETERMINISTIC = "nondeterministic"  # two builds of one derivation, two hashes
    REFERENCES = "references"  # its output references store paths


@dataclass(frozen=True)
class Finding:
    run: SiteRun
    verdict: Verdict
    truth: Hash | None

    @property
    def literal(self) -> str:
        return "" if self.run.site.is_missing else self.run.site.text


def verdict(run: SiteRun) -> Finding | None:
    """What a resolved site means for a check; None for an entry not needed here. The word
    is the one the progress lines print (fodhash.ui.label), so the two always agree."""
    try:
        found = Verdict(label(run, checking=True))
    except ValueError:  # `skipped`: another platform's entry, not needed here
        return None
    return Finding(run, found, run.new if run.status.resolved else None)


def _message(finding: Finding, root: Path) -> str:
    site = finding.run.site
    where = f"{relative(site.file, root)}:{site.line}"
    if finding.verdict is Verdict.STALE and finding.truth is not None:
        return (f"{where}: {site.attrpath} is stale: it holds {site.text}, the true hash is "
                f"{site.render(finding.truth).strip(chr(34))}; run `fodhash update {finding.run.target}`")
    if finding.verdict is Verdict.MISSING:
        truth = f"true hash {finding.truth.sri}" if finding.truth else finding.run.message
        binding = site.binding or "the top-level object"  # of a JSON file
        return (f"{where}: {binding} has no entry for {site.platform} ({truth}); "
                f"run `fodhash update {finding.run.target} --platform {site.platform}`")
    return f"{where}: {site.attrpath}: {finding.run.message}"


def _annotate(findings: list[Finding], root: Path, out: Console) -> None:
    """GitHub and Forgejo Actions turn these lines into annotations on the file and line."""
    for finding in findings:
        if finding.verdict in (Verdict.STALE, Verdict.MISSING, Verdict.NONDETERMINISTIC,
                               Verdict.REFERENCES):
            site = finding.run.site
            text = _message(finding, root).replace("%", "%25").replace("\n", "%0A")
            out.file.write(f"::error file={relative(site.file, root)},line={site.line}::{text}\n")


Labelled = tuple[str, Finding]  # the system a session checked for, and what it found


def _row(finding: Finding, root: Path) -> str:
    """A matrix row: a system-keyed binding's entries share one row, one column each. The
    file is named from the root: two `default.nix` in two folders are two rows."""
    site = finding.run.site
    name = (site.binding or "(top level)") if site.platform is not None else site.attrpath
    return f"{relative(site.file, root)}:{name}"  # "(top level)": a JSON file that is one system map


def _differing(sessions: list[Session], root: Path) -> dict[str, dict[str, Hash]]:
    return {run.site.named(root): hashes
            for run, hashes in platform_dependent(sessions).values()}


def _json(labelled: list[Labelled], root: Path, stats: dict[str, int],
          differing: dict[str, dict[str, Hash]]) -> dict[str, Any]:
    counts = {str(v): 0 for v in Verdict}
    matrix: dict[str, dict[str, str]] = {}
    for system, finding in labelled:
        counts[str(finding.verdict)] += 1
        matrix.setdefault(_row(finding, root), {})[system] = str(finding.verdict)
    return {
        "version": JSON_VERSION,
        "system": calls.current_system(),
        "nix": calls.version(),
        "sites": [{
            "system": system,
            "target": f.run.target,
            "file": relative(f.run.site.file, root),
            "line": f.run.site.line,
            "site": f.run.site.attrpath,
            "platform": f.run.site.platform,
            "literal": f.literal,
            "truth": f.truth.sri if f.truth else None,
            "status": str(f.verdict),
            "message": "" if f.verdict is Verdict.OK else f.run.message,
            "keys": f.run.keys,
            "changed": f.run.changed,
        } for system, f in labelled],
        "matrix": matrix,
        "platform_dependent": {row: {s: h.sri for s, h in by.items()}
                               for row, by in differing.items()},
        "counts": counts,
        "stats": stats,
    }


STYLES = {Verdict.OK: "green", Verdict.STALE: "bold red", Verdict.MISSING: "bold red",
          Verdict.UNVERIFIED: "yellow", Verdict.FAILED: "bold red",
          Verdict.NONDETERMINISTIC: "bold red", Verdict.REFERENCES: "bold red"}


def _table(findings: list[Finding], root: Path, out: Console) -> None:
    grid = Grid(("target", "site", "file:line", "status", "literal -> true hash"))
    for f in findings:
        site = f.run.site
        change = f.literal
        if f.verdict in (Verdict.STALE, Verdict.MISSING) and f.truth is not None:
            change = f"{f.literal or '(none)'} -> {f.truth.sri}"
        grid.add_row(f.run.target, site.attrpath, f"{relative(site.file, root)}:{site.line}",
                     str(f.verdict), change, styles={3: STYLES[f.verdict]})
    grid.print(out)


def _matrix(labelled: list[Labelled], systems: list[str], root: Path, out: Console) -> None:
    """Sites by platforms: ok / stale / missing / unverified / failed."""
    cells: dict[str, dict[str, Verdict]] = {}
    for system, finding in labelled:
        cells.setdefault(_row(finding, root), {})[system] = finding.verdict
    grid = Grid(("site", *systems))
    for row, by_system in cells.items():
        verdicts = [by_system.get(s) for s in systems]
        grid.add_row(row, *(str(v) if v else "-" for v in verdicts),
                     styles={i + 1: STYLES[v] for i, v in enumerate(verdicts) if v})
    grid.print(out)


def _problems(labelled: list[Labelled], root: Path, out: Console,
              differing: dict[str, dict[str, Hash]]) -> None:
    for system, f in labelled:
        if f.verdict is not Verdict.OK:
            prefix = f"[{system}] " if system else ""
            out.print(prefix + _message(f, root), markup=False, highlight=False)
            for line in report.changed_lines(f.run):
                out.print(line, markup=False, highlight=False)
    for row, by_system in differing.items():
        hashes = ", ".join(f"{s} {h.sri}" for s, h in by_system.items())
        out.print(f"{row}: the true hash differs between platforms ({hashes}); "
                  "`fodhash update --split-platforms TARGET` makes it a per-platform attrset",
                  markup=False, highlight=False)


def _export(path: Path, findings: list[Finding]) -> int:
    """The computed results, in the format `fodhash cache import` reads."""
    with ResultCache() as results:
        entries = {e.key: e for f in findings for k in f.run.keys
                   if f.truth is not None and (e := results.get(k)) is not None}
    return write_export(path, list(entries.values()))


def check(targets: list[Target], config: Config, *, out: Console, err: Console,
          options: Options, strict: bool, as_json: bool, export: Path | None,
          systems: list[str], place: Place) -> int:
    sessions = resolve_all(targets, config, replace(options, apply=False, checking=True), err,
                           platforms(config, systems), place)
    labelled: list[Labelled] = []
    for session in sessions:
        system = session.platform() if len(sessions) > 1 else ""
        for run in session.resolver.runs:
            # In a matrix, another platform's entry belongs to that platform's column, and a
            # branch literal to the columns of the platforms that take it.
            other = system and (run.site.platform not in (None, system) or (
                run.site.branch is not None and run.status is Status.SKIPPED))
            if not other and (finding := verdict(run)) is not None:
                labelled.append((system, finding))
    findings = [f for _, f in labelled]
    untaken = report.untaken([("", run) for s in sessions for run in s.resolver.runs])
    stats = {k: sum(s.resolver.stats[k] for s in sessions) for k in sessions[0].resolver.stats}
    differing = _differing(sessions, config.root)
    if export is not None:
        count = _export(export, findings)
        err.print(f"exported {count} result(s) to {export}", markup=False, highlight=False)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        _annotate(findings, config.root, out)
    if as_json:
        doc = _json(labelled, config.root, stats, differing)
        doc["untaken"] = [{"target": r.target, "file": relative(r.site.file, config.root),
                           "line": r.site.line, "site": r.site.attrpath,
                           "condition": r.site.branch, "literal": r.site.text}
                          for r in untaken]
        out.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        if len(sessions) > 1:
            _matrix(labelled, [s.platform() for s in sessions], config.root, out)
        else:
            _table(findings, config.root, out)
        _problems(labelled, config.root, out, differing)
        if untaken:
            out.print(report.untaken_line(untaken, config.root), markup=False, highlight=False)
        err.print(report.summary([str(f.verdict) for f in findings], stats), highlight=False)
    bad = {Verdict.STALE, Verdict.MISSING, Verdict.FAILED, Verdict.NONDETERMINISTIC,
           Verdict.REFERENCES} | ({Verdict.UNVERIFIED} if strict else set())
    return 1 if any(f.verdict in bad for f in findings) or differing else 0
