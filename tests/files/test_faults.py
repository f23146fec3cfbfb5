"""Faults real machines have, against the real Nix: every file ends original or correct, with
a clear message and a documented exit code, never a traceback or a fake left behind."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers import (
    FIXTURES,
    SLOW_TRUTH,
    building_slowly,
    copy_fixture,
    fodhash,
    scratch_copies,
    slow_fod,
    snapshot,
)

from fodhash.config import find_root
from fodhash.files.journal import Journal
from fodhash.files.patch import deferred_signals
from fodhash.nix.derivations import read_drv
from fodhash.protocol import namesakes

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr


def slow_repo(tmp_path: Path, seconds: float = 0) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir(parents=True)
    (repo / "slow.nix").write_text(slow_fod("slow", seconds))
    return repo


# ---- the journal of the in-place fallback -----------------------------------------------------

def write_journal(repo: Path, file: Path, content: bytes,
                  damage: dict[str, object] | None = None) -> Path:
    """A journal as a killed in-place run leaves it, with `damage` written over its entry."""
    journal = Journal(find_root(repo))
    entry: dict[str, object] = {
        "original": base64.b64encode(content).decode(),
        "digest": hashlib.sha256(content).hexdigest(),
        "written": [hashlib.sha256(file.read_bytes()).hexdigest()],
    }
    entry.update(damage or {})
    journal.path.parent.mkdir(parents=True, exist_ok=True)
    journal.path.write_text(json.dumps({"root": str(repo), "pid": 1, "files": {str(file): entry}}))
    return journal.path


def test_a_killed_in_place_run_is_undone_from_any_folder_of_the_repository(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (repo / "sub").mkdir()
    file = repo / "slow.nix"
    original = file.read_bytes()
    file.write_bytes(original.replace(b"WmV5", b"AAAA"))  # what a killed run left
    write_journal(repo, file, original)
    result = fodhash("restore", cwd=repo / "sub")  # no fodhash.toml: keyed by the git root
    assert result.returncode == 0, result.stderr
    assert "restored" in result.stderr and file.read_bytes() == original


@pytest.mark.parametrize("damage", [
    pytest.param({"original": base64.b64encode(b"").decode()}, id="original-emptied"),
    pytest.param({"original": "A" + base64.b64encode(b"x" * 30).decode()[1:]},
                 id="one-base64-character-changed"),
    pytest.param({"original": "not base64!"}, id="not-base64"),
    pytest.param({"digest": None}, id="no-digest"),
    pytest.param({"written": "abc"}, id="written-not-a-list"),
])
def test_a_damaged_journal_entry_is_refused_and_nothing_replayed(tmp_path: Path,
                                                                 damage: dict[str, object]) -> None:
    repo = slow_repo(tmp_path)
    file = repo / "slow.nix"
    original = file.read_bytes()
    file.write_bytes(original.replace(b"WmV5", b"AAAA"))
    left = file.read_bytes()
    journal = write_journal(repo, file, original, damage)
    result = fodhash("restore", cwd=repo)
    no_traceback(result)
    assert result.returncode == 2
    assert "is damaged" in result.stderr and str(file) in result.stderr
    assert str(journal) in result.stderr
    assert file.read_bytes() == left  # nothing replayed: no empty file, no NUL written
    assert journal.exists()


@pytest.mark.parametrize("text", [
    pytest.param('{"root": "/x", "files": {"/x/a.nix": {"orig', id="truncated"),
    pytest.param("[1, 2, 3]", id="wrong-shape"),
    pytest.param('{"files": []}', id="files-not-a-table"),
])
def test_a_damaged_journal_file_is_refused_by_every_command(tmp_path: Path, text: str) -> None:
    repo = slow_repo(tmp_path)
    journal = Journal(find_root(repo)).path
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(text)
    before = snapshot(repo)
    for command in (["restore"], ["check", "slow.nix"], ["update", "slow.nix"]):
        result = fodhash(*command, cwd=repo)
        no_traceback(result)
        assert result.returncode == 2, (command, result.stderr)
        assert f"the journal of a killed fodhash run, {journal}, is damaged" in result.stderr
    assert snapshot(repo) == before


# ---- two writers ----------------------------------------------------------------------------

def test_two_cache_directories_still_exclude_each_other(example: Path, tmp_path: Path) -> None:
    first = building_slowly(example, "slow", 4)
    other = dict(os.environ, FODHASH_CACHE_DIR=str(tmp_path / "other-cache"))
    refused = subprocess.run([sys.executable, "-m", "fodhash", "update", "sources", "--no-wait"],
                             cwd=example, capture_output=True, text=True, env=other, check=False)
    assert refused.returncode == 1, refused.stderr
    assert f"another fodhash is working on {example}" in refused.stderr
    assert first.wait(timeout=60) == 0


def test_two_configurations_of_one_repository_exclude_each_other(example: Path) -> None:
    sub = example / "sub"
    sub.mkdir()
    (sub / "fodhash.toml").write_text('[targets.slow]\nfile = "slow.nix"\n')
    (sub / "slow.nix").write_text(slow_fod("sub-slow", 0))
    first = building_slowly(example, "slow", 4)
    refused = fodhash("update", "slow", "--no-wait", cwd=sub)
    assert refused.returncode == 1 and "another fodhash is working on" in refused.stderr
    assert first.wait(timeout=60) == 0


# ---- the world changing mid-run -------------------------------------------------------------

def finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    _, err = proc.communicate(timeout=90)
    assert "Traceback" not in err, err
    return proc.returncode, err


@pytest.mark.parametrize("change", ["deleted", "moved", "symlink", "folder-renamed"])
def test_the_file_changing_place_during_a_build(tmp_path: Path, change: str) -> None:
    repo = slow_repo(tmp_path / "w")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    proc = building_slowly(repo, "slow", 3)
    file = repo / "slow.nix"
    original = file.read_bytes()
    if change == "deleted":
        file.unlink()
    elif change == "moved":
        file.rename(repo / "moved.nix")
    elif change == "symlink":
        (repo / "elsewhere.nix").write_bytes(original)
        file.unlink()
        file.symlink_to("elsewhere.nix")
    else:
        repo.rename(repo.with_name("renamed"))
        repo = repo.with_name("renamed")
    code, err = finish(proc)
    assert code == 1
    assert "not written" in err and SLOW_TRUTH in err  # the hash is not lost
    for path in repo.rglob("*.nix"):  # no fake anywhere, nothing half-written
        assert path.read_bytes() == original, path


# ---- signals --------------------------------------------------------------------------------

@pytest.mark.parametrize("signals", [
    pytest.param([signal.SIGHUP], id="terminal-closed"),
    pytest.param([signal.SIGINT, signal.SIGINT], id="ctrl-c-twice"),
    pytest.param([signal.SIGTERM], id="sigterm"),
])
def test_signals_during_a_build_leave_the_file_original(tmp_path: Path,
                                                        signals: list[int]) -> None:
    repo = slow_repo(tmp_path)
    proc = building_slowly(repo, "slow", 30)
    original = (repo / "slow.nix").read_bytes()
    for sig in signals:
        proc.send_signal(sig)
        time.sleep(0.1)
    code, err = finish(proc)
    assert code == 130
    assert "every file fodhash touched holds its original bytes" in err
    assert (repo / "slow.nix").read_bytes() == original
    assert not scratch_copies(Path(os.environ["FODHASH_CACHE_DIR"]), repo)


# The gaps between two Ctrl-C (0 to 0.4 s, ten of them) and where the first lands, from
# the build's start on: mid-build, and near its end (Nix finishing, the true hash verified
# and written back, the cache stored, fodhash exiting).
CTRL_C_GAPS = [round(0.4 * i / 9, 3) for i in range(10)]
CTRL_C_MOMENTS = [0.0, 0.5, 1.0]
CTRL_C_BUILD = 1.0  # seconds the builder sleeps


def test_ctrl_c_twice_at_any_gap_and_moment_exits_130_saying_what_each_file_holds(
        tmp_path: Path) -> None:
    """Ctrl-C pressed twice, swept over the gap between the presses and the moment of the
    first: never a death by signal (-2), never a traceback, the message always printed and
    true. A press that lands after fodhash exited cannot interrupt it: that run ends 0
    with the file written."""
    outcomes: dict[str, int] = {}
    for run, (moment, gap) in enumerate((m, g) for m in CTRL_C_MOMENTS for g in CTRL_C_GAPS):
        repo = slow_repo(tmp_path / str(run))
        original = slow_fod("slow", CTRL_C_BUILD).encode()
        proc = building_slowly(repo, "slow", CTRL_C_BUILD)
        time.sleep(moment)
        for sig in (signal.SIGINT, signal.SIGINT):
            proc.send_signal(sig)
            time.sleep(gap)
        code, err = finish(proc)
        where = f"run {run}: first Ctrl-C {moment} s into the build, second {gap} s later"
        text = (repo / "slow.nix").read_bytes()
        outcomes[str(code)] = outcomes.get(str(code), 0) + 1
        assert code in (130, 0), (where, code, err)
        if code == 0:
            assert SLOW_TRUTH.encode() in text, (where, err)
        elif "every file fodhash touched holds its original bytes" in err:
            assert text == original, (where, err)
        else:
            assert f"the true hashes were written into {repo / 'slow.nix'}" in err, (where, err)
            assert SLOW_TRUTH.encode() in text, where
        assert not scratch_copies(Path(os.environ["FODHASH_CACHE_DIR"]), repo), where
    print(f"Ctrl-C twice: exit status -> runs: {outcomes}")  # the README's figures (-s)
    assert outcomes.get("130", 0) >= len(CTRL_C_GAPS) * 2, outcomes  # mid-build ones all stop


def test_a_signal_never_cuts_the_final_writes_short(tmp_path: Path) -> None:
    caught: list[str] = []
    with pytest.raises(KeyboardInterrupt), deferred_signals():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        caught.append("the block ran to its end")
    assert caught == ["the block ran to its end"]


# ---- disk full, read-only and immutable files -------------------------------------------------

NS_SCRIPT = """
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
for mount in spec["mounts"]:
    subprocess.run(mount, check=True)
