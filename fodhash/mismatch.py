"""Reading Nix's build output: hash mismatches and builder failures, for every Nix version.

Pure text parsing, no processes. The message formats are collected in
/work/shared/nix-error-formats.md; `tests/transcripts/` holds real output of Nix 2.8.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fodhash.errors import HashError
from fodhash.hashes import Algo, Hash, parse_hash


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
class BuildFailure:
    """A derivation whose builder failed for a reason other than a hash mismatch."""

    path: str
    message: str
    """Nix's reason ("builder failed with exit code 1") and the `> ` log lines it printed."""


# CSI (colours, \e[K), OSC (hyperlinks, ended by BEL or ST) and two-character escapes.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")

_Q_OPEN = "[\u2018']"  # Nix 1.x quotes with U+2018/U+2019, later versions with '
_Q_CLOSE = "[\u2019']"

# 2.2+ (and Lix, Determinate): a header line, then indented `key: value` lines. Searched, not
# matched, because a remote build prefixes it: "build of '...' on 'ssh://...' failed: hash ...".
_HEADER = re.compile(r"hash mismatch in fixed-output derivation '(?P<path>[^']+)':")
_BLOCK_LINE = re.compile(
    r"^\s+(?P<key>specified|wanted|got|likely URL|expected path|got path):\s*(?P<value>\S*)"
)
# 1.x and 2.0-2.1: one line; the algorithm is the derivation's outputHashAlgo (`r:sha256`).
_ONE_LINE = (
    re.compile(
        rf"output path {_Q_OPEN}(?P<path>[^\u2019']+){_Q_CLOSE} has (?P<algo>[\w:]+) hash "
        rf"{_Q_OPEN}(?P<got>[^\u2019']+){_Q_CLOSE} when "
        rf"{_Q_OPEN}(?P<wanted>[^\u2019']*){_Q_CLOSE} was expected"
    ),
    re.compile(
        r"fixed-output derivation produced path '(?P<path>[^']+)' with (?P<algo>[\w:]+) hash "
        r"'(?P<got>[^']+)' instead of the expected hash '(?P<wanted>[^']*)'"
    ),
)

# 1.x-2.28: "builder for '%s' failed with exit code 1" (";" when the log tail follows).
_BUILDER_FAILED = re.compile(
    rf"builder for {_Q_OPEN}(?P<path>[^\u2019']+){_Q_CLOSE} (?P<status>failed\b.*?);?\s*$"
)
# 2.29+: "Cannot build '%s'.\nReason: builder failed with exit code 1." The same two lines
# with "Reason: 1 dependency failed." are not a builder failure.
_CANNOT_BUILD = re.compile(r"Cannot build '(?P<path>[^']+)'\.\s*$")
_REASON = re.compile(r"^\s*Reason: (?P<reason>builder .*?)\.?\s*$")
_LOG_TAIL = re.compile(r"^\s*[Ll]ast \d+ log lines:\s*$")
_LOG_LINE = re.compile(r"^\s*(?P<line>>.*?)\s*$")

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
    """The output as plain lines, with `@nix` JSON messages expanded into their lines.

    Determinate's structured mismatch event is yielded as a ready Mismatch. Other JSON events
    (build log lines, progress) are dropped: a mismatch or a failure is always a `msg`.
    """
    for raw in re.split(r"\r*\n", output):
        line = _screen_line(raw)
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
                first, *rest = text.split("\n")
                yield _screen_line(first)
                # Indent continuation lines as a terminal rendering does: raw_msg has none.
                yield from (" " + _screen_line(part) for part in rest)
        elif event.get("action") == "result" and event.get("type") == _RES_HASH_MISMATCH:
            found = _from_json_event(event.get("payload"))
            if found is not None:
                yield found


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


def _log_tail(following: list[str]) -> list[str]:
    """The `> ` lines of the log tail Nix appends to a builder failure, if any."""
    lines: list[str] = []
    in_tail = False
    for line in following:
        if not line.startswith((" ", ">")):
            break  # continuation lines of an error are indented; anything else is new output
        if _LOG_TAIL.match(line):
            in_tail = True
        elif in_tail and (log := _LOG_LINE.match(line)):
            lines.append(log["line"])
        elif in_tail:
            break
    return lines


def parse_failures(output: str) -> list[BuildFailure]:
    """Builders that failed for a reason other than a hash mismatch, first report per path.

    Dependency failures are left out (they name the dependent, not the culprit), and so is any
    derivation that also had a mismatch: after a remote build's mismatch Nix 2.8 still prints
    "builder for '...' failed with exit code 1" for it.
    """
    mismatched = {m.path for m in parse_mismatches(output)}
    lines = [item for item in _events(output) if isinstance(item, str)]
    found: dict[str, BuildFailure] = {}
    for index, line in enumerate(lines):
        if builder := _BUILDER_FAILED.search(line):
            path, reason = builder["path"], f"builder {builder['status']}"
            tail_start = index + 1
        elif (cannot := _CANNOT_BUILD.search(line)) and index + 1 < len(lines):
            reason_line = _REASON.match(lines[index + 1])
            if reason_line is None:
                continue  # a dependency failed, or some other reason than the builder
            path, reason = cannot["path"], reason_line["reason"]
            tail_start = index + 2
        else:
            continue
        if path in mismatched or path in found:
            continue
        message = "\n".join([reason, *_log_tail(lines[tail_start:])])
        found[path] = BuildFailure(path, message)
    return list(found.values())


_UNBUILDABLE = re.compile(
    r"a '(?P<system>[^']+)' with features \{[^}]*\} is required to build '(?P<path>[^']+\.drv)'")


def parse_unbuildable(output: str) -> dict[str, str]:
    """Derivations Nix cannot build here for want of a machine of their system (no builder
    for it): .drv path -> the system it needs. Not a failure of the derivation itself."""
    return {m["path"]: m["system"] for m in _UNBUILDABLE.finditer(strip_ansi(output))}
