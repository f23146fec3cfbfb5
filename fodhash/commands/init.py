"""`fodhash init`: find a repository's hash sites, learn how Nix reaches each, write fodhash.toml.

Which entry point reaches which site is learnt, not guessed from names: the repository is
copied to a scratch folder (the user's files are never written), a unique sentinel hash
(fodhash.hashes.fakes.sentinel) is written into every site of the copy, and every entry
point is evaluated there: each file that Nix can auto-call (a function whose arguments all have
defaults, or no function), each attribute of a file that evaluates to an attribute set of
derivations (`test-build.nix -A webui-deps`), and the flake's `packages.<system>`. The FODs
in each entry point's closure whose output hash is a sentinel name the sites it reaches.
Each file's sites then get the closest entry point that reaches them: the file itself, an
attribute of it, another file or attribute, the flake last.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from fodhash.config import CONFIG_NAME, find_root
from fodhash.errors import FodhashError, UsageError
from fodhash.files.patch import apply_edits, atomic_write
from fodhash.files.scratch import workspace
from fodhash.hashes.encoding import Hash
from fodhash.hashes.fakes import sentinel
from fodhash.nix import calls, process
from fodhash.nix.derivations import read_closure
from fodhash.nix.mismatch import PinMismatch, parse_pin_mismatches, strip_ansi
from fodhash.sites.pins import pin_owner
from fodhash.sites.read import is_json, read_source
from fodhash.sites.site import Site
from fodhash.sites.target import json_read, locate_any, references

EVAL_TIMEOUT = 120.0  # seconds for one entry point's evaluation
_MOST_PINS = 64  # evaluations of one file, one per pin that stops it
MAX_ATTRS = 500  # an attribute set larger than this is a package set (nixpkgs), not targets
_ATTR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")
_STORE_LINK = re.compile(r"^/nix/store/")

# Evaluates one file as nix-instantiate would (auto-calling a function whose arguments all
# have defaults) and reports what it is: for an attribute set, the derivations of each
# attribute (a derivation, or an attribute set of them, one level deep). Reading `drvPath`
# writes the .drv files, which is all that is needed; nothing is built.
_PROBE = """
let
  f = import %(path)s;
  args = if builtins.isFunction f then builtins.functionArgs f else { };
  callable = builtins.all (x: x) (builtins.attrValues args);
  v = if builtins.isFunction f then (if callable then f { } else null) else f;
  isDrv = x: builtins.isAttrs x && (x.type or null) == "derivation";
  drvsOf = x:
    if isDrv x then [ x.drvPath ]
    else if builtins.isAttrs x && !(x ? __functor)
    then map (y: y.drvPath) (builtins.filter isDrv (builtins.attrValues x))
    else [ ];
  safe = x: let r = builtins.tryEval (let d = drvsOf x; in builtins.deepSeq d d); in
    if r.success then r.value else [ ];
  direct = x: let r = builtins.tryEval (isDrv x); in r.success && r.value;
in
  if v == null then { kind = "function"; }
  else if isDrv v then { kind = "derivation"; drvs = safe v; }
  else if builtins.isAttrs v then
    (if builtins.length (builtins.attrNames v) > %(max)d then { kind = "package-set"; }
     else { kind = "attrs"; attrs = builtins.mapAttrs (n: x: { direct = direct x; drvs = safe x; }) v; })
  else { kind = builtins.typeOf v; }
