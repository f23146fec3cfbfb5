"""Nix is the judge of syntax: today's styles are read, Nix's verdict decides the rest."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
from pathlib import Path

import pytest
from helpers import FIXTURES

from fodhash.errors import UsageError
from fodhash.sites.nix_file import locate, locate_in_bytes
from fodhash.sites.syntax import parse, syntax_error


def nix_parses(file: Path, env: dict[str, str] | None = None) -> bool:
    run = subprocess.run(["nix-instantiate", "--parse", str(file)], capture_output=True,
                         check=False, env=env)
    return run.returncode == 0


NIXFMT = b"""{
  lib,
  stdenv,
  fetchFromGitHub,
}:

stdenv.mkDerivation (finalAttrs: {
  pname = "hello";
  version = "2.12";
  src = fetchFromGitHub {
    owner = "x";
    repo = "hello";
    rev = "v${finalAttrs.version}";
    hash = "sha256-ZKFWE7lwkH3ReZDdCfe4CnByD54ndB6t6NMC21GC1lI=";
  };
  passthru.tests = {
    inherit (finalAttrs.finalPackage) src;
  };
  meta = {
    maintainers = with lib.maintainers; [
      a
      b
    ];
  };
})
"""


@pytest.mark.parametrize("formals", [
    pytest.param(b"{ lib, stdenv, fetchFromGitHub, }:", id="one-line"),
    pytest.param(b"{\n  lib,\n  stdenv,\n  fetchFromGitHub,\n}:", id="one-per-line"),
    pytest.param(b"args@{\n  lib,\n  stdenv,\n  fetchFromGitHub,\n}:", id="at-pattern"),
    pytest.param(b"{\n  lib,\n  stdenv ? null,\n  ...\n}@args:", id="ellipsis"),
])
def test_trailing_commas_in_formals_are_read(formals: bytes) -> None:
    source = NIXFMT.replace(NIXFMT.split(b"\n\n", 1)[0], formals)
    sites = locate_in_bytes(Path("hello.nix"), source)
    assert [s.attrpath for s in sites] == ["src.hash"]
    assert source[sites[0].start:sites[0].end] == b"sha256-ZKFWE7lwkH3ReZDdCfe4CnByD54ndB6t6NMC21GC1lI="


def test_a_generated_file_of_a_thousand_sites() -> None:
    """Item 13 of the shapes: node2nix-style files of 250 KB with 1,000 bare base64 sites."""
    entries = []
    for i in range(1000):
        digest = base64.b64encode(hashlib.sha512(str(i).encode()).digest()).decode()
        entries.append(f'  "pkg-{i}" = fetchurl {{\n    url = "https://r.example/pkg-{i}.tgz";\n'
                       f'    sha512 = "{digest}";\n  }};\n')
    source = ("{\n  fetchurl,\n}:\n\n{\n" + "".join(entries) + "}\n").encode()
    assert len(source) > 150_000
    sites = locate_in_bytes(Path("node-packages.nix"), source)
    assert len(sites) == 1000
    assert sites[999].attrpath == "pkg-999.sha512" and sites[999].encoding == "base64"


def test_nixs_message_for_recorded_syntax_errors() -> None:
    """The message Nix 2.4+ prints for a parse error, from stdin, as fodhash reports it."""
    stderr = ("error: syntax error, unexpected '}', expecting ';'\n\n"
              "       at \u00abstdin\u00bb:3:7:\n\n"
              "            2|   a = 1;\n            3|   b = }\n             |       ^\n")
    error = syntax_error(Path("pkgs/x.nix"), stderr)
    assert str(error).startswith("pkgs/x.nix:3:7: Nix syntax error: unexpected '}', expecting ';'")
    assert "3|   b = }" in str(error) and "\u00abstdin\u00bb" not in str(error)


@pytest.mark.nix
def test_a_real_syntax_error_is_reported_in_nixs_words(tmp_path: Path) -> None:
    file = tmp_path / "x.nix"
    file.write_bytes(b"{\n  a = 1;\n  b = ;\n}\n")
    with pytest.raises(UsageError) as caught:
        locate(file)
    message = str(caught.value)
    assert message.startswith(f"{file}:3:7: Nix syntax error: unexpected ';'"), message
    assert "3|   b = ;" in message


def test_without_nix_the_grammar_still_names_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UsageError, match=r"x.nix:3:\d+: Nix syntax error .*Nix is not on PATH"):
        locate_in_bytes(Path("x.nix"), b"{\n  a = 1;\n  b = ;\n}\n")


PIPES = b"""{
  lib,
  fetchurl,
}:
let
  names = [ "a" "b" ] |> map (x: x + "-1");
in
{
  src = fetchurl {
    url = "https://example.org/a.tgz";
    hash = "sha256-ZKFWE7lwkH3ReZDdCfe4CnByD54ndB6t6NMC21GC1lI=";
  };
  inherit names;
}
"""


@pytest.mark.nix
def test_what_nix_accepts_and_the_grammar_cannot_read_is_not_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The pipe operator `|>` (Nix 2.24+, experimental) is beyond the grammar. Where Nix
    accepts it, the file's other sites are found and the unreadable line is named; where
    Nix does not know it (2.8), Nix's own syntax error is reported."""
    file = tmp_path / "pipes.nix"
    file.write_bytes(PIPES)
    monkeypatch.setenv("NIX_CONFIG", os.environ.get("NIX_CONFIG", "") +
                       "\nextra-experimental-features = pipe-operators")
    assert parse(PIPES).root_node.has_error
    if nix_parses(file, dict(os.environ)):
        with caplog.at_level(logging.WARNING):
            sites = locate(file)
        assert [s.attrpath for s in sites] == ["src.hash"]
        assert "could not read line(s) 6" in caplog.text
    else:
        with pytest.raises(UsageError, match=rf"{file}:6:23: Nix syntax error: unexpected"):
            locate(file)


def fixture_files() -> list[Path]:
    return sorted(FIXTURES.rglob("*.nix"))


@pytest.mark.nix
@pytest.mark.parametrize("file", fixture_files(), ids=lambda f: str(f.relative_to(FIXTURES)))
def test_every_fixture_nix_accepts_is_located_without_error(file: Path) -> None:
    if not nix_parses(file):
        with pytest.raises(UsageError, match="Nix syntax error"):
            locate(file)
        return
    assert not parse(file.read_bytes()).root_node.has_error, "the grammar cannot read it"
    locate(file)  # raises on a syntax error
