"""Output off a terminal (a hook, a CI log, a pipe) without loading rich.

Off a terminal fodhash's output is plain lines: no colours, no boxes, no wrapping (rich was
given 240 columns and soft wrapping there). Loading rich only to strip its markup from
those lines cost every command 15-40 ms, a tenth of a warm check (docs/performance.md).
So off a terminal the console is a PlainConsole: strings are written as they are, markup
removed by the rules of rich's markup (a tag is `[...]` starting with a letter, `#`, `/` or
`@`; a backslash before it makes it text); anything else (a rich Table, say) is handed to
a rich console made then.
"""

from __future__ import annotations

import os
import re
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

WIDTH = 240  # what rich was given off a terminal: lines are never folded
_TAG = re.compile(r"(\\*)\[([a-z#/@][^\[]*?)\]")


def plain(markup: str) -> str:
    """The text of a markup string: tags removed, escaped brackets and backslashes kept."""

    def text(match: re.Match[str]) -> str:
        backslashes, escaped = divmod(len(match[1]), 2)
        return "\\" * backslashes + (f"[{match[2]}]" if escaped else "")

    return _TAG.sub(text, markup)


def escape(text: str) -> str:
    """`text` as markup that reads as itself: a backslash before each bracket that would
    open a tag (and before the backslashes already there), and after a final backslash."""
    escaped = _TAG.sub(lambda m: f"{m[1]}{m[1]}\\[{m[2]}]", text)
    if escaped.endswith("\\") and not escaped.endswith("\\\\"):
        escaped += "\\"
    return escaped


def is_terminal(stderr: bool) -> bool:
    """Whether rich would draw for a terminal: the stream is one, or the environment says
    to act as if (FORCE_COLOR, TTY_COMPATIBLE=1), unless TTY_COMPATIBLE=0."""
    compatible = os.environ.get("TTY_COMPATIBLE", "")
    if compatible in ("0", "1"):
        return compatible == "1"
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = sys.stderr if stderr else sys.stdout
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class PlainConsole:
    """The part of rich's Console that fodhash uses off a terminal."""

    is_terminal = False
    width = WIDTH

    def __init__(self, *, stderr: bool = False) -> None:
        self.stderr = stderr
        self._rich: Console | None = None

    @property
    def file(self) -> IO[str]:
        return sys.stderr if self.stderr else sys.stdout  # as rich: the stream of the moment

    def print(self, *objects: Any, sep: str = " ", end: str = "\n", markup: bool | None = None,
              **options: Any) -> None:
        if not all(isinstance(o, str) for o in objects):
            self._console().print(*objects, sep=sep, end=end, markup=markup, **options)
            return
        text = sep.join(objects)
        text = text if markup is False else plain(text)
        self.file.write(text.expandtabs(8) + end)  # rich's tab stops

    def _console(self) -> Console:
        if self._rich is None:
            from rich.console import Console  # noqa: PLC0415 (a table, not a line)

            self._rich = Console(stderr=self.stderr, width=WIDTH, soft_wrap=True)
        return self._rich