for command in spec.get("before", []):
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
run = subprocess.run(spec["command"], cwd=spec["cwd"], capture_output=True, text=True)
files = {name: open(name, encoding="utf-8").read() for name in spec["read"]}
print(json.dumps({"code": run.returncode, "stdout": run.stdout, "stderr": run.stderr,
                  "files": files}))
"""


def in_namespace(mounts: list[list[str]], command: list[str], cwd: Path,
                 before: list[list[str]] | None = None,
                 read: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`command` in a private mount namespace with `mounts` made first (the test's own);
    the files named in `read` are read there afterwards into it."""
    spec = json.dumps({"mounts": mounts, "command": command, "cwd": str(cwd),
                       "before": before or [], "read": list(read or {})})
    ran = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                          NS_SCRIPT, spec], capture_output=True, text=True, check=True)
    out = json.loads(ran.stdout)
    if read is not None:
        read.update(out["files"])
    return subprocess.CompletedProcess(command, out["code"], out["stdout"], out["stderr"])


FODHASH = [sys.executable, "-m", "fodhash"]


def fill(path: Path) -> list[str]:
    """A command that fills the file system holding `path` to the last byte."""
    return [sys.executable, "-c", "import sys\ntry:\n    f = open(sys.argv[1], 'wb')\n"
            "    while True:\n        f.write(b'0' * 4096)\n        f.flush()\nexcept OSError:\n"
            "    pass", str(path)]


