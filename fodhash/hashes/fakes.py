"""The hashes fodhash writes into sites: the TLS-safe fake a build sees, the sentinels evaluation sees."""

from __future__ import annotations

import hashlib

from fodhash.hashes.encoding import Algo, Hash


def fake(algo: Algo) -> Hash:
    return Hash(algo, bytes(algo.size))


def canonical_fake_text(algo: Algo, *, bare: bool) -> str:
    """The placeholder written into a site for a build.

    nixpkgs fetchers turn TLS verification on only for "", lib.fakeHash (SRI sha256 zeros),
    lib.fakeSha256 (64 zeros) and lib.fakeSha512 (128 zeros); see docs/design.md. SRI sha256 zeros
    is valid in any context, so it serves every sha256 site; a bare sha512 site gets
    lib.fakeSha512. Other forms have no TLS-safe spelling, so the resolver refuses to build a
    derivation that would fetch insecurely with them (see Derivation.fetches_insecurely in
    fodhash/nix/derivations.py).
    """
    if algo is Algo.SHA512 and bare:
        return "0" * 128
    return fake(algo).sri


def sentinel(algo: Algo, index: int) -> Hash:
    """A distinct, valid, never-built hash for evaluation: derived from a tag and the index.

    Every byte is significant and none is zero-padding, so the value survives any encoding
    round trip and can never collide with a fake or with another sentinel.
    """
    seed = f"fodhash-sentinel-{algo}-{index}".encode()
    digest = hashlib.sha512(seed).digest()[: algo.size]
    return Hash(algo, digest)
