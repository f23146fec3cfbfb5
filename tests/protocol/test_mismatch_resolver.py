"""What the resolver makes of today's Nix messages: a FOD refused because its output references
a store path, a platform no machine here builds. On recorded 2.26 and 2.34 output, and end to
end with the Nix on this machine."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from helpers import TRANSCRIPTS, fodhash, snapshot

from fodhash.hashes.encoding import Algo, Hash
from fodhash.hashes.fakes import fake
from fodhash.nix import process
from fodhash.nix.derivations import Derivation
from fodhash.protocol.build import Build, Builder
from fodhash.protocol.state import SiteRun, Status, silent
from fodhash.sites.nix_file import locate_in_bytes

REFS = "/nix/store/9x0kn1nd53pd2rlj3kmkn3xrnhn1qfns-mn-refs.drv"
REMOTE_REFS = "/nix/store/h6glvhdwyv1hhwb2m7g08jafa4adv7p1-mn-remote-refs.drv"
REFS_TRUE = "/nix/store/v3a5p75kzh7wmj5hp5p087lsdbp11752-mn-refs.drv"  # mn-refs with its got:
LOCK = "/nix/store/y0iic1l21mk1984kfnmxdfpi48shzdff-lock.json"
DARWIN = "/nix/store/blc6wgrp8i7pcrb5d9qbpdywhhlx496z-mn-darwin.drv"
ONE = "/nix/store/a4mbddvjml219w7m1n84mbxjbazm5r3r-mn-one.drv"
BROKEN = "/nix/store/jg9mfy0mijhl7dld4ykq5zd19y6axqwn-mn-broken.drv"
TWO = "/nix/store/avhg5v7x10zsvyqrakjgdjc4lhi5jgqp-mn-two.drv"


def realise_recorded(monkeypatch: pytest.MonkeyPatch, name: str, paths: list[str], *,
                     systems: dict[str, str] | None = None, then: tuple[str, ...] = (),
                     calls: list[list[str]] | None = None,
                     ) -> tuple[dict[str, SiteRun], dict[SiteRun, list[Hash]]]:
    """Builder.realise on `paths`, with Nix's output replayed from a transcript (and, for
    the calls after the first, from `then`); `systems`: the derivations not of x86_64-linux;
    `calls`: receives the derivations of each `nix-store --realise`."""
    outputs = [(TRANSCRIPTS / name).read_bytes().decode(), *then]

    def realise(drvs: list[str], **_: object) -> process.ProcessResult:
        if calls is not None:
            calls.append(list(drvs))
        output = outputs.pop(0)
        return process.ProcessResult(("nix-store", "--realise", *drvs), 102, output, "", 0.1)

    monkeypatch.setattr("fodhash.nix.calls.realise", realise)
    monkeypatch.setattr("fodhash.nix.calls.build_log", lambda drv, lines=25: "")
    source = "{ " + " ".join(f'f{i}.hash = "sha256-{"A" * 43}=";' for i in range(len(paths))) + " }"
    sites = locate_in_bytes(Path("x.nix"), source.encode())
    fakes = {path: SiteRun("t", site, i) for i, (path, site) in enumerate(zip(paths, sites,
                                                                                strict=True))}
    gots: dict[SiteRun, list[Hash]] = defaultdict(list)
    builds = [Build(Derivation(path=p, name=p.split("-", 1)[-1].removesuffix(".drv"),
                               system=(systems or {}).get(p, "x86_64-linux"),
                               output_hash=fake(Algo.SHA256),
                               input_drvs=(), input_srcs=(), builder="/bin/sh", args=(),
                               env={}, output_paths=(p.removesuffix(".drv"),)), run)
              for p, run in fakes.items()]

    def set_status(run: SiteRun, status: Status, message: str = "") -> None:
        run.status, run.message = status, message or run.message

    builder = Builder(jobs=1, events=silent, set_status=set_status, remaining=lambda: None,
                      known=[])
    builder.realise(builds, (), gots)
    return fakes, gots


@pytest.mark.parametrize(("name", "path"), [
    ("nix-2.26-nix-store-realise-fod-references-store-path.txt", REFS),
    ("nix-2.26-remote-fod-references-store-path.txt", REMOTE_REFS),  # then "builder ... failed"
    ("nix-2.34-nix-store-realise-fod-references-store-path-true-hash.txt", REFS_TRUE),
])
def test_a_refused_fod_fails_naming_it_the_path_and_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                           name: str, path: str) -> None:
    fakes, gots = realise_recorded(monkeypatch, name, [path])
    run = fakes[path]
    assert run.status is Status.REFERENCES
    assert not gots
    fod = path.split("-", 1)[-1].removesuffix(".drv")
    assert run.message.startswith(f"Nix refuses FOD {fod!r} ({path}): its output references "
                                  f"the store path {LOCK}. ")
    assert "must contain no store path: not in a file's contents, a file's name" in run.message
    assert "`cp ${./lock} $out/lock`, not `cp ${./lock} $out/`" in run.message
    assert "builder failed" not in run.message


@pytest.mark.parametrize(("name", "path"), [
    ("nix-2.26-nix-store-realise-flat-fod-references.txt",
     "/nix/store/0ixd3q7jpnbf6dmy8csb8zzx96pl7s0x-refsflat19-1796267817.drv"),
    ("nix-2.34-nix-store-realise-flat-fod-references.txt",
     "/nix/store/9y6kw7cp7mvzpmaz27mjkgh94ibmy9xl-refsflat19-1796267818.drv"),
])
def test_a_flat_fod_refused_by_name_is_references(monkeypatch: pytest.MonkeyPatch, name: str,
                                                  path: str) -> None:
    """Nix names a flat FOD it refuses by its name alone, with no got: the same verdict."""
    fakes, gots = realise_recorded(monkeypatch, name, [path])
    run = fakes[path]
    assert run.status is Status.REFERENCES, run.message
    assert not gots
    fod = path.split("-", 1)[-1].removesuffix(".drv")
    assert run.message.startswith(f"the output of FOD {fod!r} (a flat file) holds "), run.message
    assert "remove-references-to" in run.message


def test_nix_2_34_reports_the_mismatch_of_such_a_fod(monkeypatch: pytest.MonkeyPatch) -> None:
    """2.34 checks the hash first: with the fake, the refusal does not show yet."""
    fakes, gots = realise_recorded(
        monkeypatch, "nix-2.34-nix-store-realise-fod-references-store-path.txt", [REFS])
    assert [g.sri for g in gots[fakes[REFS]]] == ["sha256-iuRw4QFNobvDrB60v0l8bcrA5ZXsg3k80Xno5f2tAzI="]


@pytest.mark.parametrize("version", ["2.26", "2.34"])
def test_a_platform_without_a_machine_is_unknown_with_one_hint(monkeypatch: pytest.MonkeyPatch,
                                                               version: str) -> None:
    """2.26: "a 'aarch64-darwin' with features {} is required to build"; 2.34: "Cannot build
    ... Reason: platform mismatch / Required system: 'aarch64-darwin'". One status, one hint."""
    fakes, _ = realise_recorded(
        monkeypatch, f"nix-{version}-nix-store-realise-no-machine-for-system.txt", [DARWIN])
    assert fakes[DARWIN].status is Status.UNKNOWN
    assert fakes[DARWIN].message == (
        "no machine here builds aarch64-darwin: give that platform `build-args` with a builder "
        "in fodhash.toml, or import its results from a machine that can (fodhash cache import "
        "/ fodhash apply)")