@ROOT_ONLY
def test_a_full_cache_disk_is_a_clear_error(tmp_path: Path) -> None:
    repo = copy_fixture("example", tmp_path)
    cache = Path(os.environ["FODHASH_CACHE_DIR"])
    before = snapshot(repo)
    # The cache database is made, then the disk filled: no room for the scratch copy.
    result = in_namespace([["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(cache)]],
                          [*FODHASH, "update", "--all"], repo,
                          before=[[*FODHASH, "cache", "info"], fill(cache / "filler")])
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    # The scratch copy finds no room, or SQLite cannot even open its database: said either way.
    assert "No space left on device" in result.stderr or "disk full?" in result.stderr
    assert "no file of yours was changed" in result.stderr
    assert snapshot(repo) == before


FULL_MID_BUILD = """
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from helpers import building_slowly
cache, repo, place = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(cache)], check=True)
if place == "copy":
    proc = building_slowly(repo, "slow", 2)
else:  # in place: the fake is in the user's file, under the journal
    proc = subprocess.Popen([sys.executable, "-m", "fodhash", "update", "slow"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while b"sha256-AAAA" not in (repo / "slow.nix").read_bytes():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
try:  # the build runs: the copy or the journal is made, the cache open; now the disk fills
    with open(cache / "filler", "wb") as f:
        while True:
            f.write(b"0" * 4096)
            f.flush()
except OSError:
    pass
out, err = proc.communicate(timeout=90)
print(json.dumps({"code": proc.returncode, "stderr": err}))
"""


@ROOT_ONLY
@pytest.mark.parametrize("place", ["copy", "in-place"])
def test_the_cache_disk_full_during_a_build_stops_with_the_hashes(tmp_path: Path,
                                                                  place: str) -> None:
    """The scratch copy, or in place the journal, finds no room for the true hash: the run
    stops with a message and the hash, every file original, no traceback."""
    repo = slow_repo(tmp_path)
    original = slow_fod("slow", 2)
    if place == "in-place":  # a repository naming itself by absolute path: edited in place
        (repo / "slow.nix").write_text(original)
        (repo / "absolute.nix").write_text(f"import {repo}/slow.nix\n")
        (repo / "fodhash.toml").write_text(
            '[targets.slow]\nfile = "slow.nix"\nbuild = "absolute.nix"\n')
    cache = Path(os.environ["FODHASH_CACHE_DIR"])
    ran = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                          FULL_MID_BUILD, str(Path(__file__).parents[1]), str(cache), str(repo),
                          place], capture_output=True, text=True, check=True)
    result = json.loads(ran.stdout)
    assert "Traceback" not in result["stderr"], result["stderr"]
    assert result["code"] == 1, result["stderr"]
    assert "No space left on device" in result["stderr"]
    assert ("every file of yours holds its original bytes" in result["stderr"]
            or "the file about to be edited was not" in result["stderr"]), result["stderr"]
    assert f"to write by hand:\n  {repo / 'slow.nix'}: outputHash (line 1): {SLOW_TRUTH}" \
        in result["stderr"]  # the hash is not lost
    assert (repo / "slow.nix").read_text() == original


