"""The result cache's export format (docs/cache-format.md): entries, files of them, results read back."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fodhash.errors import HashError, UsageError
from fodhash.files.patch import atomic_write
from fodhash.hashes.encoding import Encoding, Hash, parse_hash

FORMAT = "fodhash-cache"
VERSION = 1
KEY_RE = re.compile(r"[0-9a-f]{64}")
# Field name -> accepted JSON types, in the order the format documents them.
FIELDS: dict[str, tuple[type, ...]] = {
    "key": (str,),
    "hash": (str,),
    "platform": (str,),
    "name": (str,),
    "nix_version": (str,),
    "time": (int, float),
}
_TOP_LEVEL = frozenset({"format", "version", "entries", "checksum"})
# The system of a FOD built by Nix itself (`import <nix/fetchurl.nix>`, builtin:fetchurl):
# the same derivation, and so the same result, on every platform.
EVERY_PLATFORM = "builtin"


@dataclass(frozen=True)
class Entry:
    key: str  # hex digest of the normalised FOD (fodhash.cache.store.key_for)
    hash: Hash  # the true output hash
    platform: str  # the derivation's system, e.g. x86_64-linux
    name: str  # the FOD's name
    nix_version: str
    time: float  # unix time it was computed

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "hash": self.hash.sri,
            "platform": self.platform,
            "name": self.name,
            "nix_version": self.nix_version,
            "time": self.time,
        }


def checksum(entries: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the entries list, as the export format defines it."""
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


def entry_problem(raw: object) -> str | None:
    """What is wrong with one raw entry of a cache file, or None if it is well-formed."""
    if not isinstance(raw, dict):
        return f"is a {type(raw).__name__}, not an object"
    for name, types in FIELDS.items():
        if name not in raw:
            return f"lacks the field {name!r}"
        value = raw[name]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(_json_type(t) for t in types)
            return f"field {name!r} is {_json_type(type(value))}, expected {wanted}"
    extra = sorted(set(raw) - set(FIELDS))
    if extra:
        return f"has unknown field(s) {', '.join(map(repr, extra))}"
    if not KEY_RE.fullmatch(raw["key"]):
        return f"key {raw['key']!r} is not 64 lowercase hex digits"
    try:
        parsed = parse_hash(raw["hash"])
    except HashError as error:
        return f"hash {raw['hash']!r} is not a hash: {error}"
    if parsed.encoding is not Encoding.SRI:
        return f"hash {raw['hash']!r} is not in SRI form (algo-base64)"
    if parsed.hash.is_fake:
        return f"hash {raw['hash']!r} is the fake all-zero hash, not a resolved one"
    if not raw["platform"]:
        return "platform is empty"
    return None


def _json_type(kind: type) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
             dict: "an object", list: "an array", type(None): "null"}
    return names.get(kind, kind.__name__)


def parse_entry(raw: dict[str, Any]) -> Entry:
    return Entry(key=raw["key"], hash=parse_hash(raw["hash"]).hash, platform=raw["platform"],
                 name=raw["name"], nix_version=raw["nix_version"], time=float(raw["time"]))


def read_file(path: Path) -> list[Entry]:
    """Every entry of an export file, or UsageError naming the file, entry and problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read cache file {path}: {error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path} is not valid JSON ({error}); is it truncated?") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a fodhash cache file (no \"format\": \"{FORMAT}\")")
    version = data.get("version")
    if type(version) is not int or version != VERSION:
        raise UsageError(f"{path} has format version {version!r}; this fodhash reads "
                         f"version {VERSION} only (upgrade fodhash for newer files)")
    extra = sorted(set(data) - _TOP_LEVEL)
    if extra:
        raise UsageError(f"{path} has unknown top-level field(s) {', '.join(map(repr, extra))}")
    raws = data.get("entries")
    if not isinstance(raws, list):
        raise UsageError(f"{path}: \"entries\" is missing or not an array")
    for index, raw in enumerate(raws):
        problem = entry_problem(raw)
        if problem:
            raise UsageError(f"{path}: entry {index} {problem}; nothing was imported")
    stated = data.get("checksum")
    if not isinstance(stated, str):
        raise UsageError(f"{path}: \"checksum\" is missing or not a string")
    if stated != checksum(raws):
        raise UsageError(f"{path}: checksum mismatch (the entries were changed after export, "
                         f"or the file is damaged); nothing was imported")
    return [parse_entry(raw) for raw in raws]


def write_export(path: Path, entries: Sequence[Entry]) -> int:
    """Write entries in the export format (docs/cache-format.md), atomically."""
    raws = [entry.to_json() for entry in entries]
    document = {"format": FORMAT, "version": VERSION, "entries": raws, "checksum": checksum(raws)}
    try:
        atomic_write(path.absolute(), (json.dumps(document, indent=2) + "\n").encode())
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error}") from None
    return len(raws)


class FileResults:
    """Results exported elsewhere (fodhash apply): read-only, nothing else is trusted."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = {e.key: e for e in entries}

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)

    def put(self, entry: Entry) -> None:
        return None  # nothing is built in apply, so nothing new is learnt

    def count(self) -> int:
        return len(self.entries)
