"""Reading .drv files (ATerm): recorded texts, and every derivation of the fixtures compared
with what the Nix under test prints as JSON (the old form, or format 4 of Nix 2.33+)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES

from fodhash.errors import NixError
from fodhash.hashes.encoding import Algo, Hash, parse_hash
from fodhash.nix.derivations import parse_drv, read_closure

FOD = (
    'Derive([("out","/nix/store/kgs3-source","r:sha256",'
    '"81ad2950f11dce11159aa8096295373af10d519d798812a815b220d45c65d7f7")],'
    '[("/nix/store/aa-dep.drv",["out"])],["/nix/store/d1pr-client-go"],"x86_64-linux","/bin/sh",'
    '["-c","printf \'%s\\\\n\' \\"$rev\\" > \\"$out/.git-rev\\"\\n\\ttab\\r"],'
    '[("name","source"),("out","/nix/store/kgs3-source"),("quote","a \\"b\\" \\\\c")])'
)


def test_a_fixed_output_derivation_is_read_whole() -> None:
    drv = parse_drv("/nix/store/00-source.drv", FOD)
    assert drv.output_hash == Hash(Algo.SHA256, bytes.fromhex(
        "81ad2950f11dce11159aa8096295373af10d519d798812a815b220d45c65d7f7"))
    assert drv.complete and drv.name == "source" and drv.system == "x86_64-linux"
    assert drv.input_drvs == ("/nix/store/aa-dep.drv",)
    assert drv.input_srcs == ("/nix/store/d1pr-client-go",)
    assert drv.output_paths == ("/nix/store/kgs3-source",)
    assert drv.args == ("-c", 'printf \'%s\\n\' "$rev" > "$out/.git-rev"\n\ttab\r')
    assert drv.env["quote"] == 'a "b" \\c'


def test_other_derivations_are_read_up_to_their_inputs() -> None:
    text = ('Derive([("out","/nix/store/11-app","","")],[("/nix/store/22-a.drv",["out"]),'
            '("/nix/store/33-b.drv",["dev","out"])],[],"x86_64-linux","/bin/sh",[],'
            '[("name","app"),("broken","\\"unterminated')  # never read: it is not needed
    drv = parse_drv("/nix/store/44-app.drv", text)
    assert drv.output_hash is None and not drv.complete
    assert drv.input_drvs == ("/nix/store/22-a.drv", "/nix/store/33-b.drv")
    assert drv.name == "app"


@pytest.mark.parametrize(("algo", "digest", "expected"), [
    pytest.param("sha256", "00" * 32, Hash(Algo.SHA256, bytes(32)), id="flat"),
    pytest.param("r:sha512", "11" * 64, Hash(Algo.SHA512, b"\x11" * 64), id="recursive-sha512"),
    pytest.param("text:sha256", "22" * 32, Hash(Algo.SHA256, b"\x22" * 32), id="text"),
    pytest.param("r:sha256", "", None, id="floating-content-addressed"),
])
def test_output_hash_forms(algo: str, digest: str, expected: Hash | None) -> None:
    text = f'Derive([("out","/nix/store/1-x","{algo}","{digest}")],[],[],"s","b",[],[])'
    assert parse_drv("/nix/store/2-x.drv", text).output_hash == expected


def test_a_versioned_derivation_header() -> None:
    text = ('DrvWithVersion("xp-dyn-drv",[("out","/nix/store/1-x","r:sha256","' + "00" * 32
            + '")],[("/nix/store/3-y.drv",(["out"],[]))],[],"s","b",[],[("name","x")])')
    drv = parse_drv("/nix/store/2-x.drv", text)
    assert drv.output_hash is not None and drv.input_drvs == ("/nix/store/3-y.drv",)


@pytest.mark.parametrize("text", [
    pytest.param("", id="empty"),
    pytest.param('Derive([("out"', id="truncated"),
    pytest.param("{}", id="not-aterm"),
    pytest.param('Other([],[],[],"s","b",[],[])', id="not-a-derivation"),
])
def test_damaged_files_are_named(text: str) -> None:
    with pytest.raises(NixError, match=r"/nix/store/2-x\.drv"):
        parse_drv("/nix/store/2-x.drv", text)


def test_a_missing_file_is_named() -> None:
    with pytest.raises(NixError, match=r"cannot read the derivation /nix/store/0-gone\.drv"):
        read_closure(["/nix/store/0-gone.drv"])


# ---- against the Nix under test -------------------------------------------------------------

def _store_path(path: str) -> str:
    return path if path.startswith("/") else f"/nix/store/{path}"


def nix_json_view(roots: list[str]) -> dict[str, dict[str, Any]]:
    """What this Nix's `derivation show -r` says of each derivation, in one form for every
    JSON format (format 4: a wrapper, store paths without the store directory, SRI)."""
    base = ["nix", "--extra-experimental-features", "nix-command"]
    shown = subprocess.run([*base, "derivation", "show", "-r", *roots], capture_output=True,
                           text=True, check=False)
    if shown.returncode != 0:  # before Nix 2.15
        shown = subprocess.run([*base, "show-derivation", "-r", *roots], capture_output=True,
                               text=True, check=True)
    data = json.loads(shown.stdout)
    derivations = data["derivations"] if data.get("version") == 4 else data
    view = {}
    for path, drv in derivations.items():
        out = drv["outputs"].get("out", {})
        if "hashAlgo" in out:  # the old form: base16 digest and hashAlgo
            algo = out["hashAlgo"].removeprefix("r:").removeprefix("text:")
            fixed = Hash(Algo(algo), bytes.fromhex(out["hash"])) if out.get("hash") else None
        else:
            fixed = parse_hash(out["hash"]).hash if out.get("hash") else None
        inputs = drv.get("inputs", {})
        view[_store_path(path)] = {
            "hash": fixed,
            "drvs": sorted(_store_path(p) for p in inputs.get("drvs", drv.get("inputDrvs", {}))),
            "srcs": sorted(_store_path(p) for p in inputs.get("srcs", drv.get("inputSrcs", []))),
            "system": drv["system"], "builder": drv["builder"], "args": drv["args"],
            "env": drv["env"],
        }
    return view


@pytest.mark.nix
def test_every_derivation_of_the_example_reads_as_nix_shows_it() -> None:
    example = FIXTURES / "example"
    tops = subprocess.run(["nix-instantiate", str(example / "test-build.nix")],
                          capture_output=True, text=True, check=True).stdout.split()
    ours = read_closure(tops)
    theirs = nix_json_view(tops)
    assert set(ours) == set(theirs)
    fods = [p for p, d in ours.items() if d.output_hash is not None]
    assert len(fods) >= 5
    for path, drv in ours.items():
        shown = theirs[path]
        assert drv.output_hash == shown["hash"], path
        assert list(drv.input_drvs) == shown["drvs"], path
        if drv.complete:
            assert list(drv.input_srcs) == shown["srcs"], path
            assert (drv.system, drv.builder, list(drv.args)) == (
                shown["system"], shown["builder"], shown["args"]), path
            assert dict(drv.env) == shown["env"], path


def test_a_closure_is_walked_through_the_files(tmp_path: Path) -> None:
    """A closure is walked through the files alone: no Nix process, any depth."""
    files = []
    for i in range(50):
        dep = f'[("{files[-1]}",["out"])]' if files else "[]"
        file = tmp_path / f"{i:02d}-link.drv"
        file.write_text(f'Derive([("out","/nix/store/{i}-link","","")],{dep},[],"s","b",[],[])')
        files.append(str(file))
    assert len(read_closure([files[-1]])) == 50
