"""The parsers of fodhash.nix.mismatch: real output of Nix 2.8, 2.26 and 2.34, the other versions'
templates, and both as logs and pastes carry them (prefixed, de-indented, double-spaced, cut)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import TRANSCRIPTS

from fodhash.hashes.encoding import Algo, Hash, parse_hash
from fodhash.hashes.fakes import fake
from fodhash.nix.mismatch import (
    BuildFailure,
    Mismatch,
    Refusal,
    parse_failures,
    parse_mismatches,
    parse_named_refusals,
    parse_pin_mismatches,
    parse_refusals,
    parse_unbuildable,
    strip_ansi,
)

FAKE = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
FAKE_NIX32 = "0" * 52
# sha256 of b"hi\n" in the forms different Nix versions print it.
HI_SRI = "sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q="
HI_NIX32 = "1r3v22qkypccqifzbww5lrn6hf1chi23m6zzkyvb8bvg457nxslq"
HI_BASE16 = "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"
LIX_SRI = "sha256-TD9sS5OZcV5vzKQxcFEq+jRSZrOU4Whl9Pfzzr9KsmA="
MD5_HI = "764efa883dda1e11db47671c4a3bbd9e"
SHA1_HI_NIX32 = "fd540npwk7x370s4s2jzpx74wf365jjm"
SHA512_HI = (
    "sha512-14q7BUJzaGX5RwRSFgnCMNrAOi82nQQ6whLWkzuRQQ4GOZ43+cXMiENqMXNzMMHI7MssL583TW"
    "L3FkMqMtUPrA=="
)

DRV = "/nix/store/2wf839h7gcl5wqq187wk7ry5zg4a3cbq-fodhash-flat.drv"
DRV_B = "/nix/store/k3q3gxm5hr745gbcjx8wn5x6r4jyxb76-fodhash-one.drv"
DRV_C = "/nix/store/fynk2ksa0sgqxy1vz33grpiwsqv4cydk-fodhash-two.drv"
OUT = "/nix/store/9x0bfm1cwnx2kyq9v2a0lb2s6yfaiqly-source"
CONSUMER = "/nix/store/i5qws82j4cr698m741zaja19la9dmnyn-fodhash-consumer.drv"
BROKEN = "/nix/store/qj7zpvp52g0i8ari97kzg932h2wjl0vv-fodhash-broken.drv"

RED, MAGENTA, RESET = "\x1b[31;1m", "\x1b[35;1m", "\x1b[0m"


def transcript(name: str) -> str:
    # Bytes, not read_text(): universal newlines would turn the pty's \r\n into \n.
    return (TRANSCRIPTS / name).read_bytes().decode()


def sri(text: str) -> Hash:
    return parse_hash(text).hash


def found(output: str) -> list[tuple[str, str]]:
    return [(m.path, m.got.sri) for m in parse_mismatches(output)]


def nix24(path: str, got: str, specified: str = FAKE) -> str:
    """The 2.4+ message as Nix renders it on a pipe."""
    return (
        f"error: hash mismatch in fixed-output derivation '{path}':\n"
        f"         specified: {specified}\n"
        f"            got:    {got}\n"
    )


def nix_json(**event: object) -> str:
    return "@nix " + json.dumps(event) + "\n"


# --- Real Nix 2.8 output -------------------------------------------------------------------

TRANSCRIPT_CASES = [
    pytest.param("nix-2.8-nix-build-plain.txt", [(DRV, HI_SRI)], id="nix-build-plain"),
    pytest.param(
        "nix-2.8-nix-store-realise-plain.txt",
        [
            (
                "/nix/store/7mqppgxw24ryhk5aq06kma84v02r7ysi-fodhash-realise.drv",
                "sha256-SKTs6s1ueOMM3Nwf3h08RmCmabx74arSTeVtgwHypBw=",
            )
        ],
        id="nix-store-realise-plain",
    ),
    pytest.param(
        "nix-2.8-keep-going-two.txt",
        [
            (DRV_B, "sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY="),
            (DRV_C, "sha256-J92O1EqD/5TVV/n9BBLtWoy8pp6gSSLYjAEYSgcwClo="),
        ],
        id="keep-going-two",
    ),
    pytest.param(
        "nix-2.8-pty-colour.txt",
        [
            (
                "/nix/store/x05japifnfbll33gscc3hfahx4z2c6f3-fodhash-pty.drv",
                "sha256-UhdnBzNjsLM+raksRaZ+jiG8fg8O+blZPMhHIAy3twU=",
            )
        ],
        id="pty-colour",
    ),
    pytest.param(
        "nix-2.8-internal-json.txt",
        [
            (
                "/nix/store/qpn39icdvnx963a8qlnx06xfqrrg5c72-fodhash-json.drv",
                "sha256-5tQYapOFec7tTtWy/M1CoyRI3NprDdvP1J/HAXe76a4=",
            )
        ],
        id="internal-json",
    ),
    *(
        pytest.param(
            name,
            [
                (
                    "/nix/store/cw3v0yx2y7zcnmgryr9i43wyfkdicqqf-fodhash-flake.drv",
                    "sha256-7lvuC+21ew+xFre6VdxoLUn1Px0iB60D6lzfA1xJCyk=",
                )
            ],
            id=name.removeprefix("nix-2.8-").removesuffix(".txt"),
        )
        for name in ("nix-2.8-nix-build-flake.txt", "nix-2.8-nix-build-flake-pty.txt")
    ),
    # nix build 2.8 shows only the first failing installable, even with --keep-going.
    pytest.param(
        "nix-2.8-nix-build-flake-keep-going-two.txt",
        [(DRV_B, "sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY=")],
        id="nix-build-flake-keep-going-two",
    ),
    pytest.param(
        "nix-2.8-sha512-recursive.txt",
        [
            (
                "/nix/store/m4hrazwrp2knxiwqcink2yris93h3pqk-fodhash-recursive512.drv",
                "sha512-AE3WJQ5qbVp6eGZ4aRtWP0Vs8scTzsa4SRnrENCRfceLf5nJs9X9jzo6no7aSyyGq8b8EptEQOrr9yJgf9HXYQ==",
            )
        ],
        id="sha512-recursive",
    ),
    *(
        pytest.param(
            name,
            [
                (
                    "/nix/store/n2zdq20iar26gaj74izib5cmqc4frjy9-fodhash-mixed.drv",
                    "sha256-IYcG0+05+xQb6nge4DRfUZpiLdsjpeIxo4bBgcn92qU=",
                )
            ],
            id=name.removeprefix("nix-2.8-").removesuffix(".txt"),
        )
        for name in (
            "nix-2.8-keep-going-mismatch-and-failure.txt",
            "nix-2.8-pty-keep-going-mismatch-and-failure.txt",
            "nix-2.8-internal-json-keep-going-mismatch-and-failure.txt",
        )
    ),
    # Through a real remote builder (tests/remote_builder.py): sshd on loopback, its own store.
    pytest.param(
        "nix-2.8-remote-builder.txt",
        [("/nix/store/v5h0afffkya9q81z9k9yh53pldqma4l2-fodhash-remote-builder.drv", HI_SRI)],
        id="remote-builder",
    ),
    # The builder echoes "got: <a real hash>", "npm got 12.0.0" and an indented "got:" line.
    pytest.param(
        "nix-2.8-log-says-got.txt",
        [
            (
                "/nix/store/4x1y2kw75ji09nzf74g8vg9w8jyi4svz-fodhash-says-got.drv",
                "sha256-0+EvaRrJ8usAkfj/J442Lj5fFRUYMD77r9mrSt4FjeM=",
            )
        ],
        id="log-says-got",
    ),
    pytest.param(
        "nix-2.8-empty-hash-warning.txt",
        [
            (
                "/nix/store/2kcq8zd8n1xj63afxlg200h8hm384akk-fodhash-empty.drv",
                "sha256-Rf0vnfGHvEEdyA31xMSESsAPTdabxpRT8Yk6XRQ0M9Y=",
            )
        ],
        id="empty-hash-warning",
    ),
    pytest.param("nix-2.8-empty-hash-no-algo.txt", [], id="empty-hash-no-algo"),
    pytest.param("nix-2.8-builder-failed.txt", [], id="builder-failed"),
    pytest.param("nix-2.8-builder-failed-fod.txt", [], id="builder-failed-fod"),
    pytest.param("nix-2.8-builder-failed-flake.txt", [], id="builder-failed-flake"),
    pytest.param("nix-2.8-pty-builder-failed-flake.txt", [], id="pty-builder-failed-flake"),
]


@pytest.mark.parametrize(("name", "expected"), TRANSCRIPT_CASES)
def test_transcripts(name: str, expected: list[tuple[str, str]]) -> None:
    mismatches = parse_mismatches(transcript(name))
    assert [(m.path, m.got.sri) for m in mismatches] == expected
    # Every recorded derivation asked for the all-zero hash (lib.fakeHash, or "" for sha256).
    assert all(m.specified is not None and m.specified.is_fake for m in mismatches)


def test_every_transcript_is_tested() -> None:
    tested = {p.values[0] for p in [*TRANSCRIPT_CASES, *FAILURE_TRANSCRIPTS, *MODERN_CASES]}
    tested |= {f"{p.values[0]}.txt" for p in PIN_CASES}
    assert {p.name for p in TRANSCRIPTS.glob("*.txt")} == tested


def test_pty_transcripts_are_raw() -> None:
    text = transcript("nix-2.8-nix-build-flake-pty.txt")
    assert "\r\n" in text
    assert "\r\x1b[0m\x1b[K\r\x1b[K\x1b[31;1merror:" in text


# --- Templates of versions that cannot run here --------------------------------------------

# --keep-going: three blocks, build log lines (some saying "got") in between.
KEEP_GOING_THREE = (
    f"building '{DRV}'...\n"
    "npm WARN deprecated got@11.8.5\n"
    f"these 3 derivations will be built:\n  {DRV}\n  {DRV_B}\n  {DRV_C}\n"
    + nix24(DRV, HI_SRI)
    + f"building '{DRV_B}'...\n"
    f"got: {FAKE}\n"
    + nix24(DRV_B, LIX_SRI)
    + "added 312 packages, and audited 313 packages in 4s\n"
    "npm got 12.0.0\n"
    + nix24(DRV_C, SHA512_HI, specified="sha512-" + "A" * 86 + "==")
    + f"error: build of '{DRV}', '{DRV_B}', '{DRV_C}' failed\n"
)

TEMPLATE_CASES = [
    pytest.param(
        "building path(s) \u2018/nix/store/9x0bfm1cwnx2kyq9v2a0lb2s6yfaiqly-source\u2019\n"
        f"error: output path \u2018{OUT}\u2019 has r:sha256 hash \u2018{HI_NIX32}\u2019 "
        f"when \u2018{FAKE_NIX32}\u2019 was expected\n",
        [Mismatch(OUT, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-1.x",
    ),
    pytest.param(
        f"error: output path \u2018{OUT}\u2019 has md5 hash \u2018{MD5_HI}\u2019 "
        f"when \u2018{'0' * 32}\u2019 was expected\n",
        [Mismatch(OUT, fake(Algo.MD5), parse_hash(MD5_HI, Algo.MD5).hash)],
        id="nix-1.x-md5-base16",
    ),
    # Before 1.11 the wanted hash comes first; early releases quote with `...' and print base16.
    pytest.param(
        f"error: output path \u2018{OUT}\u2019 should have r:sha256 hash \u2018{FAKE_NIX32}\u2019, "
        f"instead has \u2018{HI_NIX32}\u2019\n",
        [Mismatch(OUT, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-1.10",
    ),
    pytest.param(
        f"error: output path `{OUT}' should have sha256 hash `{'0' * 64}', instead has `{HI_BASE16}'\n",
        [Mismatch(OUT, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-1.x-early-base16",
    ),
    # Cut at the terminal's width: no path to map the got: to, so nothing is found.
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV[:40]}\n"
        f"         specified: {FAKE}\n"
        f"            got:    {HI_SRI}\n",
        [],
        id="header-cut",
    ),
    pytest.param(
        f"fixed-output derivation produced path '{OUT}' with sha256 hash '{HI_NIX32}' "
        f"instead of the expected hash '{FAKE_NIX32}'\n",
        [Mismatch(OUT, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-2.0",
    ),
    pytest.param(
        f"builder for '{DRV}' failed with exit code 0\n"
        f"error: fixed-output derivation produced path '{OUT}' with r:sha1 hash "
        f"'{SHA1_HI_NIX32}' instead of the expected hash '{'0' * 32}'\n",
        [Mismatch(OUT, fake(Algo.SHA1), parse_hash(SHA1_HI_NIX32, Algo.SHA1).hash)],
        id="nix-2.0-recursive-sha1",
    ),
    pytest.param(
        f"building '{DRV}'...\n"
        f"hash mismatch in fixed-output derivation '{OUT}':\n"
        f"  wanted: sha256:{FAKE_NIX32}\n"
        f"  got:    sha256:{HI_NIX32}\n"
        f"error: build of '{DRV}' failed\n",
        [Mismatch(OUT, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-2.3-output-path",
    ),
    pytest.param(
        nix24(DRV, HI_SRI) + f"error: Cannot build '{CONSUMER}'.\n"
        "       Reason: 1 dependency failed.\n"
        "       Output paths:\n"
        "         /nix/store/p5ylzjm4ysq3vqcv1x2a6mbnhwidrp4f-fodhash-consumer\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="nix-2.29-dependency-failed",
    ),
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV}':\n"
        "         likely URL: https://example.org/src/hello-2.12.tar.gz\n"
        f"          specified: {FAKE}\n"
        f"             got:    {LIX_SRI}\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(LIX_SRI))],
        id="lix-2.91",
    ),
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV}':\n"
        "         likely URL: (unknown)\n"
        f"          specified: {FAKE}\n"
        f"             got:    {LIX_SRI}\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(LIX_SRI))],
        id="lix-2.93-unknown-url",
    ),
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV}':\n"
        "           likely URL: https://example.org/src/hello-2.12.tar.gz\n"
        f"            specified: {FAKE}\n"
        f"                  got: {LIX_SRI}\n"
        "        expected path: /nix/store/1xg6kcwl2lgcd5qs4l7kbxxhf7pysqcz-hello-2.12.tar.gz\n"
        "             got path: /nix/store/hjxzd3sm8zd0ikn4ak7ylbh4ldfgiz8d-hello-2.12.tar.gz\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(LIX_SRI))],
        id="lix-2.94",
    ),
    pytest.param(
        f"{RED}error:{RESET} hash mismatch in fixed-output derivation "
        f"'{MAGENTA}{DRV}{RESET}':\r\n"
        f"           likely URL: {MAGENTA}(unknown){RESET}\r\n"
        f"            specified: {MAGENTA}{FAKE}{RESET}\r\n"
        f"                  got: {MAGENTA}{LIX_SRI}{RESET}\r\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(LIX_SRI))],
        id="lix-2.94-coloured-pty",
    ),
    pytest.param(
        nix_json(action="msg", level=0, msg=nix24(DRV, HI_SRI).rstrip("\n"))
        + nix_json(
            action="result",
            id=7,
            type=109,
            payload={"storePath": DRV, "wanted": FAKE, "got": HI_SRI},
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="determinate-sri-event-and-msg",
    ),
    pytest.param(
        nix_json(
            action="result",
            id=7,
            type=109,
            payload={
                "storePath": DRV,
                "wanted": {"algo": "sha256", "base16": "0" * 64},
                "got": {"algo": "sha256", "base16": HI_BASE16},
            },
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="determinate-object-event",
    ),
    pytest.param(
        nix_json(
            action="result",
            id=7,
            type=109,
            payload={"storePath": DRV_B, "wanted": FAKE, "got": SHA512_HI},
        )
        + nix_json(action="msg", level=0, msg=nix24(DRV_B, SHA512_HI).rstrip("\n")),
        [Mismatch(DRV_B, fake(Algo.SHA256), sri(SHA512_HI))],
        id="determinate-event-first",
    ),
    pytest.param(
        f"error: build of '{DRV}' on 'ssh://root@127.0.0.1' failed: hash mismatch in "
        f"fixed-output derivation '{DRV}':\n"
        f"         specified: {FAKE}\n"
        f"            got:    {HI_SRI}\n"
        f"error: builder for '{DRV}' failed with exit code 1\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="remote-builder",
    ),
    pytest.param(
        f"\r{RESET}\x1b[K\r\x1b[K{RED}error:{RESET} {MAGENTA}{RESET}hash mismatch in "
        f"fixed-output derivation '{MAGENTA}{DRV}{RESET}':\r\n"
        f"         specified: {MAGENTA}{FAKE}{RESET}\r\n"
        f"            got:    {MAGENTA}{HI_SRI}{RESET}{RESET}{RESET}\r\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="coloured-nix-build-pty",
    ),
    # A terminal shows only what follows the last \r: the progress bar is overwritten.
    pytest.param(
        "".join(
            f"\r\x1b[K[0/1 built] building fodhash-flat\r\x1b[K{line}\r\n"
            for line in nix24(DRV, HI_SRI).splitlines()
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="progress-bar-overwritten",
    ),
    pytest.param(
        nix_json(
            action="msg",
            level=0,
            column=None,
            file=None,
            line=None,
            msg=f"{RED}error:{RESET} hash mismatch in fixed-output derivation "
            f"'{MAGENTA}{DRV}{RESET}':\n"
            f"         specified: {MAGENTA}{FAKE}{RESET}\n"
            f"            got:    {MAGENTA}{HI_SRI}{RESET}",
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="internal-json-without-raw-msg",
    ),
    pytest.param(
        nix_json(
            action="msg",
            level=0,
            raw_msg=f"hash mismatch in fixed-output derivation '{MAGENTA}{DRV}{RESET}':\n"
            f"  specified: {MAGENTA}{FAKE}{RESET}\n"
            f"     got:    {MAGENTA}{HI_SRI}{RESET}",
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="internal-json-raw-msg-only",
    ),
    pytest.param(
        nix_json(action="result", id=3, type=101, fields=[f"   got:    {LIX_SRI}"])
        + nix_json(
            action="msg",
            level=0,
            msg=nix24(DRV, HI_SRI).rstrip("\n"),
            raw_msg="hash mismatch ...",
        ),
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="internal-json-log-line-says-got",
    ),
    pytest.param(
        KEEP_GOING_THREE,
        [
            Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI)),
            Mismatch(DRV_B, fake(Algo.SHA256), sri(LIX_SRI)),
            Mismatch(DRV_C, fake(Algo.SHA512), sri(SHA512_HI)),
        ],
        id="keep-going-three-interleaved",
    ),
    pytest.param(
        nix24(DRV, HI_SRI) + nix24(DRV_B, LIX_SRI) + nix24(DRV, LIX_SRI),
        [
            Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI)),
            Mismatch(DRV_B, fake(Algo.SHA256), sri(LIX_SRI)),
        ],
        id="duplicates-keep-first",
    ),
    # A log line right after the block must not replace Nix's own got.
    pytest.param(
        "got: sha256-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=\n"
        + nix24(DRV, HI_SRI)
        + f"            got:    {LIX_SRI}\n",
        [Mismatch(DRV, fake(Algo.SHA256), sri(HI_SRI))],
        id="got-in-log-after-block",
    ),
    pytest.param(
        f"building '{DRV}'...\n"
        f"got: {HI_SRI}\n"
        f"   got:    {LIX_SRI}\n"
        "npm got 12.0.0\n"
        f"error: builder for '{DRV}' failed with exit code 1\n",
        [],
        id="got-in-log-without-mismatch",
    ),
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV}':\n"
        "         specified: sha256-not-a-hash\n"
        f"            got:    {HI_SRI}\n",
        [Mismatch(DRV, None, sri(HI_SRI))],
        id="unparseable-specified",
    ),
    pytest.param(
        f"error: hash mismatch in fixed-output derivation '{DRV}':\n"
        f"         specified: {FAKE}\n"
        "error: interrupted by the user\n",
        [],
        id="truncated-block-without-got",
    ),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("output", "expected"), TEMPLATE_CASES)
def test_templates(output: str, expected: list[Mismatch]) -> None:
    assert parse_mismatches(output) == expected


def test_keep_going_order_and_specified_algorithms() -> None:
    mismatches = parse_mismatches(KEEP_GOING_THREE)
    assert [m.path for m in mismatches] == [DRV, DRV_B, DRV_C]
    assert [m.got.algo for m in mismatches] == [Algo.SHA256, Algo.SHA256, Algo.SHA512]


# --- Builder failures ----------------------------------------------------------------------

FAILED_1 = "builder failed with exit code 1"
CURL_TAIL = "> fetching tarball\n> curl: (6) Could not resolve host: example.invalid"

FAILURE_TRANSCRIPTS = [
    pytest.param("nix-2.8-builder-failed.txt", [BuildFailure(BROKEN, FAILED_1)], id="legacy"),
    pytest.param(
        "nix-2.8-builder-failed-fod.txt",
        [
            BuildFailure(
                "/nix/store/ddj5mx3phw88694cs5xmjw4n914fgsyx-fodhash-broken-fod.drv",
                "builder failed with exit code 3",
            )
        ],
        id="legacy-fod",
    ),
    pytest.param(
        "nix-2.8-builder-failed-flake.txt",
        [BuildFailure(BROKEN, f"{FAILED_1}\n{CURL_TAIL}")],
        id="nix-build-log-tail",
    ),
    pytest.param(
        "nix-2.8-pty-builder-failed-flake.txt",
        [BuildFailure(BROKEN, f"{FAILED_1}\n{CURL_TAIL}")],
        id="nix-build-pty-log-tail",
    ),
    *(
        pytest.param(name, [BuildFailure(BROKEN, FAILED_1)], id=name[8:-4])
        for name in (
            "nix-2.8-keep-going-mismatch-and-failure.txt",
            "nix-2.8-pty-keep-going-mismatch-and-failure.txt",
            "nix-2.8-internal-json-keep-going-mismatch-and-failure.txt",
        )
    ),
]


@pytest.mark.parametrize(("name", "expected"), FAILURE_TRANSCRIPTS)
def test_failure_transcripts(name: str, expected: list[BuildFailure]) -> None:
    assert parse_failures(transcript(name)) == expected


@pytest.mark.parametrize(
    "name",
    [
        "nix-2.8-nix-build-plain.txt",
        "nix-2.8-keep-going-two.txt",  # "2 dependencies of derivation ... failed to build"
        "nix-2.8-log-says-got.txt",
        "nix-2.8-remote-builder.txt",  # "builder for ... failed" after the remote mismatch
        "nix-2.8-internal-json.txt",
        "nix-2.8-nix-build-flake-pty.txt",
        "nix-2.8-empty-hash-no-algo.txt",
    ],
)
def test_no_failure_in_mismatch_transcripts(name: str) -> None:
    text = transcript(name)
    assert "error:" in text
    assert parse_failures(text) == []


FAILURE_TEMPLATES = [
    pytest.param(
        f"error: build of '{DRV}' on 'ssh://root@127.0.0.1' failed: hash mismatch in "
        f"fixed-output derivation '{DRV}':\n"
        f"         specified: {FAKE}\n"
        f"            got:    {HI_SRI}\n"
        f"error: builder for '{DRV}' failed with exit code 1\n",
        [],
        id="remote-mismatch-is-not-a-failure",
    ),
    pytest.param(
        f"error: 1 dependencies of derivation '{CONSUMER}' failed to build\n"
        f"error: build of '{CONSUMER}' failed\n",
        [],
        id="nix-2.4-dependencies",
    ),
    pytest.param(
        f"error: Cannot build '{CONSUMER}'.\n"
        "       Reason: 1 dependency failed.\n"
        "       Output paths:\n"
        "         /nix/store/p5ylzjm4ysq3vqcv1x2a6mbnhwidrp4f-fodhash-consumer\n",
        [],
        id="nix-2.29-dependency",
    ),
    pytest.param(
        f"error: cannot build derivation '{CONSUMER}': 1 dependencies couldn't be built\n",
        [],
        id="nix-2.3-dependency",
    ),
    pytest.param(
        f"error: Cannot build '{BROKEN}'.\n"
        "       Reason: builder failed with exit code 2.\n"
        "       Output paths:\n"
        "         /nix/store/zc0nsh6mbqafy0xw1jy0xbsgvj2j1a6c-fodhash-broken\n"
        "       Last 2 log lines:\n"
        "       > fetching tarball\n"
        "       > curl: (6) Could not resolve host: example.invalid\n"
        "       For full logs, run:\n"
        f"         nix log {BROKEN}\n"
        f"error: Cannot build '{CONSUMER}'.\n"
        "       Reason: 1 dependency failed.\n",
        [BuildFailure(BROKEN, f"builder failed with exit code 2\n{CURL_TAIL}")],
        id="nix-2.29-builder",
    ),
    pytest.param(
        f"{RED}error:{RESET} Cannot build '{MAGENTA}{BROKEN}{RESET}'.\r\n"
        f"       Reason: {RED}builder failed with exit code 1{RESET}.\r\n"
        "       Last 1 log lines:\r\n"
        "       > make: *** [Makefile:12: all] Error 1\r\n",
        [BuildFailure(BROKEN, f"{FAILED_1}\n> make: *** [Makefile:12: all] Error 1")],
        id="nix-2.29-coloured",
    ),
    pytest.param(
        f"error: builder for '{BROKEN}' failed due to signal 9 (Killed);\n"
        "       last 1 log lines:\n"
        "       > Killed\n"
        f"       For full logs, run 'nix log {BROKEN}'.\n",
        [BuildFailure(BROKEN, "builder failed due to signal 9 (Killed)\n> Killed")],
        id="nix-2.8-signal",
    ),
    pytest.param(
        f"error: builder for \u2018{BROKEN}\u2019 failed with exit code 1\n",
        [BuildFailure(BROKEN, FAILED_1)],
        id="nix-1.x",
    ),
    pytest.param(
        nix_json(
            action="msg",
            level=0,
            raw_msg=f"builder for '{MAGENTA}{BROKEN}{RESET}' failed with exit code 1;\n"
            "last 2 log lines:\n> fetching tarball\n"
            "> curl: (6) Could not resolve host: example.invalid\n"
            f"For full logs, run 'nix log {BROKEN}'.",
        ),
        [BuildFailure(BROKEN, f"{FAILED_1}\n{CURL_TAIL}")],
        id="internal-json-raw-msg-only",
    ),
    pytest.param(
        f"error: builder for '{BROKEN}' failed with exit code 1\n"
        f"error: builder for '{BROKEN}' failed with exit code 2\n"
        + nix24(DRV, HI_SRI)
        + f"error: builder for '{DRV}' failed with exit code 1\n",
        [BuildFailure(BROKEN, FAILED_1)],
        id="duplicates-and-mismatch",
    ),
]


@pytest.mark.parametrize(("output", "expected"), FAILURE_TEMPLATES)
def test_failure_templates(output: str, expected: list[BuildFailure]) -> None:
    assert parse_failures(output) == expected


def test_mixed_transcript_separates_mismatch_from_failure() -> None:
    text = transcript("nix-2.8-keep-going-mismatch-and-failure.txt")
    mismatched = {m.path for m in parse_mismatches(text)}
    failed = {f.path for f in parse_failures(text)}
    assert mismatched and failed
    assert not mismatched & failed


# --- Real Nix 2.26 and 2.34 output ---------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What every parser here finds in one output."""

    mismatches: list[Mismatch] = field(default_factory=list)
    failures: list[BuildFailure] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    unbuildable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, output: str) -> Parsed:
        return cls(parse_mismatches(output), parse_failures(output), parse_refusals(output),
                   parse_unbuildable(output))


