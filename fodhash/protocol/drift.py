"""Drift explained: what changed in a site's FOD since its hash was last verified here.

When a site resolves, the cache keeps the form of its FODs for that hash (`form`: the normal
form the cache key digests, with store paths reduced to names and hash parts). When a later
run finds the site stale, the form kept for the hash its literal holds is compared with
today's: input derivations added, removed or changed (`tool-1.0 -> tool-2.0`), source paths
whose content changed (a lockfile), attributes that changed, the system. It reads only what
the cache and the evaluation already have: no Nix call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from fodhash.nix.derivations import Derivation

Form = dict[str, Any]
_STORE_PATH = re.compile(r"/nix/store/[0-9a-df-np-sv-z]{32}-[^/\s'\"$;:]*")
_VERSION = re.compile(r"-(?=\d)")  # nixpkgs' parseDrvName: the version starts at "-<digit>"
_SHOWN = 60  # characters of an attribute's value


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1][33:].removesuffix(".drv")


def form(drv: Derivation) -> Form:
    """What drift compares of a FOD (JSON-safe): its inputs by name, with their hash parts."""
    normal = drv.normal_form()
    return {
        "name": drv.name,
        "system": drv.system,
        "inputs": {_name(p): p.rsplit("/", 1)[-1][:32] for p in drv.input_drvs},
        "sources": {_name(p): p.rsplit("/", 1)[-1][:32] for p in drv.input_srcs},
        "attrs": {"builder": normal["builder"], "args": " ".join(normal["args"])}
        | {k: v for k, v in normal["env"].items() if k not in ("name", "system", "builder")},
    }


def _pname(name: str) -> str:
    return _VERSION.split(name, maxsplit=1)[0]


def _short(value: str) -> str:
    value = " ".join(value.split())
    return value if len(value) <= _SHOWN else value[:_SHOWN - 1] + "…"


def changes(old: Sequence[Form], new: Sequence[Form]) -> list[str]:
    """One line per change between the forms of a site's FODs (paired by name)."""
    lines: list[str] = []
    before = {f["name"]: f for f in old}
    after = {f["name"]: f for f in new}
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            lines.append(f"FOD {name} {'added' if name in after else 'removed'}")
            continue
        lines += _compare(before[name], after[name])
    return lines


def _compare(old: Form, new: Form) -> list[str]:
    lines = []
    if old["system"] != new["system"]:
        lines.append(f"system: {old['system']} -> {new['system']}")
    lines += _inputs(old["inputs"], new["inputs"])
    for name in sorted(set(old["sources"]) | set(new["sources"])):
        was, now = old["sources"].get(name), new["sources"].get(name)
        if was is None:
            lines.append(f"source {name} added")
        elif now is None:
            lines.append(f"source {name} removed")
        elif was != now:
            lines.append(f"source {name} changed (its content differs)")
    for key in sorted(set(old["attrs"]) | set(new["attrs"])):
        was, now = old["attrs"].get(key), new["attrs"].get(key)
        # A value that differs only in store paths follows an input's change, said above.
        if was is not None and now is not None and \
                _STORE_PATH.sub("", was) == _STORE_PATH.sub("", now):
            continue
        if was != now:
            lines.append(f"attribute {key}: {_short(was) if was is not None else '(unset)'} -> "
                         f"{_short(now) if now is not None else '(unset)'}")
    return lines


def _inputs(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    lines = []
    gone = {n for n in old if n not in new}
    came = {n for n in new if n not in old}
    by_pname = {_pname(n): n for n in came}
    for name in sorted(gone):
        successor = by_pname.pop(_pname(name), None)
        if successor is not None:
            came.discard(successor)
            lines.append(f"input {name} -> {successor}")
        else:
            lines.append(f"input {name} removed")
    lines += [f"input {name} added" for name in sorted(came)]
    lines += [f"input {name} changed (same name, another derivation)"
              for name in sorted(set(old) & set(new)) if old[name] != new[name]]
    return lines
