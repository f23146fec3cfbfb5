"""The one error boundary of every command: a clear message and an exit code, no traceback."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from fodhash.errors import FodhashError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_INTERRUPTED = 130
P = ParamSpec("P")
R = TypeVar("R")


def console(*, stderr: bool = False) -> Console:
    # Imported here: --version and --help never need rich.
    from rich.console import Console  # noqa: PLC0415

    # Off a terminal (CI logs, pipes) rich would fold hashes at 80 columns; keep lines whole.
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=240, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape  # noqa: PLC0415

    return escape(text)


# Ctrl-C, a closed terminal (SIGHUP) and a polite kill (SIGTERM) all stop fodhash alike.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass
class _Stop:
    """The process's one stop: the first signal, and whether a command runs to unwind."""

    signal: int | None = None  # the first stop signal received
    armed: bool = False  # a command runs inside `guarded`: the first stop unwinds it
    said: bool = False  # the exit message was printed


_stop = _Stop()


def _on_stop(signum: int, frame: FrameType | None) -> None:
    # The first stop unwinds the running command like Ctrl-C (Nix stopped, scratch copies
    # removed, exit 130). Every later one returns at once: it cannot cut that cleanup short,
    # and it never meets Python's default handler, whose KeyboardInterrupt escaping the
    # boundary makes CPython kill itself with SIGINT (exit status -2 instead of 130). So the
    # handler stays for the whole process (install_stop_handlers), never SIG_IGN either:
    # an ignored signal would stay ignored in the Nix processes started while cleaning up.
    if _stop.signal is not None:
        return
    _stop.signal = signum
    if _stop.armed:
        raise KeyboardInterrupt


def install_stop_handlers() -> None:
    """Once, before any command runs, never undone: a stop at any moment of the process's
    life, however often, ends it with exit 130 and the message (fodhash.cli.main)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop)


def _say_interrupted(err: Console) -> None:
    from fodhash.files import writeback  # noqa: PLC0415 (--version, --help: not loaded)

    _stop.said = True
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        err.print(f"[bold red]interrupted[/]: {_escape(writeback.interrupted())}")


def stopped_exit_code(code: object) -> object:
    """The exit code of the process: 130 if a stop came at any moment, its message printed
    if the command had not printed it (a stop after the command ended, or before it began)."""
    if _stop.signal is None:
        return code
    if not _stop.said:
        _say_interrupted(console(stderr=True))
    return EXIT_INTERRUPTED


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command: FodhashError -> its message and exit code; Ctrl-C or SIGTERM
    -> 130 (typer would print "Aborted!" and exit 1)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        err = console(stderr=True)
        # The first stop raises KeyboardInterrupt anywhere from arming to disarming, and
        # the outer `except` catches it wherever it lands in there; a stop after disarming
        # (an error's message being printed, typer exiting) is settled by cli.main.
        try:
            try:
                _stop.armed = True
                if _stop.signal is not None:  # stopped before the command began
                    raise KeyboardInterrupt
                try:
                    return command(*args, **kwargs)
                finally:
                    _stop.armed = False
            except FodhashError as error:
                err.print(f"[bold red]error:[/] {_escape(str(error))}", highlight=False,
                          soft_wrap=True)
                raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            _stop.armed = False
            _say_interrupted(err)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