def fod(path: str, got: str) -> Mismatch:
    """A FOD of tests/transcripts/nix-2.26-2.34-fods.nix: they all ask for lib.fakeHash."""
    return Mismatch(path, fake(Algo.SHA256), sri(got))


MN = "/nix/store/{}.drv".format
SINGLE = fod(MN("aiw27hg1dpxdnrwg1w4nlyjchacx4xrw-mn-single"),
             "sha256-+epLhBP3uEOD0Wtv3zaHJDn51yI2I0gMDuv7oOUpHe0=")
REALISE = fod(MN("ff6apj9q075251h4l868i9g7z0dczlap-mn-realise"),
              "sha256-SKTs6s1ueOMM3Nwf3h08RmCmabx74arSTeVtgwHypBw=")
PTY = fod(MN("9zq2nk6ng852bimy8wqdjpmc8bqkf5n5-mn-pty"),
          "sha256-UhdnBzNjsLM+raksRaZ+jiG8fg8O+blZPMhHIAy3twU=")
JSON = fod(MN("d9nkqbfcb86lpcn0rvrxgi7ybgrrbfl8-mn-json"),
           "sha256-5tQYapOFec7tTtWy/M1CoyRI3NprDdvP1J/HAXe76a4=")
FLAKE = fod(MN("lxlg8jgf9yhrzyb6jmj91sys0r3v9w4w-mn-flake"),
            "sha256-7lvuC+21ew+xFre6VdxoLUn1Px0iB60D6lzfA1xJCyk=")
