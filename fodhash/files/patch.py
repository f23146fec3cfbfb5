"""Transactional edits of byte spans: atomic writes, and every touched file restored on failure."""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fodhash.errors import FodhashError

Span = tuple[int, int]


class ConflictError(FodhashError):
    """A file changed under fodhash while it ran."""


class ScratchError(FodhashError):
    """fodhash's own working files could not be written: a scratch copy (its disk full, its
    folder deleted and not made again) or the journal. The run stops, and says the hashes it
    computed (fodhash.run.sessions)."""


def apply_edits(source: bytes, edits: Mapping[Span, str]) -> bytes:
    """`source` with each span replaced; spans refer to `source` and must not overlap."""
    out, pos = bytearray(), 0
    for (start, end), text in sorted(edits.items()):
        if start < pos:
            raise ValueError(f"overlapping edits at byte {start}")
        out += source[pos:start] + text.encode()
        pos = end
    out += source[pos:]
    return bytes(out)


def moved_span(span: Span, edits: Mapping[Span, str]) -> Span | None:
    """Where `span` of a source is once `edits` (as apply_edits takes them) are applied;
    None if one of them overlaps it."""
    start, end = span
    if any(s < end and e > start for s, e in edits):
        return None
    shift = sum(len(text.encode()) - (e - s) for (s, e), text in edits.items() if e <= start)
    return start + shift, end + shift


_DEFERRED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP wait until the block ends: nothing cuts a write short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


TEMP_SUFFIX = ".fodhash-tmp"  # a later command removes these (writeback.sweep_temporaries)


def _keep_metadata(path: Path, tmp: str) -> None:
    """Give `tmp` the owner, group, mode and extended attributes of `path`, or raise."""
    st = path.stat()
    os.chmod(tmp, st.st_mode & 0o7777)
    if (st.st_uid, st.st_gid) != (os.getuid(), os.getgid()):
        os.chown(tmp, st.st_uid, st.st_gid)  # PermissionError if not ours to give
        os.chmod(tmp, st.st_mode & 0o7777)  # chown clears set-id bits
    try:
        names = os.listxattr(path)
    except OSError:  # a file system without extended attributes
        return
    for name in names:
        try:
            os.setxattr(tmp, name, os.getxattr(path, name))
        except OSError:
            if not name.startswith("security."):  # labels are the security policy's to set
                raise


def read_only(st: os.stat_result) -> str:
    """Why the file's mode bits forbid this process to write it (empty if they allow it).
    The replace needs only the folder's permission and root passes every permission check,
    so the bits are read here: a file made read-only (`chmod a-w`) is not written, by root
    either (a read-only mount or an immutable flag are found by the write itself)."""
    euid = os.geteuid()
    if euid == 0:
        allowed = 0o222  # root: unless no one may write it
    elif st.st_uid == euid:
        allowed = stat.S_IWUSR
    elif st.st_gid == os.getegid() or st.st_gid in os.getgroups():
        allowed = stat.S_IWGRP
    else:
        allowed = stat.S_IWOTH
    if st.st_mode & allowed:
        return ""
    return f"it is read-only (mode {stat.filemode(st.st_mode)[1:]})"


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write via a temporary file in the same folder and rename, keeping the file's owner,
    group, mode and extended attributes (or raising OSError before anything changed).

    A reader (or a crash) sees the old bytes or the new ones, never a partial file.
    `durable=False` (a scratch copy's file, which a crash discards whole): no fsync (0.5 ms
    each on the machine of docs/performance.md, and a round writes each file once per tree).
    """
    existed = path.exists()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        if existed:
            _keep_metadata(path, tmp)
        else:  # a new file: what open() would give it
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class Recorder(Protocol):
    """Where a write is recorded before it happens (journal.Journal): to undo a killed run."""

    def record(self, path: Path, original: bytes, about_to_write: bytes) -> None: ...
    def clear(self) -> None: ...


@dataclass
class Document:
    """One file under edit: its original bytes and what fodhash wrote last."""

    path: Path  # the real path (symlinks resolved), so a rename replaces the file, not the link
    original: bytes
    written: bytes | None = None
    recorder: Recorder | None = None
    # False in a scratch copy: no one else edits it, and what an earlier session of the run
    # left there is simply replaced. True for the user's own file (in place).
    guarded: bool = True

    def write(self, edits: Mapping[Span, str]) -> bytes:
        """Write the original with `edits` applied; refuse if someone else changed the file."""
        data = apply_edits(self.original, edits)
        expected = self.original if self.written is None else self.written
        if data == expected:
            return data  # nothing to write (a scratch copy may not even exist yet)
        if self.guarded:
            try:
                current: bytes | None = self.path.read_bytes()
            except OSError:
                current = None  # moved or deleted
            if current != expected:
                raise ConflictError(
                    f"{self.path} changed (or was moved) while fodhash was running; fodhash "
                    "left it as it is now. Run fodhash again when no one else is editing it.")
            refusal = read_only(self.path.stat())
            if refusal:
                raise FodhashError(f"cannot write {self.path}: {refusal}; every file of yours "
                                   "holds its original bytes")
        if self.recorder is not None:
            self.recorder.record(self.path, self.original, data)
        try:
            atomic_write(self.path, data, durable=self.guarded)
        except OSError as error:
            kind = FodhashError if self.guarded else ScratchError
            raise kind(f"cannot write {self.path}: {error.strerror}; every file of yours "
                       "holds its original bytes") from None
        self.written = data
        return data

    def restore(self) -> bool:
        """Put the original bytes back if fodhash changed the file; True if it did. A
        scratch copy's file is left: the copy is discarded (its disk may be full, its
        folder gone)."""
        if not self.guarded or self.written is None or self.written == self.original:
            return False
        current = self.path.read_bytes() if self.path.exists() else None
        if current != self.written:
            return False  # someone else's edit since ours: theirs wins
        if self.recorder is not None:
            # A journal that cannot be written (disk full) still holds the original: a
            # replay leaves a file holding it as it is, so the restore goes on.
            with contextlib.suppress(ScratchError):
                self.recorder.record(self.path, self.original, self.original)
        atomic_write(self.path, self.original)
        self.written = self.original
        return True


@dataclass
class Transaction:
    """All files a run edits. Leaving the `with` block by an exception restores every one;
    leaving it at all leaves every file consistent, so the journal is cleared then."""

    recorder: Recorder | None = None
    documents: dict[Path, Document] = field(default_factory=dict)

    def document(self, path: Path, original: bytes, *, guarded: bool = True) -> Document:
        real = path.resolve()
        if real not in self.documents:
            self.documents[real] = Document(real, original, recorder=self.recorder,
                                            guarded=guarded)
        return self.documents[real]

    def restore(self) -> list[Path]:
        return [doc.path for doc in self.documents.values() if doc.restore()]

    @contextlib.contextmanager
    def guard(self) -> Iterator[Transaction]:
        try:
            yield self
        except BaseException:
            with deferred_signals():  # a second Ctrl-C must not cut the restore short
                self.restore()
                self._done()
            raise
        self._done()

    def _done(self) -> None:
        if self.recorder is not None:
            self.recorder.clear()
