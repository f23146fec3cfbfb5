"""The tree-sitter locator on every shape of hash site in fixtures/ (fixtures/shapes/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES

from fodhash.errors import UsageError
from fodhash.hashes import Algo
from fodhash.sites import Site, locate, locate_in_bytes, select


def by_path(file: Path) -> dict[str, Site]:
    return {s.attrpath: s for s in locate(file)}


def test_example_sites_have_attribute_paths_lines_and_platforms() -> None:
    sites = by_path(FIXTURES / "example" / "webui-deps.nix")
    assert set(sites) == {"outputHash.x86_64-linux", "outputHash.aarch64-darwin"}
    linux = sites["outputHash.x86_64-linux"]
    assert (linux.platform, linux.binding, linux.encoding) == ("x86_64-linux", "outputHash", "sri")
    text = (FIXTURES / "example" / "webui-deps.nix").read_bytes()
    assert text[linux.start:linux.end].decode() == linux.text
    assert text.decode().splitlines()[linux.line - 1].strip().startswith('"x86_64-linux"')

    authentik = by_path(FIXTURES / "example" / "authentik.nix")
    assert set(authentik) == {"src.hash", "ui.npmDepsHash", "server.vendorHash"}
    assert all(s.platform is None for s in authentik.values())


def test_placeholders_and_encodings() -> None:
    placeholders = by_path(FIXTURES / "shapes" / "placeholders.nix")
    assert {p: s.text for p, s in placeholders.items()} == {
        "lib-fakeHash.hash": "lib.fakeHash",
        "pkgs-lib-fakeHash.hash": "pkgs.lib.fakeHash",
        "empty-string.outputHash": '""',
        "lib-fakeSha256.sha256": "lib.fakeSha256",
    }
    assert all(s.is_placeholder and s.algo is Algo.SHA256 for s in placeholders.values())

    encodings = by_path(FIXTURES / "shapes" / "encodings.nix")
    assert {p: s.encoding for p, s in encodings.items()} == {
        "sri-sha256.hash": "sri",
        "sri-sha512.outputHash": "sri",
        "prefixed-nix32.hash": "sha256:nix32",
        "bare-nix32.sha256": "nix32",
        "bare-base16.sha256": "base16",
    }
    assert encodings["sri-sha512.outputHash"].algo is Algo.SHA512


def test_identical_text_gives_two_sites_with_their_own_spans() -> None:
    sites = locate(FIXTURES / "shapes" / "identical.nix")
    assert len(sites) == 2 and sites[0].text == sites[1].text
    assert sites[0].start != sites[1].start


def test_comments_odd_spacing_and_inherit() -> None:
    sites = by_path(FIXTURES / "shapes" / "odd-spacing.nix")
    assert set(sites) == {"src.hash", "tool.src.hash", "tool.vendorHash",
                          "bundle.outputHash.x86_64-linux", "bundle.outputHash.i686-linux"}
    # The hash-looking text inside the header comment is not a site.
    assert min(s.line for s in sites.values()) > 4


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        pytest.param('{ a = { fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }; }',
                     [], id="placeholder-definition-is-not-a-site"),
        pytest.param('{ hash = "sha256-${x}"; outputHashAlgo = "sha256"; }', [],
                     id="interpolated-string-is-not-a-site"),
        pytest.param('{ vendorHash = null; }', [], id="null"),
        pytest.param('{ x.hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; }',
                     ["x.hash"], id="dotted-attrpath"),
        pytest.param("rec { sha256 = ''087nbhhnd9l3xrwd78gj6hnnixskpvqqscl3jx1shrg369c7jras''; }",
                     ["sha256"], id="indented-string"),
        pytest.param('{ hashes = { x86_64-linux = "abc"; }; }', [], id="not-a-hash-text"),
        pytest.param('{ cargoHash = lib.fakeHash; vendorSha256 = lib.fakeSha256; }',
                     ["cargoHash", "vendorSha256"], id="builder-argument-names"),
    ],
)
def test_what_is_and_is_not_a_site(source: str, paths: list[str]) -> None:
    assert [s.attrpath for s in locate_in_bytes(Path("x.nix"), source.encode())] == paths


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(UsageError, match=r"x.nix:3:7: Nix syntax error: unexpected ';'"):
        locate_in_bytes(Path("x.nix"), b"{\n  a = 1;\n  b = ;\n}\n")


def test_select_by_binding_suffix_and_ambiguity() -> None:
    sites = locate(FIXTURES / "example" / "authentik.nix")
    assert [s.attrpath for s in select(sites, "vendorHash", "t")] == ["server.vendorHash"]
    assert [s.attrpath for s in select(sites, "src.hash", "t")] == ["src.hash"]
    platforms = locate(FIXTURES / "example" / "webui-deps.nix")
    assert len(select(platforms, "outputHash", "t")) == 2
    assert len(select(platforms, "outputHash.x86_64-linux", "t")) == 1
    with pytest.raises(UsageError, match="matches no hash site"):
        select(sites, "cargoHash", "t")