def builder_runs(needle: str) -> bool:
    """Whether a process whose command line holds `needle` runs (a builder, by its script)."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if needle.encode() in (proc / "cmdline").read_bytes():
                return True
    return False


def test_the_cache_folder_deleted_during_a_build_loses_nothing(tmp_path: Path) -> None:
    """A user cleaning ~/.cache, a CI cache step: the scratch copies go with it, and are made
    again from what the run holds in memory; the hash is written."""
    repo = slow_repo(tmp_path)
    cache = Path(os.environ["FODHASH_CACHE_DIR"])
    seconds = f"2.{uuid.uuid4().int % 10**6:06d}"  # names this test's builder
    proc = building_slowly(repo, "slow", float(seconds))
    while not builder_runs(f"sleep {float(seconds)}"):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    shutil.rmtree(cache)
    code, err = finish(proc)
    assert code == 0, err
    assert SLOW_TRUTH in (repo / "slow.nix").read_text()
    assert not scratch_copies(cache, repo)


@ROOT_ONLY
def test_disk_full_on_the_repository(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    repo = disk / "example"
    source = FIXTURES / "example"
    after = {str(repo / "sources.nix"): ""}
    result = in_namespace(
        [["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]],
        [*FODHASH, "update", "sources"], repo,
        before=[["cp", "-r", str(source), str(repo)], fill(disk / "filler")], read=after)
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    assert "not written, the disk is full" in result.stderr
    assert EXPECTED["sources.nix"]["authentik.hash"] in result.stderr  # the hash is not lost
    assert after[str(repo / "sources.nix")] == (source / "sources.nix").read_text()


@ROOT_ONLY
def test_a_read_only_checkout_can_be_checked_and_dry_run(tmp_path: Path) -> None:
    repo = copy_fixture("example", tmp_path)
    before = snapshot(repo)
    ro = [["mount", "--bind", str(repo), str(repo)],
          ["mount", "-o", "remount,ro,bind", str(repo)]]
    checked = in_namespace(ro, [*FODHASH, "check", "sources"], repo)
    no_traceback(checked)
    assert checked.returncode == 1 and "is stale" in checked.stdout, checked.stderr
    dry = in_namespace(ro, [*FODHASH, "update", "sources", "--dry-run"], repo)
    no_traceback(dry)
    assert dry.returncode == 0 and EXPECTED["sources.nix"]["authentik.hash"] in dry.stdout
    update = in_namespace(ro, [*FODHASH, "update", "sources", "--json"], repo)
    no_traceback(update)
    assert update.returncode == 1
    assert "not written, it is on a read-only file system" in update.stderr
    assert EXPECTED["sources.nix"]["authentik.hash"] in update.stderr
    doc = json.loads(update.stdout)
    assert [u["file"] for u in doc["unwritten"]] == ["sources.nix"]
    sites = [s for s in doc["sites"] if s["file"] == "sources.nix"]
    assert sites and all(s["written"] is None for s in sites), sites  # docs/json.md
    assert snapshot(repo) == before


def test_a_file_made_immutable_during_a_build(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    probe = repo / "probe"
    probe.write_text("x")
    if shutil.which("chattr") is None:
        pytest.skip("no chattr here (e2fsprogs)")
    if subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False).returncode:
        pytest.skip("this file system has no immutable flag")
    subprocess.run(["chattr", "-i", str(probe)], check=True)
    probe.unlink()
    proc = building_slowly(repo, "slow", 3)
    original = (repo / "slow.nix").read_bytes()
    subprocess.run(["chattr", "+i", str(repo / "slow.nix")], check=True)
    try:
        code, err = finish(proc)
    finally:
        subprocess.run(["chattr", "-i", str(repo / "slow.nix")], check=True)
    assert code == 1
    # Refused as unwritable, or, when the flag also pinned the scratch copy's link to it
    # (an immutable file cannot be unlinked), as having another link: not written either way.
    assert re.search(r"not written, it (cannot be written \(permission denied|has 2 hard links)",
                     err), err
    assert SLOW_TRUTH in err
    assert (repo / "slow.nix").read_bytes() == original


@pytest.mark.parametrize("when", ["before", "during"])
def test_a_file_made_read_only_is_not_written(tmp_path: Path, when: str) -> None:
    """`chmod a-w` before or during the run: not written, by root either (the replace needs
    only the folder's permission), the hashes printed; the JSON says `written: null`."""
    repo = slow_repo(tmp_path)
    file = repo / "slow.nix"
    if when == "before":
        original = file.read_bytes()
        file.chmod(0o444)
        proc = subprocess.Popen([*FODHASH, "update", "slow.nix", "--json"], cwd=repo,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        proc = building_slowly(repo, "slow", 2, "--json")
        original = file.read_bytes()
        file.chmod(0o444)
    out, err = proc.communicate(timeout=90)
    assert "Traceback" not in err, err
    assert proc.returncode == 1, err
    assert f"{file}: not written, it is read-only (mode r--r--r--)" in err
    assert SLOW_TRUTH in err  # the hash is not lost
    assert file.read_bytes() == original and file.stat().st_mode & 0o777 == 0o444
    doc = json.loads(out)
    assert [s["written"] for s in doc["sites"]] == [None]
    assert [s["new"] for s in doc["sites"]] == [SLOW_TRUTH]
    assert doc["unwritten"] == [{"file": "slow.nix", "problem": "it is read-only (mode r--r--r--)"}]


# ---- what a write keeps ---------------------------------------------------------------------

def test_a_write_keeps_owner_group_mode_and_extended_attributes(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    file = repo / "slow.nix"
    os.chmod(file, 0o640)
    if os.geteuid() == 0:
        os.chown(file, 1234, 2345)
    os.setxattr(file, "user.origin", b"kept")
    result = fodhash("update", "slow.nix", cwd=repo)
    assert result.returncode == 0, result.stderr
    st = file.stat()
    assert SLOW_TRUTH in file.read_text()
    assert st.st_mode & 0o7777 == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 2345)
    assert os.getxattr(file, "user.origin") == b"kept"


def test_a_file_with_two_hard_links_is_refused(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    os.link(repo / "slow.nix", repo / "twin.nix")
    original = (repo / "slow.nix").read_bytes()
    result = fodhash("update", "slow.nix", cwd=repo)
    no_traceback(result)
    assert result.returncode == 1
    assert "not written, it has 2 hard links" in result.stderr and SLOW_TRUTH in result.stderr
    assert (repo / "slow.nix").read_bytes() == original == (repo / "twin.nix").read_bytes()


def test_a_killed_writes_temporary_file_is_removed_by_the_next_command(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    leftovers = [repo / ".slow.nix.k3j2h1.fodhash-tmp", repo / ".slow.nix.abcdef.fodhash"]
    for leftover in leftovers:
        leftover.write_bytes(b"\0" * 1024)
    result = fodhash("update", "slow.nix", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in repo.iterdir()) == ["slow.nix"]


# ---- the store, the cache, and two targets of one file ------------------------------------------

@pytest.mark.parametrize("beside", ["the fake's output", "a namesake copy's output"])
def test_a_store_leftover_of_an_interrupted_build_is_removed(tmp_path: Path, beside: str) -> None:
    """What an interrupted Nix 2.8 leaves beside an output path it was building blocks every
    later build of that path. The fake's path is every fetcher's; a namesake copy's is the
    same in every run (its declared hash is a digest of its FOD's .drv path)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    name = f"slow-{uuid.uuid4().hex[:8]}"  # output paths no earlier run used
    # Two FODs of one name: the second (b) builds as a namesake copy.
    fods = [slow_fod(name, 0).replace("echo > $out", f"echo {n} > $out")
            for n in "ab"]
    (repo / "slow.nix").write_text(f"{{\n  a = {fods[0].strip()};\n  b = {fods[1].strip()};\n}}\n")
    probe = (repo / "slow.nix").read_text().replace(
        "sha256-WmV5WDLjZahDl4MyjfG+U/doLTTyodN47oOmZiFc9iA=",
        "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    (repo / "probe.nix").write_text(probe)
    drvs = subprocess.run(["nix-instantiate", "probe.nix", "-A", "a", "-A", "b"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout.split()
    (repo / "probe.nix").unlink()
    if "fake" in beside:
        [out] = read_drv(drvs[0]).output_paths
    else:
        copy = namesakes.copies([read_drv(drvs[1])])[drvs[1]]
        [out] = copy.output_paths
    leftover = Path(out + ".tmp")
    leftover.mkdir()
    (leftover / "partial").write_text("what an interrupted Nix 2.8 leaves")
    try:
        result = fodhash("update", "slow.nix", cwd=repo)
    finally:
        if leftover.exists():
            subprocess.run(["rm", "-rf", str(leftover)], check=True)
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()
    assert "left in the Nix store by an interrupted build" in result.stderr
    assert "sha256-WmV5" not in (repo / "slow.nix").read_text()


def test_a_damaged_cache_database_is_a_clear_error_and_cache_clear_mends_it(tmp_path: Path) -> None:
    repo = slow_repo(tmp_path)
    cache = Path(os.environ["FODHASH_CACHE_DIR"])
    assert fodhash("cache", "info", cwd=repo).returncode == 0
    (cache / "cache.db").write_bytes(b"this is not SQLite" * 100)
    before = snapshot(repo)
    for command in (["update", "slow.nix"], ["check", "slow.nix"], ["cache", "info"]):
        result = fodhash(*command, cwd=repo)
        no_traceback(result)
        assert result.returncode == 2, (command, result.stderr)
        assert "is damaged" in result.stderr and "fodhash cache clear" in result.stderr
    assert snapshot(repo) == before
    cleared = fodhash("cache", "clear", cwd=repo)
    assert cleared.returncode == 0, cleared.stderr
    assert fodhash("update", "slow.nix", cwd=repo).returncode == 0


def test_two_targets_of_one_file_one_through_a_symlink_are_one_site(example: Path) -> None:
    (example / "linked-sources.nix").symlink_to("sources.nix")
    (example / "fodhash.toml").write_text(
        '[targets.direct]\nfile = "sources.nix"\n[targets.linked]\nfile = "linked-sources.nix"\n')
    result = fodhash("update", "--all", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    statuses = [s["status"] for s in json.loads(result.stdout)["sites"]]
    assert statuses == ["updated", "updated"], statuses
    text = (example / "sources.nix").read_text()
    assert all(h in text for h in EXPECTED["sources.nix"].values())
    assert (example / "linked-sources.nix").is_symlink()


# ---- a repository that cannot be evaluated from a copy ----------------------------------------

def test_a_file_naming_the_repository_by_absolute_path_is_edited_in_place(example: Path) -> None:
    (example / "absolute.nix").write_text(f"import {example}/sources.nix {{ }}\n")
    (example / "fodhash.toml").write_text(
        '[targets.sources]\nfile = "sources.nix"\nbuild = "absolute.nix"\n')
    result = fodhash("update", "sources", cwd=example)
    assert result.returncode == 0, result.stderr
    assert "edits the files in place" in result.stderr and "absolute path" in result.stderr
    text = (example / "sources.nix").read_text()
    assert all(h in text for h in EXPECTED["sources.nix"].values())


def test_a_repository_reaching_itself_by_a_computed_path_is_detected(example: Path) -> None:
    (example / "computed.nix").write_text(
        'import (/. + builtins.getEnv "FODHASH_TEST_REPO" + "/sources.nix") { }\n')
    (example / "fodhash.toml").write_text(
        '[targets.sources]\nfile = "sources.nix"\nbuild = "computed.nix"\n')
    env = dict(os.environ, FODHASH_TEST_REPO=str(example))
    result = subprocess.run([*FODHASH, "update", "sources"], cwd=example, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "edits the files in place" in result.stderr
    assert "evaluates sources.nix" in result.stderr
    text = (example / "sources.nix").read_text()
    assert all(h in text for h in EXPECTED["sources.nix"].values())
