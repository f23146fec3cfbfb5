"""Instantiations started ahead (fodhash.nix.calls.start_ahead, fodhash.run.ahead): Nix
evaluates the files as they are while fodhash loads; the fast path takes that result once,
and whatever no one took is stopped. Real Nix."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fod_nix

from fodhash.hashes.encoding import Algo, Hash
from fodhash.nix import calls
from fodhash.nix.calls import Instantiation

pytestmark = pytest.mark.nix

STARTED = "run: "  # fodhash.nix.process logs each Nix process it starts, at debug level


def _fod(name: str, content: str, sri: str) -> str:
    """An attribute `name` of a flat FOD writing `content`, its hash `sri`."""
    return f"  {name} = {fod_nix(name, sri, f'echo {content} > $out').rstrip()};\n"


def _sri(content: str) -> str:
    """The true hash of what _fod's builder writes for `content`."""
    return Hash(Algo.SHA256, hashlib.sha256(f"{content}\n".encode()).digest()).sri


def _started(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(STARTED)]


def test_what_was_started_ahead_is_taken_once(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    file = tmp_path / "default.nix"
    file.write_text("{\n" + _fod("one", "one", _sri("one")) + "}\n")
    what = Instantiation(cwd=tmp_path, file=file)
    caplog.set_level(logging.DEBUG, logger="fodhash")
    try:
        calls.start_ahead([what, what])  # asked twice, started once
        assert len(_started(caplog)) == 1
        taken = calls.instantiate(what, ahead=True)
        assert len(_started(caplog)) == 1  # the one started ahead answered
        assert taken == calls.instantiate(what)  # what a fresh evaluation says
        assert len(_started(caplog)) == 2
        calls.instantiate(what, ahead=True)  # nothing left ahead: Nix runs again
        assert len(_started(caplog)) == 3
    finally:
        calls.discard_ahead()


def test_no_more_are_started_ahead_than_there_are_cores(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    whats = []
    for n in range((os.cpu_count() or 2) + 2):
        file = tmp_path / f"f{n}.nix"
        file.write_text("{\n" + _fod(f"f{n}", f"f{n}", _sri(f"f{n}")) + "}\n")
        whats.append(Instantiation(cwd=tmp_path, file=file, attrs=(f"f{n}",)))
    caplog.set_level(logging.DEBUG, logger="fodhash")
    try:
        calls.start_ahead(whats)
        assert len(_started(caplog)) == (os.cpu_count() or 2)
        for what in whats:  # the first from there, the others started now: all answer
            assert calls.instantiate(what, ahead=True)
        assert len(_started(caplog)) == len(whats)
    finally:
        calls.discard_ahead()


def test_an_evaluation_no_one_takes_is_stopped(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    # An evaluation that runs for minutes: only a stop ends it soon.
    file = tmp_path / "slow.nix"
    file.write_text("let count = n: if n == 0 then 0 else 1 + count (n - 1);\n"
                    "in builtins.seq (count 2000000000) {}\n")
    what = Instantiation(cwd=tmp_path, file=file)
    caplog.set_level(logging.DEBUG, logger="fodhash")
    calls.start_ahead([what])
    calls.discard_ahead()
    assert any("stopped" in r.getMessage() and str(file) in r.getMessage()
               for r in caplog.records), caplog.text
    left = subprocess.run(["pgrep", "-f", str(file)], capture_output=True, text=True,
                          check=False)
    assert left.stdout == ""


def test_whole_files_are_evaluated_together(tmp_path: Path) -> None:
    # Two whole files in one Nix process: the derivations of both, as apart.
    one, two = tmp_path / "one.nix", tmp_path / "two.nix"
    one.write_text("{\n" + _fod("one", "one", _sri("one")) + "}\n")
    two.write_text("{\n" + _fod("two", "two", _sri("two")) + "}\n")
    apart = [Instantiation(cwd=tmp_path, file=one), Instantiation(cwd=tmp_path, file=two)]
    with_attr = Instantiation(cwd=tmp_path, file=one, attrs=("one",))
    flake = Instantiation(cwd=tmp_path, flake_refs=(".#x",))
    other_args = Instantiation(cwd=tmp_path, file=two, nix_args=("--arg", "x", "1"))
    [both, attr, ref, args] = calls.together([*apart, with_attr, flake, other_args])
    assert both.command() == ["nix-instantiate", str(one), str(two)]
    assert (attr, ref, args) == (with_attr, flake, other_args)  # -A, a flake, other arguments
    separately = sorted(calls.instantiate(apart[0]) + calls.instantiate(apart[1]))
    assert sorted(calls.instantiate(both)) == separately


def test_a_warm_run_evaluates_its_files_once_in_one_process(tmp_path: Path) -> None:
    # The fast path takes the evaluation started ahead, both files in one Nix process; after
    # a change, the stale site is resolved by the protocol as ever.
    (tmp_path / "fodhash.toml").write_text('[targets.one]\nfile = "one.nix"\n'
                                           '[targets.two]\nfile = "two.nix"\n')
    one, two = tmp_path / "one.nix", tmp_path / "two.nix"
    one.write_text("{\n" + _fod("one", "one", _sri("one")) + "}\n")
    two.write_text("{\n" + _fod("two", "two", _sri("two")) + "}\n")
    env = dict(os.environ)

    def fodhash(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "fodhash", "-v", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=600, check=False)

    first = fodhash("check", "--all")
    assert first.returncode == 0, first.stderr
    warm = fodhash("check", "--all")
    assert warm.returncode == 0, warm.stderr
    instantiations = [line for line in warm.stderr.splitlines()
                      if line.startswith("fodhash: run: ") and "nix-instantiate" in line
                      and "--eval" not in line]
    assert len(instantiations) == 1, warm.stderr
    assert str(one) in instantiations[0] and str(two) in instantiations[0]
    assert "2 ok; 1 evaluation, 0 FOD build(s)" in warm.stderr

    two.write_text(two.read_text().replace(_sri("two"), _sri("stale")))
    update = fodhash("update", "--all")
    assert update.returncode == 0, update.stderr
    assert _sri("two") in two.read_text()
    assert _sri("stale") not in two.read_text()
