"""A target's sites: those of its Nix file and of the JSON files it reads.

The JSON files of a target are those fodhash.toml lists (`json`), and those read by its
`.nix` file or by a Nix file of the repository it imports (`import ./nix/sources.nix`,
`import ./npins`, transitively): a literal path given to `importJSON PATH` or
`fromJSON (readFile PATH)`, or any literal `.json` path in a file that calls one of them
(niv's `sourcesFile ? ./sources.json`). A `flake.lock` is never one: Nix writes it
(flake-compat reads it with `fromJSON`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from fodhash.config import find_root
from fodhash.errors import FodhashError
from fodhash.sites.json_file import json_platform_slot, locate_json
from fodhash.sites.nix_file import locate_in_bytes, platform_slot
from fodhash.sites.read import is_json, read_source
from fodhash.sites.site import Site
from fodhash.sites.syntax import error_nodes, parse, unparenthesized

if TYPE_CHECKING:
    import tree_sitter

    from fodhash.config import Target

log = logging.getLogger(__name__)

# Files never read for sites: Nix's own record of locked inputs (flake.lock, and copies of
# it) holds no FOD's hash.
_NOT_FILES = {"flake.lock"}


class Memo(Protocol):
    """What was read of a file before (fodhash.cache.located), for the same bytes: `find`'s
    answer for `file` holding `source`, kept from an earlier run or found now; and whether
    the grammar reads the file whole (`read_whole`). Sites are kept only for such a file."""

    def sites(self, file: Path, source: bytes,
              find: Callable[[Path, bytes], list[Site]]) -> list[Site]: ...

    def paths(self, kind: str, file: Path, source: bytes,
              find: Callable[[Path, bytes], list[Path]]) -> list[Path]: ...

    def whole(self, file: Path, source: bytes) -> bool: ...


def read_whole(file: Path, source: bytes) -> bool:
    """Whether the grammar reads `source` whole. Where it does not, Nix judges the file and a
    warning names the lines it could not read, on every run: its sites are not remembered."""
    return is_json(file) or not error_nodes(parse(source).root_node)


def locate_any(file: Path, source: bytes) -> list[Site]:
    """The sites of a `.json` file or of a Nix file."""
    return locate_json(file, source) if is_json(file) else locate_in_bytes(file, source)


def slot_any(source: bytes, sites: list[Site], platform: str) -> Site | None:
    if sites and is_json(sites[0].file):
        return json_platform_slot(source, sites, platform)
    return platform_slot(source, sites, platform)


# ---- which JSON files a target reads ----------------------------------------------------


def _last_name(node: tree_sitter.Node) -> str | None:
    """`importJSON` of `lib.importJSON`, `pkgs.lib.importJSON` or `importJSON`."""
    if node.type == "variable_expression":
        return node.text.decode() if node.text else None
    if node.type == "select_expression" and node.child_by_field_name("default") is None:
        path = node.child_by_field_name("attrpath")
        attrs = path.children_by_field_name("attr") if path is not None else []
        if attrs and attrs[-1].type == "identifier" and attrs[-1].text:
            return attrs[-1].text.decode()
    return None


def _literal_path(node: tree_sitter.Node | None) -> str | None:
    if node is None:
        return None
    node = unparenthesized(node)
    if node.type != "path_expression" or node.text is None:
        return None
    if [c.type for c in node.children] != ["path_fragment"]:
        return None  # ./${name}.json: not a literal path
    text = node.text.decode()
    return text if text.startswith(("./", "../")) else None


def references(file: Path, source: bytes) -> list[Path]:
    """The JSON files `source` reads through `importJSON PATH` or `fromJSON (readFile PATH)`
    with a literal relative path, or names with a literal path in a file that calls one of
    them (`sourcesFile ? ./sources.json`, read as `fromJSON (readFile sourcesFile)`), resolved
    against the folder of `file`, in file order. `flake.lock` is never one, nor a file whose
    name does not end in `.json`."""
    found: list[Path] = []
    if b"importJSON" not in source and b"fromJSON" not in source:
        return found  # most files: no second parse
    stack = [parse(source).root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children))
        if node.type == "path_expression":
            named = _literal_path(node)
            if named is not None and named.endswith(".json"):
                _add(found, file, named)
            continue
        if node.type != "apply_expression":
            continue
        function = node.child_by_field_name("function")
        argument = node.child_by_field_name("argument")
        name = _last_name(function) if function is not None else None
        literal = None
        if name == "importJSON":
            literal = _literal_path(argument)
        elif name == "fromJSON":
            inner = unparenthesized(argument) if argument is not None else None
            if inner is not None and inner.type == "apply_expression":
                reader = inner.child_by_field_name("function")
                if reader is not None and _last_name(reader) == "readFile":
                    literal = _literal_path(inner.child_by_field_name("argument"))
        if literal is not None:
            _add(found, file, literal)
    return found


def _add(found: list[Path], file: Path, literal: str) -> None:
    path = Path(os.path.normpath(file.parent / literal))
    if path.name not in _NOT_FILES and is_json(path) and path not in found:
        found.append(path)


def imports(file: Path, source: bytes, memo: Memo | None = None) -> list[Path]:
    """The Nix files `source` imports with a literal relative path (`import ./nix/sources.nix`,
    `import ./npins`: a folder's `default.nix`), resolved against the folder of `file`."""
    named = memo.paths("imports", file, source, _imported) if memo else _imported(file, source)
    found: list[Path] = []
    for name in named:
        path = name / "default.nix" if name.is_dir() else name
        if path.suffix == ".nix" and path not in found:
            found.append(path)
    return found


def _imported(file: Path, source: bytes) -> list[Path]:
    """The paths `import` is given literally in `source`, against the folder of `file`."""
    found: list[Path] = []
    if b"import" not in source:
        return found
    stack = [parse(source).root_node]
    while stack:
        node = stack.pop()
        stack.extend(reversed(node.children))
        if node.type != "apply_expression":
            continue
        function = node.child_by_field_name("function")
        if function is None or _last_name(function) != "import":
            continue
        literal = _literal_path(node.child_by_field_name("argument"))
        if literal is None:
            continue
        path = Path(os.path.normpath(file.parent / literal))
        if path not in found:
            found.append(path)
    return found


_MOST_IMPORTS = 64  # Nix files followed per target: a repository's pins, not a package set


def json_read(file: Path, source: bytes, top: Path, memo: Memo | None = None) -> list[Path]:
    """The JSON files read by `file` and by the repository's Nix files it imports,
    transitively (those outside the repository are not followed)."""
    found: list[Path] = []
    seen = {file}
    queue = [(file, source)]
    while queue and len(seen) <= _MOST_IMPORTS:
        current, data = queue.pop(0)
        named = memo.paths("references", current, data, references) if memo \
            else references(current, data)
        found += [p for p in named if p not in found]
        for path in imports(current, data, memo):
            real = Path(os.path.realpath(path))
            if real in seen or not real.is_relative_to(top) or not real.is_file():
                continue
            seen.add(real)
            try:
                queue.append((path, read_source(real)))
            except FodhashError as error:
                log.debug("%s imports %s, not read: %s", current, path, error)
    return found


def json_files(target: Target, source: bytes, memo: Memo | None = None) -> list[Path]:
    """The JSON files whose sites belong to `target` (its file's `source` given): those
    fodhash.toml lists for it, then those its file reads, each once, symlinks resolved. A
    file its `.nix` file names that does not exist, or lies outside the repository, is
    passed over (fodhash edits files of the repository only)."""
    listed = [Path(os.path.realpath(p)) for p in target.json]
    read: list[Path] = []
    top = find_root(target.file.parent)
    named = [] if is_json(target.file) else json_read(target.file, source, top, memo)
    if named:
        for path in named:
            real = Path(os.path.realpath(path))
            if not real.is_relative_to(top):
                log.warning("%s reads %s, outside the repository %s: its hashes are not "
                            "sites", target.file, path, top)
            elif not real.is_file():
                log.debug("%s names %s, which does not exist", target.file, path)
            else:
                read.append(real)
    return list(dict.fromkeys(listed + read))


def sites_of(target: Target, sources: dict[Path, bytes], located: dict[Path, list[Site]],
             read: Callable[[Path], bytes] = read_source, memo: Memo | None = None) -> list[Site]:
    """Every site of `target`: its file's, then those of its JSON files; each file is read
    and located once (kept in `sources` and `located`, by its real path), or its sites and
    what it reads are taken from `memo` for the same bytes."""
    file = Path(os.path.realpath(target.file))
    _locate(file, sources, located, read, locate_any, memo)
    sites = list(located[file])
    for path in json_files(target, sources[file], memo):
        if path != file:
            _locate(path, sources, located, read, locate_json, memo)
            sites += located[path]
    return sites


def _locate(file: Path, sources: dict[Path, bytes], located: dict[Path, list[Site]],
            read: Callable[[Path], bytes], locate: Callable[[Path, bytes], list[Site]],
            memo: Memo | None) -> None:
    """Read and locate `file` unless that is done; a file that fails is not kept."""
    if file in located and file in sources:
        return
    data = sources[file] if file in sources else read(file)
    located[file] = memo.sites(file, data, locate) if memo else locate(file, data)
    sources[file] = data
