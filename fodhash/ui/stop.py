"""The process's stop signals, handled from its first moment to its last.

Apart from fodhash.ui.boundary (which loads typer) so that fodhash.entry installs the
handlers before it imports anything else: a Ctrl-C while typer and the commands load already
ends the process with exit 130, not with Python's KeyboardInterrupt traceback.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from types import FrameType

EXIT_INTERRUPTED = 130

# Ctrl-C, a closed terminal (SIGHUP) and a polite kill (SIGTERM) all stop fodhash alike.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class _Stop:
    """The process's one stop: the first signal, and whether a command runs to unwind."""

    signal: int | None = None  # the first stop signal received
    armed: bool = False  # a command runs inside `guarded`: the first stop unwinds it
    said: bool = False  # the exit message was printed


state = _Stop()


def _on_stop(signum: int, frame: FrameType | None) -> None:
    # The first stop unwinds the running command like Ctrl-C (Nix stopped, scratch copies
    # removed, exit 130). Every later one returns at once: it cannot cut that cleanup short,
    # and it never meets Python's default handler, whose KeyboardInterrupt escaping the
    # boundary makes CPython kill itself with SIGINT (exit status -2 instead of 130). So the
    # handler stays for the whole process (install_stop_handlers), never SIG_IGN either:
    # an ignored signal would stay ignored in the Nix processes started while cleaning up.
    if state.signal is not None:
        return
    state.signal = signum
    if state.armed:
        raise KeyboardInterrupt


def install_stop_handlers() -> None:
    """Once, before any command runs, never undone: a stop at any moment of the process's
    life, however often, ends it with exit 130 and the message (fodhash.cli.main)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop)
