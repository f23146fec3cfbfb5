"""`fodhash list`: the targets, their hash sites, and what the result cache knows of each.

What the cache knows needs the sites' derivations, since the cache is keyed by the FOD's
normal form (fodhash.cache.store.key_for). `list` evaluates each target as its files are (one
Nix evaluation per target, no sentinel written, no file touched, nothing built): a FOD of
the target whose output hash is a site's literal belongs to that site, as in
`Resolver._unchanged`. That is exact for the common case and says "unknown" rather than
guess where it cannot tell: a placeholder (`lib.fakeHash`) or a missing entry has no hash
to compare, a site not evaluated on this system has no FOD, and a site whose FOD consumes a
stale hash has a key the cache cannot hold. `fodhash check` gives the verdict that builds.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fodhash.cache.store import ResultCache, Results, key_for
from fodhash.config import Config, Target
from fodhash.errors import FodhashError
from fodhash.nix import calls, process
from fodhash.nix.derivations import Derivation, read_closure
from fodhash.run.plan import check_entry_points
from fodhash.sites.site import Site, select
from fodhash.sites.target import sites_of
from fodhash.ui.report import relative

JSON_VERSION = 1

# The hash attribute's name -> what kind of FOD holds it (nixpkgs' builders and fetchers).
_KINDS = {
    "vendorHash": ("go-vendor", "Go vendor"),
    "vendorSha256": ("go-vendor", "Go vendor"),
    "npmDepsHash": ("npm-deps", "npm deps"),
    "cargoHash": ("cargo", "cargo deps"),
    "cargoSha256": ("cargo", "cargo deps"),
    "outputHashes": ("cargo-git", "cargo git dependency"),  # an entry of cargoLock.outputHashes
    "pnpmDepsHash": ("pnpm-deps", "pnpm deps"),
    "yarnHash": ("yarn-deps", "yarn deps"),
    "mixFodDepsHash": ("mix-deps", "mix deps"),
    "outputHash": ("fod", "custom FOD"),
    "hash": ("source", "source"),
    "sha256": ("source", "source"),
    "sha512": ("source", "source"),
    "sha1": ("source", "source"),
    "md5": ("source", "source"),
}


def kind(site: Site) -> tuple[str, str]:
    """(JSON kind, label) of a site, from its attribute's name: `vendorHash` is a Go vendor
    FOD, `hash` or `sha256` the source a fetcher downloads, `outputHash` a hand-written FOD."""
    name = site.binding.rsplit(".", 1)[-1]
    return _KINDS.get(name, ("other", "other"))


@dataclass
class Listed:
    target: Target
    site: Site
    cache: str = "unknown"  # equal, differs, unknown
    cached: str | None = None  # the hash the cache holds, when it differs
    keys: list[str] = field(default_factory=list)
    message: str = ""


def _evaluate(target: Target) -> dict[str, Derivation] | str:
    """The FODs of the target as its files are, or why they could not be evaluated."""
    try:
        tops = calls.instantiate(target.instantiation)
        return {p: d for p, d in read_closure(tops).items() if d.output_hash is not None}
    except FodhashError as error:
        return str(error).strip().splitlines()[-1]


def _verdict(listed: Listed, fods: dict[str, Derivation] | str, cache: Results,
             system: str) -> None:
    site = listed.site
    if isinstance(fods, str):
        listed.message = f"the target did not evaluate: {fods}"
        return
    if site.current is None:
        listed.message = ("no entry for this platform yet" if site.is_missing else
                          "a placeholder: no hash to look up")
        return
    mine = [d for d in fods.values() if d.output_hash == site.current]
    if not mine:
        listed.message = f"no FOD of the target has this hash on {system} (not used here)"
        return
    listed.keys = [key_for(d) for d in mine]
    entries = [cache.get(k) for k in listed.keys]
    other = {e.hash for e in entries if e is not None and e.hash != site.current}
    if other:
        listed.cache = "differs"
        listed.cached = sorted(h.sri for h in other)[0]
        listed.message = "stale: the cache holds another hash for this FOD"
    elif all(e is not None for e in entries):
        listed.cache = "equal"
    else:
        listed.message = ("not in the cache for these inputs (never resolved, or one of its "
                          "inputs changed: another stale hash, say)")


def gather(targets: list[Target], cache: Results, system: str) -> list[Listed]:
    rows: list[Listed] = []
    sources: dict[Path, bytes] = {}
    located: dict[Path, list[Site]] = {}
    for target in targets:
        sites = sites_of(target, sources, located)  # its file's and its JSON files'
        check_entry_points(target, sources)
        rows += [Listed(target, s) for s in select(sites, target.site, f"target {target.name!r}")]
    process.require("nix-instantiate")
    with ThreadPoolExecutor(max_workers=2) as pool:
        evaluated = dict(zip([t.name for t in targets], pool.map(_evaluate, targets),
                             strict=True))
    for row in rows:
        _verdict(row, evaluated[row.target.name], cache, system)
    return rows


def _where(target: Target, root: Path) -> dict[str, Any]:
    what = target.instantiation
    return {
        "build": relative(what.file, root) if what.file else None,
        "attr": list(what.attrs),
        "flake": list(what.flake_refs),
    }


def document(rows: list[Listed], targets: list[Target], root: Path,
             system: str) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "system": system,
        "targets": [{
            "name": t.name,
            "file": relative(t.file, root),
            **_where(t, root),
            "sites": [{
                "file": relative(r.site.file, root),
                "line": r.site.line,
                "site": r.site.attrpath,
                "kind": kind(r.site)[0],
                "platform": r.site.platform,
                "encoding": r.site.encoding,
                "literal": r.site.text,
                "cache": r.cache,
                "cached": r.cached,
                "keys": r.keys,
                "message": r.message,
            } for r in rows if r.target is t],
        } for t in targets],
    }


STYLES = {"equal": "green", "differs": "bold red", "unknown": "yellow"}


def table(rows: list[Listed], root: Path, out: Console) -> None:
    grid = Table()
    for column in ("target", "site", "file:line", "kind", "platform", "encoding", "literal",
                   "cache"):
        grid.add_column(column, overflow="fold")
    for r in rows:
        name, label = kind(r.site)
        attribute = r.site.binding.rsplit(".", 1)[-1]
        cells = (r.target.name, r.site.attrpath, f"{relative(r.site.file, root)}:{r.site.line}",
                 f"{label} ({attribute})" if name != "other" else attribute or "other",
                 r.site.platform or "", r.site.encoding, r.site.text or "(none)")
        grid.add_row(*map(escape, cells), f"[{STYLES[r.cache]}]{r.cache}[/]")
    out.print(grid)
    for r in rows:
        if r.cache != "equal" and r.message:
            detail = f" ({r.cached})" if r.cached else ""
            out.print(f"{r.target.name}: {r.site.attrpath}: {r.message}{detail}", markup=False,
                      highlight=False)


def list_targets(targets: list[Target], config: Config, *, out: Console, as_json: bool,
                 platform: str | None) -> int:
    local = calls.current_system()
    system = platform or local
    if platform is not None:
        chosen = config.platform(platform, local)
        targets = [chosen.apply(t) for t in targets]
    else:
        targets = config.as_local(targets, calls.current_system)
    with ResultCache() as cache:
        rows = gather(targets, cache, system)
    if as_json:
        out.file.write(json.dumps(document(rows, targets, config.root, system), indent=2) + "\n")
    else:
        table(rows, config.root, out)
    return 1 if any(r.message.startswith("the target did not evaluate") for r in rows) else 0
