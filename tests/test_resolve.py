"""The resolver's pure parts: pairing fake-hash FODs with their sentinel twins, waves."""

from __future__ import annotations

from pathlib import Path

from fodhash.drv import Derivation
from fodhash.hashes import Algo, fake, sentinel
from fodhash.resolve import Resolver
from fodhash.runs import Options, SiteRun
from fodhash.sites import locate_in_bytes

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
    resolver = Resolver([], [], {}, Options())
    paired = resolver._pair_fakes(sentinels, fakes, [first, second])
    assert paired == {"/f1.drv": first, "/f2.drv": second}


def test_fods_sharing_an_output_path_go_in_successive_waves() -> None:
    first, second = runs()
    same_a = fetcher("/f1.drv", "https://a", is_fake=True)
    same_b = fetcher("/f2.drv", "https://b", is_fake=True)
    other = fetcher("/f3.drv", "https://c", is_fake=True)
    shared = ("/nix/store/zzzz-source",)
    graph = {"/f1.drv": Derivation(**{**same_a.__dict__, "output_paths": shared}),
             "/f2.drv": Derivation(**{**same_b.__dict__, "output_paths": shared}),
             "/f3.drv": other}
    waves = Resolver._waves({"/f1.drv": first, "/f2.drv": second, "/f3.drv": first}, graph)
    assert waves == [["/f1.drv", "/f3.drv"], ["/f2.drv"]]
