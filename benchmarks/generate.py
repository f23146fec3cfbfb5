"""Generated repositories for the benchmark: K stale FOD hash sites in chains of depth D.

A repository of raw `derivation`s, no nixpkgs, no network (stdlib only):

- `lib.nix`: `fetch` (a level-1 FOD, like fetchgit: waits S seconds like a download, then
  writes one file from its `text`) and `fetchDeps` (a level-d FOD, like an `npm ci` deps FOD
  reading its source: waits S seconds, then writes its `src`'s content and its own `text`),
  and `package` (a plain derivation). Outputs are flat files holding no store path, so each
  true hash is the sha256 of bytes this module knows: they are computed here, not by Nix.
- `sources.nix`: the level-1 FODs, one per chain (`pkg-01.outputHash`, ...); the first
  `same_name` of them are named `source`, as fetchers name everything, so they share the
  fake's output path (a FOD's output path depends only on its name and hash).
- `deps.nix` (level 2), `deps-3.nix`, ... (level d): FODs consuming the previous level's
  output path: a level-d site can only be resolved once level d-1 holds its true hash.
- `stdenv.nix`: N plain derivations in layers, each depending on two of the layer before,
  all under one `stdenv` derivation (a nixpkgs stdenv closure): evaluation and derivation
  reading scale with N. Never built: only the packages depend on it.
- `default.nix`: one package per chain, depending on its chain's FODs and on `stdenv`.
- `fodhash.toml` (one target per file of sites, all instantiating `default.nix`),
  `expected.json` (the true hash of every site), `recipe.tsv` (the sites in dependency order
  for benchmarks/manual-recipe.sh), and a git work tree (git init, git add).
- With `files` F > 1 and `entries` E > 1 (a repository like the real ones: several files
  of sites, several entry points): chain c's sites go to file c mod F of each level
  (`sources.nix`, `sources-b.nix`, ...; `deps.nix`, `deps-b.nix`, ...), which belongs to
  entry point (c mod F) mod E (`default.nix`, `default-b.nix`, ...): one target per file,
  each instantiating its entry point.

`nonce` goes into every FOD's text, so that each cold run's FODs (and true hashes) are new
to the Nix store. Run as `python -m benchmarks.generate DEST [--sites K ...]` to look at one.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

FAKE = "sha256-" + "A" * 43 + "="  # the all-zero SRI sha256: lib.fakeHash


@dataclass(frozen=True)
class Shape:
    sites: int = 8  # K: stale hash sites
    depth: int = 2  # D: levels of every chain (a level-d FOD consumes a level-(d-1) one)
    sleep: float = 2.0  # S: seconds each FOD's builder sleeps, like a download
    same_name: int = 2  # level-1 FODs named `source` (sharing the fake's output path)
    closure: int = 0  # N: plain derivations in every package's closure
    files: int = 1  # F: files of sites per level (one target each)
    entries: int = 1  # E: entry points (default.nix, default-b.nix, ...)

    def describe(self) -> str:
        names = f"{self.same_name} named alike" if self.same_name > 1 else "names unique"
        spread = (f", {self.files * self.depth} files, {self.entries} entry points"
                  if self.files > 1 or self.entries > 1 else "")
        return (f"K={self.sites}, D={self.depth}, S={self.sleep:g}, {names}, "
                f"N={self.closure}{spread}")

    def entry_files(self) -> list[str]:
        return [entry_file(e) for e in range(self.entries)]


@dataclass(frozen=True)
class Site:
    file: str  # the .nix file holding the literal
    chain: str  # the attribute of the chain in that file (`pkg-01`)
    level: int  # 1: a source; d > 1: consumes level d-1 of the same chain
    name: str  # the FOD's name
    stale: str  # the literal the repository starts with
    true: str  # the hash Nix computes
    index: int = 0  # which of its level's files (chain mod F)

    @property
    def attrpath(self) -> str:
        return f"{self.chain}.outputHash"


@dataclass(frozen=True)
class Repo:
    path: Path
    shape: Shape
    sites: list[Site]

    def wrong(self) -> list[str]:
        """The sites whose file does not hold their true hash (empty: fully resolved)."""
        texts = {s.file: (self.path / s.file).read_text() for s in self.sites}
        return [f"{s.file}:{s.attrpath}" for s in self.sites if f'"{s.true}"' not in texts[s.file]]


def sri(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def level_file(level: int, index: int = 0) -> str:
    """`sources.nix`, `deps.nix`, `deps-3.nix`, ...; the further files of a level add a
    letter: `sources-b.nix`, `deps-3-b.nix`."""
    stem = {1: "sources", 2: "deps"}.get(level, f"deps-{level}")
    return f"{stem}.nix" if index == 0 else f"{stem}-{chr(ord('a') + index)}.nix"


def entry_file(entry: int) -> str:
    return "default.nix" if entry == 0 else f"default-{chr(ord('a') + entry)}.nix"


def _seconds(value: float) -> str:
    return f"{value:g}"


LIB = """\
# Stand-ins for nixpkgs fetchers and packages: raw derivations, no network.
{{
  system ? builtins.currentSystem,
}}:

{{
  inherit system;

  # A source FOD (like fetchgit): waits like a download, then writes one file.
  fetch =
    {{
      name,
      text,
      outputHash,
    }}:
    derivation {{
      inherit name system text outputHash;
      builder = "/bin/sh";
      args = [
        "-c"
        ''
          export PATH=/usr/bin:/bin
          sleep {sleep}
          printf '%s\\n' "$text" > "$out"
        ''
      ];
    }};

  # A FOD reading another FOD's output (like an npm ci deps FOD reading its source).
  fetchDeps =
    {{
      name,
      src,
      text,
      outputHash,
    }}:
    derivation {{
      inherit name system src text outputHash;
      builder = "/bin/sh";
      args = [
        "-c"
        ''
          export PATH=/usr/bin:/bin
          sleep {sleep}
          {{ cat "$src"; printf '%s\\n' "$text"; }} > "$out"
        ''
      ];
    }};

  # A plain derivation (never built by the benchmark).
  package =
    {{
      name,
      inputs,
    }}:
    derivation {{
      inherit name system inputs;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo $inputs > $out"
      ];
    }};
}}
"""

STDENV = """\
# {closure} plain derivations in layers of {width} (the first one smaller), each depending on
# two of the layer before, under one `stdenv` derivation: the closure every package carries,
# as in nixpkgs.
{{
  lib ? import ./lib.nix {{ }},
}}:

let
  size = {closure};
  width = {width};
  count = (size + width - 1) / width;
  widthOf = l: if l == 0 then size - width * (count - 1) else width;
  layers = builtins.genList (
    l:
    builtins.genList (
      j:
      lib.package {{
        name = "stdenv-dep-${{toString l}}-${{toString j}}";
        inputs =
          if l == 0 then
            [ ]
          else
            let
              below = builtins.elemAt layers (l - 1);
              n = builtins.length below;
            in
            [
              (builtins.elemAt below (j - n * (j / n)))
              (builtins.elemAt below (j + 1 - n * ((j + 1) / n)))
            ];
      }}
    ) (widthOf l)
  ) count;