"""
_FLAKE_PROBE = ("ps: builtins.mapAttrs (n: p: let r = builtins.tryEval p.drvPath; in "
                "if r.success then [ r.value ] else [ ]) ps")


@dataclass(frozen=True)
class Entry:
    """One way to make Nix evaluate something: a file, an attribute of it, a flake output."""

    file: str | None  # relative to the root, for a file or attribute
    attr: str | None = None
    flake: str | None = None  # a `packages.<system>` attribute
    drvs: tuple[str, ...] = ()

    def rank(self, holder: str) -> int:
        """How close this entry point is to the file holding the sites (lower is closer)."""
        if self.flake is not None:
            return 4
        own = self.file == holder
        if self.attr is None:
            return 0 if own else 2
        return 1 if own else 3

    def describe(self) -> str:
        if self.flake is not None:
            return f"flake output packages.<system>.{self.flake}"
        return f"{self.file} -A {self.attr}" if self.attr else f"{self.file}"


@dataclass
class Found:
    """What init learnt: every site, the entry points that reach it, why others are out."""

    sites: dict[str, list[Site]] = field(default_factory=dict)  # relative file -> its sites
    reach: dict[Site, list[Entry]] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # file -> why it was skipped
    kinds: dict[str, str] = field(default_factory=dict)  # file -> what it evaluates to
    notes: list[str] = field(default_factory=list)
    root: Path | None = None  # where init runs
    top: Path | None = None  # the repository's top


def repository_files(top: Path) -> list[str]:
    """The files of the repository, relative to `top`: what git tracks or would (ignored
    files left out) in a git work tree; elsewhere every file but `.git` and `result` links."""
    if (top / ".git").exists():
        listing = process.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=top)
        if listing.ok:
            names = sorted(set(filter(None, listing.stdout.split("\0"))))
            return [n for n in names if not _is_result_link(top / n)]
    found = []
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != ".git" and not _is_result_link(Path(folder, d))]
        found += [str(Path(folder, f).relative_to(top)) for f in files
                  if not _is_result_link(Path(folder, f))]
    return sorted(found)


def _is_result_link(path: Path) -> bool:
    """`result`, `result-dev`, ...: the links nix-build leaves, pointing into the store."""
    return path.is_symlink() and (path.name.startswith("result")
                                  or bool(_STORE_LINK.match(os.readlink(path))))


def _nix_error(result: process.ProcessResult) -> str:
    """Nix's own message: its `error:` line(s), without the trace around them."""
    lines = result.tail(40).splitlines()
    errors = [line.strip() for line in lines if line.lstrip().startswith("error:")]
    return "; ".join(errors[-2:]) if errors else (lines[-1] if lines else "no output")


def _probe_file(scratch: Path, name: str) -> tuple[str, list[Entry], str, list[PinMismatch]]:
    """(what the file is, its entry points, why it could not be evaluated or "", the pins
    whose mismatch stopped its evaluation)."""
    path = scratch / name
    expression = _PROBE % {"path": json.dumps(str(path)), "max": MAX_ATTRS}
    try:
        # --eval is read-only by default: --read-write-mode lets drvPath write the .drv files.
        result = process.run(["nix-instantiate", "--eval", "--read-write-mode", "--strict", "--json",
                              "--expr", expression], cwd=path.parent, timeout=EVAL_TIMEOUT)
    except process.NixTimeout:
        return "timeout", [], f"its evaluation took over {EVAL_TIMEOUT:g} s", []
    if not result.ok:
        pins = parse_pin_mismatches(strip_ansi(result.stderr or result.stdout))
        return "error", [], _nix_error(result).replace(str(scratch) + "/", ""), pins
    value = json.loads(result.stdout)
    kind = str(value.get("kind"))
    if kind == "derivation":
        return kind, [Entry(name, drvs=tuple(value["drvs"]))], "", []
    if kind != "attrs":
        return kind, [], "", []
    entries = []
    whole: list[str] = []
    for attr, info in sorted(value["attrs"].items()):
        if info["direct"]:
            whole += info["drvs"]
        if info["drvs"] and _ATTR_NAME.match(attr):
            entries.append(Entry(name, attr=attr, drvs=tuple(info["drvs"])))
    if whole:  # `nix-instantiate FILE` instantiates the attributes that are derivations
        entries.insert(0, Entry(name, drvs=tuple(whole)))
    return kind, entries, "", []


def _probe_flake(scratch: Path, system: str) -> tuple[list[Entry], str]:
    result = process.run(["nix", *calls.EXPERIMENTAL, "eval", "--json", f".#packages.{system}",
                          "--apply", _FLAKE_PROBE], cwd=scratch, timeout=EVAL_TIMEOUT)
    if not result.ok:
        return [], f"flake.nix: packages.{system} did not evaluate: {_nix_error(result)}"
    outputs = json.loads(result.stdout)
    return [Entry(None, flake=name, drvs=tuple(drvs)) for name, drvs in sorted(outputs.items())
            if drvs and _ATTR_NAME.match(name)], ""


