"""Hash sites in JSON files that Nix reads: `(lib.importJSON ./hashes.json).${system}`,
`builtins.fromJSON (builtins.readFile ./sources.json)`.

A JSON string value a FOD takes its hash from is a site like a literal of a `.nix` file: the
same `Site`, with the JSON file as its file, the key path as its attribute path
(`x86_64-linux`, `tools.foo.hash`, `sources[0].sha256`) and the bytes inside the quotes as
its span (the whole `""` for a placeholder), so the protocol writes sentinels, fakes and the
true hash into it byte-exactly and the rest of the file keeps its formatting. The text
written there is always a hash in SRI, base16, nix32 or base64 form, or a quoted one: none
needs escaping in a JSON string.

Candidates are string values under a hash-named key (`hash`, `sha256`, `outputHash`, ... as
in a `.nix` file; `narHash` is Nix's own and never a site) and the entries of a system-keyed
object (`{"x86_64-linux": "sha256-..."}`) whose values are hashes. Which of them a FOD really
consumes is decided by the protocol's sentinel evaluation, as for `.nix` sites.

The file is parsed twice: by Python's `json` module, which is strict (it is the judge of
validity, as Nix is for `.nix` files), and by the tree-sitter JSON grammar of
`tree-sitter-language-pack`, which gives every value's byte offsets.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from fodhash.errors import HashError, UsageError
from fodhash.hashes.encoding import Algo, Encoding, parse_hash
from fodhash.sites.site import FAKE_NAMES, HASH_NAME, NOT_FOD_HASH, SYSTEM, SYSTEM_KEY, Site

if TYPE_CHECKING:
    import tree_sitter

# A system key outside a hash-named key must name a system Nix knows (site.SYSTEM: the keys
# of `{"left-pad": "sha512-..."}` are package names, not platforms); under a hash-named key
# any `cpu-os` key is one, as in a .nix file (site.SYSTEM_KEY).


@cache
def _parser() -> tree_sitter.Parser:
    import tree_sitter  # noqa: PLC0415
    from tree_sitter_language_pack import get_language  # noqa: PLC0415

    return tree_sitter.Parser(get_language("json"))


def _reject_constant(name: str) -> None:
    raise ValueError(name)


def validate(file: Path, source: bytes) -> None:
    """Raise a UsageError naming the line and column if `source` is not strict JSON (what
    `builtins.fromJSON` reads): no comments, no trailing commas, no NaN."""
    text = source.decode("utf-8")
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise UsageError(f"{file}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}; fix the "
                         "file (Nix's builtins.fromJSON refuses it too) and run again") from None
    except ValueError as err:
        raise UsageError(f"{file}: not valid JSON: {err} is not a JSON number; fix the file "
                         "and run again") from None


# ---- locating ------------------------------------------------------------------------------


def _string(node: tree_sitter.Node) -> str:
    """The value of a JSON string node (escapes decoded)."""
    value = json.loads(node.text.decode() if node.text else '""')
    return value if isinstance(value, str) else ""


def _join(parts: list[str]) -> str:
    return ".".join(parts).replace(".[", "[")


def _pairs(obj: tree_sitter.Node) -> list[tuple[str, tree_sitter.Node, tree_sitter.Node]]:
    found = []
    for pair in obj.children:
        if pair.type != "pair":
            continue
        key, value = pair.child_by_field_name("key"), pair.child_by_field_name("value")
        if key is not None and value is not None and key.type == "string":
            found.append((_string(key), value, pair))
    return found


def _hint(name: str, siblings: list[tuple[str, tree_sitter.Node, tree_sitter.Node]]) -> Algo | None:
    lowered = name.lower()
    for algo in (Algo.SHA512, Algo.SHA256, Algo.SHA1, Algo.MD5):
        if lowered.endswith(str(algo)):
            return algo
    for key, value, _ in siblings:  # "outputHash" next to "outputHashAlgo": "sha512"
        if key == f"{name}Algo" and value.type == "string":
            try:
                return Algo(_string(value))
            except ValueError:
                return None
    return None


def _literal(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The one fragment of a string without escapes; None for "" or an escaped string."""
    inner = [c for c in node.children if c.type != '"']
    if len(inner) == 1 and inner[0].type == "string_content":
        return inner[0]
    return None


def _site(file: Path, node: tree_sitter.Node, path: list[str], binding: str,
          platform: str | None, hint: Algo | None, *, empty_ok: bool) -> Site | None:
    if node.type != "string":
        return None
    line = node.start_point[0] + 1
    if node.text == b'""':
        if not empty_ok:
            return None
        return Site(file, _join(path), binding, platform, line, node.start_byte, node.end_byte,
                    '""', hint or Algo.SHA256, None)
    fragment = _literal(node)
    if fragment is None:
        return None
    text = fragment.text.decode() if fragment.text else ""
    try:
        form = parse_hash(text, hint) if hint else parse_hash(text)
    except HashError:
        return None
    if text != text.strip():
        return None  # " sha256-..." : Nix would not read it as a hash either
    return Site(file, _join(path), binding, platform, line, fragment.start_byte,
                fragment.end_byte, text, form.hash.algo, form)


