"""The protocol's pure parts: pairing fake-hash FODs with their sentinel twins, build lanes,
the dependency index, namesake copies."""

from __future__ import annotations

from pathlib import Path

import pytest

from fodhash.hashes.encoding import Algo
from fodhash.hashes.fakes import fake, sentinel
from fodhash.nix import calls, process
from fodhash.nix.derivations import Derivation
from fodhash.protocol import evaluate, pairing
from fodhash.protocol.build import Build, Builder, lanes
from fodhash.protocol.state import SiteRun, silent
from fodhash.sites.nix_file import locate_in_bytes

SOURCE = b'{ a.hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; ' \
         b'b.hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; }'
CACERT = "/nix/store/cccccccccccccccccccccccccccccccc-cacert.drv"


def fetcher(path: str, url: str, *, is_fake: bool, index: int = 0) -> Derivation:
    """A nixpkgs-style fetcher: with a fake hash it trusts the CA bundle and needs cacert."""
    return Derivation(
        path=path, name="source", system="x86_64-linux",
        output_hash=fake(Algo.SHA256) if is_fake else sentinel(Algo.SHA256, index),
        input_drvs=(CACERT,) if is_fake else (),
        input_srcs=(), builder="/bin/sh", args=("-c", "fetch"),
        env={"url": url, "name": "source", "out": path.removesuffix(".drv") + "-out",
             "SSL_CERT_FILE": "/etc/ssl/certs/ca-bundle.crt" if is_fake else "/no-cert-file.crt"},
        output_paths=(path.removesuffix(".drv") + "-out",),
    )


def runs() -> list[SiteRun]:
    sites = locate_in_bytes(Path("x.nix"), SOURCE)
    return [SiteRun("t", site, i) for i, site in enumerate(sites)]


def test_two_sources_with_one_fake_pair_by_the_rest_of_the_derivation() -> None:
    first, second = runs()
    sentinels = {"/s1.drv": fetcher("/s1.drv", "https://a", is_fake=False, index=0),
                 "/s2.drv": fetcher("/s2.drv", "https://b", is_fake=False, index=1)}
    first.drvs, second.drvs = ["/s1.drv"], ["/s2.drv"]
    # Same name, same fake: only the url tells them apart; SSL_CERT_FILE and the cacert
    # input differ from the sentinel forms and must be ignored.
    fakes = {"/f2.drv": fetcher("/f2.drv", "https://b", is_fake=True),
             "/f1.drv": fetcher("/f1.drv", "https://a", is_fake=True)}
    twins = [(first, sentinels["/s1.drv"]), (second, sentinels["/s2.drv"])]
    paired = pairing.pair(twins, list(fakes.values()))
    assert paired == {"/f1.drv": first, "/f2.drv": second}


def test_fods_sharing_an_output_path_go_in_successive_lanes() -> None:
    first, second = runs()
    same_a = fetcher("/f1.drv", "https://a", is_fake=True)
    same_b = fetcher("/f2.drv", "https://b", is_fake=True)
    other = fetcher("/f3.drv", "https://c", is_fake=True)
    shared = ("/nix/store/zzzz-source",)
    graph = {"/f1.drv": Derivation(**{**same_a.__dict__, "output_paths": shared}),
             "/f2.drv": Derivation(**{**same_b.__dict__, "output_paths": shared}),
             "/f3.drv": other}
    builds = [Build(graph["/f1.drv"], first), Build(graph["/f2.drv"], second),
              Build(graph["/f3.drv"], first)]
    assert [[b.drv.path for b in lane] for lane in lanes(builds)] == [["/f1.drv", "/f3.drv"],
                                                                      ["/f2.drv"]]


def plain(path: str, *inputs: str, fixed: bool = False) -> Derivation:
    return Derivation(path=path, name=path.strip("/"), system="x86_64-linux",
                      output_hash=fake(Algo.SHA256) if fixed else None, input_drvs=inputs,
                      input_srcs=(), builder="/bin/sh", args=(), env={},
                      output_paths=(path + "-out",))


def test_the_dependency_index_is_one_pass_and_any_depth() -> None:
    """A FOD behind 5,000 plain derivations (a stdenv closure) is found without recursion,
    and a site's upstream is exactly the pending sites its FODs consume."""
    upstream_site, downstream_site = runs()
    graph = {"/src": plain("/src", fixed=True)}
    previous = "/src"
    for i in range(5000):
        graph[f"/p{i}"] = plain(f"/p{i}", previous)
        previous = f"/p{i}"
    graph["/deps"] = plain("/deps", previous, fixed=True)
    upstream_site.drvs, downstream_site.drvs = ["/src"], ["/deps"]
    ups = evaluate.upstream(graph, [upstream_site, downstream_site])
    assert ups == {upstream_site: set(), downstream_site: {upstream_site}}
    assert evaluate.consumers(graph, ["/src"]) == {f"/p{i}" for i in range(5000)} | {"/deps"}


def test_never_more_builds_at_once_than_nix_has_build_users(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[int] = []

    def realise(paths: list[str], *, jobs: int, **_: object) -> process.ProcessResult:
        asked.append(jobs)
        return process.ProcessResult(("nix-store",), 0, "", "", 0.0)

    monkeypatch.setattr(calls, "realise", realise)
    monkeypatch.setattr(calls, "build_slots", lambda: 3)
    runs_ = [SiteRun("t", s, i) for i, s in enumerate(locate_in_bytes(Path("x.nix"), b"{ " + b" ".join(
        b'f%d.hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=";' % i for i in range(5))
        + b" }"))]
    builds = [Build(plain(f"/f{i}.drv", fixed=True), run) for i, run in enumerate(runs_)]
    for jobs, wanted in ((None, 3), (5, 5)):
        Builder(jobs=jobs, events=silent, set_status=lambda *a: None, remaining=lambda: None,
                known=[]).realise(builds, (), {})
        assert asked.pop() == wanted  # --jobs wins