FLAKE_ONE = fod(MN("bi0m5c31gzlm738wqybbvdf2pxggkwmh-mn-flake-one"),
                "sha256-Lfl8aOyYqwUpt7hd03Ih9a5pJr4uW+dYE1BbYD+gIMA=")
FLAKE_TWO = fod(MN("7da6jlb0klbxl61jdxg4r57plkwcgbbi-mn-flake-two"),
                "sha256-gRtdSoQawXEuUkhZGscA2XNBgJllqlBPh7n4/1+qhgc=")
ONE = fod(MN("a4mbddvjml219w7m1n84mbxjbazm5r3r-mn-one"),
          "sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY=")
TWO = fod(MN("avhg5v7x10zsvyqrakjgdjc4lhi5jgqp-mn-two"),
          "sha256-J92O1EqD/5TVV/n9BBLtWoy8pp6gSSLYjAEYSgcwClo=")
SAME_A = fod(MN("x105y9yrh793z45a4dlrckcna99kdn9k-mn-same"),
             "sha256-h0KPxSKAPTEGXnvOPPA/5HUJZjHl4Hu9eg/eYMTPJcc=")
SAME_B = fod(MN("1j4950sravkzns3mfb2rq9lwbzqh7i24-mn-same"),
             "sha256-AmOCmYm2/ZVPcrqvL8ZLwuLwHWktTecphuqAj26ZgT8=")
