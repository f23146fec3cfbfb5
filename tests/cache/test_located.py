"""What was read of a file before (fodhash.cache.located): the sites, imports and JSON
references a warm run takes instead of parsing every file again. What it gives back must be
exactly what locating gives, and only for the same bytes read by the same code."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, fod_nix, modules_loaded_by

from fodhash.cache import located
from fodhash.cache.located import Located
from fodhash.errors import UsageError
from fodhash.hashes.encoding import Algo, Hash
from fodhash.sites.site import Site
from fodhash.sites.target import imports, locate_any, references

# Every Nix and JSON file of the fixtures whose sites can be located: placeholders, system-
# keyed attrsets, branches, nix32/base16/prefixed forms, niv's and npins' JSON.
FILES = sorted(p for p in FIXTURES.rglob("*") if p.suffix in (".nix", ".json"))


def _fields(sites: list[Site]) -> list[tuple[object, ...]]:
    return [dataclasses.astuple(site) for site in sites]


def _locatable(file: Path) -> list[Site] | None:
    try:
        return locate_any(file, file.read_bytes())
    except UsageError:
        return None  # a file no target reads as sites (not JSON of hashes, say)


@pytest.mark.parametrize("file", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_the_sites_read_back_are_the_sites_located(file: Path) -> None:
    direct = _locatable(file)
    if direct is None:
        pytest.skip("no sites to locate in this file")
    source = file.read_bytes()
    first = Located()
    assert _fields(first.sites(file, source, locate_any)) == _fields(direct)
    first.keep()

    def never(path: Path, data: bytes) -> list[Site]:
        raise AssertionError(f"{path} located again")

    assert _fields(Located().sites(file, source, never)) == _fields(direct)


def test_other_bytes_are_located_again(tmp_path: Path) -> None:
    file = tmp_path / "default.nix"
    file.write_text('{ fetchurl }: fetchurl { url = "u"; hash = "sha256-'
                    'ZALx1bsx+dCUMFQyJuh4stSjgt4WoxT3UuHHh3NamCc="; }\n')
    memo = Located()
    memo.sites(file, file.read_bytes(), locate_any)
    memo.keep()
    file.write_text(file.read_text().replace('url = "u"', 'url = "v"'))
    calls: list[Path] = []

    def counted(path: Path, data: bytes) -> list[Site]:
        calls.append(path)
        return locate_any(path, data)

    sites = Located().sites(file, file.read_bytes(), counted)
    assert calls == [file]
    assert [s.start for s in sites] == [s.start for s in locate_any(file, file.read_bytes())]


def test_a_change_to_the_code_that_locates_makes_every_entry_absent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = FIXTURES / "shapes" / "encodings.nix"
    memo = Located()
    memo.sites(file, file.read_bytes(), locate_any)
    memo.keep()
    monkeypatch.setattr(located, "_code", lambda: "another fodhash")
    calls: list[Path] = []

    def counted(path: Path, data: bytes) -> list[Site]:
        calls.append(path)
        return locate_any(path, data)

    Located().sites(file, file.read_bytes(), counted)
    assert calls == [file]


def test_without_the_modules_to_tell_one_fodhash_from_another_nothing_kept_answers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed without its sources (only bytecode), fodhash cannot tell an upgrade from the
    code that kept an entry: every run is then its own code."""
    (tmp_path / "cache").mkdir()
    with monkeypatch.context() as patched:
        patched.setattr(located, "__file__", str(tmp_path / "cache" / "located.py"))
        assert located._code.__wrapped__() != located._code.__wrapped__()
    assert located._code.__wrapped__() == located._code()  # this checkout: one identity


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", b'{"version": 1}', b""])
def test_a_damaged_entry_counts_as_absent(damage: bytes) -> None:
    file = FIXTURES / "shapes" / "encodings.nix"
    memo = Located()
    memo.sites(file, file.read_bytes(), locate_any)
    memo.keep()
    [kept] = located.folder().glob("*.json")
    kept.write_bytes(damage)
    assert _fields(Located().sites(file, file.read_bytes(), locate_any)) == \
        _fields(locate_any(file, file.read_bytes()))


def test_damaged_sites_inside_a_sound_entry_are_located_again() -> None:
    file = FIXTURES / "shapes" / "encodings.nix"
    memo = Located()
    memo.sites(file, file.read_bytes(), locate_any)
    memo.keep()
    [kept] = located.folder().glob("*.json")
    entry = json.loads(kept.read_bytes())
    entry["sites"][0][9] = ["sha256", "00", "sri", False]  # a digest of the wrong length
    kept.write_text(json.dumps(entry))
    assert _fields(Located().sites(file, file.read_bytes(), locate_any)) == \
        _fields(locate_any(file, file.read_bytes()))


