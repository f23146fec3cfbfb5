"""fodhash.toml: find it and the repository's root, validate it, turn names and paths into targets."""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fodhash.errors import UsageError
from fodhash.nix.calls import Instantiation

CONFIG_NAME = "fodhash.toml"
_KEYS = {"file", "site", "build", "attr", "flake", "nix-args", "build-args", "json"}


@dataclass(frozen=True)
class Target:
    name: str
    file: Path  # the file holding the site(s)
    site: str | None  # which site; None: every site in the file
    instantiation: Instantiation
    build_args: tuple[str, ...] = ()  # extra arguments for `nix-store --realise`
    # JSON files holding hash sites of this target besides those its file reads
    # (fodhash.sites.target): fodhash.toml's `json`, the top-level list first.
    json: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Platform:
    """How to evaluate and build for a system other than the local one.

    Nix's own machinery does the work: `nix-args` select the system at evaluation
    (`--argstr system S`, `--option system S`), `build-args` reach it at build time
    (`--builders ...`, `--option extra-platforms S`, `--store ssh-ng://host`); a flake
    target names the system with `{system}` in its reference.
    """

    system: str
    nix_args: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()

    def apply(self, target: Target) -> Target:
        """The target as evaluated and built for this system. A flake target names the
        system in its reference (`{system}`): the nix-args (`--argstr` and the like) are
        for classic files, and Nix refuses them with flakes."""
        what = target.instantiation
        flake = bool(what.flake_refs)
        return replace(
            target,
            instantiation=replace(
                what,
                nix_args=what.nix_args + (() if flake else self.nix_args),
                flake_refs=tuple(r.replace("{system}", self.system) for r in what.flake_refs),
            ),
            build_args=target.build_args + self.build_args,
        )

    def covers(self, target: Target, local: Callable[[], str]) -> bool:
        """False for a flake target that cannot name this system (no `{system}` in its
        reference): it would evaluate the local system's outputs instead."""
        refs = target.instantiation.flake_refs
        return not refs or any("{system}" in r for r in refs) or self.system == local()


@dataclass(frozen=True)
class Config:
    path: Path | None
    root: Path
    targets: dict[str, Target]
    platforms: dict[str, Platform] = field(default_factory=dict)

    def platform(self, system: str, local: str) -> Platform:
        if system in self.platforms:
            return self.platforms[system]
        if system == local:
            return Platform(system)
        known = ", ".join(sorted(self.platforms)) or "none"
        raise UsageError(
            f"platform {system!r} is not the local one ({local}) and fodhash.toml has no "
            f"[platforms.{system}] telling how to evaluate and build for it (configured: {known})"
        )

    def as_local(self, targets: list[Target], local: Callable[[], str]) -> list[Target]:
        """The targets as a run without --platform evaluates them on this machine (for the
        commands that evaluate outside the protocol: `list`, `apply --log`): a flake
        reference's `{system}` names the `local` system, and its [platforms.SYSTEM] applies."""
        if not self.platforms and not any("{system}" in r for t in targets
                                          for r in t.instantiation.flake_refs):
            return targets  # nothing to apply: Nix is not asked for the system
        platform = self.platform(local(), local())
        return [platform.apply(t) for t in targets]


def find_root(start: Path) -> Path:
    """The repository's root: the git work tree holding `start` (found by walking up for
    `.git`), else `start` itself (both resolved): the folder of fodhash.toml, or the working
    directory without one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return start


def find_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    return None


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UsageError(f"{where} must be a string or a list of strings")


def _arguments(value: Any, where: str) -> tuple[str, ...]:
    """Arguments for a Nix command: a list with one string per argument. A string is refused,
    not split: no shell reads it, so `"--arg foo 1"` would reach Nix as one argument."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    example = (f" (for {value!r}, write {json.dumps(shlex.split(value))})"
               if isinstance(value, str) and _splits(value) else "")
    raise UsageError(f"{where} must be a list of strings, one per argument{example}")


def _splits(value: str) -> bool:
    try:
        return bool(shlex.split(value))
    except ValueError:  # an unclosed quote
        return False


def _optional_str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}: `{key}` must be a string")
    return value


def _inside(root: Path, relative: str | Path, where: str) -> Path:
    """The path of a file of the repository; a path (or a symlink) leading out of it is
    refused: fodhash edits files of this repository only. The repository is the git work
    tree holding fodhash.toml (so a config in `sub/` may name `../default.nix`), or the
    folder of fodhash.toml outside git."""
    given = Path(os.path.abspath(root / relative))  # as the user names it, symlinks kept
    path = given.resolve()
    top = find_root(root)
    if not path.is_relative_to(top):
        link = " (through a symlink)" if given != path else ""
        kind = "its git work tree" if (top / ".git").exists() else "the folder of fodhash.toml"
        raise UsageError(f"{where}: {str(relative)!r} leads to {path}{link}, outside the "
                         f"repository {top} ({kind}); fodhash edits files inside it only")
    return given