MN_BROKEN = BuildFailure(MN("jg9mfy0mijhl7dld4ykq5zd19y6axqwn-mn-broken"),
                         "builder failed with exit code 3")
REFS = MN("9x0kn1nd53pd2rlj3kmkn3xrnhn1qfns-mn-refs")
REFS_TRUE = MN("v3a5p75kzh7wmj5hp5p087lsdbp11752-mn-refs")  # with REFS_GOT as its hash
REMOTE_REFS = MN("h6glvhdwyv1hhwb2m7g08jafa4adv7p1-mn-remote-refs")
LOCK = "/nix/store/y0iic1l21mk1984kfnmxdfpi48shzdff-lock.json"  # `cp ${lock} $out/` keeps its name
REFS_GOT = "sha256-iuRw4QFNobvDrB60v0l8bcrA5ZXsg3k80Xno5f2tAzI="
DARWIN = MN("blc6wgrp8i7pcrb5d9qbpdywhhlx496z-mn-darwin")
REMOTE_GOT = "sha256-fDpX7Ib27o9Se+fVlT6yUyNd9Urc1/TrxmEIej8606Y="
REMOTE_ONE = fod(MN("j409q6iihq33kgsry056a2p20ayzhhdx-mn-remote-one"), REMOTE_GOT)
REMOTE_ARM = fod(MN("7zn34zhyiraf7dm791rdgngi7gmi1h4k-mn-remote-one"), REMOTE_GOT)
REMOTE_BROKEN = BuildFailure(MN("8rp2r9gfvb71dq5cl2c7jn5nv272496i-mn-remote-broken"),
                             "builder failed with exit code 3")


