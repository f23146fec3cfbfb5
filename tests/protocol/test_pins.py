"""Evaluation-time pins end to end, against real Nix: a repository without fodhash.toml that
pins nixpkgs with `builtins.fetchTarball` (shell.nix), sources with niv (nix/sources.json)
and npins (npins/sources.json), a file with `builtins.fetchurl`, and a FOD beside them
(fixtures/pins, served from `file://` tarballs made by the tests).

Stale as committed: niv's nixpkgs (a version bump whose hash was left behind), npins' tool,
the fetchurl and the FOD. Correct: shell.nix's nixpkgs and niv's greeting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import assert_fods_build_and_check, fodhash, fods_of, served_pins, snapshot

pytestmark = pytest.mark.nix

STALE = {  # file -> (the stale literal, the true hash in the author's encoding)
    "nix/sources.json": ("14hj26j91pwh7z2zwilqvgd4id5dc5bpdmpxdkc6fy4mk2s0n9n0",
                         "1lwgnrsmx0iwpxkvlh2xz4dxq81fixjjrgissk53zcwyfyx00ilm"),
    "npins/sources.json": ("1lwgnrsmx0iwpxkvlh2xz4dxq81fixjjrgissk53zcwyfyx00ilm",
                           "1vdifj9zpsldvzniq98vfgsxccmqhdfp138jz2a796ymqc80gdw6"),
}
MOTD = ("1qb2x4za1dgxihrw8hqg9xxj4flqz6p6ffcqlm7klnm9r3vncb5l",
        "078jmb4nx31pnwg6gpfqaag9chr3rrlvaanirv56h48kn81nh0d2")
DEPS = ("sha256-ogFoA7ITEWjKztEqtWnOI0OWnlLY3WcetzeMbsmqEh0=",
        "sha256-VD+J+Cg9QfTgfoDUmGftwkX00DspZJvowGGwcp8C2ro=")


@pytest.fixture
def pins(tmp_path: Path) -> Path:
    return served_pins(tmp_path)


def _verdicts(repo: Path, *args: str) -> tuple[int, dict[str, str]]:
    result = fodhash("check", "--all", "--json", *args, cwd=repo)
    report = json.loads(result.stdout)
    return result.returncode, {f"{s['file']}:{s['site']}": s["status"] for s in report["sites"]}


def test_a_new_user_on_a_pinned_repository(pins: Path) -> None:
    init = fodhash("init", cwd=pins)
    assert init.returncode == 0, init.stderr
    assert "6 of 6 hash site(s)" in init.stderr, init.stderr
    assert "not reached" not in init.stderr
    subprocess.run(["git", "add", "-A"], cwd=pins, check=True)

    code, before = _verdicts(pins)
    assert code == 1
    assert sorted(before.values()) == ["ok", "ok", "stale", "stale", "stale", "stale"], before
    assert before["shell.nix:pkgs.sha256"] == "ok"
    assert before["nix/sources.json:greeting.sha256"] == "ok"

    original = snapshot(pins)
    update = fodhash("update", "--all", cwd=pins)
    assert update.returncode == 0, update.stdout + update.stderr
    after = snapshot(pins)
    assert after["shell.nix"] == original["shell.nix"]  # a correct pin: verified, not changed
    for file, (old, new) in STALE.items():
        assert after[file] == original[file].replace(old.encode(), new.encode())
    default = original["default.nix"].replace(MOTD[0].encode(), MOTD[1].encode())
    assert after["default.nix"] == default.replace(DEPS[0].encode(), DEPS[1].encode())
    assert {k for k in after if after[k] != original[k]} == {*STALE, "default.nix"}

    code, verdicts = _verdicts(pins)
    assert code == 0 and set(verdicts.values()) == {"ok"}, verdicts
    # Nix agrees: every pin evaluates as written, and the FOD builds to its hash from scratch.
    assert_fods_build_and_check(fods_of(pins / "default.nix"))


def test_a_stale_pin_served_from_the_store_is_found(pins: Path, tmp_path: Path) -> None:
    """The download of a pin changes under the same URL after its hash was right: Nix goes on
    evaluating with the old download (its store path follows from the written hash), and
    only a real download, with the cache not asked, tells."""
    (pins / "fodhash.toml").write_text('[targets.shell]\nfile = "shell.nix"\n')
    code, verdicts = _verdicts(pins)
    assert (code, verdicts) == (0, {"shell.nix:pkgs.sha256": "ok"})
    served = tmp_path / "served" / "nixpkgs-23.11.tar.gz"
    with tarfile.open(served, "w:gz") as tar:
        tar.add(tmp_path / "served" / "motd.txt", arcname="nixpkgs-23.11/default.nix")
    assert subprocess.run(["nix-instantiate", "--eval", "-E", "import ./shell.nix"], cwd=pins,
                          capture_output=True, check=False).returncode == 0  # served silently
    code, verdicts = _verdicts(pins, "--no-cache")
    assert (code, verdicts) == (1, {"shell.nix:pkgs.sha256": "stale"})


def test_a_correct_pin_is_answered_by_the_cache_for_its_file_only(pins: Path) -> None:
    (pins / "fodhash.toml").write_text('[targets.shell]\nfile = "shell.nix"\n')
    first = fodhash("check", "--all", cwd=pins)
    again = fodhash("check", "--all", cwd=pins)
    assert first.returncode == again.returncode == 0
    assert "ok shell: shell.nix:pkgs.sha256" in first.stderr
    assert "from the cache" not in first.stderr
    # A site the cache confirms is counted in one line (the table lists it), not named.
    assert "ok shell: shell.nix:pkgs.sha256" not in again.stderr
    assert "ok 1 site(s) from the cache" in again.stderr
    [site] = json.loads(fodhash("update", "--all", "--json", cwd=pins).stdout)["sites"]
    assert (site["site"], site["status"], site["message"]) == \
        ("pkgs.sha256", "ok", "from the cache")
    # Another byte of the file (a comment, another URL): the cache does not answer.
    shell = pins / "shell.nix"
    shell.write_text(shell.read_text().replace("# A development", "# The development"))
    changed = fodhash("check", "--all", cwd=pins)
    assert changed.returncode == 0
    assert "ok shell: shell.nix:pkgs.sha256" in changed.stderr
    assert "from the cache" not in changed.stderr


def test_one_site_never_stops_the_others(pins: Path) -> None:
    """A target Nix cannot evaluate fails with Nix's message; every other site resolves."""
    (pins / "broken.nix").write_text(
        'derivation {\n  name = "broken";\n  system = builtins.currentSystem;\n'
        '  builder = "/bin/sh";\n  outputHash = "' + DEPS[0] + '";\n'
        '  outputHashMode = "recursive";\n  args = [ (throw "this package is broken") ];\n}\n')
    (pins / "fodhash.toml").write_text(
        '[targets.shell]\nfile = "shell.nix"\n\n[targets.default]\nfile = "default.nix"\n\n'
        '[targets.broken]\nfile = "broken.nix"\n')
    update = fodhash("update", "--all", "--json", cwd=pins)
    assert update.returncode == 1
    report = json.loads(update.stdout)
    statuses = {s["site"]: s["status"] for s in report["sites"]}
    assert statuses.pop("outputHash") == "failed"
    assert set(statuses.values()) == {"ok", "updated"}, statuses
    failed = next(s for s in report["sites"] if s["site"] == "outputHash")
    assert "this package is broken" in failed["message"]
    assert (pins / "broken.nix").read_text().count(DEPS[0]) == 1


