"""`fodhash update` end to end with the real Nix on copies of the fixtures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, assert_fods_build_and_check, fodhash, fods_of, snapshot, tracked_copy

from fodhash.files.patch import apply_edits
from fodhash.sites.target import locate_any, references

pytestmark = pytest.mark.nix

EXAMPLE_EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
SHAPES_EXPECTED = json.loads((FIXTURES / "shapes" / "expected.json").read_text())


def expected_bytes(original: bytes, file: Path, expected: dict[str, str]) -> bytes:
    """The original with exactly the expected literals written in, nothing else changed
    (a .json file's sites are its JSON string values, fodhash.sites.json_file)."""
    edits = {}
    for site in locate_any(file, original):
        if site.attrpath in expected:
            edits[(site.start, site.end)] = site.quote(expected[site.attrpath])
    assert set(expected) <= {s.attrpath for s in locate_any(file, original)}
    return apply_edits(original, edits)


def assert_resolved(root: Path, before: dict[str, bytes], expected: dict[str, dict[str, str]]) -> None:
    after = snapshot(root)
    assert set(after) == set(before), "files appeared or vanished"
    for name, data in before.items():
        wanted = expected_bytes(data, root / name, expected[name]) if name in expected else data
        assert after[name] == wanted, f"{name} differs from the original outside its literals"


def test_update_all_resolves_the_example_repository(example: Path) -> None:
    before = snapshot(example)
    result = fodhash("update", "--all", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    assert_resolved(example, before, EXAMPLE_EXPECTED)

    report = json.loads(result.stdout)
    statuses = {(s["file"], s["site"]): s["status"] for s in report["sites"]}
    assert statuses[("webui-deps.nix", "outputHash.aarch64-darwin")] == "skipped"
    darwin = next(s for s in report["sites"] if s["site"] == "outputHash.aarch64-darwin")
    assert darwin["message"] == (
        "not evaluated on this platform: resolve it on aarch64-darwin, or configure "
        "[platforms.aarch64-darwin] and run with --platform aarch64-darwin")
    assert statuses[("sources.nix", "authentik.hash")] == "updated"
    assert report["counts"]["failed"] == 0
    assert report["counts"]["updated"] == sum(len(v) for v in EXAMPLE_EXPECTED.values())

    # The patched hashes are the true ones: every FOD builds and rebuilds to them.
    assert_fods_build_and_check(fods_of(example / "test-build.nix"))


@pytest.mark.parametrize("name", sorted(n for n in SHAPES_EXPECTED if n.endswith(".nix")))
def test_update_a_bare_file_of_each_shape(shapes: Path, name: str) -> None:
    """Each shape's file, and the JSON files it reads (expected.json lists them by name)."""
    before = snapshot(shapes)
    result = fodhash("update", name, cwd=shapes)
    assert result.returncode == 0, result.stderr + result.stdout
    reads = [p.name for p in references(shapes / name, before[name])]
    assert_resolved(shapes, before, {n: SHAPES_EXPECTED[n] for n in [name, *reads]})
    assert_fods_build_and_check(fods_of(shapes / name))


def test_second_run_changes_nothing(example: Path) -> None:
    assert fodhash("update", "--all", cwd=example).returncode == 0
    resolved = snapshot(example)
    table = fodhash("update", "--all", cwd=example)
    assert table.returncode == 0, table.stderr
    # Already true, confirmed by the cache: `ok`, not `cached` (which patches a stale site).
    sites = sum(len(v) for v in EXAMPLE_EXPECTED.values())
    assert table.stdout.count(" ok ") == table.stdout.count(" from the cache ") == sites
    assert " cached " not in table.stdout
    result = fodhash("update", "--all", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    assert snapshot(example) == resolved
    report = json.loads(result.stdout)
    statuses = {(s["status"], s["message"].split(":")[0]) for s in report["sites"]}
    assert statuses == {("ok", "from the cache"), ("skipped", "not evaluated on this platform")}
    assert all(s["written"] is None for s in report["sites"])
    # The fast path: nothing changed, so nothing is built or written and Nix evaluates once.
    assert report["stats"]["builds"] == 0
    assert report["stats"]["evaluations"] == 1


def test_stale_files_with_known_results_are_patched_from_the_cache(example: Path) -> None:
    before = snapshot(example)
    assert fodhash("update", "--all", cwd=example).returncode == 0
    resolved = snapshot(example)
    for name, data in before.items():  # back to every hash stale: the cache knows them all
        (example / name).write_bytes(data)
    result = fodhash("update", "--all", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    assert snapshot(example) == resolved
    report = json.loads(result.stdout)
    assert {s["status"] for s in report["sites"]} == {"cached", "skipped"}
    assert report["stats"]["builds"] == 0
    # No build, and one evaluation per round of the chain (the placeholders in vendored.nix
    # rule out the nothing-changed fast path, so it costs no evaluation here).
    assert report["stats"]["evaluations"] == report["stats"]["rounds"] == 2


def test_no_cache_builds_again_and_finds_the_files_correct(example: Path) -> None:
    assert fodhash("update", "--all", cwd=example).returncode == 0
    resolved = snapshot(example)
    result = fodhash("update", "--all", "--no-cache", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    assert snapshot(example) == resolved
    report = json.loads(result.stdout)
    assert {s["status"] for s in report["sites"]} == {"ok", "skipped"}
    assert report["stats"]["builds"] == sum(len(v) for v in EXAMPLE_EXPECTED.values())


def test_dry_run_leaves_every_file_byte_identical(example: Path) -> None:
    before = snapshot(example)
    result = fodhash("update", "--all", "--dry-run", cwd=example)
    assert result.returncode == 0, result.stderr
    assert snapshot(example) == before
    true_hash = EXAMPLE_EXPECTED["webui-deps.nix"]["outputHash.x86_64-linux"]
    assert f'+      "x86_64-linux" = "{true_hash}";' in result.stdout
    assert "--- a/sources.nix" in result.stdout
    # It says so plainly: the table's title and the summary; so does a repeat from the cache.
    assert result.stdout.lstrip().startswith("dry run: no file was written")
    assert "; dry run: no file was written" in result.stderr
    again = fodhash("update", "--all", "--dry-run", "--json", cwd=example)
    assert snapshot(example) == before
    report = json.loads(again.stdout)
    assert report["dry_run"] is True
    assert {s["status"] for s in report["sites"]} == {"cached", "skipped"}


def test_make_run_ends_naming_the_site_it_left(tmp_path: Path) -> None:
    """`make run` on the example: exit 0, and its closing lines name the aarch64-darwin entry
    left stale (not evaluated on this machine) with the reason, in the table and at the end.
    Set-up is skipped (-o setup): the test's own virtual environment stands in for .venv."""
    project = tracked_copy(tmp_path / "project")
    (project / ".venv").symlink_to(Path(sys.prefix))
    result = subprocess.run(["make", "-o", "setup", "run"], cwd=project, capture_output=True,
                            text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    darwin = next(x for x in result.stdout.splitlines() if "outputHash.aarch64-darwin" in x)
    assert "skipped" in darwin and "not evaluated on this platform" in darwin
    assert result.stderr.splitlines()[-1] == (
        "1 site left as it was: webui-deps.nix:23 outputHash.aarch64-darwin (skipped: not "
        "evaluated on this platform, which alone does not fail the run)")


def test_chain_across_targets_resolves_whatever_the_order(example: Path) -> None:
    """webui-deps consumes the source of another target; naming it first changes nothing."""
    before = snapshot(example)
    result = fodhash("update", "webui-deps", "sources", cwd=example)
    assert result.returncode == 0, result.stderr
    wanted = {k: EXAMPLE_EXPECTED[k] for k in ("webui-deps.nix", "sources.nix")}
    assert_resolved(example, before, wanted)


def test_a_stale_upstream_site_of_another_target_is_resolved_too(example: Path) -> None:
    """Never trust the store: python-deps consumes the authentik source, whose hash is stale.
    The run resolves (and writes) that site too, and nothing else of the sources target."""
    before = snapshot(example)
    result = fodhash("update", "python-deps", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    rows = {(s["file"], s["site"]): s["status"] for s in json.loads(result.stdout)["sites"]}
    assert rows == {("python-deps.nix", "outputHash"): "updated",
                    ("sources.nix", "authentik.hash"): "updated"}
    assert_resolved(example, before, {
        "python-deps.nix": EXAMPLE_EXPECTED["python-deps.nix"],
        "sources.nix": {"authentik.hash": EXAMPLE_EXPECTED["sources.nix"]["authentik.hash"]}})


def test_an_upstream_site_of_another_target_is_built_for_the_platform_asked(example: Path) -> None:
    """`update webui-deps --platform aarch64-linux`: the sources site its FOD consumes joins
    the run and is built with that platform's build-args too (its FOD is of that system), so
    the new entry is resolved; it was `unknown` ("no machine here builds aarch64-linux")."""
    with (example / "fodhash.toml").open("a") as config:
        config.write('\n[platforms.aarch64-linux]\nnix-args = ["--argstr", "system", '
                     '"aarch64-linux"]\nbuild-args = ["--option", "extra-platforms", '
                     '"aarch64-linux"]\n')
    assert fodhash("update", "--all", cwd=example).returncode == 0
    result = fodhash("update", "webui-deps", "--platform", "aarch64-linux", "--json", cwd=example)
    assert result.returncode == 0, result.stderr
    rows = {(s["file"], s["site"]): s["status"] for s in json.loads(result.stdout)["sites"]}
    assert rows[("webui-deps.nix", "outputHash.aarch64-linux")] == "updated"
    assert rows[("sources.nix", "authentik.hash")] == "ok"


def test_stale_fod_outside_every_target_is_named_with_the_fix(example: Path) -> None:
    """Without a fodhash.toml the authentik source is no site of the run: it is named."""
    (example / "fodhash.toml").unlink()
    before = snapshot(example)
    result = fodhash("update", "python-deps.nix", cwd=example)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "outside what this run updates" in out
    assert EXAMPLE_EXPECTED["sources.nix"]["authentik.hash"] in out  # its true hash
    assert "Update the file that sets it" in out
    assert snapshot(example) == before


def test_flake_target(example: Path) -> None:
    assert fodhash("update", "sources", cwd=example).returncode == 0
    before = snapshot(example)
    result = fodhash("update", "python-deps-flake", cwd=example)
    assert result.returncode == 0, result.stderr
    assert_resolved(example, before, {"python-deps.nix": EXAMPLE_EXPECTED["python-deps.nix"]})


def test_site_selector_limits_the_sites(example: Path) -> None:
    with (example / "fodhash.toml").open("a") as config:
        config.write('\n[targets.blueprints]\nfile = "vendored.nix"\nsite = "blueprints.hash"\n')
    before = snapshot(example)
    result = fodhash("update", "blueprints", "--jobs", "1", cwd=example)
    assert result.returncode == 0, result.stderr
    wanted = {"vendored.nix": {"blueprints.hash": EXAMPLE_EXPECTED["vendored.nix"]["blueprints.hash"]}}
    assert_resolved(example, before, wanted)


def test_selected_site_whose_fod_consumes_a_stale_unselected_site(example: Path) -> None:
    """The site selector names server.vendorHash; its FOD consumes src.hash of the same file
    (a site of the `authentik` target), which is resolved with it. ui.npmDepsHash, which
    nothing selected consumes, is left as it is."""
    before = snapshot(example)
    result = fodhash("update", "authentik-server", cwd=example)
    assert result.returncode == 0, result.stderr
    wanted = EXAMPLE_EXPECTED["authentik.nix"]
    assert_resolved(example, before, {"authentik.nix": {
        "src.hash": wanted["src.hash"], "server.vendorHash": wanted["server.vendorHash"]}})


def test_flake_reference_names_the_system(example: Path) -> None:
    """A flake target can name the system: `{system}` becomes this machine's system."""
    with (example / "fodhash.toml").open("a") as config:
        config.write('\n[targets.flake-system]\nfile = "python-deps.nix"\n'
                     'flake = ".#packages.{system}.python-deps"\n')
    assert fodhash("update", "sources", cwd=example).returncode == 0
    before = snapshot(example)
    result = fodhash("-v", "update", "flake-system", cwd=example)
    assert result.returncode == 0, result.stderr
    assert ".#packages.x86_64-linux.python-deps" in result.stderr
    assert_resolved(example, before, {"python-deps.nix": EXAMPLE_EXPECTED["python-deps.nix"]})