def both(name: str, expected: Parsed) -> list[Any]:
    """A transcript both versions print alike: the same parse for nix-2.26-NAME and nix-2.34-NAME."""
    return [pytest.param(f"nix-{v}-{name}.txt", expected, id=f"{v}-{name}") for v in ("2.26", "2.34")]


def one(version: str, name: str, expected: Parsed) -> Any:
    return pytest.param(f"nix-{version}-{name}.txt", expected, id=f"{version}-{name}")


KEEP_GOING = Parsed([ONE, TWO], [MN_BROKEN])  # 2.26 "builder for ...", 2.34 "Cannot build ..."

MODERN_CASES = [
    *both("nix-build-single", Parsed([SINGLE])),
    *both("nix-store-realise-single", Parsed([REALISE])),
    *both("nix-build-pty", Parsed([PTY])),
    *both("nix-build-internal-json", Parsed([JSON])),
    *both("nix-build-flake", Parsed([FLAKE])),
    *both("nix-build-flake-pty", Parsed([FLAKE])),
    *both("nix-build-flake-internal-json", Parsed([FLAKE])),
    *both("nix-build-flake-keep-going-two", Parsed([FLAKE_ONE, FLAKE_TWO])),
    *both("nix-build-keep-going", KEEP_GOING),
    *both("nix-store-realise-keep-going", KEEP_GOING),
    *both("nix-store-realise-keep-going-pty", KEEP_GOING),
    *both("nix-store-realise-keep-going-internal-json", KEEP_GOING),
    *both("nix-store-realise-same-output-path", Parsed([SAME_A, SAME_B])),
    *both("nix-store-realise-ok", Parsed()),
    # 2.26 refuses the FOD before it checks the hash: no got: at all. 2.34 checks the hash first.
    one("2.26", "nix-store-realise-fod-references-store-path", Parsed(refusals=[Refusal(REFS, 1, LOCK)])),
    one("2.34", "nix-store-realise-fod-references-store-path", Parsed([fod(REFS, REFS_GOT)])),
    # ... and refuses the FOD once its hash is that got:.
    one("2.34", "nix-store-realise-fod-references-store-path-true-hash",
        Parsed(refusals=[Refusal(REFS_TRUE, 1, LOCK)])),
    # A flat FOD: refused by name only, no .drv path, no got: (parse_named_refusals, below).
    one("2.26", "nix-store-realise-flat-fod-references", Parsed()),
    one("2.34", "nix-store-realise-flat-fod-references", Parsed()),
    # The darwin FOD: 2.26 "a 'aarch64-darwin' with features {} is required to build" (and it
    # stops there, exit 1, mn-one unbuilt), 2.34 "Cannot build ... Reason: platform mismatch /
    # Required system: 'aarch64-darwin'" after building mn-one.
    one("2.26", "nix-store-realise-no-machine-for-system",
        Parsed(unbuildable={DARWIN: "aarch64-darwin"})),
    one("2.34", "nix-store-realise-no-machine-for-system",
        Parsed([ONE], unbuildable={DARWIN: "aarch64-darwin"})),
    # Through a remote builder: "build of '...' on 'ssh://...' failed: " + the remote error, then
    # a builder failure for the same FOD, which is the mismatch's or the refusal's echo.
    *both("remote-aarch64-mismatch", Parsed([REMOTE_ARM])),
    *both("remote-keep-going-mismatch-and-failure", Parsed([REMOTE_ONE], [REMOTE_BROKEN])),
    one("2.26", "remote-fod-references-store-path",
        Parsed(refusals=[Refusal(REMOTE_REFS, 1, LOCK)])),
    one("2.34", "remote-fod-references-store-path", Parsed([fod(REMOTE_REFS, REFS_GOT)])),
]