def test_apply_log_of_a_pin(pins: Path) -> None:
    (pins / "fodhash.toml").write_text('[targets.default]\nfile = "default.nix"\n')
    log = subprocess.run(["nix-instantiate", "default.nix"], cwd=pins, capture_output=True,
                         text=True, check=False)
    assert "hash mismatch in file downloaded from" in log.stderr
    (pins.parent / "ci.log").write_text(log.stderr)
    original = snapshot(pins)
    applied = fodhash("apply", "--log", str(pins.parent / "ci.log"), cwd=pins)
    assert applied.returncode == 0, applied.stderr
    old, new = STALE["nix/sources.json"]
    after = snapshot(pins)
    assert after["nix/sources.json"] == original["nix/sources.json"].replace(old.encode(),
                                                                             new.encode())
    assert {k for k in after if after[k] != original[k]} == {"nix/sources.json"}


def test_nothing_is_downloaded_into_the_users_fetcher_cache(pins: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins are fetched with a fetcher cache of the run's own, removed at its end."""
    home = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    (pins / "fodhash.toml").write_text('[targets.shell]\nfile = "shell.nix"\n')
    assert fodhash("check", "--all", "--no-cache", cwd=pins).returncode == 0
    assert not (home / "nix").exists() or not any((home / "nix").iterdir())
    shutil.rmtree(home, ignore_errors=True)


def test_fetchgit_narhash_pin(tmp_path: Path) -> None:
    """`builtins.fetchGit` with a stale `narHash`: its SRI stays SRI, and Nix agrees after."""
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    (upstream / "NOTES").write_text("release notes\n")
    dated = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    git = ["git", "-c", "user.name=fodhash", "-c", "user.email=fodhash@example.invalid"]
    for args in (["init", "-q"], ["add", "NOTES"], ["commit", "-q", "-m", "notes"]):
        subprocess.run([*git, *args], cwd=upstream, check=True, env={**os.environ, **dated})
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=upstream, check=True, text=True,
                         capture_output=True).stdout.strip()
    repo = tmp_path / "repo"
    repo.mkdir()
    stale = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    (repo / "default.nix").write_text(
        f'{{\n  src = builtins.fetchGit {{\n    url = "{upstream.as_uri()}";\n    rev = "{rev}";\n'
        f'    narHash = "{stale}";\n  }};\n}}\n')
    (repo / "fodhash.toml").write_text('[targets.src]\nfile = "default.nix"\n')
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    assert fodhash("check", "--all", cwd=repo).returncode == 1
    update = fodhash("update", "--all", cwd=repo)
    assert update.returncode == 0, update.stderr
    text = (repo / "default.nix").read_text()
    assert stale not in text and 'narHash = "sha256-' in text
    evaluated = subprocess.run(["nix-instantiate", "--eval", "-E", "(import ./default.nix).src.outPath"],
                               cwd=repo, capture_output=True, text=True, check=False)
    assert evaluated.returncode == 0, evaluated.stderr
    assert fodhash("check", "--all", "--no-cache", cwd=repo).returncode == 0