def discover(root: Path, system: str) -> Found:
    """Locate every site under `root` and learn which entry points reach it (module doc)."""
    top = find_root(root)
    names = repository_files(top)
    prefix = "" if root.resolve() == top else str(root.resolve().relative_to(top)) + "/"
    nix_files = [n for n in names if n.endswith(".nix") and n.startswith(prefix)
                 and (top / n).is_file()]
    found = Found(root=root, top=top)
    sources: dict[str, bytes] = {}
    # The Nix files, then the JSON files they read (niv's and npins' sources.json), appended
    # as they are met; each is read and located as what its name says it is.
    files = list(nix_files)
    for name in files:
        local = name[len(prefix):]
        try:
            sources[name] = read_source(top / name)
            sites = locate_any(root / local, sources[name])
        except UsageError as error:
            found.unreadable[local] = str(error)
            continue
        if sites:
            found.sites[local] = sites
        if is_json(top / name):
            continue
        for path in references(top / name, sources[name]):
            json_name = str(path.relative_to(top)) if path.is_relative_to(top) else ""
            if json_name.startswith(prefix) and path.is_file() and json_name not in files:
                files.append(json_name)
    by_sentinel: dict[Hash, Site] = {}
    # The protocol's scratch copy (fodhash.files.scratch): the same folder name and git state as
    # the repository, so that every entry point evaluates as it does there.
    with workspace(top) as space:
        space.materialize()
        scratch = space.copy()
        edits: dict[str, dict[tuple[int, int], str]] = {}
        files_of: dict[Site, str] = {}
        for local, sites in found.sites.items():
            edits[local] = {}
            for site in sites:
                value = sentinel(site.algo, len(by_sentinel))
                by_sentinel[value] = site
                files_of[site] = local
                edits[local][(site.start, site.end)] = site.render(value)
            # Replaced, never written through: the copy's files are links to the user's.
            atomic_write(scratch / prefix / local,
                         apply_edits(sources[prefix + local], edits[local]), durable=False)
        base = scratch / prefix
        entries: list[Entry] = []
        pinned: dict[Site, list[str]] = {}  # pins, and the files whose evaluation they stopped
        lock = threading.Lock()

        def probe(name: str) -> tuple[str, list[Entry], str]:
            """Probe a file; a pin whose sentinel stops it gets its true hash (the mismatch's
            other one) in the copy, and the file is probed again (Nix stops at the first)."""
            for _ in range(_MOST_PINS):
                kind, mine, why, pins = _probe_file(base, name)
                owners = [owned for pin in pins
                          if (owned := pin_owner(pin, by_sentinel.get)) is not None]
                if not owners:
                    return kind, mine, why
                with lock:
                    for owner, truth in owners:
                        pinned.setdefault(owner, []).append(name)
                        local = files_of[owner]
                        edits[local][(owner.start, owner.end)] = owner.render(truth)
                        atomic_write(scratch / prefix / local,
                                     apply_edits(sources[prefix + local], edits[local]),
                                     durable=False)
            return kind, mine, why

        candidates = [n[len(prefix):] for n in nix_files if n[len(prefix):] != "flake.nix"
                      and n[len(prefix):] not in found.unreadable]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            for name, (kind, mine, why) in zip(candidates, pool.map(probe, candidates),
                                               strict=True):
                found.kinds[name] = kind if not why else f"{kind}: {why}"
                entries += mine
        # A pin is reached by the files whose evaluation it stopped, and, for a JSON pin, by
        # each file holding sites that reads its JSON: which file's probe meets a pin first
        # is a race (its truth is in the copy after that), which this makes irrelevant.
        readers = {name: [p.resolve() for p in json_read(root / name, sources[prefix + name], top)]
                   for name in candidates if name in found.sites}
        for pin, names in pinned.items():
            json_path = pin.file.resolve() if is_json(pin.file) else None
            names += [n for n, read in readers.items() if json_path in read]
            for name in dict.fromkeys(names):
                whole = [e for e in entries if e.file == name and e.attr is None]
                entry = whole[0] if whole else Entry(name)
                if entry not in found.reach.setdefault(pin, []):
                    found.reach[pin].append(entry)
        if (base / "flake.nix").is_file():
            flake_entries, why = _probe_flake(base, system)
            entries += flake_entries
            if why:
                found.notes.append(why)
        for entry in entries:
            for drv in read_closure(list(entry.drvs)).values():
                owner = by_sentinel.get(drv.output_hash) if drv.output_hash else None
                if owner is not None and entry not in found.reach.setdefault(owner, []):
                    found.reach[owner].append(entry)
    return found


@dataclass
class Planned:
    name: str
    file: str
    entry: Entry
    sites: list[Site]
    selector: str | None  # `site =`, when the entry point reaches only some of the file's
    along: list[tuple[str, Site]] = field(default_factory=list)  # JSON files' sites it reads


