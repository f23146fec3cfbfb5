"""Evaluation-time pins read without Nix: which sites may be one, and the identity a pin's
cached answer is keyed on.

A pin (`builtins.fetchTarball`, `builtins.fetchurl`, `builtins.fetchGit`/`fetchTree` with a
`narHash`, niv's and npins' JSON) is fetched while Nix evaluates: no derivation carries its
hash, so only a sentinel's evaluation error tells that a site is one (fodhash.protocol.rounds).
These shapes only decide when the nothing-changed fast path must ask the cache or the
protocol instead of calling a site that no FOD carries "not evaluated".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from fodhash.sites.read import is_json
from fodhash.sites.site import Site
from fodhash.sites.syntax import parse

if TYPE_CHECKING:
    from fodhash.hashes.encoding import Hash
    from fodhash.nix.mismatch import PinMismatch

T = TypeVar("T")

# The builtins that fetch while Nix evaluates, called as `builtins.NAME` or bare `NAME`.
PIN_FETCHERS = frozenset({"fetchTarball", "fetchurl", "fetchGit", "fetchTree"})
_KEY_VERSION = b"fodhash pin v1\0"


def maybe_pin(site: Site, source: bytes) -> bool:
    """Whether `site` may be a pin: any hash of a JSON file (niv and npins keep theirs
    there), or a literal in the attribute set given to one of the PIN_FETCHERS."""
    if is_json(site.file):
        return True
    node = parse(source).root_node.descendant_for_byte_range(site.start, site.end)
    while node is not None and node.type != "attrset_expression":
        node = node.parent
    while node is not None and node.parent is not None \
            and node.parent.type == "parenthesized_expression":
        node = node.parent
    apply = node.parent if node is not None else None
    if apply is None or apply.type != "apply_expression":
        return False
    function = apply.child_by_field_name("function")
    name = function.text.decode() if function is not None and function.text else ""
    return name.rsplit(".", 1)[-1] in PIN_FETCHERS


def pin_key(site: Site, source: bytes) -> str:
    """The cache key of a pin's true hash: its file's bytes with the literal masked.

    What Nix downloads for a pin follows from the file that holds it: the URL and the
    fetcher beside the literal (for niv and npins, the fields of the JSON object the Nix file
    they generate reads). So a cached answer is trusted while that file is byte for byte the
    same but for the literal; any other change, even elsewhere in the file, downloads again
    (docs/design.md, "Pins"). The platform plays no part: a download is the same everywhere.
    """
    masked = source[: site.start] + b"\0" + source[site.end :]
    return hashlib.sha256(_KEY_VERSION + masked).hexdigest()


def names_source(site: Site, source: bytes, fetched: str) -> bool:
    """Whether the file of `site` (`source`) names what Nix says it fetched for a pin (a URL,
    or an input `git+URL?rev=…`): for a JSON site, in the object that holds it."""
    url = fetched.removeprefix("git+").split("?", 1)[0].encode()
    if is_json(site.file):
        start = source.rfind(b"{", 0, site.start)
        end = source.find(b"}", site.end)
        source = source[max(start, 0) : end if end >= 0 else len(source)]
    return url in source


def pin_owner(pin: PinMismatch, owner: Callable[[Hash], T | None]) -> tuple[T, Hash] | None:
    """The owner (`owner(hash)`, None for none) of the hash fodhash wrote of a pin's mismatch,
    and the other hash, its truth. Either of the two may be the one written: Nix 2.34's
    fetchGit names them the other way round, so their order is never trusted."""
    first, second = pin.hashes
    for wrote, truth in ((first, second), (second, first)):
        found = owner(wrote)
        if found is not None:
            return found, truth
    return None