def test_a_site_whose_sentinel_breaks_evaluation_fails_alone(pins: Path) -> None:
    """A hash the file also uses as a key (`known.${srcHash}`): with a sentinel there, Nix
    cannot evaluate the target. That site fails with Nix's message; the pins and the FOD
    of the same target still resolve."""
    default = pins / "default.nix"
    text = default.read_text()
    checked = text.replace("in\n{\n", 'in\n{\n  srcHash = "' + DEPS[1] + '";\n'
                           '  known = { "' + DEPS[1] + '" = "deps"; };\n', 1)
    checked = checked.replace('name = "deps";', 'name = known.${srcHash};')
    checked = checked.replace("in\n{\n", "in\nrec {\n", 1)
    default.write_text(checked)
    (pins / "fodhash.toml").write_text('[targets.default]\nfile = "default.nix"\nattr = "deps"\n')
    update = fodhash("update", "--all", "--json", cwd=pins)
    assert update.returncode == 1, update.stderr
    report = {s["site"]: s for s in json.loads(update.stdout)["sites"]}
    assert report["srcHash"]["status"] == "failed"
    assert "known" in report["srcHash"]["message"], report["srcHash"]["message"]
    assert {s: r["status"] for s, r in report.items() if s != "srcHash"} == {
        "motd.sha256": "updated", "deps.hash": "updated", "greeting.sha256": "ok",
        "nixpkgs.sha256": "updated", "pins.tool.hash": "updated"}
    assert DEPS[1] in default.read_text() and DEPS[0] not in default.read_text()
