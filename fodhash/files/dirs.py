"""The folders fodhash keeps its own data in.

One cache folder (cache_dir) holds the result cache (cache.db), the scratch copies (scratch/)
and the journals of in-place runs (journals/).
"""

from __future__ import annotations

import os
from pathlib import Path

DATABASE = "cache.db"  # diskcache's SQLite file in the cache folder (fodhash.cache.store)


def cache_dir() -> Path:
    """$FODHASH_CACHE_DIR, else $XDG_CACHE_HOME/fodhash, else ~/.cache/fodhash."""
    own = os.environ.get("FODHASH_CACHE_DIR")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "fodhash"
    return Path.home() / ".cache" / "fodhash"
