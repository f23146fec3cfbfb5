"""What Nix registered for a FOD it built, and the store paths that output references.

After a hash mismatch Nix (2.8, 2.34) registers the output under the path its `got:` hash
gives, and Nix 2.26 registers it even as it refuses a FOD whose output references store
paths. Store paths name their references only when the FOD is recursive sha256 (Nix's
`makeFixedOutputPath`): an output without references lies at the path computed here from
the hash and the name alone, which is only an `lexists` away. An output with references lies
elsewhere, at a path of the same name whose deriver is the FOD just built; only then is Nix
asked (one `nix path-info --json` for all). Tried on Nix 2.8, 2.26 and 2.34 (docs/why.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fodhash.hashes.encoding import Algo, Hash, nix32_encode
from fodhash.nix.calls import EXPERIMENTAL
from fodhash.nix.process import run

STORE = "/nix/store"
_HASH_PART = re.compile(r"[0-9a-df-np-sv-z]{32}")


@dataclass(frozen=True)
class Built:
    """A FOD just built: its .drv, its name and mode, the hash Nix got (None: refused first)."""

    drv: str
    name: str
    recursive: bool
    got: Hash | None


@dataclass(frozen=True)
class Registered:
    """The output Nix registered for a build, with the store paths it references."""

    path: str
    references: tuple[str, ...]


def fixed_path(got: Hash, name: str, *, recursive: bool, store: str = STORE) -> str:
    """The store path of a fixed output without references (Nix's makeFixedOutputPath)."""
    if recursive and got.algo is Algo.SHA256:
        kind, inner = "source", got.digest.hex()
    else:
        mode = "r:" if recursive else ""
        kind = "output:out"
        inner = hashlib.sha256(f"fixed:out:{mode}{got.algo}:{got.digest.hex()}:".encode()).hexdigest()
    digest = hashlib.sha256(f"{kind}:sha256:{inner}:{store}:{name}".encode()).digest()
    folded = bytearray(20)
    for index, byte in enumerate(digest):  # Nix's compressHash: XOR-fold to 160 bits
        folded[index % 20] ^= byte
    return f"{store}/{nix32_encode(bytes(folded))}-{name}"


def registered(builds: Sequence[Built], since: float) -> dict[str, Registered]:
    """Each build's registered output, by .drv path (a build whose output Nix did not
    register is absent). `since`: when the builds started (an output registered by them
    changed status then; older ones of the same name are asked about only if need be)."""
    found: dict[str, Registered] = {}
    plain = {b.drv: fixed_path(b.got, b.name, recursive=b.recursive)
             for b in builds if b.got is not None}
    # Valid, not only present: Nix 2.8 can leave an unregistered copy there.
    valid = set(_valid([p for p in plain.values() if os.path.lexists(p)]))
    for drv, path in plain.items():
        if path in valid:  # no references: they would name another path
            found[drv] = Registered(path, ())
    rest = [b for b in builds if b.drv not in found]
    if not rest:
        return found
    names = {b.name for b in rest}
    recent, older = _candidates(names, since)
    for candidates in (recent, older):
        wanted = {b.drv for b in rest if b.drv not in found}
        if not wanted or not candidates:
            continue
        by_nar = {_nar(b.got): b.drv for b in rest
                  if b.got is not None and b.recursive and b.drv in wanted}
        for info in _path_info(candidates):
            deriver = str(info.get("deriver"))
            owner = deriver if deriver in wanted else by_nar.get(str(info.get("narHash")))
            if owner is not None and owner not in found:
                found[owner] = Registered(str(info["path"]), tuple(sorted(
                    str(r) for r in info.get("references") or () if r != info["path"])))
    return found


def _candidates(names: set[str], since: float) -> tuple[list[str], list[str]]:
    """Store paths named like one of these FODs: those changed since `since`, the others."""
    recent: list[str] = []
    older: list[str] = []
    try:
        entries = os.scandir(STORE)
    except OSError:
        return [], []
    with entries:
        for entry in entries:
            if entry.name[33:] not in names or not _HASH_PART.fullmatch(entry.name[:32]):
                continue
            try:
                changed = entry.stat(follow_symlinks=False).st_ctime
            except OSError:
                continue
            (recent if changed >= since - 2 else older).append(entry.path)
    return recent, older


def _nar(got: Hash) -> str:
    return got.sri  # how `nix path-info --json` writes a NAR hash (format 1)


def _valid(paths: Sequence[str]) -> list[str]:
    """Those of the paths Nix holds valid (asked of the local store only)."""
    if not paths:
        return []
    check = run(["nix-store", "--check-validity", "--print-invalid", *paths])
    invalid = set(check.stdout.split()) if check.ok else set(paths)
    return [p for p in paths if p not in invalid]


def _path_info(paths: Sequence[str]) -> list[dict[str, Any]]:
    """`nix path-info --json` of the valid ones of these paths (an invalid one would be looked
    for on the substituters), each with its `path`: Nix 2.8 prints a list of objects, later
    versions an object keyed by path."""
    valid = _valid(paths)
    if not valid:
        return []
    result = run(["nix", *EXPERIMENTAL, "path-info", "--json", *valid])
    if not result.ok:
        return []
    try:
        raw = json.loads(result.stdout)
    except ValueError:
        return []
    if isinstance(raw, dict):
        raw = [dict(v, path=k) for k, v in raw.items() if isinstance(v, dict)]
    return [r for r in raw if isinstance(r, dict) and "path" in r]


def holders(output: str, references: Iterable[str], limit: int = 5) -> dict[str, list[str]]:
    """For each referenced path, the files of the output that hold it (by its hash part, as
    Nix scans: in a file's contents, a name, a symlink's target), relative, at most `limit`."""
    parts = {ref: Path(ref).name[:32].encode() for ref in references}
    found: dict[str, list[str]] = {ref: [] for ref in parts}
    root = Path(output)
    paths = [root] if not root.is_dir() or root.is_symlink() else \
        [root, *sorted(root.rglob("*"))]
    for path in paths:
        name = "." if path == root else str(path.relative_to(root))
        try:
            if path.is_symlink():
                blob = os.readlink(path).encode() + b"\0" + name.encode()
            elif path.is_file():
                blob = path.read_bytes() + b"\0" + name.encode()
            else:
                blob = name.encode()
        except OSError:
            continue
        for ref, part in parts.items():
            if part in blob and len(found[ref]) < limit:
                found[ref].append(name)
    return found
