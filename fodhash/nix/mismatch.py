"""Reading Nix's build output: hash mismatches, builder failures, refusals and derivations no
machine here builds, for every Nix version.

Pure text parsing, no processes. `tests/transcripts/` holds real output of Nix 2.8, 2.26 and
2.34; `tests/nix/test_mismatch.py` holds the templates of the versions that do not run here
(Nix 1.x to 2.3, Lix, Determinate Nix) and the shapes logs take on their way to fodhash (CI
timestamps, quoting, lost indentation, blank lines). The comments below say which version prints what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import takewhile
from typing import Any, cast

from fodhash.errors import HashError
from fodhash.hashes.encoding import Algo, Hash, parse_hash


class _Lazy:
    """A regular expression compiled when first used: this module's are needed only when
    Nix fails, and compiling them all costs every run milliseconds it may not have (the
    warm path; docs/performance.md). re.compile's own cache makes each later use a lookup."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.args = (pattern, flags)

    def __getattr__(self, name: str) -> Any:
        found = getattr(re.compile(*self.args), name)
        setattr(self, name, found)  # .match, .search, ...: asked here once only
        return found


def _lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return cast("re.Pattern[str]", _Lazy(pattern, flags))


@dataclass(frozen=True)
class Mismatch:
    """A fixed-output derivation whose output did not have the hash its author wrote."""

    path: str
    """The path Nix names: the .drv path (2.4+, Lix, Determinate), or the output path (1.x-2.3)."""
    specified: Hash | None
    """The hash the derivation asked for; None when Nix printed something we cannot parse."""
    got: Hash
    """The hash of what the builder produced: the value to write back."""


@dataclass(frozen=True)
class PinMismatch:
    """A download Nix verified while it evaluated (a pin: `builtins.fetchTarball`,
    `builtins.fetchurl`, `builtins.fetchGit` or `fetchTree` with a `narHash`) whose content
    has another hash than the one written."""

    source: str
    """What Nix fetched: the URL, or the input (`git+file:///…?rev=…`)."""
    hashes: tuple[Hash, Hash]
    """Nix's two hashes in the order it prints them: (specified, got). Nix 2.34's fetchGit
    prints them the other way round (its `expected` is the content's), so a reader matches
    either with the value it wrote and takes the other as the truth."""


@dataclass(frozen=True)
class BuildFailure:
    """A derivation whose builder failed for a reason other than a hash mismatch."""

    path: str
    message: str
    """Nix's reason ("builder failed with exit code 1") and the `> ` log lines it printed."""


@dataclass(frozen=True)
class Refusal:
    """A fixed-output derivation whose output Nix refused to register: it contains a store path
    (in a file's contents, a file's name or a symlink's target), so it is not self-contained."""

    path: str
    """The .drv path."""
    count: int | None
    """How many distinct store paths the output references; None when Nix does not say."""
    example: str | None
    """One of them, as Nix names it; None when Nix does not say."""


