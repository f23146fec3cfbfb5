"""Where Nix registers a FOD's output: the path computed in Python agrees with Nix's own
(`nix-store --print-fixed-path`), for each mode and algorithm."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fodhash.hashes.encoding import Algo, Encoding, Hash
from fodhash.nix import outputs


@pytest.mark.nix
@pytest.mark.parametrize(("algo", "recursive"), [
    (Algo.SHA256, True), (Algo.SHA256, False), (Algo.SHA512, True), (Algo.SHA1, False)])
def test_fixed_path_is_nix_s(algo: Algo, recursive: bool) -> None:
    got = Hash(algo, bytes(range(3, 3 + algo.size)))
    args = ["--recursive"] * recursive + [str(algo), got.encode(Encoding.NIX32), "npm-deps"]
    nix = subprocess.run(["nix-store", "--print-fixed-path", *args], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert outputs.fixed_path(got, "npm-deps", recursive=recursive) == nix


def test_holders_name_files_by_contents_names_and_link_targets(tmp_path: Path) -> None:
    ref = "/nix/store/" + "a" * 32 + "-python3-3.12"
    root = tmp_path / "out"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_text(f"#!{ref}/bin/python\n")
    (root / ("a" * 32 + "-python3-3.12")).write_text("named after it")
    (root / "link").symlink_to(ref)
    (root / "README").write_text("nothing")
    found = outputs.holders(str(root), [ref])
    assert found == {ref: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-python3-3.12", "bin/tool", "link"]}
