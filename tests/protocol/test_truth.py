"""The truth about a hash, end to end with the Nix on this machine (2.8 here, 2.26 and 2.34 in
tests/nix-versions): a FOD whose output references store paths (`references`), one whose
every build gives another hash (`nondeterministic`), and the controls, a deterministic FOD
without references, which is never either (fixtures/truth, docs/why.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import copy_fixture, fodhash, fods_of, snapshot

from fodhash.cache.export import Entry
from fodhash.hashes.encoding import Algo, Hash
from fodhash.protocol import drift, reproducible
from fodhash.protocol.rounds import nondeterministic
from fodhash.protocol.state import SiteRun
from fodhash.sites.nix_file import locate_in_bytes


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    return copy_fixture("truth", tmp_path)


def run_json(*args: str, cwd: Path) -> tuple[int, dict[str, Any]]:
    result = fodhash(*args, "--json", cwd=cwd)
    assert result.stdout, result.stderr
    [site] = json.loads(result.stdout)["sites"]
    return result.returncode, site


# --- references ----------------------------------------------------------------------------

@pytest.mark.nix
def test_a_fod_whose_output_references_an_input_is_not_written(truth: Path) -> None:
    """Every Nix: status `references`, exit 1, the file unchanged, the referenced path named
    with the file of the output that holds it, and the cures."""
    before = snapshot(truth)
    code, site = run_json("update", "refs.nix", cwd=truth)
    assert (code, site["status"]) == (1, "references"), site
    assert snapshot(truth) == before
    message = site["message"]
    assert "references 1 store path" in message, message
    [held] = [line for line in message.splitlines() if "-python3-3.12" in line]
    assert held.strip().startswith("/nix/store/") and held.endswith("(in bin/tool)"), message
    assert "README" not in message  # the file without the path is not named
    assert "remove-references-to" in message


@pytest.mark.nix
def test_a_flat_fod_whose_file_holds_a_store_path_is_not_written(truth: Path) -> None:
    """Nix 2.26 and 2.34 refuse it by name: `references`, with the path read from the file
    Nix left. Nix 2.8 fails an assertion on it: the site fails, and nothing is written."""
    before = snapshot(truth)
    code, site = run_json("update", "flat-refs.nix", cwd=truth)
    assert code == 1 and snapshot(truth) == before
    if site["status"] == "failed":  # Nix 2.8
        assert "Assertion `references.empty()' failed" in site["message"], site
        return
    assert site["status"] == "references", site
    [held] = [line for line in site["message"].splitlines() if "-python3-3.12" in line]
    assert held.endswith("-python3-3.12 (in its file)"), site["message"]


@pytest.mark.nix
def test_check_says_references_not_stale(truth: Path) -> None:
    """`check` gives the same verdict, not `stale` (an update would not write it)."""
    code, site = run_json("check", "refs.nix", cwd=truth)
    assert (code, site["status"]) == (1, "references"), site


@pytest.mark.nix
def test_allow_references_writes_the_hash_where_nix_gives_one(truth: Path) -> None:
    """--allow-references writes the got: hash (Nix 2.8 and 2.34 give one; 2.26 refuses the
    build before the hash check, so there is nothing to write and the verdict stays)."""
    code, site = run_json("update", "refs.nix", "--allow-references", cwd=truth)
    if site["status"] == "references":  # Nix 2.26: no got: line
        assert code == 1
        assert site["new"] is None
        return
    assert (code, site["status"]) == (0, "updated"), site
    assert site["message"].startswith("written with --allow-references: "), site
    assert site["new"] in (truth / "refs.nix").read_text()


@pytest.mark.nix
def test_a_fod_without_references_is_never_references(truth: Path) -> None:
    """The control: a string shaped like a store path that is no input's is no reference."""
    code, site = run_json("update", "clean.nix", cwd=truth)
    assert (code, site["status"]) == (0, "updated"), site
    [drv] = fods_of(truth / "clean.nix")
    built = subprocess.run(["nix-store", "--realise", drv], capture_output=True, text=True,
                           check=False)
    assert built.returncode == 0, built.stderr


# --- non-determinism, noticed without asking -----------------------------------------------

