"""The lock that keeps one writer on a repository (its root: fodhash.config.find_root).

The lock is an flock(2) on the root folder itself, not on a file in the cache: two fodhash
processes with different cache directories, or started under two fodhash.toml of one
repository, still exclude each other.
Locking a folder writes nothing, so it works on a read-only checkout too, and the kernel
releases it when its holder dies, even by SIGKILL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from fodhash.errors import FodhashError, UsageError


class LockedError(FodhashError):
    """Another fodhash is working on this repository."""

    exit_code = 1


@contextlib.contextmanager
def locked(root: Path, *, wait: bool, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the repository's lock for a command."""
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as error:
        raise UsageError(f"{root}: cannot open the repository folder ({error.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise LockedError(f"another fodhash is working on {root}; wait for it to finish "
                                  "(or run without --no-wait to wait)") from None
            say(f"waiting for another fodhash working on {root} to finish...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
