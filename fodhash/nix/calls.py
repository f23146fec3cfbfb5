"""The Nix commands fodhash calls: instantiate, realise, and what it asks Nix about itself."""

from __future__ import annotations

import grp
import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from fodhash.errors import NixError, UsageError
from fodhash.nix import facts
from fodhash.nix.mismatch import PinMismatch, parse_pin_mismatches, strip_ansi
from fodhash.nix.process import ProcessResult, Started, run, start, stream

log = logging.getLogger(__name__)

# The `nix` command and flakes are experimental in the Nix versions fodhash supports;
# enabling them per call changes nothing else in the user's configuration.
EXPERIMENTAL = ("--extra-experimental-features", "nix-command flakes")


@dataclass(frozen=True)
class Instantiation:
    """What to evaluate for a target: a file with -A attributes, or flake references."""

    cwd: Path
    file: Path | None = None
    attrs: tuple[str, ...] = ()
    flake_refs: tuple[str, ...] = ()
    nix_args: tuple[str, ...] = ()
    also: tuple[Path, ...] = ()  # more whole files, in the same process (`together`)

    def command(self) -> list[str]:
        if self.flake_refs:
            return ["nix", *EXPERIMENTAL, "path-info", "--derivation", *self.nix_args,
                    *self.flake_refs]
        assert self.file is not None
        attrs = [arg for attr in self.attrs for arg in ("-A", attr)]
        return ["nix-instantiate", str(self.file), *map(str, self.also), *attrs, *self.nix_args]


# importCargoLock's error for a git dependency that has no entry in `outputHashes`.
_NO_CARGO_HASH = re.compile(r"No hash was found while vendoring the git dependency (\S+?)\.(?:\s|$)")


