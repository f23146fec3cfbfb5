"""The one error boundary of every command: a clear message and an exit code, no traceback."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ParamSpec, TypeVar, cast

import typer

from fodhash.errors import FodhashError
from fodhash.ui.plain import PlainConsole, escape, is_terminal
from fodhash.ui.stop import EXIT_INTERRUPTED, state

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")


def console(*, stderr: bool = False) -> Console:
    if not is_terminal(stderr):
        # Off a terminal rich would fold hashes at 80 columns (it was given 240 and soft
        # wrapping there): plain lines, and rich is never loaded for them (fodhash.ui.plain).
        return cast("Console", PlainConsole(stderr=stderr))
    from rich.console import Console  # noqa: PLC0415 (a terminal only)

    return Console(stderr=stderr)


def _say_interrupted(err: Console) -> None:
    from fodhash.files import writeback  # noqa: PLC0415 (--version, --help: not loaded)

    state.said = True
    with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
        err.print(f"[bold red]interrupted[/]: {escape(writeback.interrupted())}")


def stopped_exit_code(code: object) -> object:
    """The exit code of the process: 130 if a stop came at any moment, its message printed
    if the command had not printed it (a stop after the command ended, or before it began)."""
    if state.signal is None:
        return code
    if not state.said:
        _say_interrupted(console(stderr=True))
    return EXIT_INTERRUPTED


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a typer command: FodhashError -> its message and exit code; Ctrl-C or SIGTERM
    -> 130 (typer would print "Aborted!" and exit 1)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        # The console (rich) is made when there is something to say: a command loads it
        # when it prints, after it has set Nix to work (fodhash.run.ahead).
        # The first stop raises KeyboardInterrupt anywhere from arming to disarming, and
        # the outer `except` catches it wherever it lands in there; a stop after disarming
        # (an error's message being printed, typer exiting) is settled by cli.main.
        try:
            try:
                state.armed = True
                if state.signal is not None:  # stopped before the command began
                    raise KeyboardInterrupt
                try:
                    return command(*args, **kwargs)
                finally:
                    state.armed = False
            except FodhashError as error:
                console(stderr=True).print(f"[bold red]error:[/] {escape(str(error))}",
                                           highlight=False, soft_wrap=True)
                raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            state.armed = False
            _say_interrupted(console(stderr=True))
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
