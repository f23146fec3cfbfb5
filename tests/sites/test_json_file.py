"""Hash sites in JSON files that Nix reads (fodhash/sites/json_file.py, target.py;
fixtures/shapes/json-hashes.nix with hashes.json and sources.json): the locator, the
references, the config, and end to end with the real Nix (update, check, list)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import FIXTURES, assert_fods_build_and_check, fodhash, fods_of, snapshot

from fodhash.config import load
from fodhash.errors import UsageError
from fodhash.files.patch import apply_edits
from fodhash.hashes.encoding import Algo
from fodhash.sites.json_file import json_platform_slot, locate_json
from fodhash.sites.site import Site
from fodhash.sites.target import references

SHAPES = FIXTURES / "shapes"
EXPECTED = json.loads((SHAPES / "expected.json").read_text())
TRUE_X86 = EXPECTED["hashes.json"]["x86_64-linux"]
TRUE_CLI = EXPECTED["sources.json"]["cli.hash"]
SRI = "sha256-SaD+NX9/ARbH79Ega7CfpRJaN+3KJHYQy74mssNFTks="
NIX32 = "10y8c2d2azjhzavl8vy93mp1pi54lphp6lzxsgg8amliwl1ava4q"


def sites(text: str, name: str = "x.json") -> dict[str, Site]:
    return {s.attrpath: s for s in locate_json(Path(name), text.encode())}


# ---- the locator ----------------------------------------------------------------------------


def test_a_system_keyed_map_at_the_top_level() -> None:
    data = (SHAPES / "hashes.json").read_bytes()
    found = {s.attrpath: s for s in locate_json(SHAPES / "hashes.json", data)}
    assert list(found) == ["x86_64-linux", "i686-linux"]  # file order, as written
    for system, site in found.items():
        assert (site.platform, site.binding, site.encoding, site.algo) == (
            system, "", "sri", Algo.SHA256)
        assert data[site.start:site.end].decode() == site.text  # inside the quotes
        assert data[site.start - 1:site.start] == data[site.end:site.end + 1] == b'"'
        assert data.decode().splitlines()[site.line - 1].strip().startswith(f'"{system}"')


def test_hash_keys_of_a_sources_file() -> None:
    data = (SHAPES / "sources.json").read_bytes()
    found = {s.attrpath: s for s in locate_json(SHAPES / "sources.json", data)}
    assert set(found) == {"docs.sha256", "cli.hash"}  # not url, not version
    docs, cli = found["docs.sha256"], found["cli.hash"]
    assert (docs.platform, docs.encoding, docs.algo, docs.text) == (None, "nix32", Algo.SHA256,
                                                                    NIX32)
    assert (cli.binding, cli.encoding, cli.line) == ("cli.hash", "sri", 9)
    assert str(cli) == "sources.json:cli.hash"


def test_a_patch_changes_the_literal_and_no_other_byte() -> None:
    data = (SHAPES / "sources.json").read_bytes()
    cli = sites(data.decode())["cli.hash"]
    patched = apply_edits(data, {(cli.start, cli.end): cli.quote(TRUE_CLI)})
    assert patched[:cli.start] == data[:cli.start]
    assert patched[cli.start + len(TRUE_CLI):] == data[cli.end:]
    assert json.loads(patched)["cli"]["hash"] == TRUE_CLI
    assert list(json.loads(patched)) == ["docs", "cli"]  # the key order is the file's


def test_placeholders_nesting_arrays_and_algorithms() -> None:
    found = sites(json.dumps({
        "foo": {"hash": "", "url": "u"},
        "bar": {"outputHash": "", "outputHashAlgo": "sha512"},
        "list": [{"name": "a", "sha512": ""}, {"name": "b", "sha256": NIX32}],
        "prebuilt": {"outputHash": {"x86_64-linux": SRI, "aarch64-darwin": ""}},
        "bins": {"x86_64-linux": SRI, "aarch64-linux": ""},
    }, indent=2))
    assert {p: (s.text, s.algo, s.platform) for p, s in found.items()} == {
        "foo.hash": ('""', Algo.SHA256, None),
        "bar.outputHash": ('""', Algo.SHA512, None),
        "list[0].sha512": ('""', Algo.SHA512, None),
        "list[1].sha256": (NIX32, Algo.SHA256, None),
        "prebuilt.outputHash.x86_64-linux": (SRI, Algo.SHA256, "x86_64-linux"),
        "prebuilt.outputHash.aarch64-darwin": ('""', Algo.SHA256, "aarch64-darwin"),
        "bins.x86_64-linux": (SRI, Algo.SHA256, "x86_64-linux"),
        "bins.aarch64-linux": ('""', Algo.SHA256, "aarch64-linux"),  # beside a real hash
    }
    assert found["prebuilt.outputHash.x86_64-linux"].binding == "prebuilt.outputHash"
    placeholder = found["foo.hash"]
    assert placeholder.is_placeholder and placeholder.quote(SRI) == f'"{SRI}"'


def test_what_is_not_a_site() -> None:
    found = sites(json.dumps({
        "version": "1.2.3",
        "left-pad": SRI,  # a package name that looks like a system, not a hash key
        "x86_64-linux": "not a hash",
        "aarch64-linux": "",  # no hash beside it: nothing says it is one
        "escaped": {"hash": SRI.replace("+", "\\u002b")},
        "number": {"sha256": 5},
        "fakeHash": SRI,
        "locked": {"narHash": SRI, "rev": "abc"},
    }).replace("\\\\u002b", "\\u002b"))
    assert found == {}


FLAKE_LOCK = {"nodes": {"nixpkgs": {"locked": {
    "lastModified": 1700000000, "narHash": SRI, "owner": "NixOS", "repo": "nixpkgs",
    "rev": "0" * 40, "type": "github"}, "original": {"id": "nixpkgs", "type": "indirect"}},
    "root": {"inputs": {"nixpkgs": "nixpkgs"}}}, "root": "root", "version": 7}


def test_flake_lock_is_never_a_site() -> None:
    """flake-compat reads flake.lock with fromJSON: not a file of sites, and narHash (Nix's
    own record of an input) is no site in any JSON file."""
    assert sites(json.dumps(FLAKE_LOCK, indent=2), "hashes.json") == {}
    nix = b'{ lock = builtins.fromJSON (builtins.readFile ./flake.lock); }'
    assert references(FIXTURES / "example" / "default.nix", nix) == []


@pytest.mark.parametrize(("text", "where"), [
    # A trailing comma: Python 3.11 points at the brace after it, 3.13 at the comma itself.
    ('{\n  "hash": "sha256-x",\n}\n', r"x\.json:(3:1|2:21): not valid JSON"),
    ('{\n  // a comment\n  "hash": ""\n}\n', r"x\.json:2:3: not valid JSON"),
    ('{"a": NaN}', r"x\.json: not valid JSON: NaN"),
    ('', r"x\.json:1:1: not valid JSON"),
])
def test_invalid_json_is_refused_with_its_line_and_column(text: str, where: str) -> None:
    with pytest.raises(UsageError) as error:
        locate_json(Path("x.json"), text.encode())
    assert re.match(where, str(error.value)), str(error.value)
    assert "fix the file" in str(error.value)


# ---- which files a Nix file reads -----------------------------------------------------------


def test_references_are_literal_paths_relative_to_the_nix_file() -> None:
    source = b"""{ lib, pkgs, system, name }:
    with builtins;
    {
      a = (lib.importJSON ./hashes.json).${system};
      b = builtins.fromJSON (builtins.readFile ../pins/sources.json);
      c = fromJSON (readFile ./plain.json);
      d = pkgs.lib.importJSON (./sub/deep.json);
      e = lib.importJSON ./${name}.json;     # not a literal path
      f = lib.importJSON (./. + "/x.json");  # neither
      g = builtins.fromJSON (builtins.readFile ./data.txt);  # not a .json file
      h = lib.importJSON ./hashes.json;      # once
    }
    """
    found = references(Path("/repo/pkgs/tool.nix"), source)
    assert found == [Path("/repo/pkgs/hashes.json"), Path("/repo/pins/sources.json"),
                     Path("/repo/pkgs/plain.json"), Path("/repo/pkgs/sub/deep.json")]


# ---- a missing platform entry -------------------------------------------------------------


def _insert(text: str, platform: str, value: str = SRI) -> str:
    data = text.encode()
    found = [s for s in locate_json(Path("x.json"), data) if s.platform]
    slot = json_platform_slot(data, found, platform)
    assert slot is not None and slot.is_missing and slot.platform == platform
    patched = apply_edits(data, {(slot.start, slot.end): slot.quote(value)}).decode()
    json.loads(patched)
    assert f'"{platform}"' in patched.splitlines()[slot.line - 1]
    return patched


def h(text: str) -> str:
    """`text` with each `$H` a hash."""
    return text.replace("$H", SRI)


def test_a_missing_entry_goes_after_the_last_of_unsorted_keys() -> None:
    text = h('{\n  "x86_64-linux": "$H",\n  "aarch64-darwin": "$H"\n}\n')
    assert _insert(text, "aarch64-linux", "NEW") == h(
        '{\n  "x86_64-linux": "$H",\n  "aarch64-darwin": "$H",\n  "aarch64-linux": "NEW"\n}\n')


def test_a_missing_entry_keeps_sorted_keys_sorted_and_the_colon_style() -> None:
    text = h('{\n    "aarch64-darwin" : "$H",\n    "x86_64-linux" : "$H"\n}')
    assert _insert(text, "i686-linux", "NEW") == h(
        '{\n    "aarch64-darwin" : "$H",\n    "i686-linux" : "NEW",\n    "x86_64-linux" : "$H"\n}')
    one_line = h('{"p": {"sha256": {"aarch64-darwin": "$H", "x86_64-linux": "$H"}}}')
    assert h('"aarch64-darwin": "$H", "i686-linux": "NEW", "x86_64-linux"') in _insert(
        one_line, "i686-linux", "NEW")
    assert _insert(h('{"x86_64-linux":"$H"}'), "aarch64-linux", "N") == h(
        '{"aarch64-linux":"N", "x86_64-linux":"$H"}')
    assert _insert(h('{"aarch64-linux":"$H"}'), "x86_64-linux", "N") == h(
        '{"aarch64-linux":"$H", "x86_64-linux":"N"}')


def test_two_new_entries_at_one_point_make_valid_json() -> None:
    """`fodhash apply` concatenates the texts of two platforms' insertions at one spot."""
    for text in (h('{\n  "x86_64-linux": "$H"\n}'), h('{\n  "z-linux": "$H"\n}')):
        data = text.encode()
        found = locate_json(Path("x.json"), data)
        first = json_platform_slot(data, found, "aarch64-linux")
        second = json_platform_slot(data, found, "i686-linux")
        assert first is not None and second is not None and first.start == second.start
        both = apply_edits(data, {(first.start, first.end): first.quote("A") + second.quote("B")})
        assert json.loads(both) == json.loads(data) | {"aarch64-linux": "A", "i686-linux": "B"}


