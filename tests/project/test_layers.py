"""The folders of fodhash/ are layers, and a lower layer never imports a higher one
(docs/design.md, "Where things are"). Every import counts: at the top of a module, inside a
function (the lazy ones of the command line), under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "fodhash"
# Lowest first. A module belongs to the layer of the longest name here that it is, or that
# it lies under; `fodhash` itself is the package's __init__.py only (its version()).
LAYERS: dict[str, int] = {
    "fodhash": 0,
    "fodhash.errors": 0,
    "fodhash.hashes": 0,
    "fodhash.nix": 1,
    "fodhash.config": 2,
    "fodhash.sites": 3,
    "fodhash.files": 4,
    "fodhash.cache": 5,
    "fodhash.protocol": 6,
    "fodhash.ui": 7,
    "fodhash.run": 8,
    "fodhash.commands": 9,
    "fodhash.cli": 10,
    "fodhash.entry": 10,
    "fodhash.__main__": 10,
}


def layer_of(module: str) -> int | None:
    """The layer of a module of fodhash, by its dotted name; None if it has none."""
    if module == "fodhash":
        return LAYERS["fodhash"]
    parts = module.split(".")
    for end in range(len(parts), 1, -1):  # never the bare `fodhash`: every module needs a layer
        found = LAYERS.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    relative = Path(*name.split("."))
    base = root.parent / relative
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported(path: Path, root: Path = PACKAGE) -> list[str]:
    """The fodhash modules a module imports, anywhere in it: `from fodhash.x import y` is
    fodhash.x.y where y is a module, else fodhash.x."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package up
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.append(full if _is_module(full, root) else base)
    return [m for m in found if m == root.name or m.startswith(root.name + ".")]


def violations(root: Path = PACKAGE) -> list[str]:
    """Every import of a higher layer by a lower one, and every module outside the layers."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        mine = layer_of(module)
        if mine is None:
            problems.append(f"{module} is assigned to no layer (add its folder to LAYERS)")
            continue
        for target in imported(path, root):
            theirs = layer_of(target)
            if theirs is None:
                problems.append(f"{module} -> {target} ({target} is assigned to no layer)")
            elif theirs > mine:
                problems.append(f"{module} -> {target} (layer {mine} imports layer {theirs})")
    return problems


def test_no_layer_imports_a_higher_one() -> None:
    problems = violations()
    assert not problems, "\n".join(problems)


def test_an_upward_import_and_a_module_outside_the_layers_are_named(tmp_path: Path) -> None:
    """The check itself: it fails, naming the module and both layers, on a lazy upward
    import, one under TYPE_CHECKING, a relative one; and on a module of no layer."""
    package = tmp_path / "fodhash"
    for folder in ("nix", "sites", "commands"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text('"""A layer."""\n')
    (package / "__init__.py").write_text('"""The package."""\n')
    (package / "config.py").write_text("from fodhash.nix import calls\n")
    (package / "nix" / "calls.py").write_text("def f() -> None:\n    from fodhash import config\n")
    (package / "sites" / "site.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..commands import update\n")
    (package / "commands" / "update.py").write_text("from fodhash.sites.site import x\n")
    (package / "extra.py").write_text('"""Nowhere."""\n')
    assert violations(package) == [
        "fodhash.extra is assigned to no layer (add its folder to LAYERS)",
        "fodhash.nix.calls -> fodhash.config (layer 1 imports layer 2)",
        "fodhash.sites.site -> fodhash.commands.update (layer 3 imports layer 9)",
    ]