@pytest.mark.parametrize(("name", "expected"), MODERN_CASES)
def test_modern_transcripts(name: str, expected: Parsed) -> None:
    assert Parsed.of(transcript(name)) == expected


def test_modern_transcripts_start_with_their_command() -> None:
    for param in MODERN_CASES:
        first = transcript(str(param.values[0])).split("\n", 1)[0]
        assert first.startswith("$ ") and "nix" in first


# --- Refusals and unbuildable derivations: templates -----------------------------------------

REFUSAL_TEMPLATES = [
    pytest.param(
        f"{RED}error:{RESET} fixed-output derivations must not reference store paths: "
        f"'{MAGENTA}{REFS}{RESET}' references {MAGENTA}2{RESET} distinct paths, e.g. "
        f"'{MAGENTA}{LOCK}{RESET}'\r\n",
        [Refusal(REFS, 2, LOCK)],
        id="nix-2.26-coloured",
    ),
    pytest.param(
        nix_json(action="msg", level=0,
                 msg=f"{RED}error:{RESET} fixed-output derivations must not reference store "
                 f"paths: '{MAGENTA}{REFS}{RESET}' references 1 distinct paths, e.g. '{LOCK}'"),
        [Refusal(REFS, 1, LOCK)],
        id="nix-2.26-internal-json",
    ),
    pytest.param(
        f"error: the fixed-output derivation '{REFS}' must not reference store paths but 2 "
        "such references were found:\n"
        "         /nix/store/1q8w6gl1ll0mwfkqc3c2yx005s6wwfrl-hello-2.12.1\n"
        "         /nix/store/wn7v2vhyyyi6clcyn0s9ixvl7d4d87ic-glibc-2.40-36\n",
        [Refusal(REFS, 2, "/nix/store/1q8w6gl1ll0mwfkqc3c2yx005s6wwfrl-hello-2.12.1")],
        id="lix-2.93",
    ),
    pytest.param(
        f"error: illegal path references in fixed-output derivation '{REFS}'\n",
        [Refusal(REFS, None, None)],
        id="illegal-path-references",
    ),
    pytest.param(
        f"error: fixed-output derivations must not reference store paths: '{REFS}' references "
        f"1 distinct paths, e.g. '{LOCK}'\n"
        f"error: fixed-output derivations must not reference store paths: '{REFS}' references "
        f"3 distinct paths, e.g. '{OUT}'\n",
        [Refusal(REFS, 1, LOCK)],
        id="first-report-per-path",
    ),
    pytest.param(nix24(REFS, REFS_GOT), [], id="mismatch-is-no-refusal"),
]