def _stem(file: str) -> str:
    path = Path(file)
    stem = path.stem if path.stem != "default" else (path.parent.name or "default")
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-") or "target"


def plan(found: Found) -> tuple[list[Planned], dict[Site, str]]:
    """The targets to write, and the reason for each site no target reaches."""
    targets: list[Planned] = []
    names: set[str] = set()

    def unique(name: str) -> str:
        candidate, n = name, 2
        while candidate in names:
            candidate, n = f"{name}-{n}", n + 1
        names.add(candidate)
        return candidate

    unreached: dict[Site, str] = {}
    for file, sites in sorted(found.sites.items()):
        reached = [s for s in sites if found.reach.get(s)]
        bindings = {s.binding for s in reached}
        for site in sites:
            if site in reached:
                continue
            if site.platform is not None and site.binding in bindings:
                continue  # another platform's entry of a binding reached here: it goes along
            unreached[site] = _why(site, file, found)
        groups: list[tuple[Entry, list[Site]]] = []
        uncovered = list(reached)
        while uncovered:
            options = {e for s in uncovered for e in found.reach[s]}
            best = min(options, key=lambda e: (e.rank(file), -sum(e in found.reach[s]
                                                                  for s in uncovered),
                                               e.file not in found.sites,
                                               len(e.drvs), e.describe()))
            group = [s for s in uncovered if best in found.reach[s]]
            groups.append((best, group))
            uncovered = [s for s in uncovered if s not in group]
        whole = len(groups) == 1
        for entry, group in groups:
            if whole:
                targets.append(Planned(unique(_stem(file)), file, entry, group, None))
                continue
            for binding in sorted({s.binding for s in group}):
                members = [s for s in group if s.binding == binding]
                name = unique(f"{_stem(file)}-{binding.replace('.', '-')}")
                targets.append(Planned(name, file, entry, members, binding))
    return _read_along(targets, found), unreached


def _read_along(targets: list[Planned], found: Found) -> list[Planned]:
    """Without the targets of JSON files (niv's and npins' sources.json) whose sites a target
    of the Nix file that reaches them already holds: a target's sites include those of the
    JSON files its file reads, through the files it imports (fodhash.sites.target)."""
    whole = {t.file: t for t in targets if t.selector is None}
    kept = []
    for target in targets:
        reader = whole.get(target.entry.file or "")
        if is_json(Path(target.file)) and target.entry.attr is None and reader is not None \
                and reader.entry == target.entry and _reads(found, reader.file, target.file):
            reader.along += [(target.file, site) for site in target.sites]
            continue
        kept.append(target)
    return kept


def _reads(found: Found, nix_file: str, json_file: str) -> bool:
    sites = found.sites.get(json_file)
    if not sites or not found.root:
        return False
    path = found.root / nix_file
    return any(p.resolve() == sites[0].file.resolve()
               for p in json_read(path, read_source(path), found.top or found.root))


def _why(site: Site, file: str, found: Found) -> str:
    if site.platform is not None:
        return (f"an entry for {site.platform}, not evaluated on this system; add "
                f"[platforms.{site.platform}] to fodhash.toml to check it")
    kind = found.kinds.get(file, "")
    if kind == "function":
        return ("its file is a function whose arguments have no defaults (callPackage style), "
                "and no other file, attribute or flake output reaches it; add a target with "
                "`build`/`attr` or `flake` by hand")
    if kind.startswith(("error", "timeout")):
        why = kind.removeprefix("error: ")
        return f"its file did not evaluate ({why}), and nothing else reaches it"
    return ("no entry point evaluates a FOD that takes its hash from it on this system "
            "(unused, or used only under a condition not met here)")


def _comment(line: str) -> str:
    """A comment line of fodhash.toml whose text may span lines (Nix's quoted source under
    a syntax error): each further line is a comment too, or the file is no TOML."""
    return "\n#     ".join(line.splitlines())