def _json_files(root: Path, value: Any, where: str) -> tuple[Path, ...]:
    """fodhash.toml's `json`: JSON files of the repository, relative to fodhash.toml."""
    paths = []
    for entry in _strings(value, where):
        if Path(entry).name == "flake.lock":
            raise UsageError(f"{where}: {entry!r} is a flake's lock file: Nix writes its "
                             "narHash entries (`nix flake lock`), they are no hash sites; "
                             "remove it from `json`")
        if not entry.lower().endswith(".json"):
            raise UsageError(f"{where}: {entry!r} is not a .json file; `json` lists the JSON "
                             "files (named *.json) that hold hashes Nix reads")
        paths.append(_inside(root, entry, where))
    return tuple(paths)


def _target(root: Path, name: str, table: Any, where: str,
            shared: tuple[Path, ...] = ()) -> Target:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [targets.{name}] must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise UsageError(
            f"{where}: [targets.{name}] has unknown key(s) {', '.join(sorted(unknown))}; "
            f"known keys: {', '.join(sorted(_KEYS))}"
        )
    file = _optional_str(table, "file", where)
    if file is None:
        raise UsageError(f"{where}: [targets.{name}] needs `file`, the .nix file holding the hash")
    build = _optional_str(table, "build", where)
    flake = table.get("flake")
    if flake is not None and (build is not None or "attr" in table):
        raise UsageError(f"{where}: [targets.{name}] has `flake` and `build`/`attr`; use one")
    if file.lower().endswith(".json") and build is None and flake is None:
        raise UsageError(f"{where}: [targets.{name}] has a JSON `file` ({file}): name the Nix "
                         "file that reads it in `build` (or a `flake`)")
    nix_args = _arguments(table.get("nix-args", []), f"{where}: `nix-args` of {name}")
    instantiation = Instantiation(
        cwd=root,
        file=None if flake else _inside(root, build or file, where),
        attrs=() if flake else _strings(table.get("attr", []), f"{where}: `attr` of {name}"),
        flake_refs=_strings(flake, f"{where}: `flake` of {name}") if flake else (),
        nix_args=nix_args,
    )
    return Target(
        name=name,
        file=_inside(root, file, where),
        site=_optional_str(table, "site", where),
        instantiation=instantiation,
        build_args=_arguments(table.get("build-args", []), f"{where}: `build-args` of {name}"),
        json=tuple(dict.fromkeys(shared + _json_files(
            root, table.get("json", []), f"{where}: `json` of target {name}"))),
    )


def load(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such configuration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: not valid TOML: {err}") from None
    root = path.parent.resolve()
    targets = data.get("targets", {})
    if not isinstance(targets, dict):
        raise UsageError(f"{path}: `targets` must be a table of [targets.NAME] tables")
    platforms = data.get("platforms", {})
    if not isinstance(platforms, dict):
        raise UsageError(f"{path}: `platforms` must be a table of [platforms.SYSTEM] tables")
    unknown = set(data) - {"targets", "platforms", "json"}
    if unknown:
        raise UsageError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}; "
                         "fodhash.toml has [targets.NAME] and [platforms.SYSTEM] (and `json`)")
    shared = _json_files(root, data.get("json", []), f"{path}: top-level `json`")
    return Config(path, root, {n: _target(root, n, t, str(path), shared)
                               for n, t in targets.items()},
                  {s: _platform(s, p, str(path)) for s, p in platforms.items()})


def _platform(system: str, table: Any, where: str) -> Platform:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: [platforms.{system}] must be a table")
    unknown = set(table) - {"nix-args", "build-args"}
    if unknown:
        raise UsageError(f"{where}: [platforms.{system}] has unknown key(s) "
                         f"{', '.join(sorted(unknown))}; known keys: build-args, nix-args")
    return Platform(
        system,
        _arguments(table.get("nix-args", []), f"{where}: `nix-args` of platform {system}"),
        _arguments(table.get("build-args", []), f"{where}: `build-args` of platform {system}"),
    )


def file_target(path: Path, cwd: Path, root: Path) -> Target:
    """A bare .nix path: instantiate that file and resolve every site in it."""
    if not (cwd / path).exists():
        raise UsageError(f"{path}: no such file, and no target of that name in fodhash.toml")
    file = _inside(root, cwd / path, "file")
    name = str(path)
    return Target(name, file, None, Instantiation(cwd=file.parent, file=file))


def resolve_targets(config: Config, names: list[str], all_targets: bool, cwd: Path) -> list[Target]:
    """Targets for the command line: names from fodhash.toml or paths to .nix files."""
    if all_targets:
        if names:
            raise UsageError(f"--all selects every target; it does not combine with naming "
                             f"target(s) ({', '.join(names)}): give --all, or the names")
        if not config.targets:
            raise UsageError(
                "--all: no targets; write a fodhash.toml with [targets.NAME] tables "
                "or name .nix files"
            )
        return list(config.targets.values())
    if not names:
        raise UsageError("name a target (or a .nix file), or pass --all")
    chosen: list[Target] = []
    for name in names:
        if name in config.targets:
            chosen.append(config.targets[name])
        elif name.endswith(".nix"):
            chosen.append(file_target(Path(name), cwd, config.root))
        else:
            known = ", ".join(sorted(config.targets)) or "none (no fodhash.toml found)"
            raise UsageError(f"unknown target {name!r}; targets: {known}")
    return chosen
