"""The command line: parse arguments, call one command module, map errors to exit codes."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console

from fodhash import __version__, config, update
from fodhash.errors import FodhashError
from fodhash.resolve import Options

EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="fodhash",
    help="Resolve stale fixed-output derivation hashes in Nix files with real Nix builds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="fodhash.toml to use (default: found walking up from here)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fodhash {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every command run.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="fodhash: %(message)s")


def _load_config(path: Path | None) -> config.Config:
    cwd = Path.cwd()
    found = path or config.find_config(cwd)
    if found is None:
        return config.Config(None, cwd, {})
    return config.load(found)


def _console(*, stderr: bool = False) -> Console:
    # Off a terminal (CI logs, pipes) rich would fold hashes at 80 columns; keep lines whole.
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=240, soft_wrap=True)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: files restored, Nix killed, exit 130


def _guarded(body: Callable[[], int]) -> None:
    """The one error boundary: a clear message and an exit code, never a traceback."""
    err = Console(stderr=True)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        code = body()
    except FodhashError as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        err.print("[bold red]interrupted[/]: every file fodhash touched holds its original bytes")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise typer.Exit(code)


@app.command("update")
def update_command(
    targets: Annotated[list[str] | None, typer.Argument(
        help="Targets from fodhash.toml, or paths to .nix files.", show_default=False)] = None,
    all_targets: Annotated[bool, typer.Option("--all", help="Every target in fodhash.toml.")] = False,
    config_path: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Resolve everything, print the diff, change no file.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON report.")] = False,
    jobs: Annotated[int | None, typer.Option(
        "--jobs", "-j", min=1, help="Parallel builds (default: every ready FOD at once).")] = None,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, help="Give up (and restore every file) after SECONDS.")] = None,
) -> None:
    """Replace every stale hash of the targets with its true hash, computed by Nix builds."""

    def body() -> int:
        cfg = _load_config(config_path)
        chosen = config.resolve_targets(cfg, targets or [], all_targets, Path.cwd())
        return update.update(chosen, cfg, out=_console(), err=_console(stderr=True),
                             dry_run=dry_run, as_json=as_json,
                             options=Options(jobs=jobs, timeout=timeout))

    _guarded(body)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
