"""Hash values and their text forms: SRI, prefixed and bare nix32/base16/base64, and parsing them."""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass
from functools import lru_cache

from fodhash.errors import HashError

NIX32_ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"  # no e, o, u, t (Nix's base32)
_NIX32_INDEX = {c: i for i, c in enumerate(NIX32_ALPHABET)}


class Algo(enum.StrEnum):
    MD5 = "md5"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"

    @property
    def size(self) -> int:
        return {"md5": 16, "sha1": 20, "sha256": 32, "sha512": 64}[self.value]


class Encoding(enum.StrEnum):
    """How a hash is written. SRI carries its algorithm; the others may carry an `algo:` prefix."""

    SRI = "sri"
    NIX32 = "nix32"
    BASE16 = "base16"
    BASE64 = "base64"


def nix32_len(size: int) -> int:
    return (size * 8 - 1) // 5 + 1


def nix32_encode(digest: bytes) -> str:
    """Nix's base32: the bytes as one little-endian integer, most significant digit first."""
    n = int.from_bytes(digest, "little")
    length = nix32_len(len(digest))
    return "".join(NIX32_ALPHABET[(n >> (5 * i)) & 31] for i in reversed(range(length)))


def nix32_decode(text: str, size: int) -> bytes:
    if len(text) != nix32_len(size):
        raise HashError(f"nix32 hash {text!r} has {len(text)} characters, expected {nix32_len(size)}")
    n = 0
    for c in text:
        if c not in _NIX32_INDEX:
            raise HashError(f"{c!r} is not a nix32 digit in {text!r}")
        n = (n << 5) | _NIX32_INDEX[c]
    if n >> (size * 8):
        raise HashError(f"nix32 hash {text!r} overflows {size} bytes")
    return n.to_bytes(size, "little")


_LENGTHS: dict[tuple[Encoding, int], Algo] = {}
for _algo in Algo:
    _LENGTHS[(Encoding.BASE16, 2 * _algo.size)] = _algo
    _LENGTHS[(Encoding.NIX32, nix32_len(_algo.size))] = _algo
    _LENGTHS[(Encoding.BASE64, len(base64.b64encode(bytes(_algo.size))))] = _algo


@dataclass(frozen=True)
class Hash:
    algo: Algo
    digest: bytes

    def __post_init__(self) -> None:
        if len(self.digest) != self.algo.size:
            raise HashError(f"{self.algo} digest must be {self.algo.size} bytes")

    @property
    def sri(self) -> str:
        return f"{self.algo}-{base64.b64encode(self.digest).decode()}"

    @property
    def is_fake(self) -> bool:
        """The all-zero hash: what lib.fakeHash, lib.fakeSha256 and lib.fakeSha512 denote."""
        return not any(self.digest)

    @property
    def base16(self) -> str:
        return self.digest.hex()

    def encode(self, encoding: Encoding, *, prefixed: bool = False) -> str:
        if encoding is Encoding.SRI:
            return self.sri
        if encoding is Encoding.NIX32:
            body = nix32_encode(self.digest)
        elif encoding is Encoding.BASE16:
            body = self.digest.hex()
        else:
            body = base64.b64encode(self.digest).decode()
        return f"{self.algo}:{body}" if prefixed else body

    def __str__(self) -> str:
        return self.sri


@dataclass(frozen=True)
class HashText:
    """A hash as written in a file: the value and the form to write a replacement in."""

    hash: Hash
    encoding: Encoding
    prefixed: bool = False

    def render(self, value: Hash) -> str:
        return value.encode(self.encoding, prefixed=self.prefixed)


def _decode_body(body: str, algo: Algo | None, *, sri: bool = False) -> tuple[Hash, Encoding]:
    encodings = [Encoding.BASE64] if sri else [Encoding.BASE16, Encoding.NIX32, Encoding.BASE64]
    for encoding in encodings:
        found = _LENGTHS.get((encoding, len(body)))
        if found is None or (algo is not None and found is not algo):
            continue
        try:
            if encoding is Encoding.BASE16:
                digest = bytes.fromhex(body)
            elif encoding is Encoding.NIX32:
                digest = nix32_decode(body, found.size)
            else:
                digest = base64.b64decode(body, validate=True)
        except (ValueError, binascii.Error, HashError):
            continue
        return Hash(found, digest), encoding
    raise HashError(f"{body!r} is not a valid {algo or 'md5/sha1/sha256/sha512'} hash")


@lru_cache(maxsize=4096)
def parse_hash(text: str, algo: Algo | None = None) -> HashText:
    """Parse any form Nix accepts. `algo` is the algorithm the context gives to a bare hash.
    Kept (the values are immutable): a cache entry's hash is checked, then read, and a
    warm run of 256 sites reads 512."""
    text = text.strip()
    for sep, sri in (("-", True), (":", False)):
        head, found, body = text.partition(sep)
        if found and head in Algo.__members__.values():
            own = Algo(head)
            if algo is not None and own is not algo and sri is False:
                raise HashError(f"hash {text!r} is {own}, but its context says {algo}")
            value, encoding = _decode_body(body, own, sri=sri)
            return HashText(value, Encoding.SRI if sri else encoding, prefixed=not sri)
    value, encoding = _decode_body(text, algo)
    return HashText(value, encoding)