DARWIN_TWO = "/nix/store/0c0vx0b3l3k4fw8mnb3ay2ybkg0hg0a5-mn-darwin-two.drv"
ONE_AGAIN = f"""these 1 derivations will be built:
  {ONE}
building '{ONE}'...
error: hash mismatch in fixed-output derivation '{ONE}':
         specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
            got:    sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY=
"""


def test_a_platform_without_a_machine_stops_nix_and_misleads_no_other_site(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nix 2.26 (2.8 alike) ends the whole `--keep-going` call at the first derivation no
    machine builds and names only it: another FOD of that system is unknown with the same
    hint, and one of this system, never started, is built in a call of its own. Neither is
    "a dependency failed to build": none has a dependency."""
    calls: list[list[str]] = []
    fakes, gots = realise_recorded(
        monkeypatch, "nix-2.26-nix-store-realise-no-machine-for-system.txt",
        [DARWIN, DARWIN_TWO, ONE], systems={DARWIN: "aarch64-darwin",
                                            DARWIN_TWO: "aarch64-darwin"},
        then=(ONE_AGAIN,), calls=calls)
    assert calls == [[DARWIN, DARWIN_TWO, ONE], [ONE]]
    for path in (DARWIN, DARWIN_TWO):
        assert fakes[path].status is Status.UNKNOWN
        assert fakes[path].message.startswith("no machine here builds aarch64-darwin: give "
                                              "that platform `build-args` with a builder")
    assert [g.sri for g in gots[fakes[ONE]]] == ["sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY="]
    assert fakes[ONE].status is not Status.FAILED
    assert not any("dependency" in r.message for r in fakes.values())


def test_a_build_nix_names_nothing_for_fails_without_guessing_a_cause(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fakes, _ = realise_recorded(monkeypatch, "nix-2.34-nix-store-realise-keep-going.txt",
                                [ONE, TWO, BROKEN, DARWIN])
    assert fakes[DARWIN].status is Status.FAILED
    assert fakes[DARWIN].message.startswith("Nix named no result for it (exit code 102); its "
                                            "last lines:\n")
    assert "dependency" not in fakes[DARWIN].message


def test_nix_2_34_builder_failure_and_mismatches(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes, gots = realise_recorded(monkeypatch, "nix-2.34-nix-store-realise-keep-going.txt",
                                   [ONE, BROKEN])
    assert [g.sri for g in gots[fakes[ONE]]] == ["sha256-LIsI2lzmA5jh8Zrw5dzMdE3ydLgmq+WF6rpoxSVDSAY="]
    assert fakes[BROKEN].status is Status.FAILED
    assert fakes[BROKEN].message == "the builder failed: builder failed with exit code 3"


# --- End to end, with the Nix on this machine ----------------------------------------------

FIXTURE = "references-store-path.nix"


@pytest.mark.nix
def test_update_a_fod_whose_output_references_a_store_path(shapes: Path) -> None:
    """The same verdict on every Nix: Nix 2.26 refuses the FOD before it checks the hash,
    2.34 reports the fake's mismatch and refuses only the build with the true hash, 2.8
    accepts it. fodhash reads the output each registered: `references`, the path named with
    the file that holds it, no file changed (once an xfail on 2.34: fodhash wrote the hash)."""
    before = snapshot(shapes)
    result = fodhash("update", FIXTURE, "--json", cwd=shapes)
    [site] = json.loads(result.stdout)["sites"]
    assert result.returncode == 1, result.stderr
    assert site["status"] == "references", site
    assert site["message"].startswith("the output of FOD 'npm-deps-with-lock' (/nix/store/"), site
    assert re.search(r"\n  /nix/store/([0-9a-z]{32})-package-lock\.json \(in \1-package-lock"
                     r"\.json\)\n", site["message"]), site["message"]
    assert snapshot(shapes) == before
