"""`cargoLock.outputHashes` end to end with the real Nix: each entry is the hash of one git
dependency's FOD (fixtures/shapes/cargo-git-deps.nix, the stand-in importCargoLock of
fixtures/example/nix/stubs.nix)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES, assert_fods_build_and_check, fodhash, fods_of, snapshot

from fodhash.sites.nix_file import locate_in_bytes

pytestmark = pytest.mark.nix

NAME = "cargo-git-deps.nix"
FERRIS = 'cargoLock.outputHashes."ferris-core-0.1.0"'  # stale in the fixture
GLUE = 'cargoLock.outputHashes."wasm-glue-0.2.0"'  # true in the fixture
TRUE = json.loads((FIXTURES / "shapes" / "expected.json").read_text())[NAME]


def entry_line(text: str, key: str) -> str:
    return next(x for x in text.splitlines(keepends=True) if f'"{key}" =' in x)


def report(result: Any) -> dict[str, str]:
    return {s["site"]: s["status"] for s in json.loads(result.stdout)["sites"]}


def test_update_rewrites_only_the_stale_entry_and_each_git_dependency_builds(shapes: Path) -> None:
    file = shapes / NAME
    original = file.read_bytes()
    stale = {s.attrpath: s for s in locate_in_bytes(file, original)}[FERRIS]
    assert stale.text != TRUE[FERRIS]
    before = snapshot(shapes)

    result = fodhash("update", NAME, "--json", cwd=shapes)
    assert result.returncode == 0, result.stderr
    assert report(result) == {FERRIS: "updated", GLUE: "ok"}
    # Byte-identical outside the stale literal; no other file touched.
    assert file.read_bytes() == (original[:stale.start] + TRUE[FERRIS].encode()
                                 + original[stale.end:])
    after = snapshot(shapes)
    assert {k for k in before if before[k] != after[k]} == {NAME} and set(after) == set(before)

    # The two git dependencies are the file's FODs, and each builds from scratch to its hash.
    fods = fods_of(file)
    assert sorted(Path(f).name.split("-", 1)[1] for f in fods) == [
        "ferris-core-4f1e2d3.drv", "wasm-glue-9c0a1b2.drv"]
    assert_fods_build_and_check(fods)


def test_check_reports_the_stale_entry_then_ok(shapes: Path) -> None:
    before = snapshot(shapes)
    stale = fodhash("check", NAME, "--json", cwd=shapes)
    assert stale.returncode == 1, stale.stderr
    assert report(stale) == {FERRIS: "stale", GLUE: "ok"}
    assert snapshot(shapes) == before  # check writes nothing
    assert fodhash("check", NAME, cwd=shapes).stdout.count(TRUE[FERRIS]) >= 1  # names the truth

    assert fodhash("update", NAME, cwd=shapes).returncode == 0
    for args in ([], ["--no-cache"]):
        ok = fodhash("check", NAME, "--json", *args, cwd=shapes)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert report(ok) == {FERRIS: "ok", GLUE: "ok"}


def listed(shapes: Path) -> dict[str, dict[str, Any]]:
    result = fodhash("list", NAME, "--json", cwd=shapes)
    assert result.returncode == 0, result.stderr
    [target] = json.loads(result.stdout)["targets"]
    return {s["site"]: s for s in target["sites"]}


def test_list_shows_both_entries(shapes: Path) -> None:
    sites = listed(shapes)
    assert list(sites) == [FERRIS, GLUE]
    assert {s["kind"] for s in sites.values()} == {"cargo-git"}
    assert [(s["line"], s["encoding"]) for s in sites.values()] == [(21, "sri"), (22, "sri")]
    assert sites[GLUE]["literal"] == TRUE[GLUE] != sites[FERRIS]["literal"]

    assert fodhash("check", NAME, cwd=shapes).returncode == 1  # fills the cache
    sites = listed(shapes)
    assert (sites[FERRIS]["cache"], sites[FERRIS]["cached"]) == ("differs", TRUE[FERRIS])
    assert sites[GLUE]["cache"] == "equal"

    table = fodhash("list", NAME, cwd=shapes)
    assert FERRIS in table.stdout and GLUE in table.stdout
    assert "cargo git dependency (outputHashes)" in table.stdout


def test_a_site_selector_names_one_entry(shapes: Path) -> None:
    (shapes / "fodhash.toml").write_text(
        f"[targets.ferris]\nfile = {json.dumps(NAME)}\nsite = '{FERRIS}'\n"
        f"[targets.deps]\nfile = {json.dumps(NAME)}\nsite = 'cargoLock.outputHashes'\n")
    result = fodhash("check", "ferris", "--json", cwd=shapes)
    assert result.returncode == 1
    assert report(result) == {FERRIS: "stale"}
    result = fodhash("check", "deps", "--json", cwd=shapes)
    assert report(result) == {FERRIS: "stale", GLUE: "ok"}


def test_a_missing_entry_names_the_entry_to_add(shapes: Path) -> None:
    """importCargoLock throws while evaluating when a git dependency has no entry: nothing
    can be built, so nothing is resolved; the message names the entry (Nix's, and fodhash's
    hint to add it as a placeholder). With the placeholder added, update resolves it."""
    file = shapes / NAME
    text = file.read_text()
    file.write_text(text.replace(entry_line(text, "ferris-core-0.1.0"), ""))
    before = snapshot(shapes)

    for command in ("update", "check"):
        result = fodhash(command, NAME, cwd=shapes)
        assert result.returncode == 1, command
        out = result.stdout + result.stderr
        assert "No hash was found while vendoring the git dependency ferris-core-0.1.0" in out
        assert 'Add `"ferris-core-0.1.0" = lib.fakeHash;`' in out, out
        assert snapshot(shapes) == before

    file.write_text(text.replace(entry_line(text, "ferris-core-0.1.0"),
                                 '      "ferris-core-0.1.0" = lib.fakeHash;\n'))
    result = fodhash("update", NAME, "--json", cwd=shapes)
    assert result.returncode == 0, result.stderr
    assert report(result) == {FERRIS: "updated", GLUE: "ok"}
    assert file.read_text() == text.replace(
        entry_line(text, "ferris-core-0.1.0"), f'      "ferris-core-0.1.0" = "{TRUE[FERRIS]}";\n')
    assert_fods_build_and_check(fods_of(file))
