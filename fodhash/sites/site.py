"""A hash site: the Site type, the names that mark one in Nix and JSON alike, and `select`."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fodhash.errors import UsageError
from fodhash.hashes.encoding import Algo, Hash, HashText

# Attribute names that hold a FOD hash: hash, outputHash, vendorHash, npmDepsHash, cargoHash,
# sha256, vendorSha256, ... but not outputHashAlgo or outputHashMode.
HASH_NAME = re.compile(r"(?:^|[a-z0-9])(?:[Hh]ash|[Ss]ha256|[Ss]ha512|[Ss]ha1|[Mm]d5)$")
# Keys of a system-keyed attrset: x86_64-linux, aarch64-darwin, riscv64-linux, ...
SYSTEM_KEY = re.compile(r"^[a-z][a-z0-9_]*-[a-z][a-z0-9]*$")
# A Nix system name, for a map of hashes bound under any name (`hashes.${system}`, and the
# keys of a JSON object): a cpu and an operating system Nix knows, so that `{ foo-bar = ...; }`
# or `{"left-pad": ...}` (package names) is not one.
SYSTEM = re.compile(
    r"^[a-z][a-z0-9_]*-(?:linux|darwin|freebsd|netbsd|openbsd|cygwin|windows|wasi|none|"
    r"illumos|solaris|redox|genode|mmixware|ghcjs|uefi)$")
# A hash named for how the store verifies a fetched tree at evaluation (fetchTree, flake.lock):
# no derivation has it as its output hash, so no build can tell it.
NOT_FOD_HASH = {"narHash"}
FAKE_NAMES = {"fakeHash": Algo.SHA256, "fakeSha256": Algo.SHA256, "fakeSha512": Algo.SHA512}


@dataclass(frozen=True)
class Site:
    """One hash literal (or placeholder expression) bound to a hash attribute."""

    file: Path
    attrpath: str  # inside the file: "src.hash", "ui.npmDepsHash", "outputHash.x86_64-linux",
    #                'cargoLock.outputHashes."name-0.1.0"' (an entry's key quoted unless plain)
    binding: str  # the hash attribute's path without the platform or entry key: "outputHash",
    #               "cargoLock.outputHashes"
    platform: str | None  # the system key, for an entry of a system-keyed attrset
    line: int  # 1-based line of the literal
    start: int  # byte span to replace: inside the quotes for a literal,
    end: int  # the whole expression for a placeholder such as lib.fakeHash or ""
    text: str  # what the span holds now
    algo: Algo
    form: HashText | None  # the parsed literal; None for a placeholder or a missing entry
    # What surrounds a hash written into the span when it holds no literal: quotes for a
    # placeholder; for a missing platform entry, the whole new binding (see platform_slot).
    wrap: tuple[str, str] = ('"', '"')
    # For a literal chosen by a condition (`hash = if stdenv.isDarwin then "…" else "…"`):
    # when it is chosen ("stdenv.isDarwin", "!stdenv.isDarwin"). Which platform takes which
    # branch only evaluation tells, so `platform` stays None.
    branch: str | None = None
    # For a missing platform entry: the form of its neighbours' literals, to write it alike.
    style: HashText | None = None

    @property
    def is_placeholder(self) -> bool:
        return self.form is None

    @property
    def is_missing(self) -> bool:
        """A platform entry that is not in the file yet (an insertion point)."""
        return self.start == self.end and self.form is None

    @property
    def encoding(self) -> str:
        if self.is_missing:
            return "missing"
        if self.form is None:
            return "placeholder"
        prefix = f"{self.form.hash.algo}:" if self.form.prefixed else ""
        return prefix + str(self.form.encoding)

    @property
    def current(self) -> Hash | None:
        """The hash the site holds now; None for a placeholder (it means "unknown")."""
        return None if self.form is None or self.form.hash.is_fake else self.form.hash

    def render(self, value: Hash, *, bare_ok: bool = True) -> str:
        """Text for the span that makes this site hold `value`, in the author's encoding.

        Placeholders become quoted SRI strings; a value of another algorithm than the
        literal's is written as SRI, which Nix accepts in every hash position.
        """
        if self.form is None:
            alike = self.style is not None and self.style.hash.algo is value.algo and bare_ok
            return self.quote(self.style.render(value) if self.style and alike else value.sri)
        if value.algo is not self.form.hash.algo or not bare_ok:
            return value.sri
        return self.form.render(value)

    def quote(self, text: str) -> str:
        """`text` (a bare hash string) as it must appear in the span."""
        return f"{self.wrap[0]}{text}{self.wrap[1]}" if self.form is None else text

    def __str__(self) -> str:
        return f"{self.file.name}:{self.attrpath}"

    def named(self, root: Path) -> str:
        """`FILE:ATTRPATH` with the file relative to `root`: unlike the basename of
        `str(site)`, two `default.nix` in different folders are two names."""
        return f"{relative(self.file, root)}:{self.attrpath}"


def relative(path: Path, root: Path) -> str:
    """A path as reports print it: relative to the folder of fodhash.toml (`../default.nix`
    for a file elsewhere in its git repository)."""
    if path.is_absolute() and root.is_absolute():
        return _relative(path, root)
    return _relative.__wrapped__(path, root)  # relpath of a relative path reads the cwd


@lru_cache(maxsize=1024)
def _relative(path: Path, root: Path) -> str:
    """Kept: a report names each file once a site (a file of 256 sites, 512 times a run),
    and pathlib takes 0.1 ms each time (docs/performance.md)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else os.path.relpath(path, root)


def select(sites: list[Site], selector: str | None, where: str) -> list[Site]:
    """The sites a target's `site` selector names: an attribute path, or its last part(s).

    `outputHash` selects every platform entry of a system-keyed `outputHash`, and
    `cargoLock.outputHashes` every entry of it (one by `cargoLock.outputHashes."a-0.1.0"`, its
    key quoted or not); a selector that names sites of two different bindings is ambiguous
    and refused.
    """
    if selector is None:
        return sites

    def paths(s: Site) -> tuple[str, str, str]:  # an entry's key is selectable unquoted too
        return s.attrpath, s.binding, s.attrpath.replace('"', "")

    exact = [s for s in sites if selector in paths(s)]
    chosen = exact or [s for s in sites if any(p.endswith("." + selector) for p in paths(s))]
    bindings = sorted({s.binding for s in chosen})
    if not chosen:
        known = ", ".join(sorted({s.attrpath for s in sites})) or "none"
        raise UsageError(f"{where}: site {selector!r} matches no hash site (sites: {known})")
    if len(bindings) > 1:
        raise UsageError(
            f"{where}: site {selector!r} is ambiguous, it matches {', '.join(bindings)}; "
            "give the full attribute path"
        )
    return chosen
