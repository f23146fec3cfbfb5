"""As fast as Nix can build the chain: FODs that share a name build at once, a round is one
evaluation, a warm run is one instantiation (counted, never timed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_fods_build_and_check, fodhash, fods_of

from fodhash.nix.derivations import read_drv

pytestmark = pytest.mark.nix

STALE = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="


def fod(name: str, content: str, log: Path, *, deps: str = "", seconds: float = 2) -> str:
    """A raw FOD, like a download: it sleeps, and logs when it ran (outside its output)."""
    script = (f"PATH=/usr/bin:/bin; echo start $(date +%s.%N) >> {log}; sleep {seconds}; "
              f"mkdir $out; echo {content} > $out/f; {deps} echo end $(date +%s.%N) >> {log}")
    return f'''derivation {{
    name = "{name}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "{script}" ];
    outputHashMode = "recursive";
    outputHash = "{STALE}";
  }}'''


@pytest.fixture
def log() -> Iterator[Path]:
    """A file every build can append to: builds run as Nix's build users, which cannot
    reach pytest's private temporary folders."""
    folder = Path(tempfile.mkdtemp(prefix="fodhash-builds-", dir="/tmp"))
    os.chmod(folder, 0o777)  # noqa: S103 - the build users write here
    log = folder / "builds.log"
    log.touch()
    os.chmod(log, 0o666)  # noqa: S103 - each build may run as another build user
    yield log
    shutil.rmtree(folder)


def intervals(log: Path) -> list[tuple[float, float]]:
    starts, ends = [], []
    for line in log.read_text().splitlines():
        kind, when = line.split()[:2]
        (starts if kind == "start" else ends).append(float(when))
    return list(zip(sorted(starts), sorted(ends), strict=True))


# A fetcher as nixpkgs writes them: every output is named `source`, and TLS verification is
# on (SSL_CERT_FILE the CA bundle) only while the hash is unknown: "" or one of the lib fakes.
FETCHER = """\
let
  fakes = [ "" "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" ];
  fetch = { content, hash }: derivation {
    name = "source";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; echo start $(date +%s.%N) $SSL_CERT_FILE >> LOG; "
      + "sleep 2; mkdir $out; echo ${content} > $out/f; echo end $(date +%s.%N) >> LOG") ];
    outputHashMode = "recursive";
    outputHash = hash;
    SSL_CERT_FILE =
      if builtins.elem hash fakes then "/etc/ssl/certs/ca-certificates.crt" else "/no-cert-file.crt";
  };
in
{
"""


def test_fods_sharing_a_name_all_build_at_once_and_their_hashes_build(tmp_path: Path,
                                                                      log: Path) -> None:
    """Four fetcher FODs named `source`, one fake between them: each after the first builds
    as a namesake copy of its own, all four at once, with TLS verification on."""
    repo = tmp_path / "repo"
    repo.mkdir()
    nonce = uuid.uuid4().hex  # outputs no earlier run left valid in the store
    calls = "".join(f'  {n} = fetch {{ content = "{n}-{nonce}"; hash = "{STALE}"; }};\n'
                    for n in "abcd")
    (repo / "sources.nix").write_text(FETCHER.replace("LOG", str(log)) + calls + "}\n")
    result = fodhash("update", "sources.nix", "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["status"] for s in report["sites"]] == ["updated"] * 4
    assert report["stats"]["builds"] == 4
    spans = intervals(log)
    assert len(spans) == 4
    assert max(start for start, _ in spans) < min(end for _, end in spans), \
        f"the four `source` FODs did not all build at once: {spans}"
    certs = [line.split()[2] for line in log.read_text().splitlines() if line.startswith("start")]
    assert certs == ["/etc/ssl/certs/ca-certificates.crt"] * 4, "a build ran without TLS checks"
    # Each FOD's own output is valid now (Nix registered each copy's output under the path
    # of its got hash, which is the FOD's own): a later round fetches nothing again.
    fods = fods_of(repo / "sources.nix")
    assert len(fods) == 4
    outputs = [o for f in fods for o in read_drv(f).output_paths]
    valid = subprocess.run(["nix-store", "--check-validity", *outputs], capture_output=True,
                           text=True, check=False)
    assert valid.returncode == 0, valid.stderr
    # The hashes written are the ones that build: each FOD from scratch, Nix verifying.
    assert_fods_build_and_check(fods)


def test_a_chain_costs_one_evaluation_per_round_and_a_warm_run_one(tmp_path: Path,
                                                                   log: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    src = fod("src", "upstream", log, seconds=0)
    (repo / "chain.nix").write_text(
        f"let\n  src = {src};\nin\n{{\n  inherit src;\n  deps = "
        + fod("deps", "downstream", log, deps="cat ${src}/f >> $out/f;", seconds=0)
        + ";\n}\n")
    cold = fodhash("update", "chain.nix", "--json", cwd=repo)
    assert cold.returncode == 0, cold.stderr
    stats = json.loads(cold.stdout)["stats"]
    # Two rounds (deps waits for src), each one evaluation phase; no up-front evaluation,
    # since an empty cache cannot answer it.
    assert (stats["rounds"], stats["evaluations"], stats["builds"]) == (2, 2, 2)
    warm = fodhash("update", "chain.nix", "--json", cwd=repo)
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout)["stats"] == {"rounds": 1, "evaluations": 1, "builds": 0}
    assert_fods_build_and_check(fods_of(repo / "chain.nix"))