@pytest.mark.parametrize(("output", "expected"), REFUSAL_TEMPLATES)
def test_refusal_templates(output: str, expected: list[Refusal]) -> None:
    assert parse_refusals(output) == expected
    assert parse_failures(output) == []


UNBUILDABLE_TEMPLATES = [
    pytest.param(
        f"error: Cannot build '{DARWIN}'.\n"
        "       Reason: platform mismatch\n"
        "       Required system: 'aarch64-darwin'\n"
        "       Current system: 'x86_64-linux'\n",
        {DARWIN: "aarch64-darwin"},
        id="nix-2.34",
    ),
    pytest.param(
        f"{RED}error:{RESET} Cannot build '{MAGENTA}{DARWIN}{RESET}'.\r\n"
        f"       Reason: {RED}platform mismatch{RESET}\r\n"
        f"       Required system: '{MAGENTA}aarch64-darwin{RESET}'\r\n"
        f"       Current system: '{MAGENTA}x86_64-linux{RESET}'\r\n",
        {DARWIN: "aarch64-darwin"},
        id="nix-2.34-coloured",
    ),
    pytest.param(
        f"error: Cannot build '{DARWIN}'.\n"
        "       Reason: required system or feature not available\n"
        "       Required system: 'aarch64-darwin' with features {}\n"
        "       Current system: 'x86_64-linux' with features {benchmark, big-parallel, kvm}\n",
        {DARWIN: "aarch64-darwin"},
        id="nix-2.29",
    ),
    pytest.param(
        f"error: a 'aarch64-darwin' with features {{}} is required to build '{DARWIN}', but I am "
        "a 'x86_64-linux' with features {benchmark, big-parallel, kvm, nixos-test, uid-range}\n",
        {DARWIN: "aarch64-darwin"},
        id="nix-2.8",
    ),
    # The system is this machine's; what is missing is a feature: no other machine is named.
    pytest.param(
        f"error: Cannot build '{DARWIN}'.\n"
        "       Reason: missing system features\n"
        "       Required features: {kvm}\n"
        "       Available features: {benchmark}\n",
        {},
        id="nix-2.34-missing-features",
    ),
    # A later message's "Required system:" does not belong to this one.
    pytest.param(
        f"error: Cannot build '{CONSUMER}'.\n"
        "       Reason: 1 dependency failed.\n"
        "       Output paths:\n"
        "         /nix/store/p5ylzjm4ysq3vqcv1x2a6mbnhwidrp4f-fodhash-consumer\n"
        f"error: Cannot build '{DARWIN}'.\n"
        "       Reason: platform mismatch\n"
        "       Required system: 'aarch64-darwin'\n",
        {DARWIN: "aarch64-darwin"},
        id="after-a-dependency-failure",
    ),
]


@pytest.mark.parametrize(("output", "expected"), UNBUILDABLE_TEMPLATES)
def test_unbuildable_templates(output: str, expected: dict[str, str]) -> None:
    assert parse_unbuildable(output) == expected
    assert parse_failures(output) == []  # a platform mismatch is not the builder's failure


# --- Shapes of logs and pastes ---------------------------------------------------------------
# nix-error-formats' last section: output that reaches fodhash through other programs.


def _ci_stamp(index: int) -> str:
    return f"2026-09-07T13:11:{2 + index // 100:02d}.{5093617 + 331 * index:07d}Z "


PREFIXES: dict[str, Callable[[int], str]] = {
    "ci-timestamp": _ci_stamp,
    "log-viewer-box": lambda _: "\u2503 ",
    "quote": lambda _: "> ",
    "nested-quote": lambda _: "> > ",
    "ci-timestamp-and-box": lambda i: _ci_stamp(i) + "\u2503 ",
}


def reshape(text: str, *, prefix: Callable[[int], str] | None = None, dedent: bool = False,
            double: bool = False) -> str:
    """`text` with every line prefixed alike, its indentation lost, or a blank line after each.

    Lines keep their endings: a pseudo-terminal's `\r\n` stays `\r\n`.
    """
    lines = text.split("\n")
    if dedent:
        lines = [line.lstrip(" ") for line in lines]
    if double:
        lines = [x for line in lines for x in (line, "\r" if line.endswith("\r") else "")]
    if prefix is not None:
        lines = [prefix(i) + line for i, line in enumerate(lines)]
    return "\n".join(lines)


def prefixed(prefix: Callable[[int], str]) -> Callable[[str], str]:
    return lambda text: reshape(text, prefix=prefix)


SHAPES: dict[str, Callable[[str], str]] = {
    **{name: prefixed(prefix) for name, prefix in PREFIXES.items()},
    "de-indented": lambda text: reshape(text, dedent=True),
    "double-spaced": lambda text: reshape(text, double=True),
    "all-at-once": lambda text: reshape(text, prefix=_ci_stamp, dedent=True, double=True),
    "quoted-de-indented": lambda text: reshape(text, prefix=PREFIXES["quote"], dedent=True),
}

