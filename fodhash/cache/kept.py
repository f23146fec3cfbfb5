"""The JSON files the cache folder keeps of what a run read (fodhash.cache.closures,
fodhash.cache.located): each written whole or not at all, and only the newest kept.

No fsync: a file lost to a crash is read again from the store or the repository next time.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write(file: Path, data: Any, keep: int) -> None:
    """Write `data` as JSON to `file`, through a temporary file in its folder and a rename,
    then remove all but the `keep` most recently written JSON files of that folder. Raises
    OSError (a full disk, a read-only cache), having removed its temporary file."""
    where = file.parent
    where.mkdir(parents=True, exist_ok=True)
    tmp: str | None = None
    try:
        with tempfile.NamedTemporaryFile("w", dir=where, suffix=".tmp", delete=False,
                                         encoding="utf-8") as out:
            tmp = out.name
            json.dump(data, out, separators=(",", ":"))
        os.replace(tmp, file)
        tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    files = list(where.glob("*.json"))
    if len(files) > keep:
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
