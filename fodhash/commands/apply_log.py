"""`fodhash apply --log`: patch the sites of the hash mismatches in any Nix log (a CI job's, a
pasted error), for the system that log was built on.

A mismatch names a `.drv` path and the hash Nix got. Two questions stand between it and an
edit, and each gets the sound answer rather than the cheap one:

- Is the log about these files? The targets are evaluated as they are (for the log's
  system): the log's `.drv` must be one of their FODs, which proves it was built from
  exactly these inputs. A log from another commit (another lockfile) names a `.drv` these
  files do not produce, and is refused: its `got:` may be wrong for them.
- Which site does the FOD take its hash from? Not the site whose literal equals the
  `specified:` hash: several sites often share one (two `lib.fakeHash`, or a hash copied
  between files), and a literal in a file outside the targets can coincide with a site's.
  Instead, as `fodhash init` does, a unique sentinel is written into every site of a scratch
  copy of the repository (the user's files are not touched) and the targets evaluated
  there: a FOD whose hash is a site's sentinel takes its hash from that site. The log's FOD
  is paired with its sentinel twin by name, system and algorithm and, where names repeat
  (every fetcher's output is called `source`), by the closest derivation
  (fodhash.nix.derivations.difference, which ignores what fetchers change for a fake hash);
  the twin's site must hold the log's `specified:` hash (or a placeholder for the all-zero
  one).

A `got:` is trusted only when `specified:` was the all-zero hash (`""`, `lib.fakeHash`,
`lib.fakeSha256`, `lib.fakeSha512`) and the derivation does not fetch without TLS checks:
nixpkgs' fetchers verify TLS certificates only then, so any other `got:` is the hash of a
download nobody verified. Such results are applied only with --trust-unverified-downloads.
Either every mismatch of the log is applied, or none (each refusal is named).

A pin's mismatch (`hash mismatch in file downloaded from URL`, `NAR hash mismatch in input`:
`builtins.fetchTarball`, niv, npins) names no derivation, only what was downloaded. It goes to
the one site of the targets that holds its `specified:` hash and whose file names its URL
(for a JSON pin, in the same object); none or several such sites, and it is refused. Its
`got:` is trusted: Nix's builtin fetchers verify TLS whatever the hash.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fodhash.commands.apply import RefusedError
from fodhash.config import Config, Target, find_root
from fodhash.errors import UsageError
from fodhash.files.patch import Span, apply_edits, atomic_write
from fodhash.files.scratch import workspace
from fodhash.files.writeback import Change, write_back
from fodhash.hashes.encoding import Hash
from fodhash.hashes.fakes import sentinel
from fodhash.nix import calls, process
from fodhash.nix.derivations import Derivation, difference, read_closure
from fodhash.nix.mismatch import Mismatch, PinMismatch, parse_mismatches, parse_pin_mismatches
from fodhash.run.plan import plan
from fodhash.run.sessions import local_system
from fodhash.sites.pins import names_source
from fodhash.sites.site import Site
from fodhash.ui.report import relative

TRUST_FLAG = "--trust-unverified-downloads"


@dataclass
class Mapped:
    mismatch: Mismatch
    drv: Derivation | None  # the log's FOD, as these files evaluate it (None: a pin)
    site: Site
    trusted: bool
    why: str  # why it is not trusted, if it is not


def _evaluate(targets: list[Target]) -> dict[str, Derivation]:
    tops = calls.instantiate_all(calls.merge([t.instantiation for t in targets]))
    graph = read_closure(sorted({p for ps in tops.values() for p in ps}))
    return {p: d for p, d in graph.items() if d.output_hash is not None}


def _sentinel_fods(targets: list[Target], sites: list[Site], sources: dict[Path, bytes],
                   root: Path) -> tuple[dict[str, Derivation], dict[Hash, Site]]:
    """The targets' FODs with a unique sentinel in every site, in a scratch copy."""
    top = find_root(root)
    owner: dict[Hash, Site] = {}
    edits: dict[Path, dict[Span, str]] = defaultdict(dict)
    for site in sites:
        value = sentinel(site.algo, len(owner))
        owner[value] = site
        edits[site.file][(site.start, site.end)] = site.render(value)
    # The protocol's scratch copy (fodhash.files.scratch): the same folder name and git state as
    # the repository, so that the targets evaluate to the derivations the log names.
    with workspace(top) as space:
        space.materialize()
        for file, changes in edits.items():
            # Replaced, never written through: the copy's files are links to the user's.
            atomic_write(space.path(file), apply_edits(sources[file], changes), durable=False)
        return _evaluate([space.target(t) for t in targets]), owner


def _trust(found: Mismatch, drv: Derivation) -> tuple[bool, str]:
    if found.specified is None:
        return False, ("Nix's `specified:` hash could not be read, so whether the download "
                       "was verified is unknown")
    if not found.specified.is_fake:
        return False, (f"it was built with the real-looking hash {found.specified.sri}, for "
                       "which nixpkgs' fetchers download without verifying TLS certificates: "
                       "nobody checked where the content came from")
    if drv.fetches_insecurely:
        return False, "its fetcher downloads without TLS verification (SSL_CERT_FILE)"
    return True, ""


def _pair(drv: Derivation, twins: list[Derivation], owner: dict[Hash, Site]) -> Site | str:
    """The site the log's FOD takes its hash from, or why none can be named."""
    same = [t for t in twins if t.name == drv.name and t.system == drv.system
            and t.output_hash is not None and drv.output_hash is not None
            and t.output_hash.algo is drv.output_hash.algo]
    if not same:
        return "no site of the targets sets its hash (it is set outside them)"
    scored = sorted((difference(drv, t), i) for i, t in enumerate(same))
    best = [same[i] for score, i in scored if score == scored[0][0]]
    sites = {owner[t.output_hash] for t in best if t.output_hash is not None}
    if len(sites) > 1:
        names = ", ".join(sorted(f"{s.file.name}:{s.attrpath}" for s in sites))
        return f"it matches several sites equally well ({names})"
    return sites.pop()