def _toml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def render(targets: list[Planned], unreached: dict[Site, str], found: Found, root: Path,
           system: str) -> str:
    lines = [
        f"# fodhash.toml, written by `fodhash init` on {time.strftime('%Y-%m-%d')} ({system}).",
        "#",
        "# Each target names the file holding hash sites (`file`) and what Nix evaluates to",
        "# reach them: the file itself, or `build` (another file) with `attr` (-A attributes),",
        "# or a flake reference (`flake`, `{system}` standing for the platform's). `site` picks",
        "# one hash binding of the file. fodhash init learnt which entry point reaches which",
        "# site by evaluating a scratch copy of the repository with a unique sentinel hash in",
        "# every site. Edit freely; the README's \"fodhash.toml\" section has every key.",
    ]
    for target in targets:
        lines.append("")
        for site in target.sites:
            lines.append(f"# {target.file}:{site.line}  {site.attrpath}  (reached by "
                         f"{target.entry.describe()})")
        for file, site in target.along:
            lines.append(f"# {file}:{site.line}  {site.attrpath}  (a pin {target.file} reads)")
        bindings = {s.binding for s in target.sites}
        for site in found.sites[target.file]:
            if site.platform and site.binding in bindings and site not in target.sites:
                lines.append(f"# {target.file}:{site.line}  {site.attrpath}  ({site.platform}'s "
                             "entry: not evaluated here, see [platforms.*] below)")
        lines.append(f"[targets.{_toml_key(target.name)}]")
        lines.append(f"file = {json.dumps(target.file)}")
        if target.selector:
            lines.append(f"site = {json.dumps(target.selector)}")
        entry = target.entry
        if entry.flake is not None:
            lines.append(f"flake = {json.dumps('.#packages.{system}.' + entry.flake)}")
        else:
            if entry.file != target.file:
                lines.append(f"build = {json.dumps(entry.file)}")
            if entry.attr:
                lines.append(f"attr = {json.dumps(entry.attr)}")
    platforms = sorted({s.platform for sites in found.sites.values() for s in sites
                        if s.platform and s.platform != system})
    if unreached:
        lines += ["", "# Hash sites no target reaches here:"]
        for site, why in unreached.items():
            rel = site.file.relative_to(root) if site.file.is_relative_to(root) else site.file
            lines.append(_comment(f"#   {rel}:{site.line} {site.attrpath}: {why}"))
    if found.unreadable:
        lines += ["", "# Files skipped:"]
        lines += [_comment(f"#   {file}: {why}") for file, why in sorted(found.unreadable.items())]
    if platforms:
        lines += ["", "# Other platforms' entries of system-keyed attrsets are not evaluated on "
                  f"{system}.", "# To check or update them, say how to evaluate (and build) for "
                  "each, e.g.:"]
    for system_name in platforms:
        lines += [f"# [platforms.{system_name}]",
                  f'# nix-args = ["--argstr", "system", "{system_name}"]',
                  '# build-args = ["--builders", "ssh://builder ' + system_name + '"]']
    return "\n".join(lines) + "\n"


def init(root: Path, *, force: bool, out: Console, err: Console) -> int:
    root = root.resolve()
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder")
    config = root / CONFIG_NAME
    if config.exists() and not force:
        raise UsageError(f"{config} exists; fodhash init does not overwrite it (--force does)")
    process.require("nix-instantiate")
    system = calls.current_system()
    try:
        found = discover(root, system)
    except FodhashError:
        raise
    except OSError as error:
        raise UsageError(f"cannot copy {root} to a scratch folder: {error}") from None
    if not found.sites:
        raise UsageError(f"{root}: no hash site in any .nix file (no hash, outputHash, "
                         "vendorHash, npmDepsHash, sha256, ... bound to a hash string or "
                         "lib.fakeHash); nothing to configure")
    targets, unreached = plan(found)
    if not targets:
        reasons = "\n".join(f"  {s.file.name}:{s.line} {s.attrpath}: {w}"
                            for s, w in unreached.items())
        raise UsageError(f"no entry point reaches any hash site, so no target can be "
                         f"written:\n{reasons}")
    atomic_write(config, render(targets, unreached, found, root, system).encode())
    for target in targets:
        sites = ", ".join([s.attrpath for s in target.sites]
                          + [f"{file}:{s.attrpath}" for file, s in target.along])
        out.print(f"{target.name}: {target.file} ({sites}) via {target.entry.describe()}",
                  markup=False, highlight=False)
    for site, why in unreached.items():
        err.print(f"not reached: {site.file.relative_to(root)}:{site.line} {site.attrpath}: "
                  f"{why}", markup=False, highlight=False)
    for note in found.notes:
        err.print(note, markup=False, highlight=False)
    total = sum(len(s) for s in found.sites.values())
    err.print(f"wrote {config} ({len(targets)} target(s) for {total - len(unreached)} of "
              f"{total} hash site(s)); next: fodhash update --all", markup=False,
              highlight=False)
    return 0
