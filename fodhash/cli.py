"""The command line: parse arguments, call one command (fodhash.commands), map errors to exit codes."""

# No `from __future__ import annotations` here, unlike every other module: typer reads the
# parameters of all commands on every run, and string annotations cost it an eval each
# (about 20 ms of a 0.26 s warm check; docs/performance.md). Names known only to the type
# checker are quoted instead.
import signal
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fodhash import version as installed_version
from fodhash.errors import UsageError
from fodhash.ui import help
from fodhash.ui.boundary import console, guarded, stopped_exit_code
from fodhash.ui.stop import STOP_SIGNALS, install_stop_handlers

# Each command imports what it runs when it runs: `--version`, `--help` and the completion
# scripts pay for typer alone (docs/performance.md, "Start-up").
# ruff: noqa: PLC0415
if TYPE_CHECKING:
    from fodhash import config
    from fodhash.files.place import Place

app = typer.Typer(
    name="fodhash",
    help="Resolve stale fixed-output derivation hashes in Nix files with real Nix builds.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    **help.SETTINGS,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", metavar="PATH",
                 help="fodhash.toml to use (default: found walking up from here)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fodhash {installed_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every command run.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    import logging  # here: --version and --help never log

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="fodhash: %(message)s")
    from fodhash.files.dirs import cache_dir
    from fodhash.nix import facts

    facts.keep_in(cache_dir())  # Nix's version, system, build users: asked once, not per run


def _load_config(path: Path | None) -> "config.Config":
    from fodhash import config

    cwd = Path.cwd()
    found = path or config.find_config(cwd)
    if found is None:
        return config.Config(None, cwd, {})
    return config.load(found)


# Completion callbacks: what fodhash.toml names (fodhash.commands.complete). The --config
# given before the word being completed is in ctx.params: as typed (a string) in typer
# releases before 0.29, converted in later ones.
def _given_config(ctx: typer.Context) -> Path | None:
    given = ctx.params.get("config_path")
    return Path(given) if given else None


def _complete_targets(ctx: typer.Context, incomplete: str) -> list[str]:
    from fodhash.commands import complete

    return complete.targets(_given_config(ctx), Path.cwd(), incomplete)


def _complete_platforms(ctx: typer.Context, incomplete: str) -> list[str]:
    from fodhash.commands import complete

    return complete.platforms(_given_config(ctx), Path.cwd(), incomplete,
                              with_all=True)


def _complete_one_platform(ctx: typer.Context, incomplete: str) -> list[str]:
    from fodhash.commands import complete

    return complete.platforms(_given_config(ctx), Path.cwd(), incomplete,
                              with_all=False)


TargetsArgument = Annotated[list[str] | None, typer.Argument(
    metavar="TARGET", help="Targets from fodhash.toml, or paths to .nix files.", show_default=False,
    autocompletion=_complete_targets)]
AllOption = Annotated[bool, typer.Option("--all", help="Every target in fodhash.toml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the JSON report (docs/json.md).")]
JobsOption = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, metavar="N", help="Parallel builds (default: every ready FOD at once).")]
TimeoutOption = Annotated[float | None, typer.Option(
    "--timeout", min=0.1, metavar="SECONDS",
    help="Give up (and restore every file) after SECONDS.")]
PlatformOption = Annotated[list[str] | None, typer.Option(
    "--platform", metavar="SYSTEM",
    help="Evaluate and build for SYSTEM (repeatable; `all`: this machine's and every "
         "[platforms.*] in fodhash.toml). Default: this machine's system.",
    autocompletion=_complete_platforms)]
NoCacheOption = Annotated[bool, typer.Option(
    "--no-cache", help="Build every FOD, even those in the cache (results are still stored).")]


def _targets(config_path: Path | None, names: list[str] | None,
             all_targets: bool) -> "tuple[config.Config, list[config.Target]]":
    from fodhash import config

    cfg = _load_config(config_path)
    return cfg, config.resolve_targets(cfg, names or [], all_targets, Path.cwd())


def _repository(cfg: "config.Config", no_wait: bool, *,
                copy: bool = True) -> "AbstractContextManager[Place]":
    """The repository's lock and place (fodhash.files.place) for this command."""
    from fodhash.files.place import open_place

    # The console only when there is something to say ("waiting for ..."): rich loads while
    # Nix evaluates ahead (fodhash.run.ahead), not before it starts.
    return open_place(cfg.root, wait=not no_wait, copy=copy,
                      say=lambda text: console(stderr=True).print(text, markup=False,
                                                                  highlight=False))


