"""Progress while Nix runs (fodhash.ui.progress): the rich live view's rows and bottom line, rendered
on a recording terminal Console; the plain lines are tested through the command line
(test_check.py, test_platforms.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from helpers import TRANSCRIPTS
from rich.console import Console, RenderableType
from typer.testing import CliRunner

from fodhash import cli
from fodhash.protocol.state import FROM_CACHE, SiteRun, Status
from fodhash.sites.nix_file import locate_in_bytes
from fodhash.ui.progress import LiveView, PlainView


def text(renderable: RenderableType) -> str:
    console = Console(force_terminal=True, record=True, width=200, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def runs(*states: tuple[Status, str]) -> list[SiteRun]:
    source = "{ " + " ".join(f'f{i}.hash = "sha256-{"A" * 43}=";' for i in range(len(states)))
    sites = locate_in_bytes(Path("x.nix"), (source + " }").encode())
    made = [SiteRun("t", site, i) for i, site in enumerate(sites)]
    for run, (status, message) in zip(made, states, strict=True):
        run.status, run.message = status, message
    return made


def test_plain_lines_name_each_change_and_count_what_the_cache_confirmed() -> None:
    """Off a terminal, a site the cache confirms says nothing the report does not: a run
    where nothing changed writes one line, however many sites it has."""
    items = runs((Status.OK, FROM_CACHE), (Status.OK, ""), (Status.UPDATED, ""),
                 (Status.OK, FROM_CACHE), (Status.FAILED, "it broke\nat length"),
                 (Status.QUEUED, ""))
    out = io.StringIO()
    with PlainView(Console(file=out, width=200), root=Path(".")) as view:
        for run in items:
            view.changed(run)
        assert [line.split()[:2] for line in out.getvalue().splitlines()] == [
            ["ok", "t:"], ["updated", "t:"], ["failed", "t:"]]
        assert "(it broke)" in out.getvalue()
    assert out.getvalue().splitlines()[-1] == \
        "      ok 2 site(s) from the cache: each literal is its FODs' cached true hash"
    quiet = io.StringIO()
    with PlainView(Console(file=quiet, width=200)) as view:
        view.changed(items[1])
    assert "from the cache" not in quiet.getvalue()


def live(items: list[SiteRun], checking: bool = False) -> LiveView:
    return LiveView(Console(force_terminal=True, width=200, file=io.StringIO()), items, checking)


@pytest.mark.parametrize("name", ["nix-2.8-nix-store-realise-plain.txt",
                                  "nix-2.8-pty-colour.txt",
                                  "nix-2.26-nix-build-flake-keep-going-two.txt",
                                  "nix-2.34-nix-store-realise-single.txt"])
def test_expected_mismatches_read_calmly_on_the_bottom_line(name: str) -> None:
    """Every build is made with a fake hash: its mismatch is how the hash is learnt, never
    an `error:` on the bottom line, and neither is the closing "error: build of ... failed"."""
    view = live([])
    shown = []
    for line in (TRANSCRIPTS / name).read_text().splitlines():
        if line.strip() and not line.startswith("$ "):
            view.log(line)
            shown.append(view.last_line)
    assert not any(x.startswith("error:") for x in shown), shown
    assert any(x.startswith("learnt the hash of ") for x in shown)


def test_a_real_failure_still_shows_on_the_bottom_line() -> None:
    view = live([])
    for line in (TRANSCRIPTS / "nix-2.34-nix-store-realise-keep-going.txt").read_text().splitlines():
        view.log(line)
        if "Cannot build" in line:
            assert view.last_line.startswith("error: Cannot build '/nix/store/")


def test_a_check_row_says_unverified_as_its_table_does() -> None:
    view = live(runs((Status.SKIPPED, "not evaluated on this platform"),
                     (Status.UNKNOWN, "no machine here builds aarch64-darwin: ..."),
                     (Status.BUILDING, "")), checking=True)
    rows = text(view._render()).splitlines()
    assert rows[0].split()[0] == rows[1].split()[0] == "unverified"
    assert rows[2].startswith("building")
    assert "skipped" not in rows[0] and "unknown" not in rows[1]


@pytest.mark.nix
def test_live_rows_explain_only_their_current_status(example: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A real `update --all` on the example under a terminal: the live view's rows at each
    status change. webui-deps waits for the sources; once it builds, and once updated, its
    row no longer says "waits for". The bottom line never shows Nix's `error:` lines."""
    frames: list[str] = []
    bottom: list[str] = []
    log = LiveView.log

    def changed(self: LiveView, run: SiteRun) -> None:
        frames.append(text(self._render()))

    def logged(self: LiveView, line: str) -> None:
        log(self, line)
        bottom.append(self.last_line)

    monkeypatch.setattr(LiveView, "changed", changed)
    monkeypatch.setattr(LiveView, "log", logged)
    err = Console(force_terminal=True, width=200, file=io.StringIO())
    monkeypatch.setattr(cli, "console", lambda stderr=False: err if stderr else
                        Console(width=240, file=io.StringIO()))
    monkeypatch.chdir(example)
    result = CliRunner().invoke(cli.app, ["update", "--all"])
    assert result.exit_code == 0, result.output
    rows = [row for frame in frames for row in frame.splitlines()]
    assert any(row.startswith("waiting") and "waits for" in row for row in rows)
    for row in rows:
        if row.startswith(("building", "updated", "queued")):
            assert "waits for" not in row, row
    final = frames[-1].splitlines()
    assert any(r.startswith("skipped") and "[platforms.aarch64-darwin]" in r for r in final), final
    assert bottom and not any(x.startswith("error:") for x in bottom), bottom
    assert any(x.startswith("learnt the hash of ") for x in bottom)


