"""parse_mismatches and parse_failures: real Nix 2.8 output and the other versions' templates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fodhash.hashes import Algo, Hash, fake, parse_hash
from fodhash.mismatch import (
    BuildFailure,
    Mismatch,
    parse_failures,
    parse_mismatches,
    strip_ansi,
)

TRANSCRIPTS = Path(__file__).parent / "transcripts"

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
    tested = {p.values[0] for p in TRANSCRIPT_CASES} | {p.values[0] for p in FAILURE_TRANSCRIPTS}
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
