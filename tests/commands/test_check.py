"""`fodhash check` with the real Nix: verdicts, exit codes, and not one byte changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FIXTURES, SLOW_TRUTH, fod_nix, fodhash, fods_of, snapshot

pytestmark = pytest.mark.nix

EXPECTED = json.loads((FIXTURES / "example" / "expected.json").read_text())
SITES = sum(len(v) for v in EXPECTED.values())


def check(repo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    before = snapshot(repo)
    result = subprocess.run([sys.executable, "-m", "fodhash", "check", *args, "--json"], cwd=repo,
                            capture_output=True, text=True, check=False,
                            env={**os.environ, **(env or {})})
    assert snapshot(repo) == before, "check changed a file"
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout[result.stdout.index("{"):])
    verdicts = {f'{s["file"]}:{s["site"]}': s["status"] for s in report["sites"]}
    return result.returncode, verdicts, result.stdout


def test_stale_repository_fails_and_names_every_stale_site(example: Path) -> None:
    code, verdicts, _ = check(example, "--all")
    assert code == 1
    assert verdicts.pop("webui-deps.nix:outputHash.aarch64-darwin") == "unverified"
    assert set(verdicts.values()) == {"stale"} and len(verdicts) == SITES


def test_resolved_repository_passes_from_the_cache_and_from_fresh_builds(example: Path) -> None:
    update = fodhash("update", "--all", "--json", cwd=example)
    assert update.returncode == 0
    for args in (["--all"], ["--all", "--no-cache"]):
        code, verdicts, _ = check(example, *args)
        assert code == 0, args
        assert sorted(set(verdicts.values())) == ["ok", "unverified"]
    # --strict fails on the aarch64-darwin entry nobody could verify here.
    assert check(example, "--all", "--strict")[0] == 1

    # Keys agree between update (sentinel form) and check: fetcher FODs whose environment
    # differs for a fake hash included (sources.nix and vendored.nix use fetchgit stand-ins).
    update_keys = {f'{s["file"]}:{s["site"]}': s["keys"] for s in json.loads(update.stdout)["sites"]}
    result = fodhash("check", "--all", "--json", cwd=example)
    check_keys = {f'{s["file"]}:{s["site"]}': s["keys"] for s in json.loads(result.stdout)["sites"]}
    assert check_keys["sources.nix:authentik.hash"] == update_keys["sources.nix:authentik.hash"]
    assert check_keys == update_keys


def test_cached_only_never_builds(example: Path) -> None:
    code, verdicts, _ = check(example, "--all", "--cached-only")
    assert code == 0  # nothing known, nothing stale: unverified only
    assert set(verdicts.values()) == {"unverified"}
    assert check(example, "--all", "--cached-only", "--strict")[0] == 1


def test_stale_hash_whose_old_output_is_in_the_store_is_stale(example: Path) -> None:
    """Never trust the store: the old output is valid, so a plain build would succeed."""
    assert fodhash("update", "--all", cwd=example).returncode == 0
    fods = [f for f in fods_of(example / "test-build.nix", "python-deps") if "python-deps" in f]
    subprocess.run(["nix-store", "--realise", *fods], check=True, capture_output=True)
    lock = example / "upstream" / "authentik" / "uv.lock"
    lock.write_text(lock.read_text().replace('name = "django"', 'name = "django-stale"'))
    # The lockfile changed, so sources and python-deps are stale; the FOD with the old
    # python-deps hash still builds (its output is in the store).
    built = subprocess.run(["nix-store", "--realise", *fods], capture_output=True, check=False)
    assert built.returncode == 0
    code, verdicts, _ = check(example, "--all", "--no-cache")
    assert code == 1
    assert verdicts["python-deps.nix:outputHash"] == "stale"
    assert verdicts["sources.nix:authentik.hash"] == "stale"


def test_a_verdict_does_not_depend_on_the_targets_named(example: Path) -> None:
    """The upstream FOD's stale hash still has its old output in the store, so Nix would
    reuse it: naming only the downstream target must not hide that (the shape of a user's
    `update shouting` that printed ok and changed nothing). Its upstream site is checked,
    and updated, too."""
    assert fodhash("update", "--all", cwd=example).returncode == 0
    fods = [f for f in fods_of(example / "test-build.nix", "python-deps") if "python-deps" in f]
    subprocess.run(["nix-store", "--realise", *fods], check=True, capture_output=True)
    lock = example / "upstream" / "authentik" / "uv.lock"
    lock.write_text(lock.read_text().replace('name = "django"', 'name = "django-stale"'))
    code, named, out = check(example, "python-deps", "--no-cache")
    _, everything, _ = check(example, "--all", "--no-cache")
    assert code == 1
    for site in ("python-deps.nix:outputHash", "sources.nix:authentik.hash"):
        assert named[site] == everything[site] == "stale", (site, named, everything)
    assert "run `fodhash update sources`" in out or "sources.nix" in out
    updated = fodhash("update", "python-deps", cwd=example)
    assert updated.returncode == 0, updated.stderr
    code, named, _ = check(example, "python-deps", "--no-cache")
    assert code == 0 and set(named.values()) == {"ok"}, named


def test_missing_platform_entry_is_reported_and_update_adds_it(example: Path) -> None:
    assert fodhash("update", "sources", cwd=example).returncode == 0
    webui = example / "webui-deps.nix"
    text = webui.read_text()
    line = next(x for x in text.splitlines(keepends=True) if '"x86_64-linux" =' in x)
    webui.write_text(text.replace(line, ""))
    without = webui.read_text()

    code, verdicts, _ = check(example, "webui-deps")
    assert code == 1
    assert verdicts["webui-deps.nix:outputHash.x86_64-linux"] == "missing"

    result = fodhash("update", "webui-deps", cwd=example)
    assert result.returncode == 0, result.stderr
    true_hash = EXPECTED["webui-deps.nix"]["outputHash.x86_64-linux"]
    darwin = next(x for x in without.splitlines(keepends=True) if "aarch64-darwin =" in x)
    # In the style of its neighbour: same indentation, after it (keys were in order).
    assert webui.read_text() == without.replace(
        darwin, darwin + f'      x86_64-linux = "{true_hash}";\n')
    assert check(example, "webui-deps")[0] == 0


def test_export_import_and_merge_for_a_ci_matrix(example: Path, tmp_path: Path) -> None:
    assert fodhash("update", "--all", cwd=example).returncode == 0
    exported = tmp_path / "x86_64-linux.json"
    code, _, _ = check(example, "--all", "--no-cache", "--export", str(exported))
    assert code == 0
    entries = json.loads(exported.read_text())["entries"]
    assert len(entries) == SITES and {e["platform"] for e in entries} == {"x86_64-linux"}

    # The merge job: a fresh cache, the exported results imported, no builds allowed.
    merge = {"FODHASH_CACHE_DIR": str(tmp_path / "merge-cache")}
    imported = subprocess.run([sys.executable, "-m", "fodhash", "cache", "import", str(exported)],
                              cwd=example, env={**os.environ, **merge}, capture_output=True,
                              text=True, check=False)
    assert imported.returncode == 0, imported.stderr
    code, verdicts, _ = check(example, "--all", "--cached-only", env=merge)
    assert code == 0
    assert list(verdicts.values()).count("ok") == SITES


def test_github_annotations_on_stale_sites(example: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "fodhash", "check", "sources"], cwd=example,
                            env={**os.environ, "GITHUB_ACTIONS": "true"}, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 1
    annotations = [x for x in result.stdout.splitlines() if x.startswith("::error ")]
    assert len(annotations) == 2
    assert annotations[0].startswith("::error file=sources.nix,line=17::")
    assert EXPECTED["sources.nix"]["authentik.hash"] in annotations[0]


def test_progress_lines_say_what_the_table_says(example: Path) -> None:
    """Off a terminal each status change is a line on stderr: a check's last word for each
    site is its verdict in the report (the aarch64-darwin entry, not evaluated here, is
    `unverified` in both, not `skipped`)."""
    result = fodhash("check", "--all", "--json", cwd=example)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    lines = result.stderr.splitlines()
    for site in report["sites"]:
        name = f'{Path(site["file"]).name}:{site["site"]}'
        last = [x.split()[0] for x in lines if f" {site['target']}: {name}" in x][-1]
        assert last == site["status"], (name, last, site["status"])
    assert "unverified" in {s["status"] for s in report["sites"]}
    assert not any(x.split()[0] in ("skipped", "unknown") for x in lines if x.strip())


def test_two_files_of_one_name_in_two_folders_are_two_rows(tmp_path: Path) -> None:
    """The matrix and the progress lines name a file from the repository's root: the ok
    `a/default.nix` and the stale `b/default.nix` are two rows, neither hides the other."""
    repo = tmp_path / "repo"
    for folder, value in (("a", SLOW_TRUTH), ("b", "sha256-" + "A" * 43 + "=")):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "default.nix").write_text(fod_nix(folder, value))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    result = fodhash("check", "a/default.nix", "b/default.nix", "--json", cwd=repo)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["matrix"] == {
        "a/default.nix:outputHash": {"": "ok"}, "b/default.nix:outputHash": {"": "stale"}}
    lines = result.stderr.splitlines()
    assert any(x.split()[:3] == ["ok", "a/default.nix:", "a/default.nix:outputHash"]
               for x in lines), lines
    assert any(x.split()[:3] == ["stale", "b/default.nix:", "b/default.nix:outputHash"]
               for x in lines), lines


def test_one_fod_in_two_folders_one_stale(tmp_path: Path) -> None:
    """The same FOD in two folders, one hash right and one stale: with the fake hash they are
    one derivation, and each site still gets its own build (a namesake copy) and verdict."""
    repo = tmp_path / "repo"
    stale = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    for folder, value in (("a", SLOW_TRUTH), ("b", stale)):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "default.nix").write_text(fod_nix("deps", value))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    result = fodhash("update", "a/default.nix", "b/default.nix", "--json", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = {s["file"]: s["status"] for s in json.loads(result.stdout)["sites"]}
    assert statuses == {"a/default.nix": "ok", "b/default.nix": "updated"}
    assert (repo / "b/default.nix").read_text() == fod_nix("deps", SLOW_TRUTH)
