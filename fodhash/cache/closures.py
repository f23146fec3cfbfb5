"""Closures read before, kept by their roots.

A .drv path is the hash of the file's content, the paths of its inputs included, so the
closure of a set of .drv paths can never change: what fodhash read of it once (fodhash.nix.
derivations.read_closure) answers for it ever after. The fast path of a run where nothing
changed reads its closure from here instead of from thousands of .drv files (a 5,000-
derivation closure: 0.13-0.26 s of reading against 0.04 s; docs/performance.md).

One JSON file per set of roots in `closures/` of the cache folder (JSON, like the result
cache: never pickles), the KEEP most recently used kept. A file that cannot be read or
written is passed over: the closure is read from the store as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fodhash.cache import kept
from fodhash.files.dirs import cache_dir
from fodhash.hashes.encoding import Algo, Hash
from fodhash.nix.derivations import Derivation

log = logging.getLogger(__name__)
VERSION = 1  # of the file format below; another version is read as absent
KEEP = 16  # closures kept: a few repositories' worth, each at most a few MB


def folder() -> Path:
    return cache_dir() / "closures"


def _file(roots: Sequence[str]) -> Path:
    key = hashlib.sha256("\n".join(sorted(set(roots))).encode()).hexdigest()
    return folder() / f"{key}.json"


def _record(drv: Derivation) -> list[Any]:
    digest = [str(drv.output_hash.algo), drv.output_hash.digest.hex()] if drv.output_hash else None
    return [drv.path, drv.name, drv.system, digest, drv.input_drvs, drv.input_srcs, drv.builder,
            drv.args, drv.env, drv.output_paths, drv.recursive, drv.complete,
            [[path, outputs] for path, outputs in drv.input_outputs]]


def _derivation(record: list[Any]) -> Derivation:
    (path, name, system, digest, input_drvs, input_srcs, builder, args, env, output_paths,
     recursive, complete, input_outputs) = record
    return Derivation(
        path=path, name=name, system=system,
        output_hash=Hash(Algo(digest[0]), bytes.fromhex(digest[1])) if digest else None,
        input_drvs=tuple(input_drvs), input_srcs=tuple(input_srcs), builder=builder,
        args=tuple(args), env=env, output_paths=tuple(output_paths), recursive=recursive,
        complete=complete, input_outputs=tuple((p, tuple(o)) for p, o in input_outputs))


def load(roots: Sequence[str]) -> dict[str, Derivation] | None:
    """The closure of `roots` as it was read before, or None."""
    file = _file(roots)
    try:
        data = json.loads(file.read_bytes())
        if data.get("version") != VERSION or sorted(data["roots"]) != sorted(set(roots)):
            return None
        graph = {record[0]: _derivation(record) for record in data["derivations"]}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    with contextlib.suppress(OSError):
        os.utime(file)  # recently used: kept longest
    return graph


def store(roots: Sequence[str], graph: dict[str, Derivation]) -> None:
    """Keep the closure of `roots` (written whole or not at all), and the KEEP newest."""
    where = folder()
    data = {"version": VERSION, "roots": sorted(set(roots)),
            "derivations": [_record(drv) for drv in graph.values()]}
    try:
        kept.write(_file(roots), data, KEEP)
    except OSError as error:  # a full disk, a read-only cache: read from the store next time
        log.debug("closure not kept in %s: %s", where, error)