in
lib.package {{
  name = "stdenv";
  inputs = if size == 0 then [ ] else builtins.elemAt layers (count - 1);
}}
"""


def _header(level: int, index: int = 0) -> str:
    if level == 1:
        return ("# Pinned sources: level 1 of every chain.\n"
                "{\n  lib ? import ./lib.nix { },\n}:\n\n{\n")
    return (f"# Dependency FODs, level {level}: each reads its chain's level {level - 1}.\n"
            "{\n  lib ? import ./lib.nix { },\n"
            f"  below ? import ./{level_file(level - 1, index)} {{ inherit lib; }},\n"
            + "}:\n\n{\n")


def _site_nix(site: Site, text: str, literal: str) -> str:
    if site.level == 1:
        return (f"  {site.chain} = lib.fetch {{\n"
                f'    name = "{site.name}";\n'
                f'    text = "{text}";\n'
                f'    outputHash = "{literal}";\n'
                "  };\n")
    return (f"  {site.chain} = lib.fetchDeps {{\n"
            f'    name = "{site.name}";\n'
            f"    src = below.{site.chain};\n"
            f'    text = "{text}";\n'
            f'    outputHash = "{literal}";\n'
            "  };\n")


def _default_nix(levels: int, chains: dict[str, int], closure: int,
                 indexes: dict[str, int] | None = None) -> str:
    """An entry point: one package per chain of `chains` (chain -> its depth), reading the
    files of sites of those chains (`indexes`: chain -> file index, 0 if not given)."""
    where = indexes or {}
    lines = ["# The packages: each depends on its chain's FODs"
             + (" and on the stdenv closure." if closure else "."),
             "{", "  system ? builtins.currentSystem,", "  lib ? import ./lib.nix { inherit system; },",
             "}:", "", "let"]
    for index in sorted({where.get(c, 0) for c in chains}):
        tag = "" if index == 0 else f"f{index}"
        lines.append(f"  l1{tag} = import ./{level_file(1, index)} {{ inherit lib; }};")
        for level in range(2, levels + 1):
            lines.append(f"  l{level}{tag} = import ./{level_file(level, index)} {{ inherit lib; "
                         f"below = l{level - 1}{tag}; }};")
    if closure:
        lines.append("  stdenv = import ./stdenv.nix { inherit lib; };")
    lines += ["in", "{"]
    for chain, depth in chains.items():
        tag = "" if where.get(chain, 0) == 0 else f"f{where[chain]}"
        inputs = " ".join(f"l{level}{tag}.{chain}" for level in range(1, depth + 1))
        if closure:
            inputs += " stdenv"
        lines += [f"  {chain} = lib.package {{", f'    name = "{chain}";',
                  f"    inputs = [ {inputs} ];", "  };"]
    lines += ["}", ""]
    return "\n".join(lines)


def plan(shape: Shape, nonce: str) -> list[Site]:
    """The sites: K of them in chains of depth D (the last chain shorter when D does not
    divide K), in dependency order: every level 1, then every level 2, ..."""
    chains = -(-shape.sites // shape.depth)
    slots = [(c, level) for c in range(chains) for level in range(1, shape.depth + 1)]
    sites: list[Site] = []
    content: dict[int, bytes] = {}
    for c, level in sorted(slots[:shape.sites], key=lambda slot: (slot[1], slot[0])):
        chain = f"pkg-{c + 1:02d}"
        if level == 1:
            name = "source" if c < shape.same_name else f"{chain}-src"
        else:
            name = f"{chain}-deps" if level == 2 else f"{chain}-deps-{level}"
        content[c] = content.get(c, b"") + _text(chain, level, nonce).encode() + b"\n"
        stale = sri(f"stale {nonce} {chain} {level}".encode())
        index = c % shape.files
        sites.append(Site(level_file(level, index), chain, level, name, stale, sri(content[c]),
                          index))
    return sites


def _text(chain: str, level: int, nonce: str) -> str:
    return f"{chain} level {level} {nonce}"


def generate(shape: Shape, dest: Path, nonce: str, *, resolved: bool = False) -> Repo:
    """Write the repository into `dest` (created) and `git add` it: every hash stale, or
    (`resolved`) every hash true."""
    dest.mkdir(parents=True)
    sites = plan(shape, nonce)
    depth = max(s.level for s in sites)
    (dest / "lib.nix").write_text(LIB.format(sleep=_seconds(shape.sleep)))
    recipe: list[str] = []
    files = sorted({(s.level, s.index) for s in sites})
    for level, index in files:
        here = [s for s in sites if (s.level, s.index) == (level, index)]
        text = _header(level, index) + "".join(
            _site_nix(s, _text(s.chain, level, nonce), s.true if resolved else s.stale)
            for s in here) + "}\n"
        (dest / level_file(level, index)).write_text(text)
        lines = text.splitlines()
        for s in here:  # for the recipe: where each literal is
            literal = f'"{s.true if resolved else s.stale}"'
            number = next(i for i, line in enumerate(lines, 1) if literal in line)
            recipe.append(f"{s.file}\t{number}\t{literal}\t{s.file}\t{s.chain}\n")
    chains: dict[str, int] = {}
    indexes: dict[str, int] = {}
    for s in sites:
        chains[s.chain] = max(chains.get(s.chain, 0), s.level)
        indexes[s.chain] = s.index
    if shape.closure:
        (dest / "stdenv.nix").write_text(STDENV.format(closure=shape.closure, width=100))
    for entry in range(shape.entries):
        mine = {c: d for c, d in chains.items() if indexes[c] % shape.entries == entry}
        (dest / entry_file(entry)).write_text(_default_nix(depth, mine, shape.closure, indexes))
    toml = ["# Generated by benchmarks/generate.py: one target per file of sites."]
    for level, index in files:
        name = level_file(level, index).removesuffix(".nix")
        toml += ["", f"[targets.{name}]", f'file = "{level_file(level, index)}"',
                 f'build = "{entry_file(index % shape.entries)}"']
    (dest / "fodhash.toml").write_text("\n".join(toml) + "\n")
    expected: dict[str, dict[str, str]] = {}
    for s in sites:
        expected.setdefault(s.file, {})[s.attrpath] = s.true
    (dest / "expected.json").write_text(json.dumps(
        {"shape": asdict(shape), "nonce": nonce, "sites": expected}, indent=2) + "\n")
    # For the recipe (in dependency order): file, line, literal, what to nix-build.
    (dest / "recipe.tsv").write_text("".join(recipe))
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    return Repo(dest, shape, sites)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--sites", "-k", type=int, default=Shape.sites)
    parser.add_argument("--depth", "-d", type=int, default=Shape.depth)
    parser.add_argument("--sleep", "-s", type=float, default=Shape.sleep)
    parser.add_argument("--same-name", type=int, default=Shape.same_name)
    parser.add_argument("--closure", "-n", type=int, default=Shape.closure)
    parser.add_argument("--files", "-f", type=int, default=Shape.files,
                        help="files of sites per level")
    parser.add_argument("--entries", "-e", type=int, default=Shape.entries,
                        help="entry points")
    parser.add_argument("--nonce", default="0")
    parser.add_argument("--resolved", action="store_true", help="write the true hashes")
    args = parser.parse_args()
    shape = Shape(args.sites, args.depth, args.sleep, args.same_name, args.closure, args.files,
                  args.entries)
    repo = generate(shape, args.dest, args.nonce, resolved=args.resolved)
    print(f"{repo.path}: {shape.describe()}, {len(repo.sites)} sites")


if __name__ == "__main__":
    main()