def _is_hash(node: tree_sitter.Node) -> bool:
    fragment = _literal(node) if node.type == "string" else None
    if fragment is None or not fragment.text:
        return False
    try:
        form = parse_hash(fragment.text.decode())
    except HashError:
        return False
    return form.encoding is Encoding.SRI or form.prefixed or len(fragment.text) >= 32


def _walk(file: Path, node: tree_sitter.Node, path: list[str], under: str | None,
          sites: list[Site]) -> None:
    """Collect the sites below `node`, the value at key path `path`; `under` is the name of
    the innermost hash-named key it lies in (a system-keyed object of hashes), if any."""
    if node.type == "array":
        values = [c for c in node.children if c.is_named and c.type != "comment"]
        for index, child in enumerate(values):
            _walk(file, child, [*path, f"[{index}]"], under, sites)
        return
    if node.type != "object":
        return
    pairs = _pairs(node)
    hashes_beside = any(SYSTEM.match(k) and _is_hash(v) for k, v, _ in pairs)
    for key, value, _ in pairs:
        here = [*path, key]
        if key in NOT_FOD_HASH or key in FAKE_NAMES:
            continue
        if HASH_NAME.search(key):
            if value.type == "string":
                site = _site(file, value, here, _join(here), None, _hint(key, pairs),
                             empty_ok=True)
                if site is not None:
                    sites.append(site)
            else:
                _walk(file, value, here, key, sites)
            continue
        system = SYSTEM_KEY.match(key) if under else SYSTEM.match(key)
        if system and value.type == "string":
            # An entry of a system-keyed object: `""` only beside real hashes, or in a hash key.
            site = _site(file, value, here, _join(path), key,
                         _hint(under, []) if under else None,
                         empty_ok=under is not None or hashes_beside)
            if site is not None:
                sites.append(site)
            continue
        _walk(file, value, here, under if system else None, sites)


def locate_json(file: Path, source: bytes) -> list[Site]:
    """Every hash site of the JSON document `source`, in file order; a UsageError naming the
    line and column if it is not strict JSON."""
    validate(file, source)
    tree = _parser().parse(source)
    values = [c for c in tree.root_node.children if c.is_named and c.type != "comment"]
    sites: list[Site] = []
    for value in values[:1]:
        _walk(file, value, [], None, sites)
    return sorted(sites, key=lambda s: s.start)


# ---- a missing platform entry --------------------------------------------------------------


def json_platform_slot(source: bytes, sites: list[Site], platform: str) -> Site | None:
    """An insertion point for `platform` in the system-keyed object holding `sites`, in its
    neighbours' style: the last entry's indentation and `:` spacing; in alphabetical order
    when the keys are sorted (in front of the first greater key), else after the last entry
    (with the comma JSON needs). Two insertions at one point concatenate into valid JSON.
    None if the sites are not entries of one object."""
    entries = [s for s in sites if s.platform is not None]
    if not entries or len({(s.file, s.binding) for s in entries}) != 1:
        return None
    tree = _parser().parse(source)
    obj = tree.root_node.descendant_for_byte_range(entries[0].start, entries[0].end)
    while obj is not None and obj.type != "object":
        obj = obj.parent
    if obj is None:
        return None
    pairs = _pairs(obj)
    if not pairs:
        return None
    keys = [k for k, _, _ in pairs]
    _, last_value, last = pairs[-1]
    key_node = last.child_by_field_name("key")
    assert key_node is not None
    colon = source[key_node.end_byte:last_value.start_byte].decode()  # ": " or ":" or " : "
    before = next((p for k, _, p in pairs if k > platform), None) if keys == sorted(keys) else None
    key = json.dumps(platform)

    def indent_of(node: tree_sitter.Node) -> str | None:
        start = source.rfind(b"\n", 0, node.start_byte) + 1
        text = source[start:node.start_byte].decode()
        return None if text.strip() else text  # None: the entry shares its line

    template = entries[0]
    if before is not None:
        indent = indent_of(before)
        if indent is not None:
            position = source.rfind(b"\n", 0, before.start_byte) + 1
            wrap = (f'{indent}{key}{colon}"', '",\n')
        else:
            position = before.start_byte
            wrap = (f'{key}{colon}"', '", ')
        line = source.count(b"\n", 0, position) + 1
    else:
        indent = indent_of(last)
        position = last.end_byte
        if indent is not None:
            wrap = (f',\n{indent}{key}{colon}"', '"')
            line = source.count(b"\n", 0, position) + 2
        else:
            wrap = (f', {key}{colon}"', '"')
            line = source.count(b"\n", 0, position) + 1
    binding = template.binding
    return Site(file=template.file, attrpath=_join([binding, platform]) if binding else platform,
                binding=binding, platform=platform, line=line, start=position, end=position,
                text="", algo=template.algo, form=None, wrap=wrap)