def _map_pins(pins: list[PinMismatch], sites: list[Site],
              sources: dict[Path, bytes]) -> tuple[list[Mapped], list[str]]:
    """Each pin mismatch of the log mapped to its site (module doc), and every refusal."""
    mapped: list[Mapped] = []
    refusals: list[str] = []
    for pin in pins:
        holders = [site for site in sites if site.current is not None
                   and site.current in pin.hashes
                   and names_source(site, sources[site.file], pin.source)]
        if len(holders) != 1:
            why = ("no site of the targets holds its hash and names its URL" if not holders
                   else "several sites hold its hash and name its URL: "
                   + ", ".join(str(s) for s in holders))
            refusals.append(f"{pin.source}: {why}")
            continue
        # Nix 2.34's fetchGit names the two the other way round: the truth is the one the
        # site does not hold.
        first, second = pin.hashes
        got = second if holders[0].current == first else first
        mapped.append(Mapped(Mismatch(pin.source, holders[0].current, got), None, holders[0],
                             True, ""))
    return mapped, refusals


def map_log(text: str, targets: list[Target], config: Config, *,
            trust_unverified: bool) -> tuple[list[Mapped], list[str]]:
    """Every mismatch of the log mapped to its site, and every refusal."""
    found = parse_mismatches(text)
    pins = parse_pin_mismatches(text)
    if not found and not pins:
        raise UsageError("the log holds no hash mismatch (`hash mismatch in fixed-output "
                         "derivation` or `in file downloaded from`, with `specified:` and "
                         "`got:`; or `NAR hash mismatch in input`)")
    process.require("nix-instantiate")
    work = plan(targets, lambda: [])
    sites = [site for _, site in work.selected]
    mapped, refusals = _map_pins(pins, sites, work.sources)
    if not found:
        return mapped, refusals
    current = _evaluate(targets)
    by_output = {o: d for d in current.values() for o in d.output_paths}
    twins, owner = _sentinel_fods(targets, sites, work.sources, config.root)
    sentinel_twins = [d for d in twins.values() if d.output_hash in owner]
    for mismatch in found:
        name = mismatch.path.rsplit("/", 1)[-1]
        drv = current.get(mismatch.path) or by_output.get(mismatch.path)
        if drv is None:
            refusals.append(
                f"{name}: not a FOD of these files as they evaluate now: the log was built from "
                "other inputs (another commit, a changed lockfile) or for another system "
                "(--platform SYSTEM), so its hash may be wrong for them")
            continue
        site = _pair(drv, sentinel_twins, owner)
        if isinstance(site, str):
            refusals.append(f"{name}: {site}")
            continue
        holds = site.current == drv.output_hash or (site.current is None
                                                    and drv.output_hash is not None
                                                    and drv.output_hash.is_fake)
        if not holds:
            refusals.append(f"{name}: {site} does not hold the hash the log built with "
                            f"({drv.output_hash}); please report this")
            continue
        trusted, why = _trust(mismatch, drv)
        mapped.append(Mapped(mismatch, drv, site, trusted, why))
        if not trusted and not trust_unverified:
            refusals.append(f"{site} ({name}): not applied: {why}. Check the hash another way "
                            f"(build it with lib.fakeHash), or pass {TRUST_FLAG}")
    per_site: dict[Site, set[Hash]] = defaultdict(set)
    for m in mapped:
        per_site[m.site].add(m.mismatch.got)
    for site, gots in per_site.items():
        if len(gots) > 1:
            refusals.append(f"{site}: the log gives it several hashes: "
                            + ", ".join(sorted(g.sri for g in gots)))
    return mapped, refusals


def apply_log(text: str, targets: list[Target], config: Config, *, out: Console, err: Console,
              platform: str | None, trust_unverified: bool) -> int:
    if platform is not None:
        chosen = config.platform(platform, local_system())
        targets = [chosen.apply(t) for t in targets if chosen.covers(t, local_system)]
    else:
        targets = config.as_local(targets, local_system)
    mapped, refusals = map_log(text, targets, config, trust_unverified=trust_unverified)
    if refusals:
        raise RefusedError("refused, no file changed:\n" + "\n".join(refusals))
    sources = plan(targets, lambda: []).sources
    edits: dict[Path, dict[Span, str]] = defaultdict(dict)
    for m in mapped:
        if m.site.current != m.mismatch.got:
            edits[m.site.file][(m.site.start, m.site.end)] = m.site.render(m.mismatch.got)
    outcomes = write_back(Change(Path(os.path.realpath(file)), sources[file],
                                 apply_edits(sources[file], changes))
                          for file, changes in edits.items())
    problems = [f"{o.change.path}: {o.problem}" for o in outcomes if o.problem]
    if problems:
        raise RefusedError("not written (each file holds its original bytes):\n"
                           + "\n".join(problems))
    grid = Table()
    for column in ("site", "file:line", "old -> new", "download"):
        grid.add_column(column, overflow="fold")
    for m in mapped:
        new = m.site.render(m.mismatch.got).strip('"')
        grid.add_row(escape(m.site.attrpath), escape(f"{relative(m.site.file, config.root)}:"
                                                     f"{m.site.line}"),
                     escape(f"{m.site.text} -> {new}"),
                     "verified" if m.trusted else "[yellow]unverified[/] (trusted by flag)")
    out.print(grid)
    count = sum(len(changes) for changes in edits.values())
    err.print(f"applied {count} hash(es) from the log to {len(edits)} file(s)", highlight=False)
    return 0