@pytest.mark.nix
def test_a_build_that_disagrees_with_the_cache_is_nondeterministic(truth: Path) -> None:
    """`update` writes one hash; `check --no-cache` builds another for the very same
    derivation: `nondeterministic`, with both hashes and when each was seen, never `stale`,
    and no advice to run `update` (which would flip the hash again)."""
    code, site = run_json("update", "time.nix", cwd=truth)
    assert (code, site["status"]) == (0, "updated"), site
    first = site["new"]
    written = snapshot(truth)
    code, checked = run_json("check", "time.nix", "--no-cache", cwd=truth)
    assert (code, checked["status"]) == (1, "nondeterministic"), checked
    assert checked["truth"] is None
    message = checked["message"]
    assert first in message and "this build gave sha256-" in message, message
    assert message.count(" UTC") == 2  # when each hash was seen
    assert "fodhash update" not in message
    text = fodhash("check", "time.nix", "--no-cache", cwd=truth)
    assert text.returncode == 1
    assert "stale" not in text.stdout and "fodhash update" not in text.stdout, text.stdout
    code, updated = run_json("update", "time.nix", "--no-cache", cwd=truth)
    assert (code, updated["status"]) == (1, "nondeterministic"), updated
    assert snapshot(truth) == written  # nothing written for it


@pytest.mark.nix
def test_a_deterministic_fod_is_never_nondeterministic(truth: Path) -> None:
    code, site = run_json("update", "clean.nix", cwd=truth)
    assert (code, site["status"]) == (0, "updated"), site
    code, checked = run_json("check", "clean.nix", "--no-cache", cwd=truth)
    assert (code, checked["status"]) == (0, "ok"), checked


# --- non-determinism, proven: --reproducible ----------------------------------------------

@pytest.mark.nix
@pytest.mark.parametrize("command", ["update", "check"])
def test_reproducible_builds_twice_and_shows_what_differs(truth: Path, command: str) -> None:
    """Two builds at once, two hashes: `nondeterministic`, nothing written, the differing
    file of the two outputs named with its first differing bytes and the likely cause."""
    before = snapshot(truth)
    result = fodhash(command, "--reproducible", "time.nix", "--json", cwd=truth)
    doc = json.loads(result.stdout)
    [site] = doc["sites"]
    assert (result.returncode, site["status"]) == (1, "nondeterministic"), site
    assert doc["stats"]["builds"] == 2
    assert snapshot(truth) == before
    lines = site["message"].splitlines()
    assert lines[0].startswith("built twice at once, two hashes: sha256-"), lines
    assert lines[1].startswith("differing in /nix/store/") and lines[2] == "  cache/index-v5"
    assert lines[3].startswith("first difference: cache/index-v5: at byte "), lines
    assert lines[4].startswith("likely cause: npm's cache index"), lines


@pytest.mark.nix
def test_reproducible_passes_a_deterministic_fod(truth: Path) -> None:
    """The control: both builds agree, the hash is written."""
    result = fodhash("update", "--reproducible", "clean.nix", "--json", cwd=truth)
    doc = json.loads(result.stdout)
    [site] = doc["sites"]
    assert (result.returncode, site["status"]) == (0, "updated"), site
    assert doc["stats"]["builds"] == 2
    assert site["new"] in (truth / "clean.nix").read_text()


@pytest.mark.parametrize(("paths", "first", "cause"), [
    pytest.param(["src/.git/index"], "", "a .git folder", id="git"),
    pytest.param(["_cacache/index-v5/1f/ab"], "", "npm's cache index", id="npm"),
    pytest.param(["pnpm-store/v3/files/00/index.json"], "", "pnpm's store index", id="pnpm"),
    pytest.param(["built.txt"], "built.txt: at byte 3: b'at 2026-12-03 03:22' vs b'at 2026-12-03 03:23'",
                 "a timestamp", id="time"),
    pytest.param(["order.txt"], "order.txt: at byte 0: b'b\\na\\n' vs b'a\\nb\\n'", "", id="unknown"),
])
def test_a_likely_cause_is_named_only_when_recognisable(paths: list[str], first: str,
                                                          cause: str) -> None:
    found = reproducible.likely_cause(paths, first)
    assert found.startswith(cause) and bool(found) == bool(cause), found


def test_compare_names_files_only_in_one_output(tmp_path: Path) -> None:
    for side, extra in (("a", "x"), ("b", "y")):
        (tmp_path / side / "d").mkdir(parents=True)
        (tmp_path / side / "same").write_text("same")
        (tmp_path / side / "d" / extra).write_text(extra)
    found = reproducible.compare(str(tmp_path / "a"), str(tmp_path / "b"))
    assert found.paths == ("d/x", "d/y")
    assert found.first == ""


