"""Installing fodhash: the wheel and sdist (built offline, checked by twine, installed into a
fresh virtual environment) and the Nix expressions (parsed, and evaluated against a stand-in
for nixpkgs, since nixpkgs cannot be fetched here)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from helpers import FIXTURES, ROOT, copy_fixture, tracked_copy

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
STAND_IN = ROOT / "tests" / "project" / "packaging" / "stand-in-nixpkgs.nix"


def _name(requirement: str) -> str:
    """A requirement's project name, normalised as PyPI and nixpkgs both write it."""
    found = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert found is not None, requirement
    return re.sub(r"[-_.]+", "-", found[0]).lower()


def _eval(expression: str) -> object:
    result = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "--expr",
                             expression], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# ---- Nix -------------------------------------------------------------------------------

@pytest.mark.nix
@pytest.mark.parametrize("file", ["flake.nix", "default.nix", "nix/package.nix"])
def test_the_nix_expressions_parse(file: str) -> None:
    result = subprocess.run(["nix-instantiate", "--parse", str(ROOT / file)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr


RECORD = """r: {
  inherit (r) pname version pyproject doCheck pythonImportsCheck pythonRelaxDeps;
  mainProgram = r.meta.mainProgram;
  dependencies = map (p: p.nixpkgsAttribute) r.dependencies;
  build-system = map (p: p.nixpkgsAttribute) r.build-system;
  files = map (p: toString p) r.src.fileset;
}"""


def _expected(files_root: str) -> dict[str, object]:
    return {
        "pname": "fodhash",
        "version": VERSION,
        "pyproject": True,
        "doCheck": False,
        "pythonImportsCheck": ["fodhash"],
        "pythonRelaxDeps": ["tree-sitter-language-pack", "typer"],
        "mainProgram": "fodhash",
        "dependencies": [_name(r) for r in PYPROJECT["project"]["dependencies"]],
        "build-system": [_name(r) for r in PYPROJECT["build-system"]["requires"]],
        "files": [f"{files_root}/{f}" for f in ("pyproject.toml", "README.md", "fodhash")],
    }


@pytest.mark.nix
def test_default_nix_depends_on_what_pyproject_names() -> None:
    got = _eval(f"({RECORD}) (import ./default.nix {{ pkgs = import {STAND_IN} {{ }}; }})")
    assert got == _expected(str(ROOT))


@pytest.mark.nix
@pytest.mark.parametrize("system", ["x86_64-linux", "aarch64-darwin"])
def test_the_flake_packages_and_runs_fodhash(system: str) -> None:
    flake = f"""let
      stand-in = import {STAND_IN} {{ system = "{system}"; }};
      nixpkgs = {{ inherit (stand-in) lib; legacyPackages = stand-in.lib.genAttrs
        [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ] (_: stand-in); }};
      outputs = (import ./flake.nix).outputs {{ self = outputs; inherit nixpkgs; }};
    in outputs"""
    got = _eval(f"({RECORD}) ({flake}).packages.{system}.default")
    assert got == _expected(str(ROOT))
    app = _eval(f"({flake}).apps.{system}.default")
    assert app == {"type": "app", "program": "/stand-in/fodhash/bin/fodhash"}
    overlay = _eval(f"""({RECORD}) (let s = ({flake}).overlays.default final {{ }};
        final = {{ python3Packages = (import {STAND_IN} {{ }}).python3Packages; }}; in s.fodhash)""")
    assert overlay == _expected(str(ROOT))
    inputs = _eval("(import ./flake.nix).inputs")
    assert inputs == {"nixpkgs": {"url": "github:NixOS/nixpkgs/nixos-unstable"}}


# ---- the wheel and the sdist -----------------------------------------------------------

@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist of this work tree's files, and the wheel built from that sdist, with a
    version of their own (so that --version can only have come from the metadata); built
    with `python -m build --no-isolation`: the build backend is the test environment's, so
    nothing is fetched."""
    source = tracked_copy(tmp_path_factory.mktemp("source"))
    pyproject = source / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{VERSION}"',
                                                       f'version = "{VERSION}.post7"', 1))
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                             str(out), str(source)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    files = sorted(p.name for p in dist.iterdir())
    assert files == [f"fodhash-{VERSION}.post7-py3-none-any.whl", f"fodhash-{VERSION}.post7.tar.gz"]
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                             *map(str, sorted(dist.iterdir()))],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_wheel_holds_the_package_only(dist: Path) -> None:
    import zipfile  # noqa: PLC0415

    names = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"fodhash", f"fodhash-{VERSION}.post7.dist-info"}
    assert "fodhash/cli.py" in names and "fodhash/py.typed" not in top
    entry = zipfile.ZipFile(next(dist.glob("*.whl"))).read(
        f"fodhash-{VERSION}.post7.dist-info/entry_points.txt").decode()
    assert "fodhash = fodhash.entry:run" in entry


@pytest.mark.nix
def test_the_wheel_installs_into_a_fresh_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    """A new virtual environment with the wheel alone; its dependencies come from the test
    environment through a path entry (this machine cannot count on reaching PyPI), which
    makes them importable without installing its own fodhash (path entries added by a .pth
    file are not scanned for .pth files, so the test environment's editable fodhash stays
    out)."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    bin_dir = env_dir / "bin"
    site = next(env_dir.glob("lib/python*/site-packages"))
    ours = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "zz-test-dependencies.pth").write_text(f"{ours}\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"),
                              "install", "--no-deps", "--no-index", str(next(dist.glob("*.whl")))],
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    clean = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "NIX_CONFIG":
             "substituters =", "FODHASH_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}

    def run(*args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), cwd=cwd, env=clean, capture_output=True, text=True,
                              check=False)

    where = run(str(bin_dir / "python"), "-c", "import fodhash; print(fodhash.__file__)")
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    assert run(str(bin_dir / "fodhash"), "--version").stdout == f"fodhash {VERSION}.post7\n"
    # Installed, --version reads its own dist-info: importlib.metadata (its import and its
    # scan of every installed distribution) is no part of it (docs/performance.md).
    imported = run(str(bin_dir / "python"), "-c", "import sys\nsys.argv = ['fodhash', '--version']\n"
                   "from fodhash.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
                   "print(sorted(m for m in sys.modules if m.startswith('importlib.metadata')))")
    assert imported.stdout == f"fodhash {VERSION}.post7\n[]\n", imported.stdout + imported.stderr
    completion = run("bash", "-c", "fodhash --show-completion")
    assert "_FODHASH_COMPLETE=complete_bash" in completion.stdout, completion.stderr
    nix_bin = Path(shutil.which("nix-instantiate") or "/usr/bin/nix-instantiate").parent
    clean["PATH"] += f":{nix_bin}"
    repo = copy_fixture("example", tmp_path)
    updated = run(str(bin_dir / "fodhash"), "update", "sources", cwd=repo)
    assert updated.returncode == 0, updated.stderr
    expected = json.loads((FIXTURES / "example" / "expected.json").read_text())["sources.nix"]
    text = (repo / "sources.nix").read_text()
    assert expected["authentik.hash"] in text and expected["client-go.hash"] in text
