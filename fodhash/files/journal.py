"""The journal of a run that edits files in place: it undoes the edits of a run that was killed.

Only the fallback needs it: a repository that cannot be evaluated from a scratch copy
(fodhash.files.place). Before fodhash first writes a file it records the file's original bytes and
their digest here, and before every write the digest of what it is about to write. A run that
ends in any way short of SIGKILL restores or finishes its files itself and deletes the
journal. A journal found by the next run (which holds the repository's lock, so its writer is
gone) belongs to a killed run: each file that still holds something fodhash wrote gets its
original bytes back, but only once every entry has been checked: a journal that is damaged
in any way is refused, naming its files, and nothing is replayed.

Journals are keyed by the repository's root, never by the working directory.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fodhash.errors import UsageError
from fodhash.files.dirs import cache_dir
from fodhash.files.patch import ScratchError, atomic_write


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Entry:
    path: Path
    original: bytes
    written: frozenset[str]  # digests of every state fodhash wrote


class JournalError(ScratchError):
    """The journal could not be written (its disk full): the edit it guards is not made."""


@dataclass
class Journal:
    root: Path
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        name = _digest(str(self.root.resolve()).encode())[:32]
        return cache_dir() / "journals" / f"{name}.json"

    def _save(self) -> None:
        # Written whole from memory each time: a journal deleted with the cache folder is
        # made again by the next record.
        data = {"root": str(self.root), "pid": os.getpid(), "files": self.files}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(data).encode())
        except OSError as error:
            raise JournalError(f"cannot write the journal {self.path} ({error.strerror}; free "
                               "some space, or set FODHASH_CACHE_DIR elsewhere); the file "
                               "about to be edited was not") from None

    def record(self, path: Path, original: bytes, about_to_write: bytes) -> None:
        """Called before each write: the original once, and every state fodhash writes."""
        entry = self.files.setdefault(str(path), {
            "original": base64.b64encode(original).decode(),
            "digest": _digest(original),
            "written": [],
        })
        written = entry["written"]
        assert isinstance(written, list)
        if _digest(about_to_write) not in written:
            written.append(_digest(about_to_write))
            self._save()  # on disk (fsynced) before the file can hold these bytes

    def clear(self) -> None:
        self.files.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _damaged(self, why: str, data: Any = None) -> UsageError:
        names = []
        if isinstance(data, dict) and isinstance(data.get("files"), dict):
            names = [str(n) for n in data["files"]]
        files = f" It names: {', '.join(names)}." if names else ""
        return UsageError(
            f"the journal of a killed fodhash run, {self.path}, is damaged ({why}), so fodhash "
            f"will not replay it.{files} Check those files (git diff shows a fake or sentinel "
            "hash fodhash left), then delete the journal and run again")

    def _entries(self) -> list[_Entry] | None:
        """Every entry of the journal on disk, checked; None if there is no journal."""
        try:
            text = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise self._damaged(f"cannot be read: {error.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise self._damaged("not valid JSON; truncated?") from None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            raise self._damaged("it has no `files` table", data)
        entries = []
        for name, entry in files.items():
            try:
                original = base64.b64decode(entry["original"], validate=True)
                digest, written = entry["digest"], entry["written"]
            except (KeyError, TypeError, binascii.Error):
                raise self._damaged(f"the entry of {name} is incomplete", data) from None
            if not (isinstance(written, list) and all(isinstance(w, str) for w in written)):
                raise self._damaged(f"the entry of {name} is incomplete", data)
            if _digest(original) != digest:
                raise self._damaged(f"the original bytes of {name} do not match their digest",
                                    data)
            entries.append(_Entry(Path(name), original, frozenset(written)))
        return entries

    def replay(self) -> tuple[list[Path], list[Path]]:
        """Undo a killed run: (files restored, files left alone because they changed since)."""
        entries = self._entries()
        if entries is None:
            return [], []
        restored, left = [], []
        for entry in entries:
            try:
                current = entry.path.read_bytes()
            except FileNotFoundError:
                left.append(entry.path)
                continue
            if current == entry.original:
                continue
            if _digest(current) in entry.written:
                atomic_write(entry.path, entry.original)
                restored.append(entry.path)
            else:
                left.append(entry.path)
        self.path.unlink()
        return restored, left
