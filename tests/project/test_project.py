"""The project's own tooling: the Makefile's install and benchmark steps (no Nix needed)."""

from __future__ import annotations

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


def test_bench_writes_its_figures_to_an_untracked_file() -> None:
    """make bench prints its figures and writes them under benchmarks/results (ignored by
    git), never into the tracked docs/performance.md."""
    source = (ROOT / "benchmarks" / "run.py").read_text()
    assert 'RESULTS = ROOT / "benchmarks" / "results"' in source
    for name in ("latest.md", "latest.json"):
        ignored = subprocess.run(["git", "check-ignore", "-q", f"benchmarks/results/{name}"],
                                 cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"benchmarks/results/{name} is not ignored by git"
    writes = [line for line in source.splitlines() if "write_text(" in line]
    assert writes and not any("performance.md" in line or "docs" in line for line in writes)
