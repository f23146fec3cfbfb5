"""The project's own tooling: the Makefile's install and benchmark steps (no Nix needed)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, tracked_copy


def _editable_build(project: Path, out: Path, env: dict[str, str]) -> str:
    """What setuptools prints while `pip install -e` builds the editable wheel (the same
    backend hook, without pip's isolation, so that no network is needed)."""
    code = f"from setuptools import build_meta as b; b.build_editable({str(out)!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=project, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_make_setup_installs_without_the_editable_installation_box(tmp_path: Path) -> None:
    project = tracked_copy(tmp_path / "project")
    makefile = (ROOT / "Makefile").read_text()
    quiet = re.search(r'^EDITABLE_QUIET := PYTHONWARNINGS="([^"]+)"$', makefile, re.MULTILINE)
    assert quiet is not None and "$(EDITABLE_QUIET) $(BIN)/pip install" in makefile
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    loud = _editable_build(project, tmp_path / "loud", env)
    assert "Editable installation." in loud  # what `make run` printed before
    silent = _editable_build(project, tmp_path / "silent", env | {"PYTHONWARNINGS": quiet[1]})
    assert "Editable installation" not in silent
    assert "*****" not in silent


def test_bench_writes_its_figures_to_an_untracked_file(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)

    assert run.RESULTS.is_relative_to(ROOT / "benchmarks" / "results")
    ignored = subprocess.run(["git", "check-ignore", "-q", str(run.RESULTS)], cwd=ROOT,
                             check=False)
    assert ignored.returncode == 0, f"{run.RESULTS} is not ignored by git"
    written = run.save("| measurement | median (s) |", tmp_path / "results" / "latest.md")
    assert "| measurement | median (s) |" in written.read_text()
    source = Path(run.__file__).read_text()
    assert "performance.md\"" not in source and "write_text" in source
    assert "docs" not in source.split("def save", 1)[1]
