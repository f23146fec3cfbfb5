"""One writer per repository, and a journal that undoes the edits of a run that was killed.

Before fodhash first writes a file it records the file's original bytes here, and before
every write the digest of what it is about to write. A run that ends in any way short of
SIGKILL restores or finishes its files itself and deletes the journal. A journal found by
the next run (which holds the repository's lock, so its writer is gone) belongs to a killed
run: every file that still holds something fodhash wrote gets its original bytes back; a
file someone changed since is left alone and named.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fodhash.cache import cache_dir
from fodhash.errors import FodhashError, UsageError
from fodhash.patch import atomic_write


class LockedError(FodhashError):
    """Another fodhash is editing this repository."""

    exit_code = 1


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Journal:
    root: Path
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        name = _digest(str(self.root.resolve()).encode())[:32]
        return cache_dir() / "journals" / f"{name}.json"

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"root": str(self.root), "pid": os.getpid(), "files": self.files}
        atomic_write(self.path, json.dumps(data).encode())

    def record(self, path: Path, original: bytes, about_to_write: bytes) -> None:
        """Called before each write: the original once, and every state fodhash writes."""
        entry = self.files.setdefault(str(path), {
            "original": base64.b64encode(original).decode(),
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

    def replay(self) -> tuple[list[Path], list[Path]]:
        """Undo a killed run: (files restored, files left alone because they changed since)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return [], []
        except (OSError, ValueError) as error:
            raise UsageError(f"the journal {self.path} is unreadable ({error}); inspect and "
                             "delete it") from None
        restored, left = [], []
        for name, entry in data.get("files", {}).items():
            path = Path(name)
            original = base64.b64decode(entry["original"])
            try:
                current = path.read_bytes()
            except FileNotFoundError:
                left.append(path)
                continue
            if current == original:
                continue
            if _digest(current) in entry["written"]:
                atomic_write(path, original)
                restored.append(path)
            else:
                left.append(path)
        self.path.unlink()
        return restored, left


@contextlib.contextmanager
def repository(root: Path, *, wait: bool, say: Callable[[str], None]) -> Iterator[Journal]:
    """Hold the repository's lock for a command; replay a killed run's journal first.

    An flock(2) lock: the kernel releases it when its holder dies, even by SIGKILL, so a
    killed run never leaves the repository locked.
    """
    journal = Journal(root)
    journal.path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(journal.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockedError(f"another fodhash is editing {root}; wait for it to finish "
                                  "(or run without --no-wait to wait)") from None
            say(f"waiting for another fodhash editing {root} to finish...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        restored, left = journal.replay()
        for path in restored:
            say(f"restored {path} to its original bytes: an earlier fodhash run was killed")
        for path in left:
            say(f"left {path} as it is: an earlier fodhash run was killed while editing it, "
                "and it has changed since")
        yield journal
    finally:
        os.close(fd)  # releases the lock