# CSI (colours, \e[K), OSC (hyperlinks, ended by BEL or ST) and two-character escapes.
_ANSI = _lazy(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

# What other programs put in front of every line of Nix's output, as logs and pastes carry it:
# a CI runner's timestamp (GitHub Actions: "2026-09-07T13:11:02.5093617Z "), a log viewer's box
# ("┃ ", nix-output-monitor), a quote marker ("> " in mail and Markdown), nested in any order.
# Only at column 0: the indented "       > " of Nix's own log tails is Nix's text.
_DECORATION = _lazy(
    r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?[ \t]+"
    r"|[\u2503\u2502][ \t]?"
    r"|>[ \t]?)+"
)

_Q_OPEN = "[\u2018'`]"  # Nix 1.x quotes with U+2018/U+2019 (its early releases `...'), 2.x with '
_Q_CLOSE = "[\u2019']"

# 2.2+ (and Lix, Determinate): a header line, then indented `key: value` lines. Searched, not
# matched, because a remote build prefixes it: "build of '...' on 'ssh://...' failed: hash ...".
# A header cut at the terminal's width has no closing "':" and names no path: it is ignored.
_HEADER = _lazy(r"hash mismatch in fixed-output derivation '(?P<path>[^']+)':")
# The indentation may be lost (column 0), and a nested Nix's block in a builder's log tail
# reads "       >          specified: ..." in the outer Nix's output.
_BLOCK_LINE = _lazy(
    r"^[\s>]*(?P<key>specified|wanted|got|likely URL|expected path|got path):\s*(?P<value>\S*)"
)
# One line each; the algorithm is the derivation's outputHashAlgo (`r:sha256`). The hashes are
# bare: nix32, or base16 for md5 (early 1.x releases print base16 for every algorithm).
_ONE_LINE = (
    # 1.11 to 1.x: got, then wanted.
    _lazy(
        rf"output path {_Q_OPEN}(?P<path>[^\u2019']+){_Q_CLOSE} has (?P<algo>[\w:]+) hash "
        rf"{_Q_OPEN}(?P<got>[^\u2019']+){_Q_CLOSE} when "
        rf"{_Q_OPEN}(?P<wanted>[^\u2019']*){_Q_CLOSE} was expected"
    ),
    # Before 1.11: wanted, then got.
    _lazy(
        rf"output path {_Q_OPEN}(?P<path>[^\u2019']+){_Q_CLOSE} should have (?P<algo>[\w:]+) "
        rf"hash {_Q_OPEN}(?P<wanted>[^\u2019']*){_Q_CLOSE}, instead has "
        rf"{_Q_OPEN}(?P<got>[^\u2019']+){_Q_CLOSE}"
    ),
    # 2.0 and 2.1.
    _lazy(
        r"fixed-output derivation produced path '(?P<path>[^']+)' with (?P<algo>[\w:]+) hash "
        r"'(?P<got>[^']+)' instead of the expected hash '(?P<wanted>[^']*)'"
    ),
)

# Pins, fetched while Nix evaluates. fetchTarball and fetchurl, every version: a header, then the
# indented `specified:` and `got:` lines of the FOD block (2.26+ add `… while calling the
# 'fetchTarball' builtin` trace lines after them).
_DOWNLOAD_HEADER = _lazy(r"hash mismatch in file downloaded from '(?P<source>[^']+)':")
# fetchTree and fetchGit with a narHash, on one line: 2.8 "NAR hash mismatch in input 'URL'
# (/nix/store/…), expected 'SRI', got 'SRI'"; 2.26+ "…, expected 'SRI' but got 'SRI'".
_NAR_MISMATCH = _lazy(
    r"NAR hash mismatch in input '(?P<source>[^']+)'(?: \([^)]*\))?, expected '(?P<first>[^']+)'"
    r",? (?:but )?got '(?P<second>[^']+)'")

# 1.x-2.28: "builder for '%s' failed with exit code 1" (";" when the log tail follows).
_BUILDER_FAILED = _lazy(
    rf"builder for {_Q_OPEN}(?P<path>[^\u2019']+){_Q_CLOSE} (?P<status>failed\b.*?);?\s*$"
)
# 2.29+: "Cannot build '%s'." and the reason on the next line: "Reason: builder failed with
# exit code 1." (a builder failure), "Reason: 1 dependency failed." (not one), "Reason:
# platform mismatch" (see parse_unbuildable). "Output paths:" and the paths follow.
_CANNOT_BUILD = _lazy(r"Cannot build '(?P<path>[^']+)'\.\s*$")
_REASON = _lazy(r"^\s*Reason: (?P<reason>builder .*?)\.?\s*$")
_OUTPUT_PATHS = _lazy(r"^\s*(?:Output paths:|/\S+)\s*$")
# The tail of the log: "last N log lines:" (2.4-2.28), "Last N log lines:" (2.29+), then N
# lines "> ..." and "For full logs, run ...".
_LOG_TAIL = _lazy(r"^\s*[Ll]ast (?P<count>\d+) log lines:\s*$")
_LOG_END = _lazy(r"^\s*For full logs")
_LOG_MARKER = _lazy(r"^\s*>? ?")

# Derivations of a system no machine here builds.
# To 2.28: "a 'aarch64-darwin' with features {} is required to build '%s', but I am a ...".
_UNBUILDABLE = _lazy(
    r"a '(?P<system>[^']+)' with features \{[^}]*\} is required to build '(?P<path>[^']+\.drv)'")
# 2.29+, after "Cannot build '%s'.": "Reason: platform mismatch" (2.34), then "Required system:
# '%s'" and "Current system: '%s'"; some releases between print "Reason: required system or
# feature not available" and "Required system: '%s' with features {...}". "Reason: missing
# system features" (2.34) names no other system: it is left out.
_CANNOT_BUILD_DETAIL = _lazy(
    r"^\s*(?:Reason|Required system|Current system|Required features|Available features|Hint):")
_REQUIRED_SYSTEM = _lazy(r"^\s*Required system: '(?P<system>[^']+)'")

# A fixed-output derivation whose output contains a store path. Nix 2.8 builds it (exit 0);
# newer versions refuse it. Nix 2.26 refuses before it checks the hash, so it prints no
# mismatch at all; 2.34 checks the hash first and refuses only the build with the right one.
_REFUSALS = (
    # Nix 2.26 and 2.34 (both recorded): one line.
    _lazy(
        r"fixed-output derivations must not reference store paths: '(?P<path>[^']+)' "
        r"references (?P<count>\d+) distinct paths, e\.g\. '(?P<example>[^']+)'"
    ),
    # Lix 2.93+: the paths follow, one per line.
    _lazy(
        r"the fixed-output derivation '(?P<path>[^']+)' must not reference store paths but "
        r"(?P<count>\d+) such references were found:"
    ),
    # Earlier Nix 2.x releases and Lix before 2.93: no path named.
    _lazy(r"illegal path references in fixed-output derivation '(?P<path>[^']+)'"),
)
# Nix 2.26 and 2.34 (both recorded), for a flat FOD: the derivation by name only.
_NAMED_REFUSAL = _lazy(r"fixed output derivation '(?P<name>[^']+)' is not allowed to refer "
                            r"to other store paths")
_LISTED_PATH = _lazy(r"^\s*(?P<path>/\S+)\s*$")

# Determinate Nix's internal-json event for a mismatch (activity result type 109).
_RES_HASH_MISMATCH = 109


def strip_ansi(text: str) -> str:
    """Remove terminal escape sequences (colours, line clearing, hyperlinks)."""
    return _ANSI.sub("", text)


def _screen_line(raw: str) -> str:
    r"""What a terminal shows for one line: escapes removed, text before a bare \r overwritten.

    `nix build` on a terminal starts lines with `\r\e[0m\e[K\r\e[K` to erase its progress bar.
    """
    segments = [s for s in strip_ansi(raw).split("\r") if s]
    return segments[-1] if segments else ""


def _events(output: str) -> Iterator[str | Mismatch]:
    """The output as plain, non-blank lines, with `@nix` JSON messages expanded into their lines.

    Blank lines carry nothing, and some logs put one after every line. Determinate's structured
    mismatch event is yielded as a ready Mismatch. Other JSON events (build log lines, progress)
    are dropped: a mismatch or a failure is always a `msg`.
    """
    for raw in re.split(r"\r*\n", output):
        line = _DECORATION.sub("", _screen_line(raw))
        if not line.strip():
            continue
        if not line.startswith("@nix {"):
            yield line
            continue
        try:
            event = json.loads(line[len("@nix ") :])
        except json.JSONDecodeError:
            yield line
            continue
        if not isinstance(event, dict):
            continue
        if event.get("action") == "msg":
            # `msg` is the rendered text ("error: " prefix, indented lines) and always sent;
            # `raw_msg` may be missing through the daemon, so it is only a fallback.
            text = event.get("msg", event.get("raw_msg"))
            if isinstance(text, str):
                first, *rest = (_screen_line(part) for part in text.split("\n"))
                yield first
                # Indent continuation lines as a terminal rendering does: raw_msg has none.
                yield from (" " + part for part in rest if part.strip())
        elif event.get("action") == "result" and event.get("type") == _RES_HASH_MISMATCH:
            found = _from_json_event(event.get("payload"))
            if found is not None:
                yield found


def _lines(output: str) -> list[str]:
    return [item for item in _events(output) if isinstance(item, str)]


def _json_hash(value: Any) -> Hash | None:
    """A hash in Determinate's payload: an SRI string (v3.15+) or {"algo", "base16"} (to v3.14)."""
    try:
        if isinstance(value, str):
            return parse_hash(value).hash
        if isinstance(value, dict):
            algo, base16 = value.get("algo"), value.get("base16")
            if isinstance(algo, str) and isinstance(base16, str):
                return parse_hash(base16, Algo(algo)).hash
    except (HashError, ValueError):
        return None
    return None


def _from_json_event(payload: Any) -> Mismatch | None:
    if not isinstance(payload, dict):
        return None
    path, got = payload.get("storePath"), _json_hash(payload.get("got"))
    if not isinstance(path, str) or got is None:
        return None
    return Mismatch(path, _json_hash(payload.get("wanted")), got)


def _parse(text: str, algo: Algo | None = None) -> Hash | None:
    try:
        return parse_hash(text, algo).hash
    except HashError:
        return None


def _algo_of(hash_algo: str) -> Algo | None:
    """The Algo in a derivation's outputHashAlgo as Nix 1.x/2.0 print it: `r:sha256`, `sha1`."""
    try:
        return Algo(hash_algo.removeprefix("r:"))
    except ValueError:
        return None


def _one_line(line: str) -> Mismatch | None:
    for pattern in _ONE_LINE:
        found = pattern.search(line)
        if found:
            algo = _algo_of(found["algo"])
            got = _parse(found["got"], algo)
            if got is None:
                return None
            return Mismatch(found["path"], _parse(found["wanted"], algo), got)
    return None


def _block(path: str, following: list[str | Mismatch]) -> Mismatch | None:
    """The mismatch whose header names `path`, from the `key: value` lines right after it.

    The block ends at the first other line or at a repeated key, so a build log line that
    says "got: ..." after the message can never stand in for Nix's own `got:`.
    """
    values: dict[str, str] = {}
    for item in following:
        found = _BLOCK_LINE.match(item) if isinstance(item, str) else None
        if found is None or found["key"] in values:
            break
        values[found["key"]] = found["value"]
    got = _parse(values.get("got", ""))
    if got is None:
        return None
    wanted = values.get("specified", values.get("wanted", ""))
    return Mismatch(path, _parse(wanted), got)


def parse_mismatches(output: str) -> list[Mismatch]:
    """Every hash mismatch in Nix's output, first report per path, in order of appearance."""
    items = list(_events(output))
    found: dict[str, Mismatch] = {}
    for index, item in enumerate(items):
        if isinstance(item, Mismatch):
            mismatch: Mismatch | None = item
        elif header := _HEADER.search(item):
            mismatch = _block(header["path"], items[index + 1 : index + 8])
        else:
            mismatch = _one_line(item)
        if mismatch is not None:
            found.setdefault(mismatch.path, mismatch)
    return list(found.values())


def parse_pin_mismatches(output: str) -> list[PinMismatch]:
    """Every pin mismatch in Nix's output (an evaluation error, or a log that holds one), in
    order of appearance, first report per source."""
    items = _lines(output)
    found: dict[str, PinMismatch] = {}
    for index, item in enumerate(items):
        pin: PinMismatch | None = None
        if header := _DOWNLOAD_HEADER.search(item):
            block = _block(header["source"], list(items[index + 1 : index + 4]))
            if block is not None and block.specified is not None:
                pin = PinMismatch(header["source"], (block.specified, block.got))
        elif nar := _NAR_MISMATCH.search(item):
            first, second = _parse(nar["first"]), _parse(nar["second"])
            if first is not None and second is not None:
                pin = PinMismatch(nar["source"], (first, second))
        if pin is not None:
            found.setdefault(pin.source, pin)
    return list(found.values())


def _log_line(line: str) -> str:
    """One line of a log tail as `> text`, whether its `> ` and indentation survived or not."""
    return f"> {_LOG_MARKER.sub('', line.rstrip())}".rstrip()


def _log_tail(following: list[str]) -> list[str]:
    """The lines of the log tail Nix appends to a builder failure, if any.

    Nix says how many lines it prints ("last 2 log lines:"): that count, not their indentation
    or their `> `, which logs may have lost, tells where the tail ends.
    """
    for index, line in enumerate(following):
        if tail := _LOG_TAIL.match(line):
            lines = following[index + 1 : index + 1 + int(tail["count"])]
            return [_log_line(x) for x in takewhile(lambda x: not _LOG_END.match(x), lines)]
        if not _OUTPUT_PATHS.match(line):
            break  # 2.29+ lists the output paths before the tail; anything else ends it
    return []


def parse_failures(output: str) -> list[BuildFailure]:
    """Builders that failed for a reason other than a hash mismatch, first report per path.

    Dependency failures are left out (they name the dependent, not the culprit), and so is any
    derivation that also had a mismatch or a refusal: after a remote build's mismatch or
    refusal Nix 2.8 and 2.26 still print "builder for '...' failed with exit code 1" for it,
    and 2.34 "Cannot build '...'. Reason: builder failed with exit code 1.".
    """
    explained = {m.path for m in parse_mismatches(output)} | {r.path for r in parse_refusals(output)}
    lines = _lines(output)
    found: dict[str, BuildFailure] = {}
    for index, line in enumerate(lines):
        if builder := _BUILDER_FAILED.search(line):
            path, reason = builder["path"], f"builder {builder['status']}"
            rest = lines[index + 1 :]
        elif (cannot := _CANNOT_BUILD.search(line)) and index + 1 < len(lines):
            reason_line = _REASON.match(lines[index + 1])
            if reason_line is None:
                continue  # a dependency failed, or some other reason than the builder
            path, reason = cannot["path"], reason_line["reason"]
            rest = lines[index + 2 :]
        else:
            continue
        if path in explained or path in found:
            continue
        found[path] = BuildFailure(path, "\n".join([reason, *_log_tail(rest)]))
    return list(found.values())


def parse_refusals(output: str) -> list[Refusal]:
    """Fixed-output derivations whose output Nix refused because it references store paths,
    first report per path. No `got:` comes with them on Nix 2.26: the hash was never checked."""
    lines = _lines(output)
    found: dict[str, Refusal] = {}
    for index, line in enumerate(lines):
        for pattern in _REFUSALS:
            if refused := pattern.search(line):
                groups = refused.groupdict()
                count, example = groups.get("count"), groups.get("example")
                if count is not None and example is None:  # Lix 2.93+: listed below
                    listed = _LISTED_PATH.match(lines[index + 1]) if index + 1 < len(lines) else None
                    example = listed["path"] if listed else None
                refusal = Refusal(refused["path"], None if count is None else int(count), example)
                found.setdefault(refusal.path, refusal)
                break
    return list(found.values())


def parse_named_refusals(output: str) -> set[str]:
    """The names of flat FODs whose output Nix refused because the file holds store paths
    (Nix names no .drv path, and gives no got:)."""
    return {m["name"] for line in _lines(output) if (m := _NAMED_REFUSAL.search(line))}


# The last line of `nix-store --realise --keep-going` when some build failed (every one of
# fodhash's fake-hash builds does): "error: build of '/nix/store/...drv', '...' failed".
_KEEP_GOING_END = _lazy(r"^error: build of '[^']+'(?:, '[^']+')* failed\s*$")


def progress_line(line: str) -> str | None:
    """What a progress display shows for one line of Nix's output during fodhash's builds.

    Every build is made with a fake hash, so a mismatch is expected: it is how the true hash
    is learnt. Its header reads "learnt the hash of NAME"; its `specified:`/`got:` lines and
    the closing "error: build of ... failed" say nothing more (None: keep the line shown).
    Any other line is shown as Nix printed it."""
    text = _screen_line(line).strip()
    if header := _HEADER.search(text):
        name = header["path"].rsplit("/", 1)[-1].split("-", 1)[-1].removesuffix(".drv")
        return f"learnt the hash of {name}"
    if _BLOCK_LINE.match(text) or _KEEP_GOING_END.match(text):
        return None
    return text


def parse_unbuildable(output: str) -> dict[str, str]:
    """Derivations Nix cannot build here for want of a machine of their system (no builder
    for it): .drv path -> the system it needs. Not a failure of the derivation itself."""
    lines = _lines(output)
    found: dict[str, str] = {}
    for index, line in enumerate(lines):
        if old := _UNBUILDABLE.search(line):
            found.setdefault(old["path"], old["system"])
        elif cannot := _CANNOT_BUILD.search(line):
            for detail in takewhile(_CANNOT_BUILD_DETAIL.match, lines[index + 1 :]):
                if required := _REQUIRED_SYSTEM.match(detail):
                    found.setdefault(cannot["path"], required["system"])
    return found