# ---- fodhash.toml's `json` ----------------------------------------------------------------


def _config(root: Path, text: str) -> Path:
    (root / ".git").mkdir(exist_ok=True)
    (root / "fodhash.toml").write_text(text)
    return root / "fodhash.toml"


def test_json_lists_files_per_target_and_for_every_target(tmp_path: Path) -> None:
    config = load(_config(tmp_path, 'json = "pins.json"\n'
                                    '[targets.a]\nfile = "a.nix"\njson = ["sub/a.json"]\n'
                                    '[targets.b]\nfile = "b.nix"\n'))
    assert config.targets["a"].json == (tmp_path / "pins.json", tmp_path / "sub" / "a.json")
    assert config.targets["b"].json == (tmp_path / "pins.json",)


@pytest.mark.parametrize(("text", "message"), [
    ('[targets.a]\nfile = "a.nix"\njson = ["flake.lock"]\n', "is a flake's lock file"),
    ('[targets.a]\nfile = "a.nix"\njson = ["hashes.toml"]\n', "'hashes.toml' is not a .json file"),
    ('[targets.a]\nfile = "a.nix"\njson = ["../out.json"]\n', "outside the repository"),
    ('[targets.a]\nfile = "a.nix"\njson = [1]\n',
     "`json` of target a must be a string or a list of strings"),
    ('json = ["../x.json"]\n[targets.a]\nfile = "a.nix"\n', "top-level `json`: '../x.json'"),
    ('[targets.a]\nfile = "h.json"\n', "name the Nix file that reads it in `build`"),
])
def test_json_in_the_config_is_validated(tmp_path: Path, text: str, message: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with pytest.raises(UsageError) as error:
        load(_config(repo, text))
    assert message in str(error.value)


# ---- end to end, with the real Nix ---------------------------------------------------------


def _check(root: Path, *args: str) -> tuple[int, dict[str, dict[str, str]], str]:
    """The exit code, each site's JSON row by file:site, and the text output (its white
    space made single spaces: the table wraps to the terminal's width)."""
    before = snapshot(root)
    result = fodhash("check", *args, cwd=root)
    assert snapshot(root) == before, "check changed a file"
    as_json = fodhash("check", *args, "--json", cwd=root)
    assert as_json.returncode == result.returncode, as_json.stderr
    rows = {f'{s["file"]}:{s["site"]}': s for s in json.loads(as_json.stdout)["sites"]}
    return result.returncode, rows, " ".join((result.stdout + result.stderr).split())


@pytest.mark.nix
def test_update_check_and_list_a_json_shape(shapes: Path) -> None:
    before = snapshot(shapes)
    code, rows, out = _check(shapes, "json-hashes.nix")
    assert code == 1
    assert {k: r["status"] for k, r in rows.items()} == {
        "hashes.json:x86_64-linux": "stale", "sources.json:cli.hash": "stale",
        "sources.json:docs.sha256": "ok",
        "hashes.json:i686-linux": "unverified"}  # not evaluated here, nothing cached
    assert rows["sources.json:cli.hash"]["truth"] == TRUE_CLI
    assert rows["hashes.json:x86_64-linux"]["truth"] == TRUE_X86
    assert "sources.json:9: cli.hash is stale" in out
    matrix = json.loads(fodhash("check", "json-hashes.nix", "--json", cwd=shapes).stdout)["matrix"]
    # A file that is one system map is one row, named as such (its binding is empty).
    assert set(matrix) == {"hashes.json:(top level)", "sources.json:cli.hash",
                           "sources.json:docs.sha256"}
    listed = fodhash("list", "json-hashes.nix", "--json", cwd=shapes)
    assert listed.returncode == 0, listed.stderr
    entries = {s["site"]: s for s in json.loads(listed.stdout)["targets"][0]["sites"]}
    assert set(entries) == {"x86_64-linux", "i686-linux", "docs.sha256", "cli.hash"}
    assert (entries["x86_64-linux"]["file"], entries["x86_64-linux"]["line"],
            entries["x86_64-linux"]["platform"]) == ("hashes.json", 2, "x86_64-linux")
    assert entries["x86_64-linux"]["cache"] == "differs"  # check filled the cache
    assert entries["x86_64-linux"]["cached"] == TRUE_X86
    assert entries["docs.sha256"]["cache"] == "equal"

    result = fodhash("update", "json-hashes.nix", cwd=shapes)
    assert result.returncode == 0, result.stderr
    after = snapshot(shapes)
    changed = {n for n in after if after[n] != before[n]}
    assert changed == {"hashes.json", "sources.json"}
    for name, attrpath, truth in (("hashes.json", "x86_64-linux", TRUE_X86),
                                  ("sources.json", "cli.hash", TRUE_CLI)):
        site = sites(before[name].decode(), name)[attrpath]
        assert after[name] == before[name][:site.start] + truth.encode() + before[name][site.end:]
    assert_fods_build_and_check(fods_of(shapes / "json-hashes.nix"))

    code, rows, _ = _check(shapes, "json-hashes.nix")
    assert code == 0
    assert {k: r["status"] for k, r in rows.items() if r["status"] != "ok"} == {
        "hashes.json:i686-linux": "unverified"}
    assert len(rows) == 4
    table = fodhash("list", "json-hashes.nix", cwd=shapes)
    assert "hashes.json:2" in table.stdout and "sources.json:9" in table.stdout
    assert "x86_64-linux" in table.stdout


@pytest.mark.nix
def test_a_missing_platform_entry_is_added_in_the_neighbours_style(shapes: Path) -> None:
    hashes = shapes / "hashes.json"
    original = hashes.read_text()
    i686 = json.loads(original)["i686-linux"]
    hashes.write_text(f'{{\n  "i686-linux": "{i686}"\n}}\n')
    code, rows, out = _check(shapes, "json-hashes.nix")
    assert code == 1 and rows["hashes.json:x86_64-linux"]["status"] == "missing"
    assert "the top-level object has no entry for x86_64-linux" in out
    result = fodhash("update", "json-hashes.nix", cwd=shapes)
    assert result.returncode == 0, result.stderr
    assert hashes.read_text() == f'{{\n  "i686-linux": "{i686}",\n  "x86_64-linux": "{TRUE_X86}"\n}}\n'
    assert _check(shapes, "json-hashes.nix")[0] == 0


@pytest.mark.nix
def test_a_target_whose_file_is_the_json_file(shapes: Path) -> None:
    (shapes / "fodhash.toml").write_text('[targets.h]\nfile = "hashes.json"\n'
                                         'build = "json-hashes.nix"\nattr = "prebuilt"\n')
    code, rows, _ = _check(shapes, "h")
    assert code == 1
    assert {k: r["status"] for k, r in rows.items()} == {"hashes.json:x86_64-linux": "stale",
                                                         "hashes.json:i686-linux": "unverified"}


PINNED = """{ system ? builtins.currentSystem
, pkgs ? import ../example/nix/stubs.nix { inherit system; }
}:
let
  file = "pins";
  pins = builtins.fromJSON (builtins.readFile (./. + "/${file}.json"));
in
pkgs.fetchurl { inherit (pins.tool) url hash; }
"""


@pytest.mark.nix
def test_a_json_file_the_config_lists(shapes: Path) -> None:
    """A path fodhash cannot read off the Nix file: fodhash.toml names the JSON file."""
    (shapes / "pinned.nix").write_text(PINNED)
    (shapes / "pins.json").write_text(json.dumps(
        {"tool": {"url": "https://example.org/tool.tgz", "hash": ""}}, indent=2) + "\n")
    (shapes / "fodhash.toml").write_text('[targets.pinned]\nfile = "pinned.nix"\n')
    refused = fodhash("update", "pinned", cwd=shapes)
    assert refused.returncode == 2 and "no hash site found" in refused.stderr
    (shapes / "fodhash.toml").write_text('[targets.pinned]\nfile = "pinned.nix"\n'
                                         'json = ["pins.json"]\n')
    before = (shapes / "pins.json").read_bytes()
    result = fodhash("update", "pinned", cwd=shapes)
    assert result.returncode == 0, result.stderr
    truth = json.loads((shapes / "pins.json").read_bytes())["tool"]["hash"]
    assert truth.startswith("sha256-")
    assert (shapes / "pins.json").read_bytes() == before.replace(b'""', f'"{truth}"'.encode())
    assert_fods_build_and_check(fods_of(shapes / "pinned.nix"))
    assert _check(shapes, "pinned")[0] == 0
