"""What fodhash asks Nix about itself (its version, this machine's system, its build-users
group), asked once per Nix installation and configuration rather than once per run.

Each answer costs a Nix process (20-60 ms); a warm run needs nothing else of Nix but one
evaluation per tree, so these were a third of its Nix time (docs/performance.md). The
answers are kept in `nix-facts.json` in fodhash's cache folder (the command line says
where: `keep_in`), under a key that changes whenever an answer could: the Nix binaries
(resolved path, size, mtime), the environment variables Nix reads its configuration from,
and the configuration files themselves (size, mtime; their `include`s too). A different
key asks Nix again; a file that cannot be read or written only costs the question.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path

FILE = "nix-facts.json"
# Where Nix looks for its configuration (Nix's manual, "nix.conf"), as environment variables.
CONFIG_VARIABLES = ("NIX_CONFIG", "NIX_CONF_DIR", "NIX_USER_CONF_FILES", "XDG_CONFIG_HOME",
                    "XDG_CONFIG_DIRS", "HOME", "NIX_REMOTE", "NIX_STATE_DIR", "NIX_STORE_DIR")
PROGRAMS = ("nix", "nix-store", "nix-instantiate")

_directory: Path | None = None
_answers: dict[str, str] = {}  # this process's, whatever the folder


def keep_in(directory: Path | None) -> None:
    """Keep the answers in this folder from now on (None: in this process only)."""
    global _directory  # noqa: PLW0603 (one setting per process, made by the command line)
    _directory = directory


def _stat(path: Path) -> list[object]:
    try:
        info = path.stat()
    except OSError:
        return [str(path), None]
    return [str(path), info.st_size, info.st_mtime_ns]


def _config_files() -> list[Path]:
    """nix.conf files Nix may read, and the files they include (one level)."""
    env = os.environ
    user = env.get("NIX_USER_CONF_FILES")
    if user is not None:
        files = [Path(p) for p in user.split(":") if p]
    else:
        home = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "/")) / ".config")
        dirs = [home, *(env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")]
        files = [Path(d) / "nix" / "nix.conf" for d in dirs if d]
    files.insert(0, Path(env.get("NIX_CONF_DIR", "/etc/nix")) / "nix.conf")
    included = []
    for file in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for line in file.read_text().splitlines():
                words = line.split()
                if len(words) == 2 and words[0] in ("include", "!include"):
                    included.append(file.parent / words[1])
    return files + included


@cache
def key() -> str:
    """What the answers depend on, hashed (computed once per process)."""
    programs = []
    for name in PROGRAMS:
        found = shutil.which(name)
        programs.append(_stat(Path(found).resolve()) if found else [name, None])
    parts = {"programs": programs,
             "env": {name: os.environ.get(name) for name in CONFIG_VARIABLES},
             "config": [_stat(f) for f in _config_files()]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _load() -> dict[str, str]:
    if _directory is None:
        return {}
    try:
        data = json.loads((_directory / FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("key") != key():
        return {}
    facts = data.get("facts")
    return {k: v for k, v in facts.items() if isinstance(v, str)} if isinstance(facts, dict) else {}


def _store(facts: dict[str, str]) -> None:
    if _directory is None:
        return
    with contextlib.suppress(OSError):
        _directory.mkdir(parents=True, exist_ok=True)
        temp = _directory / f"{FILE}.{os.getpid()}.tmp"
        temp.write_text(json.dumps({"key": key(), "facts": facts}, indent=1) + "\n")
        os.replace(temp, _directory / FILE)  # whole or not at all, whoever writes last


def remembered(name: str, ask: Callable[[], str | None]) -> str | None:
    """The answer to `name`: this process's, else the folder's for this key, else ask()'s
    (kept unless None: a failed question is asked again next time)."""
    if name in _answers:
        return _answers[name]
    facts = _load()
    if name not in facts:
        answer = ask()
        if answer is None:
            return None
        facts[name] = answer
        _store(facts)
    _answers[name] = facts[name]
    return facts[name]


def known(name: str) -> bool:
    """Whether `name` is answered without asking Nix."""
    return name in _answers or name in _load()


def forget() -> None:
    """Drop this process's answers (tests, and a command line that changed the folder)."""
    _answers.clear()
    key.cache_clear()
