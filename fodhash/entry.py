"""The `fodhash` command: stop handlers first, then the answers that need no command line
library, then fodhash.cli.

`fodhash --version` and `--help` run on every hook install and in every CI log, and typer
alone takes longer to import than the 0.05 s over Python's own start-up they may cost
(docs/performance.md, "Start-up"). So this module imports nothing but the stop handlers:
`--version` reads the version beside the package, a help screen of a terminal at least
80 columns wide (click's formatter is never wider) comes from fodhash/ui/screens.py, made
from fodhash.cli by typer itself and tested equal to what it prints. Everything else,
narrower terminals and shell completion included, goes to fodhash.cli.

The console script and `python -m fodhash` call `run`: main, then the end of the process
without the interpreter's teardown, which frees every module and object one by one only
for the system to free the whole process after it.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from typing import NoReturn

from fodhash.ui.stop import install_stop_handlers, state

_COMPLETION = "_FODHASH_COMPLETE"  # typer's completion protocol: always fodhash.cli


def _columns() -> int:
    """The terminal's width as click's formatter finds it (shutil.get_terminal_size, without
    importing shutil): $COLUMNS, else the terminal of stdout, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def answer(args: list[str]) -> str | None:
    """What fodhash prints for these arguments when that needs no command line library; None
    for everything else."""
    if _COMPLETION in os.environ:
        return None
    if args == ["--version"]:
        from fodhash import version  # noqa: PLC0415

        return f"fodhash {version()}\n"
    if args[-1:] == ["--help"] and _columns() >= 80:
        from fodhash.ui.screens import SCREENS  # noqa: PLC0415

        return SCREENS.get(" ".join(args[:-1]))
    return None


def main() -> None:
    install_stop_handlers()  # before the imports below: a stop while they load exits 130
    # No cyclic garbage collector while fodhash loads and while a run needs no build (the
    # fast path: fodhash.protocol.rounds enables it for the protocol, which lives for the
    # builds' minutes). Such a run makes a few hundred thousand objects and almost no
    # cycles, and the collector's passes over them cost a warm run of a 5,000-derivation
    # closure 30-80 ms of 0.45-0.5 s (docs/performance.md); reference counting still frees
    # everything else.
    gc.disable()
    text = answer(sys.argv[1:])
    if text is None:
        from fodhash import cli  # noqa: PLC0415

        cli.main()
        return
    sys.stdout.write(text)
    sys.stdout.flush()
    if state.signal is not None:  # stopped while answering: exit 130 and its message, as ever
        from fodhash.ui.boundary import stopped_exit_code  # noqa: PLC0415

        raise SystemExit(stopped_exit_code(0))


def run() -> NoReturn:
    """The `fodhash` command: main, then the process ends with its exit code at once.

    Python's own exit first frees every module and object, one by one: 20-25 ms of a
    0.2 s warm `check` (docs/performance.md). What that exit does that matters is done
    here: the exit functions (atexit: logging's flush among them) run, and the standard
    streams are flushed (a failed flush exits 120, as Python's own exit does). Where a
    thread other than this one still runs, Python's exit waits for it as it always did."""
    try:
        main()
        code: object = None
    except SystemExit as done:
        code = done.code
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise SystemExit(code)
    if code is None or isinstance(code, int):
        status = code or 0
    else:  # SystemExit("message"): printed, exit 1
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe (`fodhash list | head`), a closed file
            status = 120
    os._exit(status)
