"""Nix syntax: the tree-sitter Nix grammar fodhash reads files with, and Nix as the judge.

The grammar is the one inside `tree-sitter-language-pack` 0.13 (a precompiled wheel; its
1.x releases download grammars at run time, which offline machines cannot do). It reads
today's syntax, nixfmt's trailing commas in formals included, which the grammar of the
`tree-sitter-nix` 0.1.0 wheel rejects. docs/design.md has the measurements behind the choice.

No grammar is Nix, though: where the grammar finds an error, `nix-instantiate --parse`
decides. A file Nix accepts is never refused (its sites are read where the tree is sound,
and the lines the grammar could not read are named); a file Nix rejects is refused with
Nix's own message, line and column.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.errors import UsageError
from fodhash.nix import process

if TYPE_CHECKING:
    import tree_sitter

log = logging.getLogger(__name__)

# "at /repo/file.nix:6:23:" (2.4+), "at «stdin»:6:23:"; 2.3 and older: ", at (string):6:23".
_POSITION = re.compile(r"\bat (?P<where>.+?):(?P<line>\d+):(?P<column>\d+):?\s*$", re.MULTILINE)
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


@cache
def _parser() -> tree_sitter.Parser:
    # Imported here: commands that never read a Nix file (--help, cache, apply) skip it.
    import tree_sitter  # noqa: PLC0415
    from tree_sitter_language_pack import get_language  # noqa: PLC0415

    return tree_sitter.Parser(get_language("nix"))


@lru_cache(maxsize=64)
def parse(source: bytes) -> tree_sitter.Tree:
    """The syntax tree of `source`. Kept for the next call with the same bytes: a target's
    file is parsed to locate its sites, then again to follow its imports and JSON files, and
    a file that several targets import once per target (never edited: shared safely)."""
    return _parser().parse(source)


def unparenthesized(node: tree_sitter.Node) -> tree_sitter.Node:
    """The expression inside any parentheses around `node`."""
    while node.type == "parenthesized_expression":
        inner = node.child_by_field_name("expression")
        if inner is None:
            break
        node = inner
    return node


@dataclass(frozen=True)
class Unreadable:
    """Lines of a valid Nix file that the grammar could not read (1-based, inclusive)."""

    first: int
    last: int

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def error_nodes(root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The grammar's ERROR and MISSING nodes, outermost only, in file order."""
    found: list[tree_sitter.Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            found.append(node)
        elif node.has_error:
            stack.extend(reversed(node.children))
    return found


def judge(file: Path, source: bytes, tree: tree_sitter.Tree) -> list[Unreadable]:
    """Where the grammar found an error in `source`, let Nix decide.

    Returns the line ranges the grammar could not read if Nix parses the file; raises a
    UsageError with Nix's own message if Nix does not.
    """
    errors = error_nodes(tree.root_node)
    if not errors:
        return []
    verdict = _nix_parse(file, source)
    if verdict is not None:
        raise verdict
    spans = [Unreadable(n.start_point[0] + 1, n.end_point[0] + 1) for n in errors]
    log.warning(
        "%s: Nix accepts this file, but fodhash's Nix grammar could not read line(s) %s; "
        "hash sites there are not seen (please report the syntax)",
        file, ", ".join(str(s) for s in spans))
    return spans


def refuse_invalid(file: Path, source: bytes) -> None:
    """Raise Nix's own error if Nix does not parse `source` (a file a target evaluates that
    holds no site: its sites are not located, so `judge` never sees it). Nix is asked only
    where the grammar finds an error."""
    if error_nodes(parse(source).root_node) and (verdict := _nix_parse(file, source)):
        raise verdict


def _nix_parse(file: Path, source: bytes) -> UsageError | None:
    """None if Nix parses `source`, else the error to raise, in Nix's words."""
    try:
        # Through stdin: `source` is what fodhash read, which the file may no longer hold.
        result = process.run(["nix-instantiate", "--parse", "-"], cwd=file.parent,
                             stdin=source.decode())
    except UsageError:  # no Nix to ask: the grammar's word is all there is
        row, column = error_nodes(parse(source).root_node)[0].start_point
        return UsageError(f"{file}:{row + 1}:{column + 1}: Nix syntax error (as fodhash's "
                          "grammar reads it; Nix is not on PATH to confirm); fix the file "
                          "and run again")
    if result.ok:
        return None
    return syntax_error(file, result.stderr)


def syntax_error(file: Path, stderr: str) -> UsageError:
    """Nix's parse error as fodhash reports it: `FILE:LINE:COLUMN: message`, then the
    source lines Nix quotes, with Nix's name for standard input replaced by the file's."""
    text = _ANSI.sub("", stderr).replace("\r\n", "\n")
    lines = [line for line in text.splitlines() if line.strip()]
    message = next((line.strip().removeprefix("error:").strip() for line in lines
                    if "error" in line), lines[0].strip() if lines else "syntax error")
    position = _POSITION.search(text)
    where = f"{file}:{position['line']}:{position['column']}" if position else str(file)
    quoted = [line for line in lines if re.match(r"^\s*(\d+)?\|", line)]
    context = "\n" + "\n".join(quoted) if quoted else ""
    message = message.removeprefix("syntax error, ")
    return UsageError(f"{where}: Nix syntax error: {message} (as `nix-instantiate --parse` "
                      f"reports it); fix the file and run again{context}")
