"""Hostile input, property-based: hash codecs, the mismatch parser in noisy logs, the patcher.

Every property is checked on generated input (hypothesis): random digests in every encoding,
Nix output of every version with build-log noise, ANSI colour, progress lines and truncation,
and random Nix files whose hash sites are patched one at a time.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import TRANSCRIPTS
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fodhash.errors import HashError
from fodhash.files.patch import apply_edits
from fodhash.hashes.encoding import (
    NIX32_ALPHABET,
    Algo,
    Encoding,
    Hash,
    HashText,
    nix32_decode,
    nix32_encode,
    nix32_len,
    parse_hash,
)
from fodhash.hashes.fakes import canonical_fake_text, fake, sentinel
from fodhash.nix.mismatch import Mismatch, parse_mismatches
from fodhash.sites.nix_file import locate_in_bytes, platform_slot
from fodhash.sites.site import Site
from fodhash.sites.syntax import parse


def examples(count: int) -> settings:
    """`count` examples, no deadline. The autouse fixture of conftest.py only sets environment
    variables, so sharing it between the examples of one test is harmless."""
    return settings(max_examples=count, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


CODEC, PARSER, PATCHER = examples(300), examples(200), examples(200)

RED, MAGENTA, RESET = "\x1b[31;1m", "\x1b[35;1m", "\x1b[0m"
ERASE = "\r\x1b[0m\x1b[K\r\x1b[K"  # what `nix build` on a terminal starts a line with
PROGRESS = "\r\x1b[K[1/3 built, 2 copied (0.1 MiB)] building fodhash-src (buildPhase): got: x\r\x1b[K"

algos = st.sampled_from(list(Algo))
encodings = st.sampled_from(list(Encoding))


@st.composite
def hashes(draw: st.DrawFn, algo: Algo | None = None) -> Hash:
    chosen = draw(algos) if algo is None else algo
    return Hash(chosen, draw(st.binary(min_size=chosen.size, max_size=chosen.size)))


def is_ambiguous_bare(value: Hash, encoding: Encoding) -> bool:
    """A bare sha1 nix32 made only of hex digits reads as md5 base16 when nothing names the algo."""
    text = value.encode(encoding)
    return (value.algo is Algo.SHA1 and encoding is Encoding.NIX32
            and set(text) <= set(string.hexdigits))


# --- Hash codecs ---------------------------------------------------------------------------


@CODEC
@given(value=hashes(), encoding=encodings, prefixed=st.booleans(), pad=st.sampled_from(["", " ", "\n\t "]))
def test_every_encoding_round_trips(value: Hash, encoding: Encoding, prefixed: bool, pad: str) -> None:
    text = value.encode(encoding, prefixed=prefixed)
    sri = encoding is Encoding.SRI
    expected = HashText(value, encoding, prefixed=prefixed and not sri)
    bare = not sri and not prefixed
    if sri:
        assert text == value.sri and text.startswith(f"{value.algo}-")
    elif prefixed:
        assert text.startswith(f"{value.algo}:")
    body = text.partition("-" if sri else ":")[2] if not bare else text
    length = {Encoding.BASE16: 2 * value.algo.size, Encoding.NIX32: nix32_len(value.algo.size),
              Encoding.BASE64: len(value.sri) - len(str(value.algo)) - 1,
              Encoding.SRI: len(value.sri) - len(str(value.algo)) - 1}[encoding]
    assert len(body) == length
    # With the algorithm the context gives, every form reads back exactly, surrounding space or not.
    assert parse_hash(text, value.algo) == expected
    assert parse_hash(pad + text + pad, value.algo) == expected
    assert expected.render(value) == text
    if not bare:  # SRI and prefixed forms carry their algorithm
        assert parse_hash(text) == expected
    elif is_ambiguous_bare(value, encoding):
        assert parse_hash(text) == HashText(Hash(Algo.MD5, bytes.fromhex(text)), Encoding.BASE16)
    else:  # the length tells the algorithm
        assert parse_hash(text) == expected


@CODEC
@given(value=hashes(), encoding=encodings, prefixed=st.booleans(), data=st.data())
def test_render_keeps_the_form_for_a_new_value(value: Hash, encoding: Encoding, prefixed: bool,
                                                data: st.DataObject) -> None:
    form = parse_hash(value.encode(encoding, prefixed=prefixed), value.algo)
    other = data.draw(hashes(value.algo))
    rendered = form.render(other)
    again = parse_hash(rendered, value.algo)
    assert again.hash == other
    assert (again.encoding, again.prefixed) == (form.encoding, form.prefixed)


@CODEC
@given(value=hashes(), encoding=st.sampled_from([Encoding.NIX32, Encoding.BASE16, Encoding.BASE64]),
       other=algos)
def test_prefix_of_another_algorithm_than_the_context_is_refused(value: Hash, encoding: Encoding,
                                                                  other: Algo) -> None:
    assume(other is not value.algo)
    with pytest.raises(HashError):
        parse_hash(value.encode(encoding, prefixed=True), other)
    # SRI names its algorithm, which Nix accepts in any hash position.
    assert parse_hash(value.sri, other).hash == value


@CODEC
@given(digest=st.binary(min_size=1, max_size=80))
def test_nix32_round_trip(digest: bytes) -> None:
    text = nix32_encode(digest)
    assert len(text) == nix32_len(len(digest))
    assert set(text) <= set(NIX32_ALPHABET)
    assert nix32_decode(text, len(digest)) == digest


@CODEC
@given(size=st.sampled_from([a.size for a in Algo]), data=st.data())
def test_nix32_decode_of_any_digits_round_trips_or_overflows(size: int, data: st.DataObject) -> None:
    text = data.draw(st.text(NIX32_ALPHABET, min_size=nix32_len(size), max_size=nix32_len(size)))
    top = 1 << ((8 * size) % 5 or 5)  # the first digit holds what is left of 8 * size bits
    try:
        digest = nix32_decode(text, size)
    except HashError as err:
        assert "overflows" in str(err)
        # Only the top digit can hold more bits than the digest has.
        assert NIX32_ALPHABET.index(text[0]) >= top
        return
    assert NIX32_ALPHABET.index(text[0]) < top
    assert len(digest) == size
    assert nix32_encode(digest) == text


@st.composite
def hash_like_texts(draw: st.DrawFn) -> str:
    """Valid hash texts, damaged: a character replaced, inserted or removed, cut, re-prefixed."""
    value = draw(hashes())
    text = value.encode(draw(encodings), prefixed=draw(st.booleans()))
    chars = st.sampled_from(list(string.ascii_letters + string.digits + "+/=-: _\t\u00e9\u2019\x00"))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete", "cut", "prefix", "upper"]))
        at = draw(st.integers(0, max(len(text) - 1, 0)))
        if op == "replace" and text:
            text = text[:at] + draw(chars) + text[at + 1:]
        elif op == "insert":
            text = text[:at] + draw(chars) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + 1:]
        elif op == "cut":
            text = text[:at]
        elif op == "prefix":
            text = draw(st.sampled_from(["sha256-", "sha512:", "md5-", "sha1:", "sha384-", ""])) + text
        else:
            text = text.upper()
    return text


@CODEC
@given(text=st.one_of(st.text(max_size=140), hash_like_texts()), hint=st.none() | algos)
def test_parse_hash_returns_a_hash_or_raises_hash_error(text: str, hint: Algo | None) -> None:
    try:
        form = parse_hash(text, hint)
    except HashError:
        return
    assert isinstance(form, HashText)
    assert len(form.hash.digest) == form.hash.algo.size
    if hint is not None and form.encoding is not Encoding.SRI:
        assert form.hash.algo is hint
    # What was read is written back in the same form, and reads back to the same value.
    canonical = form.render(form.hash)
    assert parse_hash(canonical, form.hash.algo) == form
    written = text.strip()
    if form.encoding in (Encoding.BASE16, Encoding.NIX32):
        assert canonical == written.lower()
    else:  # base64: the same text, but the last digit before `=` may set ignored padding bits
        last = -canonical.count("=") - 1
        assert len(canonical) == len(written)
        assert (canonical[:last], canonical[last + 1:]) == (written[:last], written[last + 1:])


@CODEC
@given(algo=algos, index=st.integers(0, 10**6), other=st.integers(0, 10**6), second=algos)
def test_sentinels_are_valid_distinct_and_never_fakes(algo: Algo, index: int, other: int,
                                                      second: Algo) -> None:
    value = sentinel(algo, index)
    assert value.algo is algo and not value.is_fake
    assert value != fake(algo) and fake(algo).is_fake
    for bare in (False, True):
        placeholder = parse_hash(canonical_fake_text(algo, bare=bare), algo).hash
        assert placeholder.is_fake and placeholder != value
    assert value == sentinel(algo, index)  # deterministic
    if (second, other) != (algo, index):
        assert sentinel(second, other) != value
    for encoding in Encoding:  # every byte is significant: every form round-trips
        assert parse_hash(value.encode(encoding), algo).hash == value


# --- The mismatch parser -------------------------------------------------------------------

FORMATS = ["nix2.4", "lix2.91", "lix2.94", "nix2.3", "remote", "nix2.0", "nix1.x", "json-msg",
           "determinate"]

names = st.text(string.ascii_letters + string.digits + "+-._?=", min_size=1, max_size=24).filter(
    lambda s: not s.startswith(".")
)


@st.composite
def store_paths(draw: st.DrawFn, suffix: str = "") -> str:
    digest = draw(st.text(NIX32_ALPHABET, min_size=32, max_size=32))
    return f"/nix/store/{digest}-{draw(names)}{suffix}"


@dataclass(frozen=True)
class Block:
    """One mismatch report as some Nix version prints it."""

    fmt: str
    path: str
    specified: Hash
    got: Hash
    url: str
    recursive: bool

    def expected(self) -> Mismatch:
        return Mismatch(self.path, self.specified, self.got)


@st.composite
def blocks(draw: st.DrawFn, paths: list[str]) -> Block:
    got = draw(hashes())
    specified = draw(st.just(fake(got.algo)) | hashes(got.algo))
    url = draw(st.sampled_from(["(unknown)", "https://example.org/src/hello-2.12.tar.gz",
                                "https://got.example/got: sha256-x"]))
    return Block(draw(st.sampled_from(FORMATS)), draw(st.sampled_from(paths)), specified, got, url,
                 draw(st.booleans()))


def bare(value: Hash) -> str:
    """How Nix 1.x and 2.0 print a hash: nix32, base16 for md5."""
    return value.base16 if value.algo is Algo.MD5 else nix32_encode(value.digest)


def render_block(block: Block, tty: bool) -> list[str]:
    """The lines Nix prints for `block`; on a terminal every argument is coloured."""

    def arg(text: str) -> str:
        return f"{MAGENTA}{text}{RESET}" if tty else text

    err = f"{RED}error:{RESET}" if tty else "error:"
    start = ERASE if tty else ""
    p, s, g = block.path, block.specified, block.got
    header = f"hash mismatch in fixed-output derivation '{arg(p)}':"
    algo = f"r:{g.algo}" if block.recursive else str(g.algo)
    if block.fmt == "nix2.4":
        return [f"{start}{err} {header}", f"         specified: {arg(s.sri)}",
                f"            got:    {arg(g.sri)}"]
    if block.fmt == "lix2.91":
        return [f"{start}{err} {header}", f"         likely URL: {arg(block.url)}",
                f"          specified: {arg(s.sri)}", f"             got:    {arg(g.sri)}"]
    if block.fmt == "lix2.94":
        return [f"{start}{err} {header}", f"           likely URL: {arg(block.url)}",
                f"            specified: {arg(s.sri)}", f"                  got: {arg(g.sri)}",
                f"        expected path: {arg('/nix/store/' + '1' * 32 + '-x')}",
                f"             got path: {arg('/nix/store/' + '2' * 32 + '-x')}"]
    if block.fmt == "nix2.3":
        return [f"{start}{header}", f"  wanted: {arg(s.encode(Encoding.NIX32, prefixed=True))}",
                f"  got:    {arg(g.encode(Encoding.NIX32, prefixed=True))}",
                f"{err} build of '{arg(p)}' failed"]
    if block.fmt == "remote":
        return [f"{start}{err} build of '{arg(p)}' on '{arg('ssh://root@127.0.0.1')}' failed: {header}",
                f"         specified: {arg(s.sri)}", f"            got:    {arg(g.sri)}",
                f"{err} builder for '{arg(p)}' failed with exit code 1"]
    if block.fmt == "nix2.0":
        return [f"{start}{err} fixed-output derivation produced path '{arg(p)}' with {algo} hash "
                f"'{arg(bare(g))}' instead of the expected hash '{arg(bare(s))}'"]
    if block.fmt == "nix1.x":
        return [f"{start}{err} output path \u2018{arg(p)}\u2019 has {algo} hash \u2018{arg(bare(g))}\u2019 "
                f"when \u2018{arg(bare(s))}\u2019 was expected"]
    if block.fmt == "json-msg":
        message = "\n".join(
            [f"{err} {header}", f"         specified: {arg(s.sri)}", f"            got:    {arg(g.sri)}"]
        )
        return ["@nix " + json.dumps({"action": "msg", "level": 0, "msg": message})]
    assert block.fmt == "determinate"
    as_object = block.recursive  # v3.1-v3.14 objects, v3.15+ SRI strings
    wanted: object = {"algo": str(s.algo), "base16": s.base16} if as_object else s.sri
    got: object = {"algo": str(g.algo), "base16": g.base16} if as_object else g.sri
    payload = {"storePath": p, "wanted": wanted, "got": got}
    return ["@nix " + json.dumps({"action": "result", "id": 7, "type": 109, "payload": payload})]


# Build-log and Nix lines that must never count as a mismatch: they say got, got:, specified:,
# carry colour, overwrite themselves with \r, or are internal-json log events.
NOISE_TEMPLATES = [
    "got: {h}",
    "   got:    {h}",
    "            got:    {h}",
    "                  got: {h}",
    "  specified: {h}",
    "         specified: {h}",
    "  wanted: {n}",
    "  got:    {n}",
    "got",
    "got:",
    "   got:",
    "specified:",
    "npm got 12.0.0",
    "npm WARN deprecated got@11.8.5",
    "fodhash-src> got: {h}",
    "       > got:    {h}",
    "building '{p}'...",
    "these 2 derivations will be built:",
    "  {p}",
    "error: builder for '{p}' failed with exit code 1;",
    "error: 1 dependencies of derivation '{p}' failed to build",
    "warning: found empty hash, assuming 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='",
    "\r\x1b[K[1/2 built, 0.0 MiB DL] building fodhash-src\r",
    "\r\x1b[K[0/1 built] got: {h}\r\x1b[K",
    "\x1b[31;1mgot:\x1b[0m \x1b[35;1m{h}\x1b[0m",
    "\x1b]8;;file:///nix/store\x07got: {h}\x1b]8;;\x07",
    "@nix {{\"action\":\"result\",\"id\":3,\"type\":101,\"fields\":[\"   got:    {h}\"]}}",
    "@nix {{\"action\":\"msg\",\"level\":3,\"msg\":\"got: {h}\"}}",
    "@nix {{\"action\":\"start\",\"id\":4,\"level\":3,\"text\":\"got\",\"type\":105}}",
    "@nix {{\"action\":\"msg\",\"level\":0,",
    "@nix [1, 2]",
    "@nix \"got: {h}\"",
]
# Hashes in noise are sentinels: never equal to a generated digest, so one read as a got shows.
NOISE_HASHES = [sentinel(algo, i) for algo in Algo for i in range(3)]


@st.composite
def noise_lines(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 3))
    if kind == 0:  # random text, any unicode except a line break
        return draw(st.text(st.characters(exclude_characters="\n"), max_size=60))
    if kind == 1:  # random text in colour
        text = draw(st.text(string.printable.replace("\n", ""), max_size=40))
        return f"\x1b[{draw(st.integers(0, 99))};1m{text}\x1b[0m"
    template = draw(st.sampled_from(NOISE_TEMPLATES))
    value = draw(st.sampled_from(NOISE_HASHES))
    return template.format(h=value.sri, n=value.encode(Encoding.NIX32, prefixed=True),
                           p=draw(store_paths(".drv")))


@dataclass(frozen=True)
class Log:
    """Nix output: mismatch blocks with noise lines around them, and what a parser must find."""

    chunks: list[list[str] | Block]  # noise lines, or a block to render
    endings: list[str]  # the line ending of each line, in plain rendering
    progress: list[bool]  # on a terminal: whether a progress bar is erased before the line

    @property
    def blocks(self) -> list[Block]:
        return [c for c in self.chunks if isinstance(c, Block)]

    def expected(self) -> list[Mismatch]:
        first: dict[str, Mismatch] = {}
        for block in self.blocks:
            first.setdefault(block.path, block.expected())
        return list(first.values())

    def lines(self, tty: bool) -> list[str]:
        out: list[str] = []
        for chunk in self.chunks:
            out += render_block(chunk, tty) if isinstance(chunk, Block) else chunk
        return out

    def render(self, tty: bool = False) -> str:
        lines = self.lines(tty)
        if tty:  # a pseudo-terminal: \r\n endings, a progress bar overwritten by the next line
            return "".join((PROGRESS if bar else "") + line + "\r\n"
                           for line, bar in zip(lines, self.progress, strict=False))
        return "".join(line + end for line, end in zip(lines, self.endings, strict=False))


@st.composite
def logs(draw: st.DrawFn) -> Log:
    paths = draw(st.lists(store_paths(draw(st.sampled_from([".drv", ""]))), min_size=1, max_size=4,
                          unique=True))
    chunks: list[list[str] | Block] = [draw(st.lists(noise_lines(), max_size=3))]
    for _ in range(draw(st.integers(1, 6))):  # paths may repeat: Nix reports a FOD once per build
        chunks.append(draw(blocks(paths)))
        chunks.append(draw(st.lists(noise_lines(), max_size=3)))
    count = sum(len(render_block(c, False)) if isinstance(c, Block) else len(c) for c in chunks)
    endings = draw(st.lists(st.sampled_from(["\n", "\r\n", "\r\r\n"]), min_size=count, max_size=count))
    return Log(chunks, endings, draw(st.lists(st.booleans(), min_size=count, max_size=count)))


def plain_pairs(mismatches: list[Mismatch]) -> list[tuple[str, str]]:
    return [(m.path, m.got.sri) for m in mismatches]


@PARSER
@given(log=logs())
def test_parser_finds_exactly_the_generated_blocks(log: Log) -> None:
    found = parse_mismatches(log.render())
    expected = log.expected()
    assert plain_pairs(found) == plain_pairs(expected)  # (path, got), in order, first per path
    assert found == expected  # and the specified hash of each
    # On a terminal: colour around every argument, \r\n, progress erased: the same result.
    assert parse_mismatches(log.render(tty=True)) == expected


@PARSER
@given(log=logs(), tty=st.booleans(), data=st.data())
def test_truncated_output_never_invents_a_mismatch(log: Log, tty: bool, data: st.DataObject) -> None:
    output = log.render(tty)
    expected = log.expected()
    # Cut anywhere, and in particular inside or right around each got hash.
    cuts = data.draw(st.lists(st.integers(0, len(output)), min_size=3, max_size=6))
    for block in log.blocks:
        for text in {block.got.sri, nix32_encode(block.got.digest), block.got.base16}:
            for at in re.finditer(re.escape(text), output):
                cuts += [at.start(), at.start() + 7, at.end() - 1, at.end(), at.end() + 1, at.end() + 3]
    for cut in sorted(set(cuts)):
        found = parse_mismatches(output[:cut])
        # What is found is what the full output says, in order: a cut block may be dropped,
        # never replaced by noise, and no cut got can pass for a hash.
        assert found == expected[: len(found)], cut
    assert parse_mismatches(output) == expected


@PARSER
@given(log=logs())
def test_blocks_without_noise_between_them(log: Log) -> None:
    """--keep-going: reports back to back, with nothing between them."""
    dense = Log([c for c in log.chunks if isinstance(c, Block)], log.endings, log.progress)
    assert parse_mismatches(dense.render()) == dense.expected()
    assert parse_mismatches(dense.render(tty=True)) == dense.expected()


def _transcripts() -> list[str]:
    return sorted(p.name for p in TRANSCRIPTS.glob("*.txt")
                  if parse_mismatches((TRANSCRIPTS / p.name).read_bytes().decode()))


_HEADER = re.compile(r"hash mismatch in fixed-output derivation '[^']+'")


@PARSER
@given(name=st.sampled_from(_transcripts()), data=st.data())
def test_noise_around_real_nix_output(name: str, data: st.DataObject) -> None:
    """Real Nix 2.8 output with log noise inserted between any two lines outside a block."""
    text = (TRANSCRIPTS / name).read_bytes().decode()
    ending = "\r\n" if "\r\n" in text else "\n"
    lines = text.split(ending)
    inside = {i + k for i, line in enumerate(lines) if _HEADER.search(line) for k in (1, 2)}
    spots = [i for i in range(len(lines) + 1) if i not in inside]
    inserts = data.draw(st.lists(st.tuples(st.sampled_from(spots), noise_lines()), max_size=12))
    noisy = list(lines)
    for spot, line in sorted(inserts, key=lambda x: -x[0]):  # from the end: indices stay valid
        noisy.insert(spot, line)
    assert parse_mismatches(ending.join(noisy)) == parse_mismatches(text)


# --- The patcher ---------------------------------------------------------------------------

FILE = Path("generated.nix")


@dataclass(frozen=True)
class ExpectedSite:
    attrpath: str
    text: str  # what the site's span holds: the literal inside the quotes, or the placeholder
    algo: Algo
    encoding: str  # as Site.encoding says it: "placeholder", "sri", "sha256:nix32", "base16", ...
    hint: Algo | None = None  # the algorithm the attribute's name or outputHashAlgo gives


PLACEHOLDER_ALGOS = {"lib.fakeHash": Algo.SHA256, "pkgs.lib.fakeHash": Algo.SHA256,
                     "lib.fakeSha256": Algo.SHA256, "lib.fakeSha512": Algo.SHA512,
                     "fakeHash": Algo.SHA256, "fakeSha256": Algo.SHA256, '""': Algo.SHA256}


class NixWriter:
    """Random Nix source, built left to right, remembering which bindings are hash sites."""

    def __init__(self, draw: st.DrawFn, *, platforms: bool = False) -> None:
        self.draw = draw
        self.platforms = platforms  # the forced site of the top attrset is a system-keyed set
        self.out: list[str] = []
        self.sites: list[ExpectedSite] = []

    def emit(self, *parts: str) -> None:
        self.out.extend(parts)

    def ws(self, required: bool = False) -> str:
        choices = [" ", "\n  ", "\t", "  \n\t ", " /* c */ ", " # note\n", "\n\n", "\r\n"]
        if not required:
            choices.append("")
        space = self.draw(st.sampled_from(choices))
        if "/*" in space or "#" in space:
            comment = self.draw(st.sampled_from(COMMENTS))
            space = space.replace(" c ", f" {comment} ").replace("note", comment)
        return space

    def site(self, attrpath: list[str], hint: Algo | None, *, force: bool = False) -> str:
        """The value of a hash binding (source text); records the site it makes, if any."""
        kinds = ["sri", "prefixed", "bare", "placeholder", "placeholder"] + ([] if force else ["none"])
        kind = self.draw(st.sampled_from(kinds))
        if kind == "none":  # a hash attribute whose value is no literal hash
            return self.draw(st.sampled_from(NOT_SITES))
        path = ".".join(attrpath)
        if kind == "placeholder":
            text = self.draw(st.sampled_from(sorted(PLACEHOLDER_ALGOS)))
            self.sites.append(ExpectedSite(path, text, hint or PLACEHOLDER_ALGOS[text], "placeholder", hint))
            return text
        value = self.draw(hashes(hint if kind != "sri" and hint else None))
        if kind == "sri":
            text, encoding = value.sri, "sri"
        else:
            form = self.draw(st.sampled_from([Encoding.NIX32, Encoding.BASE16, Encoding.BASE64]))
            if kind == "bare" and hint is None and value.algo is Algo.SHA1 and form is Encoding.NIX32:
                form = Encoding.BASE16  # would read as md5 base16 whenever it is all hex digits
            text = value.encode(form, prefixed=kind == "prefixed")
            encoding = f"{value.algo}:{form}" if kind == "prefixed" else str(form)
        expected = ExpectedSite(path, text, value.algo, encoding, hint)
        # Reuse an earlier literal sometimes: identical texts at several sites.
        earlier = [e for e in self.sites if e.encoding != "placeholder" and (
            e.hint == hint or e.encoding == "sri" or (e.encoding.startswith(f"{e.algo}:")
                                                      and hint in (None, e.algo)))]
        if earlier and self.draw(st.integers(0, 3)) == 0:
            again = self.draw(st.sampled_from(earlier))
            expected = ExpectedSite(path, again.text, again.algo, again.encoding, hint)
        self.sites.append(expected)
        quote = self.draw(st.sampled_from(['"', "''"]))
        return f"{quote}{expected.text}{quote}"

    def plain_value(self, path: list[str], depth: int) -> str:
        kind = self.draw(st.integers(0, 5 if depth < 3 else 2))
        if kind == 0:
            return self.draw(st.sampled_from(PLAIN_VALUES))
        if kind == 1:  # a string, maybe one that looks like a hash: not a site here
            text = self.draw(st.one_of(
                st.text(string.ascii_letters + string.digits + " -./:_+=", max_size=40),
                hashes().map(lambda h: h.sri),
            ))
            return f'"{text}"'
        if kind == 2:
            return str(self.draw(st.integers(0, 10**6)))
        if kind == 3:
            self.attrset(path, depth + 1)
            return ""
        if kind == 4:
            self.emit(self.draw(st.sampled_from(["fetchurl", "fetchgit", "pkgs.fetchzip"])), self.ws(True))
            self.attrset(path, depth + 1)
            return ""
        self.emit("rec", self.ws())
        self.attrset(path, depth + 1)
        return ""

    def binding(self, path: list[str], depth: int, scope: dict[str, bool], *, in_let: bool = False,
                force: bool = False) -> None:
        # An outputHashAlgo applies to every outputHash in its attrset (even `src.outputHash`):
        # a set has either one outputHash with its algorithm, or outputHash without one.
        kind = (4 if self.platforms else 0) if force else self.draw(st.integers(0, 6))
        if kind == 3 and (in_let or "outputHash" in scope):
            kind = 0
        if kind <= 2:  # a hash attribute, maybe behind a dotted path
            name, hint = self.draw(st.sampled_from(
                [(n, h) for n, h in HASH_NAMES if n != "outputHash" or not scope.get("outputHash")]
            ))
            scope.setdefault(name, False)
            own = [*self.draw(st.lists(st.sampled_from(["src", "ui", "deps"]), max_size=2)), name]
            self.emit(".".join(own), self.ws(), "=", self.ws())
            self.emit(self.site([*path, *own], hint, force=force), self.ws(), ";")
        elif kind == 3:  # outputHash with its algorithm beside it
            scope["outputHash"] = True
            algo = self.draw(algos)
            first = self.draw(st.booleans())
            if first:
                self.emit("outputHashAlgo", self.ws(), "=", self.ws(), f'"{algo}";', self.ws())
            self.emit("outputHash", self.ws(), "=", self.ws(), self.site([*path, "outputHash"], algo), ";")
            if not first:
                self.emit(self.ws(), "outputHashAlgo", self.ws(), "=", self.ws(), f'"{algo}";')
        elif kind == 4:  # a system-keyed attrset of hashes
            name = self.draw(st.sampled_from(
                ["vendorHash", "hash"] + ([] if scope.get("outputHash") else ["outputHash"])
            ))
            scope.setdefault(name, False)
            self.emit(name, self.ws(), "=", self.ws(), "{", self.ws())
            for system in self.draw(st.lists(st.sampled_from(SYSTEMS), min_size=1, max_size=3, unique=True)):
                quoted = self.draw(st.booleans())
                self.emit(f'"{system}"' if quoted else system, self.ws(), "=", self.ws())
                self.emit(self.site([*path, name, system], None, force=force), ";", self.ws())
            select = self.draw(st.sampled_from([".${system}", '.${system} or (throw "no")', ""]))
            self.emit("}", select, ";")
        elif kind == 5:
            self.emit(self.draw(st.sampled_from(["inherit lib;", "inherit (pkgs) lib fetchurl;"])))
        else:
            name = self.draw(st.sampled_from(PLAIN_NAMES))
            quoted = name.startswith('"')
            self.emit(name, self.ws(), "=", self.ws())
            value = self.plain_value([*path, name.strip('"') if quoted else name], depth)
            self.emit(value, self.ws(), ";")
        self.emit(self.ws())

    def attrset(self, path: list[str], depth: int) -> None:
        self.emit("{", self.ws())
        scope: dict[str, bool] = {}
        count = self.draw(st.integers(0 if depth else 1, 4 if depth < 2 else 2))
        forced = self.draw(st.integers(0, count - 1)) if depth == 0 else -1  # at least one site
        for number in range(count):
            self.binding(path, depth, scope, force=number == forced)
        self.emit("}")

    def file(self) -> None:
        if self.draw(st.booleans()):
            self.emit(self.draw(st.sampled_from(COMMENTS_AT_TOP)), "\n")
        if self.draw(st.booleans()):
            self.emit("{", self.ws(), "lib", self.ws(), ",", self.ws(), "fetchurl ? null, ...", self.ws(),
                      "}:", self.ws())
        if self.draw(st.booleans()):
            self.emit("with lib;", self.ws())
        if self.draw(st.booleans()):
            self.emit("let", self.ws(True))
            scope: dict[str, bool] = {}
            for _ in range(self.draw(st.integers(1, 3))):
                self.binding([], 1, scope, in_let=True)
            self.emit("in", self.ws(True))
        if self.draw(st.booleans()):
            self.emit("rec", self.ws())
        self.attrset([], 0)
        self.emit(self.ws(), "\n")


HASH_NAMES: list[tuple[str, Algo | None]] = [
    ("hash", None), ("outputHash", None), ("vendorHash", None), ("npmDepsHash", None),
    ("cargoHash", None), ("sha256", Algo.SHA256), ("sha512", Algo.SHA512), ("sha1", Algo.SHA1),
    ("md5", Algo.MD5), ("vendorSha256", Algo.SHA256),
]
PLAIN_NAMES = ["pname", "version", "url", "src", "meta", "rev", "server", "tool", "hashes", '"my-src"',
               '"ui"', "passthru", "_x'"]
SYSTEMS = ["x86_64-linux", "aarch64-darwin", "i686-linux", "riscv64-linux"]
NEW_SYSTEMS = ["aarch64-linux", "x86_64-darwin", "armv7l-linux", "powerpc64le-linux", "a-b"]
NOT_SITES = ["null", '"abc"', '"sha256-${x}"', '"\\"q\\""', "lib.fakeHash or null", "''''",
             '"sha256-AAAA"', "builtins.readFile ./hash.txt", 'lib.fakeHash + ""', '"${h}"',
             "x.hash"]
PLAIN_VALUES = ["null", "true", "./src", "[ \"a\" ./b 1 ]", '"${pname}-${version}"', "''\n  got: x\n''",
                'lib.fakeHash', '"sha256-${x}"', "(import ./x.nix { })", '"\\"\\n"']
COMMENTS = ['hash = "sha256-q0dY1rWjk8Kc7wP0xq8wQeUvP1jS8uvD5hR0b3fW8oE=";', "sha256 = lib.fakeHash;",
            "was bumped in #1234", "é ünïcode ✓", "outputHash = \"\";", "x"]
COMMENTS_AT_TOP = ['/* Not a site:  hash = "sha256-q0dY1rWjk8Kc7wP0xq8wQeUvP1jS8uvD5hR0b3fW8oE=";\n*/',
                   '# sha256 = "0000000000000000000000000000000000000000000000000000";']


@st.composite
def nix_files(draw: st.DrawFn, *, platforms: bool = False) -> tuple[bytes, list[ExpectedSite]]:
    writer = NixWriter(draw, platforms=platforms)
    writer.file()
    return "".join(writer.out).encode(), writer.sites


def has_syntax_error(source: bytes) -> bool:
    return parse(source).root_node.has_error


def site_key(site: Site) -> tuple[object, ...]:
    return (site.attrpath, site.binding, site.platform, site.line)


@PATCHER
@given(generated=nix_files())
def test_locator_finds_exactly_the_generated_sites(generated: tuple[bytes, list[ExpectedSite]]) -> None:
    source, expected = generated
    assert not has_syntax_error(source), source.decode()
    sites = locate_in_bytes(FILE, source)
    assert [(s.attrpath, s.text, s.algo, s.encoding) for s in sites] == [
        (e.attrpath, e.text, e.algo, e.encoding) for e in expected
    ]
    for site in sites:
        assert source[site.start:site.end].decode() == site.text
        assert source[: site.start].count(b"\n") + 1 == site.line


@PATCHER
@given(generated=nix_files(), data=st.data())
def test_patching_one_site_changes_only_its_literal(generated: tuple[bytes, list[ExpectedSite]],
                                                    data: st.DataObject) -> None:
    source, _ = generated
    sites = locate_in_bytes(FILE, source)
    index = data.draw(st.integers(0, len(sites) - 1))
    site = sites[index]
    new = data.draw(hashes())
    bare_ok = data.draw(st.booleans())
    replacement = site.render(new, bare_ok=bare_ok)
    if not bare_ok:
        assert replacement == site.quote(new.sri)
    patched = apply_edits(source, {(site.start, site.end): replacement})
    end = site.start + len(replacement.encode())

    # Only the span's bytes changed.
    assert patched[: site.start] == source[: site.start]
    assert patched[end:] == source[site.end:]
    assert patched[site.start:end] == replacement.encode()
    assert not has_syntax_error(patched), patched.decode()

    # The same sites, in the same order, on the same lines; only the patched one holds another value.
    after = locate_in_bytes(FILE, patched)
    assert [site_key(s) for s in after] == [site_key(s) for s in sites]
    shift = end - site.end
    for number, (old, now) in enumerate(zip(sites, after, strict=True)):
        if number != index:
            assert (now.text, now.form, now.algo) == (old.text, old.form, old.algo)
            moved = shift if number > index else 0
            assert (now.start, now.end) == (old.start + moved, old.end + moved)
            continue
        assert now.form is not None and now.form.hash == new and now.algo is new.algo
        same_algo = old.form is not None and old.form.hash.algo is new.algo
        if old.form is not None and same_algo and bare_ok:  # the author's encoding is kept
            assert (now.form.encoding, now.form.prefixed) == (old.form.encoding, old.form.prefixed)
            assert now.text == old.form.render(new)
        else:  # placeholders and other algorithms become SRI
            assert now.form.encoding is Encoding.SRI and now.text == new.sri
        inner = 1 if old.form is None else 0  # a placeholder became a quoted string
        assert (now.start, now.end) == (site.start + inner, end - inner)

    # Writing the original text back restores the file byte for byte.
    assert apply_edits(patched, {(site.start, end): site.text}) == source


@PATCHER
@given(generated=nix_files(), data=st.data())
def test_patching_every_site_at_once_equals_one_by_one(generated: tuple[bytes, list[ExpectedSite]],
                                                       data: st.DataObject) -> None:
    source, _ = generated
    sites = locate_in_bytes(FILE, source)
    values = data.draw(st.lists(hashes(), min_size=len(sites), max_size=len(sites)))
    edits = {(s.start, s.end): s.render(v) for s, v in zip(sites, values, strict=True)}
    together = apply_edits(source, edits)
    one_by_one = source
    for site, value in reversed(list(zip(sites, values, strict=True))):  # from the end: spans stay valid
        one_by_one = apply_edits(one_by_one, {(site.start, site.end): site.render(value)})
    assert together == one_by_one
    assert [s.form.hash if s.form else None for s in locate_in_bytes(FILE, together)] == values


@PATCHER
@given(generated=nix_files(platforms=True), data=st.data())
def test_adding_a_platform_entry_changes_nothing_else(generated: tuple[bytes, list[ExpectedSite]],
                                                      data: st.DataObject) -> None:
    source, _ = generated
    sites = locate_in_bytes(FILE, source)
    binding = data.draw(st.sampled_from(sorted({s.binding for s in sites if s.platform})))
    entries = [s for s in sites if s.binding == binding and s.platform]
    platform = data.draw(st.sampled_from([p for p in [*SYSTEMS, *NEW_SYSTEMS]
                                          if p not in {s.platform for s in entries}]))
    slot = platform_slot(source, entries, platform)
    assert slot is not None and slot.is_missing and slot.platform == platform
    new = data.draw(hashes())
    text = slot.render(new)
    patched = apply_edits(source, {(slot.start, slot.end): text})
    assert patched[: slot.start] == source[: slot.start]
    assert patched[slot.start + len(text.encode()):] == source[slot.start:]
    assert not has_syntax_error(patched), patched.decode()

    after = locate_in_bytes(FILE, patched)
    added = [s for s in after if (s.binding, s.platform) == (binding, platform)]
    assert len(added) == 1, patched.decode()
    entry = added[0]
    # Written in its neighbours' form (their algorithm's), else as SRI.
    alike = slot.style is not None and slot.style.hash.algo is new.algo
    wanted = slot.style.render(new) if slot.style is not None and alike else new.sri
    assert entry.form is not None and entry.form.hash == new and entry.text == wanted
    assert (entry.attrpath, entry.line) == (slot.attrpath, slot.line), patched.decode()
    assert [(s.attrpath, s.text, s.form) for s in after if s is not entry] == [
        (s.attrpath, s.text, s.form) for s in sites
    ]


@st.composite
def disjoint_edits(draw: st.DrawFn, size: int) -> dict[tuple[int, int], str]:
    """Non-overlapping spans of a `size`-byte source (insertions included), each with a new text."""
    cuts = sorted(draw(st.lists(st.integers(0, size), max_size=8)))
    spans = {(cuts[i], cuts[i + 1]) for i in range(0, len(cuts) - 1, 2)}
    return {span: draw(st.text(max_size=12)) for span in spans}


@PATCHER
@given(source=st.text(string.printable, max_size=80).map(str.encode), data=st.data())
def test_apply_edits_matches_a_reference_and_undoes(source: bytes, data: st.DataObject) -> None:
    edits = data.draw(disjoint_edits(len(source)))
    result = apply_edits(source, edits)
    reference = source
    for (start, end), text in sorted(edits.items(), reverse=True):  # from the end: offsets hold
        reference = reference[:start] + text.encode() + reference[end:]
    assert result == reference
    # The inverse edits, in the result's offsets, give the source back (unless an empty new
    # text and an insertion meet at one offset: then the inverse spans coincide).
    inverse: dict[tuple[int, int], str] = {}
    shift = 0
    for (start, end), text in sorted(edits.items()):
        inverse[(start + shift, start + shift + len(text.encode()))] = source[start:end].decode()
        shift += len(text.encode()) - (end - start)
    if len(inverse) == len(edits):
        assert apply_edits(result, inverse) == source


@PATCHER
@given(source=st.binary(min_size=2, max_size=40), data=st.data())
def test_apply_edits_refuses_overlapping_spans(source: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(source) - 1))
    end = data.draw(st.integers(start + 1, len(source)))
    inner = data.draw(st.integers(start, end - 1))
    other = (inner, data.draw(st.integers(inner + 1, len(source))))  # starts inside [start, end)
    assume(other != (start, end))
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits(source, {(start, end): "x", other: "y"})

