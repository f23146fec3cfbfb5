"""Builds only ever see a canonical fake: no fetcher runs with TLS verification off."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import fodhash

pytestmark = pytest.mark.nix

# A stand-in for nixpkgs' fetchurl: TLS verification only for "" and the three lib fakes.
# Its builder records the SSL_CERT_FILE every build really ran with.
FETCHERS = """{{ system ? builtins.currentSystem }}:
let
  lib = {{
    fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    fakeSha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    fakeSha512 = "{zeros512}";
  }};
  fetch = {{ name, hash ? "", sha256 ? "", sha512 ? "" }}:
    let
      h = if hash != "" then {{ outputHashAlgo = null; outputHash = hash; }}
          else if sha512 != "" then {{ outputHashAlgo = "sha512"; outputHash = sha512; }}
          else if sha256 != "" then {{ outputHashAlgo = "sha256"; outputHash = sha256; }}
          else {{ outputHashAlgo = "sha256"; outputHash = ""; }};
      fake = h.outputHash == "" || h.outputHash == lib.fakeHash
        || h.outputHash == lib.fakeSha256 || h.outputHash == lib.fakeSha512;
    in derivation ({{
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" "PATH=/usr/bin:/bin; echo $name $SSL_CERT_FILE >> {log}; echo $name > $out" ];
      outputHashMode = "flat";
      SSL_CERT_FILE = if fake then "/etc/ssl/certs/ca-certificates.crt" else "/no-cert-file.crt";
    }} // h);
in {{
  sri = fetch {{ name = "sri"; hash = "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA="; }};
  base16 = fetch {{ name = "base16";
                   sha256 = "5a65795832e365a8439783328df1be53f7682d34f2a1d378ee83a666215cf620"; }};
  nix32 = fetch {{ name = "nix32"; sha256 = "087nbhhnd9l3xrwd78gj6hnnixskpvqqscl3jx1shrg369c7jras"; }};
  bare512 = fetch {{ name = "bare512"; sha512 = "{some512}"; }};
  placeholder = fetch {{ name = "placeholder"; hash = lib.fakeHash; }};
  empty = fetch {{ name = "empty"; hash = ""; }};
  sri512 = fetch {{ name = "sri512"; hash = "sha512-{b64_512}"; }};
}}
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the Nix build users (nixbld*) may write to: pytest's tmp_path is private."""
    path = Path(tempfile.mkdtemp(prefix="fodhash-test-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def test_every_build_runs_with_tls_verification_on(tmp_path: Path, shared_dir: Path) -> None:
    log = shared_dir / "builds.log"
    log.touch(mode=0o666)  # each build runs as another nixbld user
    log.chmod(0o666)
    some512 = "ab" * 64
    b64 = "q" * 86 + "=="
    (tmp_path / "fetchers.nix").write_text(FETCHERS.format(
        zeros512="0" * 128, log=log, some512=some512, b64_512=b64))
    result = fodhash("update", "fetchers.nix", cwd=tmp_path)
    assert log.exists(), result.stdout + result.stderr
    builds = log.read_text().splitlines()
    names = {line.split()[0] for line in builds}
    assert names == {"sri", "base16", "nix32", "bare512", "placeholder", "empty"}
    assert all(line.split()[1] == "/etc/ssl/certs/ca-certificates.crt" for line in builds), builds
    # The one form with no TLS-safe fake (SRI sha512 under `hash`) is refused, not built.
    assert result.returncode == 1
    assert "without TLS verification" in result.stdout
    assert "sri512" not in names
