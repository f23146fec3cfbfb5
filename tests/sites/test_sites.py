"""The tree-sitter locator on every shape of hash site in fixtures/ (fixtures/shapes/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES

from fodhash.errors import UsageError
from fodhash.hashes.encoding import Algo, parse_hash
from fodhash.sites.nix_file import locate, locate_in_bytes, platform_slot
from fodhash.sites.site import Site, select

SRI = "sha256-EkLbqYe6pKM6WnvVxXy5lu6eEGf5uk987+w1jTb14/Q="
B16 = "613ef8ac00c5abda425dfa48778a68f58a2e9c7c1f82539bb1a41afabbd6193f"
NIX32 = "1zkdgpjrh1dc9j8qyrrrh49v24960yhvwi2c530qbpf2azgqj71b"


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
        # Per-platform by condition: one site per branch literal, named by its condition.
        pytest.param(f'{{ hash = if stdenv.isDarwin then "{SRI}" else lib.fakeHash; }}',
                     ["hash[stdenv.isDarwin]", "hash[!stdenv.isDarwin]"], id="if-branches"),
        pytest.param(f'{{ sha256 = if a then (if !b then "{SRI}" else "{SRI}") '
                     f'else throw "unsupported"; }}', ["sha256[a && !b]", "sha256[a && b]"],
                     id="nested-if-and-throw"),
        pytest.param(f'{{ hash = if x == "y" then "{SRI}" else lib.fakeHash; }}',
                     ['hash[x == "y"]', 'hash[!(x == "y")]'], id="if-on-a-comparison"),
        pytest.param(f'{{ outputHash = if hash != "" then hash else "{SRI}"; }}', [],
                     id="if-picking-a-variable-is-logic"),
        pytest.param('{ hash = if a then lib.fakeHash else ""; }', [],
                     id="if-of-placeholders-only"),
        # A map of systems to hashes under any name is a per-platform site.
        pytest.param(f'let shas = {{ x86_64-linux = "{SRI}"; aarch64-darwin = lib.fakeHash; }}; '
                     'in { sha256 = shas.${system}; }',
                     ["shas.x86_64-linux", "shas.aarch64-darwin"], id="system-map-any-name"),
        pytest.param(f'{{ hashes = {{ foo-bar = "{SRI}"; x86_64-linux = "{SRI}"; }}; }}', [],
                     id="map-with-a-key-that-is-no-system"),
        # A map of systems to hashes passed to a function, as electron's is written: with a
        # `headers` hash beside the systems (no platform's), bound or at the top.
        pytest.param(f'{{ electron_11-bin = mkElectron "11.5.0" {{ x86_64-linux = "{B16}"; '
                     f'aarch64-darwin = "{B16}"; headers = "{NIX32}"; }}; }}',
                     ["electron_11-bin.x86_64-linux", "electron_11-bin.aarch64-darwin"],
                     id="system-map-argument-with-headers"),
        pytest.param(f'let a = 1; in mkElectron "11.5.0" {{ x86_64-linux = "{SRI}"; '
                     f'aarch64-darwin = lib.fakeHash; }}',
                     ["mkElectron.x86_64-linux", "mkElectron.aarch64-darwin"],
                     id="system-map-argument-bound-to-no-name"),
        pytest.param(f'pkgs.mkElectron "11.5.0" {{ x86_64-linux = "{SRI}"; }} {{ }}',
                     ["pkgs.mkElectron.x86_64-linux"], id="system-map-first-of-two-arguments"),
        pytest.param(f'(mk {{ }}) {{ x86_64-linux = "{SRI}"; }}', [],
                     id="system-map-argument-of-an-unnamed-function"),
        pytest.param(f'{{ a = {{ x86_64-linux = "{SRI}"; headers = "{NIX32}"; }}; }}', [],
                     id="one-system-beside-another-hash-is-no-system-map"),
        pytest.param('{ names = { x86_64-linux = "linux-x64"; }; }', [], id="system-map-of-names"),
        # Not sites: a fetcher's own placeholder, fallbacks, digests, narHash.
        pytest.param('{ hash ? "" }: { outputHash = ""; outputHashAlgo = "sha256"; }', [],
                     id="placeholder-inside-a-fetcher"),
        pytest.param('sha256: { outputHash = lib.fakeSha256; }', [],
                     id="placeholder-inside-a-fetcher-of-one-argument"),
        pytest.param('{ src }: { outputHash = lib.fakeHash; }', ["outputHash"],
                     id="placeholder-in-a-function-that-takes-no-hash"),
        pytest.param('{ hash = pins.foo or lib.fakeHash; }', [], id="or-fallback"),
        pytest.param(f'{{ narHash = "{SRI}"; imageDigest = "sha256:{"0" * 64}"; }}', [],
                     id="nar-hash-and-image-digest"),
        pytest.param(f'{{ rev = "{"a" * 40}"; isFake = hash == lib.fakeHash; }}', [],
                     id="rev-and-comparison"),
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


def test_nothing_in_the_not_sites_fixture_or_the_stubs_is_a_site_but_the_real_one() -> None:
    found = locate(FIXTURES / "shapes" / "not-sites.nix")
    assert [s.attrpath for s in found] == ["deps.hash"]
    # The stand-ins define fetchers: their own `outputHash = "";` is logic, not a site.
    assert locate(FIXTURES / "example" / "nix" / "stubs.nix") == []


def test_branch_sites_carry_their_condition_and_select_together() -> None:
    sites = locate(FIXTURES / "per-platform" / "tool.nix")
    assert [(s.branch, s.platform, s.binding) for s in sites] == [
        ("stdenv.isDarwin", None, "hash"),
        ("!stdenv.isDarwin && stdenv.hostPlatform.isAarch64", None, "hash"),
        ("!stdenv.isDarwin && !stdenv.hostPlatform.isAarch64 && stdenv.isLinux", None, "hash"),
    ]
    assert [s.is_placeholder for s in sites] == [False, True, False]
    assert select(sites, "hash", "t") == sites
    assert select(sites, "hash[stdenv.isDarwin]", "t") == sites[:1]


def test_a_missing_entry_of_a_system_map_is_written_like_its_neighbours() -> None:
    file = FIXTURES / "per-platform" / "server.nix"
    source = file.read_bytes()
    sites = locate(file)
    assert [(s.attrpath, s.platform, s.encoding) for s in sites] == [
        ("shas.aarch64-darwin", "aarch64-darwin", "nix32"),
        ("shas.x86_64-linux", "x86_64-linux", "nix32")]
    slot = platform_slot(source, sites, "aarch64-linux")
    assert slot is not None
    value = parse_hash("0972i25phaa2zly4c9i1m5c4p9zf3z5lbhn79rmmyfzb8lqskwzy", Algo.SHA256).hash
    patched = source[:slot.start] + slot.render(value).encode() + source[slot.end:]
    assert b'''    aarch64-darwin = "0v5rqrrkc4hjw6w8gwrwks3d3qbj2mwkmr2cb1npwiwz4l8j0xzk";
    aarch64-linux = "0972i25phaa2zly4c9i1m5c4p9zf3z5lbhn79rmmyfzb8lqskwzy";
    x86_64-linux = ''' in patched


CARGO = FIXTURES / "shapes" / "cargo-git-deps.nix"
FERRIS = 'cargoLock.outputHashes."ferris-core-0.1.0"'
GLUE = 'cargoLock.outputHashes."wasm-glue-0.2.0"'


def test_each_entry_of_cargo_lock_output_hashes_is_a_site() -> None:
    text = CARGO.read_bytes()
    sites = by_path(CARGO)
    assert list(sites) == [FERRIS, GLUE]
    for site in sites.values():
        assert (site.binding, site.platform, site.algo, site.encoding) == (
            "cargoLock.outputHashes", None, Algo.SHA256, "sri")
        # The span is the literal inside the quotes, on the line of its own entry.
        assert text[site.start - 1:site.end + 1].decode() == f'"{site.text}"'
        key = site.attrpath.removeprefix("cargoLock.outputHashes.")
        line = text.decode().splitlines()[site.line - 1].strip()
        assert line == f'{key} = "{site.text}";'
    assert sites[FERRIS].text != sites[GLUE].text


SRI = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="
SHA512 = "Hi45myuU35NA0KReMZXfI80nkv4ee/apmEbg3/uXoNKfCJITSU1evBdm5aOQ8P1mERa3Nbp42SQOOkXd2BLHGQ=="


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        pytest.param('{ cargoLock.outputHashes = { "a-0.1.0" = "SRI"; }; }',
                     ['cargoLock.outputHashes."a-0.1.0"'], id="dotted-outputHashes"),
        pytest.param('{ cargoLock.outputHashes."a-0.1.0" = "SRI"; }',
                     ['cargoLock.outputHashes."a-0.1.0"'], id="dotted-entry"),
        pytest.param('importCargoLock { lockFile = ./Cargo.lock; '
                     'outputHashes = { "a-0.1.0" = lib.fakeHash; b = ""; }; }',
                     ['outputHashes."a-0.1.0"', "outputHashes.b"], id="importCargoLock-placeholders"),
        pytest.param('{ deps = importCargoLock { outputHashes = { "if" = "SRI"; }; }; }',
                     ['deps.outputHashes."if"'], id="keyword-key-quoted"),
        pytest.param('{ outputHashes = { "a-0.1.0" = "not a hash"; b = "sha256-${x}"; }; }', [],
                     id="not-hash-entries"),
        pytest.param('{ "got-1.0.0" = { sha512 = "SHA512"; }; }',
                     ["got-1.0.0.sha512"], id="quoted-key-elsewhere-stays-unquoted"),
    ],
)
def test_output_hashes_entries(source: str, paths: list[str]) -> None:
    source = source.replace('"SRI"', f'"{SRI}"').replace('"SHA512"', f'"{SHA512}"')
    assert [s.attrpath for s in locate_in_bytes(Path("x.nix"), source.encode())] == paths


def test_output_hashes_placeholder_takes_its_algorithm_from_the_placeholder() -> None:
    source = b'{ outputHashes = { "a-0.1.0" = lib.fakeSha512; "b-1.0" = lib.fakeHash; }; }'
    sites = locate_in_bytes(Path("x.nix"), source)
    assert [(s.attrpath, s.algo, s.is_placeholder) for s in sites] == [
        ('outputHashes."a-0.1.0"', Algo.SHA512, True), ('outputHashes."b-1.0"', Algo.SHA256, True)]


def test_existing_attribute_paths_with_quoted_keys_are_unchanged() -> None:
    assert set(by_path(FIXTURES / "shapes" / "nixfmt-lockfile.nix")) == {
        "sources.got-11.8.6.sha512", "sources.lodash-4.17.21.sha512",
        "sources.left-pad-1.3.0.sha256"}


def test_select_output_hashes_entries() -> None:
    sites = locate(CARGO)
    for selector in ("cargoLock.outputHashes", "outputHashes"):
        assert [s.attrpath for s in select(sites, selector, "t")] == [FERRIS, GLUE]
    for selector in (GLUE, 'outputHashes."wasm-glue-0.2.0"', '"wasm-glue-0.2.0"',
                     "cargoLock.outputHashes.wasm-glue-0.2.0", "wasm-glue-0.2.0"):
        assert [s.attrpath for s in select(sites, selector, "t")] == [GLUE], selector
    with pytest.raises(UsageError, match="matches no hash site"):
        select(sites, 'cargoLock.outputHashes."wasm-glue-0.3.0"', "t")