ALL_TRANSCRIPTS = sorted(p.name for p in TRANSCRIPTS.glob("*.txt"))
TEMPLATES = {
    f"{kind}-{p.id}": str(p.values[0])
    for kind, table in (("mismatch", TEMPLATE_CASES), ("failure", FAILURE_TEMPLATES),
                        ("refusal", REFUSAL_TEMPLATES), ("unbuildable", UNBUILDABLE_TEMPLATES))
    for p in table
}


def test_reshape_helper() -> None:
    text = "error: x\n         specified: a\r\n"
    assert reshape(text, prefix=lambda _: "> ") == "> error: x\n>          specified: a\r\n> "
    assert reshape(text, dedent=True) == "error: x\nspecified: a\r\n"
    assert reshape(text, double=True) == "error: x\n\n         specified: a\r\n\r\n\n"
    assert _ci_stamp(0) == "2026-09-07T13:11:02.5093617Z "


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", ALL_TRANSCRIPTS)
def test_transcripts_in_every_shape(name: str, shape: str) -> None:
    """Real 2.8, 2.26 and 2.34 output, reshaped: the same mismatches, failures, refusals."""
    text = transcript(name)
    reshaped = SHAPES[shape](text)
    assert reshaped != text or shape == "de-indented"  # internal-json lines have no indentation
    assert Parsed.of(reshaped) == Parsed.of(text)


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_in_every_shape(name: str, shape: str) -> None:
    text = TEMPLATES[name]
    assert Parsed.of(SHAPES[shape](text)) == Parsed.of(text)


_HEADER_PATH = re.compile(r"(hash mismatch in fixed-output derivation ')(?:\x1b\[[0-9;]*m)?/nix/store/")


@pytest.mark.parametrize("name", [n for n in ALL_TRANSCRIPTS
                                  if parse_mismatches(transcript(n)) and "internal-json" not in n])
def test_transcripts_with_headers_cut_at_the_terminal_width(name: str) -> None:
    """A header cut inside its path names no derivation: its got: must not be taken."""
    lines = transcript(name).split("\n")
    cut = [line[: header.end() + 12] if (header := _HEADER_PATH.search(line)) else line
           for line in lines]
    assert cut != lines
    assert parse_mismatches("\n".join(cut)) == []


def test_a_got_outside_a_block_is_not_trusted_in_any_shape() -> None:
    """Build logs say got: (npm has a package named got); only a block's own got: counts."""
    text = transcript("nix-2.8-log-says-got.txt")
    assert "got: sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q=" in text
    for shape in SHAPES.values():
        assert [m.got.sri for m in parse_mismatches(shape(text))] == [
            "sha256-0+EvaRrJ8usAkfj/J442Lj5fFRUYMD77r9mrSt4FjeM="]


# --- strip_ansi ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"{RED}error:{RESET} x", "error: x", id="colour"),
        pytest.param("\r\x1b[0m\x1b[K\r\x1b[Kerror:", "\r\rerror:", id="erase-line-keeps-cr"),
        pytest.param("\x1b]8;;file:///nix/store\x07link\x1b]8;;\x07", "link", id="osc-hyperlink"),
        pytest.param("\x1b[1mnix log\x1b[0m'.", "nix log'.", id="bold"),
        pytest.param("plain > text [0m", "plain > text [0m", id="no-escape"),
    ],
)
def test_strip_ansi(text: str, expected: str) -> None:
    assert strip_ansi(text) == expected


# --- Pins: downloads Nix verifies while it evaluates (tests/transcripts/record_pins.py) -------

WRONG = parse_hash("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73").hash
TREE = parse_hash("sha256-aMMGNwUX9zkF83bAJmeOJ6rJVNowMdKsSExSa/ChBiY=").hash
FILE = parse_hash("0zz3k5k3pccc6xhi4ygm4wcci2mzjlry8l32pi583zzf8jga5ca8").hash
GIT = "git+file:///tmp/pins/repo"


PIN_CASES = [
    pytest.param("nix-2.8.0-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.8.0-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    pytest.param("nix-2.8.0-eval-fetchgit", f"{GIT}?rev=@REV@", (WRONG, TREE)),
    pytest.param("nix-2.26.3-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.26.3-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    pytest.param("nix-2.26.3-eval-fetchgit", f"{GIT}?exportIgnore=1&rev=@REV@", (WRONG, TREE)),
    pytest.param("nix-2.34.8-eval-fetchtarball", "file:///tmp/pins/release.tar.gz", (WRONG, TREE)),
    pytest.param("nix-2.34.8-eval-fetchurl", "file:///tmp/pins/notes.txt", (WRONG, FILE)),
    # 2.34's fetchGit calls the content's hash "expected" and the written one "got".
    pytest.param("nix-2.34.8-eval-fetchgit", f"{GIT}?exportIgnore=1&rev=@REV@", (TREE, WRONG)),
]


@pytest.mark.parametrize(("name", "source", "hashes"), PIN_CASES)
def test_pin_mismatch_of_every_version(name: str, source: str, hashes: tuple[object, object]) -> None:
    text = transcript(f"{name}.txt")
    [pin] = parse_pin_mismatches(text)
    assert pin.source == source
    assert pin.hashes == hashes
    assert parse_mismatches(text) == []  # never taken for a FOD's mismatch


def test_a_fods_mismatch_is_no_pin() -> None:
    for path in sorted(TRANSCRIPTS.glob("nix-*-nix-build-single.txt")):
        assert parse_pin_mismatches(path.read_text()) == [], path.name


def test_pin_mismatch_in_a_ci_log() -> None:
    """A log as CI shows it: timestamps in front, the indentation lost."""
    text = (TRANSCRIPTS / "nix-2.26.3-eval-fetchtarball.txt").read_text()
    logged = "\n".join(f"2026-12-03T04:00:00.1234567Z {line.strip()}" for line in text.splitlines())
    [pin] = parse_pin_mismatches(logged)
    assert pin.hashes == (WRONG, TREE)


@pytest.mark.parametrize(("name", "fod"), [
    ("nix-2.26-nix-store-realise-flat-fod-references.txt", "refsflat19-1796267817"),
    ("nix-2.34-nix-store-realise-flat-fod-references.txt", "refsflat19-1796267818"),
])
def test_a_flat_fod_refused_is_named(name: str, fod: str) -> None:
    assert parse_named_refusals(transcript(name)) == {fod}
    assert parse_named_refusals(transcript("nix-2.34-nix-store-realise-keep-going.txt")) == set()