# --- drift explained -----------------------------------------------------------------------

@pytest.mark.nix
def test_a_stale_site_says_what_changed_in_its_fod(truth: Path) -> None:
    """The tool a FOD runs goes from 1.0 to 2.0, its lockfile and an attribute change: `check`
    says so, one line per change under the stale site, and in the JSON's `changed`."""
    code, site = run_json("update", "tool.nix", cwd=truth)
    assert (code, site["status"], site["changed"]) == (0, "updated", []), site
    code, site = run_json("check", "tool.nix", cwd=truth)
    assert (code, site["status"], site["changed"]) == (0, "ok", []), site
    (truth / "tool-version.txt").write_text("2.0\n")
    code, site = run_json("check", "tool.nix", cwd=truth)
    assert (code, site["status"]) == (1, "stale"), site
    assert site["changed"] == ["input tool-1.0 -> tool-2.0"]
    (truth / "package-lock.json").write_text('{"lockfileVersion": 3, "packages": {"a": {}}}\n')
    nix = truth / "tool.nix"
    nix.write_text(nix.read_text().replace('npmDepsFetcherVersion = "1"',
                                           'npmDepsFetcherVersion = "2"'))
    text = fodhash("check", "tool.nix", cwd=truth)
    assert text.returncode == 1
    lines = text.stdout.splitlines()
    stale = next(i for i, line in enumerate(lines) if "hash is stale" in line)
    assert lines[stale + 1].startswith("  changed since ")
    assert lines[stale + 2:stale + 5] == [
        "    input tool-1.0 -> tool-2.0",
        "    source package-lock.json changed (its content differs)",
        "    attribute npmDepsFetcherVersion: 1 -> 2"], text.stdout
    code, site = run_json("update", "tool.nix", cwd=truth)  # the check's build, cached
    assert (code, site["status"]) == (0, "cached")
    assert len(site["changed"]) == 3, site


@pytest.mark.nix
def test_no_change_is_claimed_without_a_kept_form(truth: Path) -> None:
    """The literal's hash was never verified here: stale, and nothing said of why."""
    nix = truth / "clean.nix"
    nix.write_text(nix.read_text().replace("sha256-AAAA", "sha256-BBBB"))
    code, site = run_json("check", "clean.nix", cwd=truth)
    assert (code, site["status"], site["changed"]) == (1, "stale", []), site


def test_drift_pairs_inputs_by_name_without_version() -> None:
    old = {"name": "deps", "system": "x86_64-linux", "inputs": {"bun-1.3.0": "a" * 32,
                                                                 "bash-5.2": "b" * 32},
           "sources": {"bun.lock": "c" * 32}, "attrs": {"args": "/nix/store/" + "a" * 32
                                                        + "-bun-1.3.0/bin/bun install"}}
    new = {"name": "deps", "system": "aarch64-linux", "inputs": {"bun-1.4.0": "d" * 32,
                                                                  "cacert-3.1": "e" * 32},
           "sources": {"bun.lock": "c" * 32}, "attrs": {"args": "/nix/store/" + "d" * 32
                                                        + "-bun-1.4.0/bin/bun install"}}
    assert drift.changes([old], [new]) == [
        "system: x86_64-linux -> aarch64-linux", "input bash-5.2 removed",
        "input bun-1.3.0 -> bun-1.4.0", "input cacert-3.1 added"]


def test_a_hash_from_another_nix_is_said_to_be_from_another_nix() -> None:
    """Same derivation, another hash, computed by another Nix: the message says Nix may be
    the one that changed (its git NAR change), not only the FOD."""
    [site] = locate_in_bytes(Path("x.nix"), b'{ hash = "sha256-' + b"A" * 43 + b'="; }')
    run = SiteRun("t", site, 0, new=Hash(Algo.SHA256, bytes(range(32))))
    earlier = Entry(key="0" * 64, hash=Hash(Algo.SHA256, bytes(32 * [7])), platform="x86_64-linux",
                    name="source", nix_version="2.26.3", time=0.0)
    assert "computed by Nix 2.26.3, this one by Nix 2.34.8" in nondeterministic(run, earlier,
                                                                                 "2.34.8")
    assert "computed by Nix" not in nondeterministic(run, earlier, "2.26.3")