@pytest.mark.nix
def test_a_file_the_grammar_cannot_read_whole_is_never_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Its warning names the unreadable lines on every run, and Nix judges it every time."""
    file = tmp_path / "broken.nix"
    file.write_text('{ fetchurl }: {\n  src = fetchurl { url = "u"; hash = "sha256-'
                    'ZALx1bsx+dCUMFQyJuh4stSjgt4WoxT3UuHHh3NamCc="; };\n  x = ;\n}\n')
    memo = Located()
    with pytest.raises(UsageError):  # Nix refuses it: nothing to keep either
        memo.sites(file, file.read_bytes(), locate_any)
    assert memo.whole(file, file.read_bytes()) is False
    memo.keep()
    entries = [json.loads(p.read_bytes()) for p in located.folder().glob("*.json")]
    assert [e["whole"] for e in entries] == [False]
    assert all("sites" not in e for e in entries)


def test_imports_and_references_read_back_and_folders_resolve_at_use(tmp_path: Path) -> None:
    (tmp_path / "npins").mkdir()
    (tmp_path / "npins" / "default.nix").write_text("{ }\n")
    (tmp_path / "npins" / "sources.json").write_text("{}\n")
    file = tmp_path / "default.nix"
    file.write_text("let pins = import ./npins; s = import ./sources.nix;\n"
                    "  j = builtins.fromJSON (builtins.readFile ./npins/sources.json);\nin pins\n")
    source = file.read_bytes()
    want = imports(file, source), references(file, source)
    memo = Located()
    assert (imports(file, source, memo),
            memo.paths("references", file, source, references)) == want
    memo.keep()
    assert want == ([tmp_path / "npins" / "default.nix", tmp_path / "sources.nix"],
                    [tmp_path / "npins" / "sources.json"])
    again = Located()
    assert (imports(file, source, again),
            again.paths("references", file, source, lambda *_: [])) == want
    # The folder becomes a file: what `import ./npins` names is decided at use, not kept.
    (tmp_path / "npins" / "default.nix").unlink()
    (tmp_path / "npins" / "sources.json").unlink()
    (tmp_path / "npins").rmdir()
    (tmp_path / "npins").write_text("{ }\n")
    assert imports(file, source, Located()) == imports(file, source)


def test_a_cache_folder_that_cannot_be_written_keeps_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be\n")
    monkeypatch.setenv("FODHASH_CACHE_DIR", str(blocked))
    file = FIXTURES / "shapes" / "encodings.nix"
    memo = Located()
    with caplog.at_level(logging.DEBUG, logger="fodhash.cache.located"):
        sites = memo.sites(file, file.read_bytes(), locate_any)
        memo.keep()
    assert _fields(sites) == _fields(locate_any(file, file.read_bytes()))
    assert "not kept" in caplog.text


def test_only_the_most_recently_used_are_kept(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setattr(located, "KEEP", 2)

    def kept() -> set[str]:
        return {Path(json.loads(p.read_bytes())["file"]).name
                for p in located.folder().glob("*.json")}

    def read(i: int) -> None:
        file = tmp_path / f"f{i}.nix"
        if not file.exists():
            file.write_text(f'{{ hash = "sha256-ZALx1bsx+dCUMFQyJuh4stSjgt4WoxT3UuHHh3NamCc="; '
                            f'i = {i}; }}\n')
        memo = Located()
        memo.sites(file, file.read_bytes(), locate_any)
        memo.keep()
        os.utime(located._file(file), (1000 + i, 1000 + i))

    for i in range(4):
        read(i)
    assert kept() == {"f2.nix", "f3.nix"}
    again = tmp_path / "f2.nix"  # answered by what was kept: used again, now
    Located().sites(again, again.read_bytes(), locate_any)
    read(4)
    assert kept() == {"f2.nix", "f4.nix"}


@pytest.mark.nix
def test_a_warm_check_parses_no_file(tmp_path: Path) -> None:
    """A check where nothing changed since the last reads every file's sites from what that
    one kept: tree-sitter is never loaded."""
    (tmp_path / "fodhash.toml").write_text('[targets.deps]\nfile = "deps.nix"\n')

    def true(name: str) -> str:
        return Hash(Algo.SHA256, hashlib.sha256(f"{name}\n".encode()).digest()).sri

    fods = "".join(f"  {name} = " + fod_nix(name, true(name), f"echo {name} > $out").strip()
                   + ";\n" for name in ("one", "two"))
    (tmp_path / "deps.nix").write_text("{\n" + fods + "}\n")
    loaded = modules_loaded_by("fodhash.entry")
    runs = [subprocess.run([sys.executable, "-c", loaded, "check", "--all"], cwd=tmp_path,
                           capture_output=True, text=True, check=False) for _ in range(2)]
    # (The script catches SystemExit: the verdicts are read from what it printed.)
    assert ["2 ok; " in r.stderr for r in runs] == [True, True], runs[-1].stderr
    assert "tree_sitter" in runs[0].stderr.split()
    modules = runs[1].stderr.split()
    assert "ok 2 site(s) from the cache" in runs[1].stderr
    assert "fodhash.cache.located" in modules
    assert not [m for m in modules if m.startswith("tree_sitter")]