def _ahead(chosen: "list[config.Target]", cfg: "config.Config", platform: list[str] | None,
           use_cache: bool) -> AbstractContextManager[None]:
    """Nix evaluating the targets as they are while the command loads (fodhash.run.ahead)."""
    from fodhash.run import ahead

    return ahead.evaluating(chosen, cfg, platform or [], use_cache=use_cache)


ReproducibleOption = Annotated[bool, typer.Option(
    "--reproducible",
    help="Build every FOD twice at once and compare: a FOD whose two builds differ is "
         "nondeterministic, and nothing is written for it (implies --no-cache).")]

NoWaitOption = Annotated[bool, typer.Option(
    "--no-wait", help="Fail at once if another fodhash is editing this repository.")]


@app.command("update", cls=help.Command)
@guarded
def update_command(
    targets: TargetsArgument = None,
    all_targets: AllOption = False,
    config_path: ConfigOption = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Resolve everything, print the diff, change no file.")] = False,
    as_json: JsonOption = False,
    jobs: JobsOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    platform: PlatformOption = None,
    no_wait: NoWaitOption = False,
    split_platforms: Annotated[bool, typer.Option(
        "--split-platforms",
        help="Turn a plain hash whose true value differs between platforms into a "
             "per-platform attrset (platforms: --platform, default all configured).")] = False,
    commit: Annotated[bool, typer.Option(
        "--commit", help="Commit exactly the files it changed (git commit -- PATHS), with a "
                         "message naming each site's old and new hash.")] = False,
    patch: Annotated[Path | None, typer.Option(
        "--patch", metavar="FILE", dir_okay=False,
        help="Write the change as a patch (git apply FILE, or git am FILE) and leave the "
             "files unchanged.")] = None,
    reproducible: ReproducibleOption = False,
    allow_references: Annotated[bool, typer.Option(
        "--allow-references",
        help="Write the hash of a FOD whose output references store paths (a Nix that "
             "accepts it: 2.8; 2.26 and later refuse it).")] = False,
) -> None:
    """Replace every stale hash of the targets with its true hash, computed by Nix builds."""
    cfg, chosen = _targets(config_path, targets, all_targets)
    if split_platforms and (dry_run or as_json or commit or patch):
        raise UsageError("--split-platforms does not combine with --dry-run, --json, "
                         "--commit or --patch")
    if dry_run and (commit or patch):
        raise UsageError("--dry-run changes nothing: it does not combine with --commit or --patch")
    if commit and patch:
        raise UsageError("--commit changes the files, --patch leaves them: choose one")
    use_cache = not (no_cache or reproducible)
    with _repository(cfg, no_wait) as place, _ahead(chosen, cfg, platform, use_cache):
        from fodhash.commands import update
        from fodhash.protocol.state import Options

        options = Options(jobs=jobs, timeout=timeout, use_cache=use_cache,
                          allow_references=allow_references, reproducible=reproducible)
        if split_platforms:
            code = update.split_platforms(chosen, cfg, out=console(), err=console(stderr=True),
                                          systems=platform or [], options=options, place=place)
        else:
            code = update.update(chosen, cfg, out=console(), err=console(stderr=True),
                                 dry_run=dry_run, as_json=as_json, systems=platform or [],
                                 options=options, place=place, commit=commit, patch=patch)
    raise typer.Exit(code)


@app.command("check", cls=help.Command)
@guarded
def check_command(
    targets: TargetsArgument = None,
    all_targets: AllOption = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    jobs: JobsOption = None,
    timeout: TimeoutOption = None,
    no_cache: NoCacheOption = False,
    cached_only: Annotated[bool, typer.Option(
        "--cached-only", help="Never build: sites not in the cache are unverified.")] = False,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Fail on unverified sites too.")] = False,
    export: Annotated[Path | None, typer.Option(
        "--export", metavar="FILE",
        help="Write the computed results for `fodhash cache import` elsewhere.")] = None,
    platform: PlatformOption = None,
    no_wait: NoWaitOption = False,
    reproducible: ReproducibleOption = False,
) -> None:
    """Verify every hash against its true value; change no file. Exit 1 if any is stale."""
    if (no_cache or reproducible) and cached_only:
        raise UsageError("--cached-only excludes --no-cache and --reproducible (both build)")
    cfg, chosen = _targets(config_path, targets, all_targets)
    use_cache = not (no_cache or reproducible)
    with _repository(cfg, no_wait) as place, _ahead(chosen, cfg, platform, use_cache):
        from fodhash.commands import check
        from fodhash.protocol.state import Options

        code = check.check(chosen, cfg, out=console(), err=console(stderr=True), place=place,
                           options=Options(jobs=jobs, timeout=timeout, use_cache=use_cache,
                                           build=not cached_only, reproducible=reproducible),
                           strict=strict, as_json=as_json, export=export,
                           systems=platform or [])
    raise typer.Exit(code)


