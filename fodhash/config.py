"""fodhash.toml: find it, validate it, and turn names and paths into targets."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fodhash.errors import UsageError
from fodhash.nix import Instantiation

CONFIG_NAME = "fodhash.toml"
_KEYS = {"file", "site", "build", "attr", "flake", "nix-args", "build-args"}


@dataclass(frozen=True)
class Target:
    name: str
    file: Path  # the file holding the site(s)
    site: str | None  # which site; None: every site in the file
    instantiation: Instantiation
    build_args: tuple[str, ...] = ()  # extra arguments for `nix-store --realise`


@dataclass(frozen=True)
class Config:
    path: Path | None
    root: Path
    targets: dict[str, Target]


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


def _optional_str(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is not None and not isinstance(value, str):
        raise UsageError(f"{where}: `{key}` must be a string")
    return value


def _inside(root: Path, relative: str, where: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise UsageError(f"{where}: {relative!r} is outside the repository {root}")
    return path


def _target(root: Path, name: str, table: Any, where: str) -> Target:
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
    nix_args = _strings(table.get("nix-args", []), f"{where}: `nix-args` of {name}")
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
        build_args=_strings(table.get("build-args", []), f"{where}: `build-args` of {name}"),
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
    return Config(path, root, {n: _target(root, n, t, str(path)) for n, t in targets.items()})


def file_target(path: Path, cwd: Path) -> Target:
    """A bare .nix path: instantiate that file and resolve every site in it."""
    file = (cwd / path).resolve()
    if not file.exists():
        raise UsageError(f"{path}: no such file, and no target of that name in fodhash.toml")
    name = str(path)
    return Target(name, file, None, Instantiation(cwd=file.parent, file=file))


def resolve_targets(config: Config, names: list[str], all_targets: bool, cwd: Path) -> list[Target]:
    """Targets for the command line: names from fodhash.toml or paths to .nix files."""
    if all_targets:
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
            chosen.append(file_target(Path(name), cwd))
        else:
            known = ", ".join(sorted(config.targets)) or "none (no fodhash.toml found)"
            raise UsageError(f"unknown target {name!r}; targets: {known}")
    return chosen
