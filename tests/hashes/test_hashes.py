"""Hash codecs against Nix's own conversions, fakes and sentinels."""

from __future__ import annotations

import subprocess

import pytest

from fodhash.errors import HashError
from fodhash.hashes.encoding import Algo, Encoding, Hash, nix32_decode, nix32_encode, parse_hash
from fodhash.hashes.fakes import canonical_fake_text, fake, sentinel

SRI = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="


def nix_hash(*args: str) -> str:
    return subprocess.run(["nix-hash", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("algo", list(Algo))
def test_nix32_matches_nix(algo: Algo) -> None:
    value = sentinel(algo, 7)
    assert nix32_encode(value.digest) == nix_hash("--type", str(algo), "--to-base32",
                                                  value.base16)
    assert nix32_decode(nix32_encode(value.digest), algo.size) == value.digest


@pytest.mark.parametrize(
    ("text", "algo", "encoding", "prefixed"),
    [
        pytest.param(SRI, Algo.SHA256, Encoding.SRI, False, id="sri-sha256"),
        pytest.param("sha256:087nbhhnd9l3xrwd78gj6hnnixskpvqqscl3jx1shrg369c7jras",
                     Algo.SHA256, Encoding.NIX32, True, id="prefixed-nix32"),
        pytest.param("087nbhhnd9l3xrwd78gj6hnnixskpvqqscl3jx1shrg369c7jras",
                     Algo.SHA256, Encoding.NIX32, False, id="bare-nix32"),
        pytest.param("5a65795832e365a8439783328df1be53f7682d34f2a1d378ee83a666215cf620",
                     Algo.SHA256, Encoding.BASE16, False, id="bare-base16"),
        pytest.param("sha256:WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=",
                     Algo.SHA256, Encoding.BASE64, True, id="prefixed-base64"),
    ],
)
def test_parse_forms_of_one_hash(text: str, algo: Algo, encoding: Encoding, prefixed: bool) -> None:
    form = parse_hash(text)
    assert form.hash == parse_hash(SRI).hash
    assert (form.hash.algo, form.encoding, form.prefixed) == (algo, encoding, prefixed)
    assert form.render(form.hash) == text  # round trip in the author's encoding


@pytest.mark.parametrize("algo", list(Algo))
@pytest.mark.parametrize("encoding", list(Encoding))
def test_every_algo_and_encoding_round_trips(algo: Algo, encoding: Encoding) -> None:
    value = sentinel(algo, 3)
    for prefixed in (False, True):
        if encoding is Encoding.SRI and prefixed:
            continue
        text = value.encode(encoding, prefixed=prefixed)
        assert parse_hash(text, algo).hash == value


def test_sri_agrees_with_nix_to_sri() -> None:
    value = sentinel(Algo.SHA512, 1)
    sri = subprocess.run(
        ["nix", "--extra-experimental-features", "nix-command", "hash", "to-sri",
         "--type", "sha512", value.base16],
        capture_output=True, text=True, check=True).stdout.strip()
    assert value.sri == sri


@pytest.mark.parametrize("bad", ["", "sha256-short", "sha256:xyz", "md5-" + "A" * 40,
                                 "e" * 52, "sha999-AAAA", "not a hash"])
def test_rejects_what_is_not_a_hash(bad: str) -> None:
    with pytest.raises(HashError):
        parse_hash(bad)


def test_context_algorithm_disambiguates_32_characters() -> None:
    text = "0" * 32  # base16 md5 or nix32 sha1
    assert parse_hash(text, Algo.MD5).hash.algo is Algo.MD5
    assert parse_hash(text, Algo.SHA1).hash.algo is Algo.SHA1


def test_canonical_fakes_are_the_nixpkgs_placeholders() -> None:
    assert canonical_fake_text(Algo.SHA256, bare=False) == (
        "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")  # lib.fakeHash
    assert canonical_fake_text(Algo.SHA256, bare=True) == canonical_fake_text(Algo.SHA256,
                                                                              bare=False)
    assert canonical_fake_text(Algo.SHA512, bare=True) == "0" * 128  # lib.fakeSha512
    assert fake(Algo.SHA256).is_fake and not sentinel(Algo.SHA256, 0).is_fake


def test_sentinels_are_distinct_valid_and_stable() -> None:
    values = [sentinel(algo, i) for algo in Algo for i in range(50)]
    assert len(set(values)) == len(values)
    assert all(not v.is_fake for v in values)
    assert sentinel(Algo.SHA256, 4) == sentinel(Algo.SHA256, 4)
    # Every byte counts: the base64 form has no padding bits to lose.
    for value in values:
        assert parse_hash(value.sri).hash == value
        assert Hash(value.algo, value.digest).sri == value.sri