def test_a_long_message_is_cut_to_the_line_not_the_site() -> None:
    """Each site stays on one line: the message gets the room the other columns leave."""
    long = "not evaluated on this platform: resolve it on aarch64-darwin, or configure " * 3
    view = LiveView(Console(force_terminal=True, width=90, file=io.StringIO()),
                    runs((Status.SKIPPED, long), (Status.BUILDING, "")))
    rows = text(view._render()).splitlines()
    assert rows[0].split()[:4] == ["skipped", "t", "x.nix:f0.hash", "not"]
    assert rows[0].endswith("…")
    assert len(rows[0]) <= 90 and rows[1].startswith("building")


# ---- the report's tables (fodhash.ui.grid) --------------------------------------------------

def test_off_a_terminal_a_table_is_plain_rows_one_line_each() -> None:
    from fodhash.ui.grid import Grid  # noqa: PLC0415

    grid = Grid(("target", "status", "note"), title="dry run")
    grid.add_row("sources", "ok", "from the cache", styles={1: "green"})
    grid.add_row("a-much-longer-target", "stale", "a [bold]note[/]\nof two lines")
    out = io.StringIO()
    grid.print(Console(file=out, width=20))  # not a terminal: no rich layout, no folding
    assert out.getvalue() == (
        "dry run\n"
        "| target               | status | note                         |\n"
        "|----------------------|--------|------------------------------|\n"
        "| sources              | ok     | from the cache               |\n"
        "| a-much-longer-target | stale  | a [bold]note[/] of two lines |\n")


def test_on_a_terminal_a_table_is_drawn_by_rich_with_its_styles(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from fodhash.ui.grid import Grid  # noqa: PLC0415

    monkeypatch.delenv("NO_COLOR", raising=False)

    grid = Grid(("target", "status"))
    grid.add_row("sources", "[ok]", styles={1: "green"})
    out = io.StringIO()
    grid.print(Console(file=out, force_terminal=True, width=80, color_system="standard"))
    assert out.getvalue().startswith("┏") and "│ sources │" in out.getvalue()
    assert "\x1b[32m[ok]" in out.getvalue()  # styled, and a cell is never read as markup


@pytest.mark.nix
def test_a_check_to_a_pipe_prints_every_site_as_one_plain_row(example: Path) -> None:
    from helpers import fodhash  # noqa: PLC0415

    assert fodhash("update", "sources", cwd=example).returncode == 0
    result = fodhash("check", "sources", cwd=example)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| sources ")]
    assert len(rows) == 2, result.stdout
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] in ("authentik.hash", "client-go.hash")
        assert cells[2].startswith("sources.nix:") and cells[3] == "ok"
        assert cells[4].startswith("sha256-")
    # The progress lines on stderr: the cache confirmed both, and one line says so.
    oks = [line.split()[:4] for line in result.stderr.splitlines() if line.split()[:1] == ["ok"]]
    assert oks == [["ok", "2", "site(s)", "from"]], result.stderr
