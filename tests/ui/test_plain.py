"""Off a terminal fodhash prints without rich (fodhash.ui.plain): the text must be what
rich printed there, given 240 columns and soft wrapping, for fodhash's markup and for any
text escaped into it."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from fodhash.ui import plain
from fodhash.ui.plain import PlainConsole

# Messages as fodhash writes them (report.summary, boundary's errors, sessions' platform
# headers), and the awkward text users and Nix put into them.
AWKWARD = ["every [platforms.*] in fodhash.toml", "[x86_64-linux]", "a\\", "a\\\\", "\\[not]",
           "path/with [brackets] and \\[escaped]", "[/]", "[#fff]", "[@click]", "x[1]",
           "error: attribute 'src' missing, at /repo/x.nix:6:23:", "tab\there", "[]", "[ ]",
           "sha256-zqVUJtoEsuqC1qpZkvkXN2ufXpiEK9NKxbbMGV/vEy8=", "100% [=====>  ]"]
MARKUP = ["[bold]12 site(s)[/]: [green]12 ok[/]; 1 evaluation, 0 FOD build(s)",
          "[bold red]error:[/] {}", "[bold]{}[/]", "[dim]{}[/dim] and [yellow]{}[/yellow]"]


def _rich(text: str, **options: object) -> str:
    out = io.StringIO()
    Console(file=out, width=plain.WIDTH, soft_wrap=True).print(text, **options)  # type: ignore[arg-type]
    return out.getvalue()


def _ours(text: str, **options: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # PlainConsole writes to the stdout of the moment
        PlainConsole().print(text, **options)
    return out.getvalue()


@pytest.mark.parametrize("text", AWKWARD)
def test_escaped_text_reads_as_itself(text: str) -> None:
    assert plain.escape(text) == rich_escape(text)
    for template in MARKUP:
        markup = template.format(*[plain.escape(text)] * template.count("{}"))
        assert _ours(markup, highlight=False) == _rich(markup, highlight=False, emoji=False)


@pytest.mark.parametrize("text", AWKWARD)
def test_text_without_markup_is_written_as_it_is(text: str) -> None:
    assert _ours(text, markup=False) == text.expandtabs(8) + "\n"
    assert _ours(text, markup=False) == _rich(text, markup=False, emoji=False)


def test_anything_but_text_is_drawn_by_rich() -> None:
    table = Table("a", "b")
    table.add_row("1", "2")
    out = io.StringIO()
    console = PlainConsole()
    console._rich = Console(file=out, width=plain.WIDTH, soft_wrap=True)
    console.print(table)
    drawn = io.StringIO()
    Console(file=drawn, width=plain.WIDTH, soft_wrap=True).print(table)
    assert out.getvalue() == drawn.getvalue()
    assert "│ 1 │ 2 │" in out.getvalue()


def test_a_pipe_gets_plain_lines_and_a_forced_terminal_gets_rich(tmp_path: Path) -> None:
    script = ("from fodhash.ui.boundary import console; import sys; c = console(); "
              "c.print('[bold]x[/] \\\\[y]'); print(type(c).__name__, "
              "any(m.startswith('rich') for m in sys.modules))")
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True, env={"PATH": "/usr/bin:/bin"})
    assert piped.stdout == "x [y]\nPlainConsole False\n"
    forced = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, env={"PATH": "/usr/bin:/bin", "TTY_COMPATIBLE": "1"})
    assert forced.stdout.endswith("Console True\n") and "PlainConsole" not in forced.stdout
