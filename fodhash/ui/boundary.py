"""The one error boundary of every command: a clear message and an exit code, no traceback."""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable
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


def _sigterm(signum: int, frame: FrameType | None) -> None:
    # The first stop unwinds like Ctrl-C (Nix stopped, scratch copies removed, exit 130); a
    # later one (Ctrl-C pressed twice) is ignored, so that it cannot cut that cleanup short
    # or escape the message as a bare KeyboardInterrupt.
    for sig in _STOPS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


# Ctrl-C, a closed terminal (SIGHUP) and a polite kill (SIGTERM) all stop fodhash alike.
_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command: FodhashError -> its message and exit code; Ctrl-C or SIGTERM
    -> 130 (typer would print "Aborted!" and exit 1)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        err = console(stderr=True)
        previous = {sig: signal.signal(sig, _sigterm) for sig in _STOPS}
        try:
            return command(*args, **kwargs)
        except FodhashError as error:
            err.print(f"[bold red]error:[/] {_escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            from fodhash.files import writeback  # noqa: PLC0415 (--version, --help: not loaded)

            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                err.print(f"[bold red]interrupted[/]: {_escape(writeback.interrupted())}")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    return wrapper