@app.command("apply", cls=help.Command)
@guarded
def apply_command(
    results: Annotated[list[Path] | None, typer.Argument(
        metavar="FILE", help="Result files written by `fodhash check --export` or "
                             "`fodhash cache export`.", show_default=False)] = None,
    log: Annotated[str | None, typer.Option(
        "--log", metavar="FILE", help="Instead: a Nix log (a CI job's, a pasted error; - for "
                                      "standard input) whose hash mismatches to apply.")] = None,
    platform: Annotated[str | None, typer.Option(
        "--platform", metavar="SYSTEM",
        help="With --log: the system the log was built on (default: this machine's).",
        autocompletion=_complete_one_platform)] = None,
    trust_unverified: Annotated[bool, typer.Option(
        "--trust-unverified-downloads",
        help="With --log: also apply hashes of downloads that were not TLS-verified (built "
             "with a real-looking hash instead of lib.fakeHash).")] = False,
    target: Annotated[list[str] | None, typer.Option(
        "--target", "-t", help="Only these targets (repeatable; default: every target).",
        autocompletion=_complete_targets)] = None,
    config_path: ConfigOption = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Patch sites from results computed elsewhere, or from the mismatches of a Nix log;
    refuse any that no longer match."""
    from fodhash.commands import apply, apply_log

    if (log is None) == (not results):
        raise UsageError("give result files, or --log FILE, not both")
    if log is None and (platform or trust_unverified):
        raise UsageError("--platform and --trust-unverified-downloads go with --log")
    cfg, chosen = _targets(config_path, target, not target)
    text = _read_log(log) if log is not None else ""
    if log is not None:
        # apply --log evaluates in a scratch copy of its own and writes only at the end.
        with _repository(cfg, no_wait, copy=False):
            code = apply_log.apply_log(text, chosen, cfg, out=console(),
                                       err=console(stderr=True), platform=platform,
                                       trust_unverified=trust_unverified)
    else:
        with _repository(cfg, no_wait) as place:
            code = apply.apply(chosen, cfg, results or [], out=console(),
                               err=console(stderr=True), place=place)
    raise typer.Exit(code)


def _read_log(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise UsageError(f"cannot read the log {name}: {error.strerror}") from None


@app.command("restore", cls=help.Command)
@guarded
def restore_command(config_path: ConfigOption = None, no_wait: NoWaitOption = False) -> None:
    """Undo the edits of a fodhash run that was killed (every command does this first)."""
    from fodhash.commands.restore import restore

    cfg = _load_config(config_path)
    raise typer.Exit(restore(cfg, err=console(stderr=True), wait=not no_wait))


@app.command("list", cls=help.Command)
@guarded
def list_command(
    targets: TargetsArgument = None,
    config_path: ConfigOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the list as JSON (docs/json.md).")] = False,
    platform: Annotated[str | None, typer.Option(
        "--platform", metavar="SYSTEM", help="Evaluate for SYSTEM (default: this machine's).",
        autocompletion=_complete_one_platform)] = None,
    no_wait: NoWaitOption = False,
) -> None:
    """Show the targets, their hash sites, and whether the cache holds their hashes."""
    from fodhash.commands.list import list_targets

    cfg, chosen = _targets(config_path, targets, not targets)
    with _repository(cfg, no_wait, copy=False):  # reads only
        code = list_targets(chosen, cfg, out=console(), as_json=as_json, platform=platform)
    raise typer.Exit(code)


@app.command("init", cls=help.Command)
@guarded
def init_command(
    path: Annotated[Path | None, typer.Argument(
        metavar="PATH", help="The repository (default: the working directory).",
        show_default=False)] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Overwrite an existing fodhash.toml.")] = False,
) -> None:
    """Find the hash sites and how Nix reaches them; write a commented fodhash.toml."""
    from fodhash.commands import init

    code = init.init(path or Path.cwd(), force=force, out=console(), err=console(stderr=True))
    raise typer.Exit(code)


# ---- fodhash cache ... ----------------------------------------------------------------------

cache_app = typer.Typer(
    help="Show, clear, export and import the cache of resolved hashes.",
    no_args_is_help=True,
    **help.SETTINGS,
)
app.add_typer(cache_app, name="cache")

CachePlatformOption = Annotated[
    str | None,
    typer.Option("--platform", metavar="SYSTEM",
                 help="Only entries of this platform, e.g. x86_64-linux.",
                 autocompletion=_complete_one_platform),
]


@cache_app.command("info", cls=help.Command)
@guarded
def cache_info_command() -> None:
    """Where the cache is, how big it is, and how many hashes it holds per platform."""
    from fodhash.commands import cache

    raise typer.Exit(cache.info(out=console()))


@cache_app.command("clear", cls=help.Command)
@guarded
def cache_clear_command(platform: CachePlatformOption = None) -> None:
    """Remove every cached hash (or only those of one platform); a damaged cache database is
    replaced by an empty one."""
    from fodhash.commands import cache

    raise typer.Exit(cache.clear(platform, out=console()))


@cache_app.command("export", cls=help.Command)
@guarded
def cache_export_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSON file to write (docs/cache-format.md).",
                                         dir_okay=False, show_default=False)],
    platform: CachePlatformOption = None,
) -> None:
    """Write the cached hashes to a JSON file (a CI artifact for another machine, say)."""
    from fodhash.commands import cache

    raise typer.Exit(cache.export(file, platform, out=console()))


@cache_app.command("import", cls=help.Command)
@guarded
def cache_import_command(
    files: Annotated[list[Path], typer.Argument(metavar="FILE", help="JSON files written by `fodhash cache "
                                                     "export`.", show_default=False)],
) -> None:
    """Add the hashes of exported files to the cache: all files are checked first, and a bad
    file imports nothing."""
    from fodhash.commands import cache

    raise typer.Exit(cache.import_files(files, out=console()))


def main() -> None:
    install_stop_handlers()  # before anything runs, for the process's whole life
    try:
        # The name in usage lines and completion scripts, also under `python -m fodhash`.
        app(prog_name="fodhash")
        code: object = 0
    except SystemExit as done:
        code = done.code
    # From here a stop waits, blocked, until the process has exited, as if it came after:
    # the exit code and its message are settled once.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    raise SystemExit(stopped_exit_code(code))


# The help screens fodhash.entry prints without loading typer (fodhash/ui/screens.py): made
# from the commands above by `make help-screens`; tests/ui/test_screens.py fails when they
# differ from what typer prints.
SCREENS_WIDTH = 78  # click's formatter: 80 columns at most, less 2 (the width of any terminal >= 80)


def help_screens() -> dict[str, str]:
    """Every command's `--help` as typer prints it at SCREENS_WIDTH, keyed by the words
    before `--help` ("" for `fodhash --help`, "cache export" for `fodhash cache export`)."""
    screens: dict[str, str] = {}

    def walk(command: Any, ctx: typer.Context, words: list[str]) -> None:
        screens[" ".join(words)] = command.get_help(ctx) + "\n"  # click.echo's newline
        if isinstance(command, typer.core.TyperGroup):  # the click it vendors has no public name
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, typer.Context(sub, info_name=name, parent=ctx), [*words, name])

    root = typer.main.get_command(app)
    walk(root, typer.Context(root, info_name="fodhash", terminal_width=SCREENS_WIDTH), [])
    return screens


def write_help_screens(path: Path) -> None:
    lines = ['"""Every `fodhash ... --help` screen, made by `make help-screens` from fodhash.cli',
             "(help_screens): fodhash.entry prints them without loading typer. Do not edit.", '"""',
             "", "SCREENS: dict[str, str] = {"]
    for words, text in help_screens().items():
        lines.append(f"    {words!r}: (")
        lines += [f"        {line!r}" for line in text.splitlines(keepends=True)]
        lines.append("    ),")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
