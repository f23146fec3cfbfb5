"""The one write into the user's files at the end of a run.

Each file goes from the bytes fodhash read at the start to the same bytes with the true
hashes, by one atomic replace that keeps its owner, group, mode and extended attributes,
and only if the file still holds the bytes read at the start. A file that cannot be written
so is left as it is and the problem is returned (the caller prints the hashes to write).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fodhash.files.patch import TEMP_SUFFIX, atomic_write, deferred_signals, read_only

# Every file this process has written its final bytes into: the exit message after an
# interrupt says truthfully what each file holds.
written: list[Path] = []


@dataclass(frozen=True)
class Change:
    path: Path  # the user's file, symlinks resolved
    original: bytes  # what it held when fodhash read it
    final: bytes  # what it should hold


@dataclass(frozen=True)
class Outcome:
    change: Change
    written: bool
    problem: str = ""  # why the file was not written; empty if it was (or needed nothing)


def sweep_temporaries(folders: Iterable[Path]) -> None:
    """Remove the temporary files of a write that was killed (the caller holds the
    repository's lock, so no live fodhash owns them). `.NAME.XXXX.fodhash` is the name
    earlier versions used."""
    for folder in folders:
        for pattern in (f".*{TEMP_SUFFIX}", ".*.fodhash"):
            for leftover in folder.glob(pattern):
                with contextlib.suppress(OSError):
                    if leftover.is_file() and not leftover.is_symlink():
                        leftover.unlink()


def _problem(error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full (free some space and run again)"
    if error.errno == errno.EROFS:
        return "it is on a read-only file system"
    if isinstance(error, PermissionError):
        return ("it cannot be written (permission denied: read-only, immutable, or owned by "
                "someone whose ownership fodhash cannot keep)")
    return f"it cannot be written ({error.strerror})"


def _write(change: Change) -> Outcome:
    path = change.path
    if path.is_symlink():
        return Outcome(change, False, "it was replaced by a symlink while fodhash ran")
    try:
        current = path.read_bytes()
    except FileNotFoundError:
        return Outcome(change, False, "it was moved or deleted while fodhash ran")
    except OSError as error:
        return Outcome(change, False, f"it cannot be read ({error.strerror})")
    if current == change.final:
        return Outcome(change, False)  # it already holds the true hashes
    if current != change.original:
        return Outcome(change, False, "it changed while fodhash ran (was it saved in an editor?)")
    st = path.stat()
    refusal = read_only(st)
    if refusal:
        return Outcome(change, False, refusal)
    links = st.st_nlink
    if links > 1:
        return Outcome(change, False, f"it has {links} hard links: a replace would leave the "
                                      "other names with the old bytes")
    try:
        atomic_write(path, change.final)
    except OSError as error:
        return Outcome(change, False, _problem(error))
    written.append(path)
    return Outcome(change, True)


def write_back(changes: Iterable[Change]) -> list[Outcome]:
    """Write every changed file; a second Ctrl-C waits until the last write is done."""
    pending = [c for c in changes if c.final != c.original]
    sweep_temporaries({c.path.parent for c in pending})
    with deferred_signals():
        return [_write(change) for change in pending]


def interrupted() -> str:
    """What the files hold after an interrupt, truthfully."""
    if not written:
        return "every file fodhash touched holds its original bytes"
    names = ", ".join(str(p) for p in dict.fromkeys(written))
    return f"the true hashes were written into {names}; every other file holds its original bytes"