class EvaluationError(NixError):
    """Nix could not evaluate an instantiation; `pins` are the downloads it verified while
    evaluating whose content had another hash than the one written (it stops at the first)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output
        self.pins: list[PinMismatch] = parse_pin_mismatches(output)


# Instantiations started ahead (fodhash.run.ahead): Nix evaluates the files as they are
# while fodhash still loads and reads the sites; the fast path takes the result
# (instantiate(..., ahead=True)). Only the files as they are: the protocol discards every
# one left before it writes a byte (discard_ahead), so no later evaluation of the same
# files, changed, can be answered by one started before the change.
_ahead: dict[Instantiation, Started] = {}


def start_ahead(whats: Sequence[Instantiation]) -> None:
    """Start them, as many as the fast path would run at once (one per core: an evaluation
    of nixpkgs takes a core and a GB); the rest start when the fast path asks for them."""
    for what in whats[: os.cpu_count() or 2]:
        if what not in _ahead:
            _ahead[what] = start(what.command(), cwd=what.cwd)


# What fodhash asks Nix about itself (fodhash.nix.facts), by the name its answer is kept
# under. A run that does not know an answer yet (a first run, a new Nix) asks all of them
# ahead too (ask_ahead): each is a Nix process of 20-100 ms that would otherwise run, alone,
# between two phases of the protocol.
_QUESTIONS = {
    "version": ["nix-store", "--version"],
    "system": ["nix-instantiate", "--eval", "--expr", "builtins.currentSystem", "--json"],
    "build-users-group": ["nix", *EXPERIMENTAL, "show-config", "--json"],  # or `config show`
}
_asked: dict[str, Started] = {}


def ask_ahead() -> None:
    """Start asking Nix every question about itself that fodhash.nix.facts cannot answer."""
    for name, command in _QUESTIONS.items():
        if name not in _asked and not facts.known(name):
            try:
                _asked[name] = start(command)
            except UsageError:  # Nix is not installed: said where it is first needed
                return


def _ask(name: str) -> ProcessResult:
    started = _asked.pop(name, None)
    return started.wait() if started is not None else run(_QUESTIONS[name])


def unasked() -> None:
    """Stop the questions asked ahead that no one needed (the command ends)."""
    while _asked:
        _asked.popitem()[1].stop()


def discard_ahead() -> None:
    """Stop every instantiation started ahead that nothing took."""
    while _ahead:
        started = _ahead.popitem()[1]
        if started.running:
            log.debug("stopped, not needed: %s", " ".join(started.args))
        started.stop()


def instantiate(what: Instantiation, timeout: float | None = None,
                env: Mapping[str, str] | None = None, *, ahead: bool = False) -> list[str]:
    """Evaluate and write the .drv files, building nothing; the top-level .drv paths.
    `env`: variables to set for Nix (a fetcher cache of the run's own, say). `ahead`: take
    the result of the same instantiation started ahead, if there is one."""
    started = _ahead.pop(what, None) if ahead and env is None else None
    result = (started.wait(timeout) if started is not None
              else run(what.command(), cwd=what.cwd, timeout=timeout, env=env))
    if not result.ok:
        output = strip_ansi(result.stderr or result.stdout)
        missing = _NO_CARGO_HASH.search(output)
        hint = (f'\nAdd `"{missing[1]}" = lib.fakeHash;` (or `""`) to its `outputHashes` '
                "(of `cargoLock` or `importCargoLock`) and run fodhash again: it resolves "
                "the placeholder.") if missing else ""
        raise EvaluationError(f"Nix could not evaluate it. {result.describe()}{hint}", output)
    return [line.split("!", 1)[0] for line in result.stdout.split() if line.endswith(".drv")]


def merge_group(what: Instantiation) -> tuple[object, ...]:
    """Instantiations of one group are merged into one (`merge`). A whole file (no -A)
    instantiates only its top-level derivations: not mergeable with -A attributes, which may
    be nested."""
    return (what.cwd, what.file, what.nix_args, bool(what.flake_refs), bool(what.attrs))


def merge(whats: Sequence[Instantiation]) -> list[Instantiation]:
    """One instantiation per file (or per flake) and argument list, with all their attributes:
    fewer Nix processes, and Nix evaluates what the attributes share once."""
    merged: dict[tuple[object, ...], Instantiation] = {}
    for what in whats:
        group = merge_group(what)
        known = merged.get(group)
        if known is None:
            merged[group] = what
        else:
            merged[group] = Instantiation(
                cwd=what.cwd, file=what.file, nix_args=what.nix_args,
                attrs=tuple(dict.fromkeys(known.attrs + what.attrs)),
                flake_refs=tuple(dict.fromkeys(known.flake_refs + what.flake_refs)))
    return list(merged.values())


def together(whats: Sequence[Instantiation]) -> list[Instantiation]:
    """`merge`d, then the whole files (no -A) of one folder and argument list in one process:
    `nix-instantiate a.nix b.nix` costs what one file does, where two processes at once wait
    for each other's hold on the store (measured: 26 ms, against 54 ms for two in parallel
    and 52 ms one after the other). Nix stops at the first error of any file, so only where
    an error needs no telling whose it is: the evaluation of the files as they are (the
    fast path of fodhash.protocol.rounds, which leaves any error to the protocol)."""
    out: list[Instantiation] = []
    first: dict[tuple[object, ...], int] = {}
    for what in merge(whats):
        if what.file is None or what.attrs or what.flake_refs:
            out.append(what)
            continue
        key = (what.cwd, what.nix_args)
        if key in first:
            known = out[first[key]]
            out[first[key]] = replace(known, also=(*known.also, what.file))
        else:
            first[key] = len(out)
            out.append(what)
    return out


def instantiate_all(whats: Sequence[Instantiation],
                    timeout: float | None = None) -> dict[Instantiation, list[str]]:
    """Instantiate several at once (each in its own Nix process, in parallel)."""
    if len(whats) == 1:
        return {whats[0]: instantiate(whats[0], timeout)}
    with ThreadPoolExecutor(max_workers=min(len(whats), os.cpu_count() or 2)) as pool:
        futures = {what: pool.submit(instantiate, what, timeout) for what in whats}
        return {what: future.result() for what, future in futures.items()}


def realise(drvs: Sequence[str], *, jobs: int, on_line: Callable[[str], None],
            nix_args: Sequence[str] = (), timeout: float | None = None) -> ProcessResult:
    """Build exactly these derivations, all at once, not stopping at the first failure."""
    args = ["nix-store", "--realise", "--keep-going", "--max-jobs", str(jobs),
            *nix_args, *drvs]
    return stream(args, on_line, timeout=timeout)


def leftovers(output_paths: Sequence[str]) -> list[str]:
    """What interrupted builds left beside these output paths. Nix builds a FOD's output at
    `<output path>.tmp` when it must move it after a hash mismatch (2.8) or as it writes it
    (2.26); interrupted there, it leaves the folder behind, and every later build of that
    output path (every fetcher's canonical fake is named `source`) fails ("creating directory
    '/nix/store/…-source.tmp': File exists" on 2.8, "reading from file …: Is a directory" on
    2.26) until it is gone."""
    return [f"{p}.tmp" for p in output_paths if os.path.lexists(f"{p}.tmp")]


def remove_leftovers(paths: Sequence[str]) -> bool:
    """Remove what an interrupted Nix left in the store, through Nix (the paths are not
    valid, so the garbage collector deletes them); True if it did."""
    result = run(["nix-store", "--delete", *paths])
    if result.ok:
        log.warning("removed %s, left in the Nix store by an interrupted build",
                    ", ".join(paths))
    else:
        log.warning("%s, left in the Nix store by an interrupted build, blocks this build; "
                    "remove it (nix-store --delete PATH) and run again:\n%s",
                    ", ".join(paths), result.tail())
    return result.ok


def build_slots() -> int | None:
    """How many builds Nix can run at once: the members of its build-users-group (each
    build takes one; past that, Nix polls "waiting for UID" every 5 s), or None for no
    limit fodhash should keep (builds as the user, or the setting unreadable)."""
    group = facts.remembered("build-users-group", _build_users_group)
    if not group:
        return None
    try:
        members = grp.getgrnam(group).gr_mem
    except KeyError:
        return None
    return len(members) or None


def _build_users_group() -> str | None:
    """Nix's build-users-group setting ("": none), None if Nix would not say."""
    # `show-config` up to Nix 2.19 (an alias later), `config show` from 2.20.
    result = _ask("build-users-group")
    if not result.ok:
        result = run(["nix", *EXPERIMENTAL, "config", "show", "--json"])
        if not result.ok:
            return None
    try:
        group = json.loads(result.stdout).get("build-users-group", {}).get("value", "")
    except (ValueError, AttributeError):
        return None
    return group if isinstance(group, str) else None


def build_log(drv: str, lines: int = 25) -> str:
    """The last lines of a build's log, as Nix stored it (`nix-store --read-log`).

    `nix-store --realise` prints builders' output unprefixed and interleaved, so the stored
    log is the one reliable place to find the lines of one failed build.
    """
    result = run(["nix-store", "--read-log", drv])
    if not result.ok:
        return ""
    return "\n".join(f"> {line}" for line in result.stdout.splitlines()[-lines:])


def version() -> str:
    """Nix's version, e.g. 2.8.0 (asked once per Nix installation: fodhash.nix.facts)."""
    return facts.remembered("version", _version) or "unknown"


def _version() -> str | None:
    result = _ask("version")
    return result.stdout.strip().rsplit(" ", 1)[-1] if result.ok else None


def current_system() -> str:
    """This machine's system as Nix sees it, e.g. x86_64-linux (asked once per Nix
    installation and configuration: fodhash.nix.facts)."""
    answer = facts.remembered("system", _current_system)
    assert answer is not None  # _current_system raises rather than answer None
    return answer


def _current_system() -> str:
    result = _ask("system")
    if not result.ok:
        raise NixError(f"Nix could not tell the current system. {result.describe()}")
    return str(result.stdout.strip().strip('"'))
