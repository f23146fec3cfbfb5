"""`make bench`: fodhash update on the example repository, cold and warm, against bare Nix.

Prints medians over several runs, side by side, and the ratios the issues name:
- cold: `fodhash update --all` with every hash stale and an empty cache;
- warm: the same command again on the resolved repository with the cache filled
  (target: warm <= 1.5 x bare + 0.3 s);
- bare per target: `nix-instantiate` of each target as configured, one after another;
- bare merged: the same evaluations merged per file, as fodhash runs them (stricter);
- startup: `fodhash --version`, the Python floor of every command;
- same-name FODs (docs/design.md's known cost): the three `source` FODs of vendored.nix, which
  share a name and a fake and so an output path, built by `fodhash update vendored` (in
  successive nix-store calls) and by one bare `nix-store --realise --keep-going` of their
  fake-hash derivations (where Nix 2.8 waits on the path lock, polling every 5 s).
Prints the table and writes it to benchmarks/results/latest.md (ignored by git), so that a
run never changes a tracked file; docs/performance.md quotes a run chosen by hand.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"
FODHASH = [sys.executable, "-m", "fodhash"]
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
RESULTS = ROOT / "benchmarks" / "results" / "latest.md"

# The targets of fixtures/example/fodhash.toml instantiated as configured, one by one: what a
# user runs to evaluate them ("a bare nix-instantiate of the same targets").
NIX_FLAKES = ["nix", "--extra-experimental-features", "nix-command flakes"]
BARE_PER_TARGET = [
    ["nix-instantiate", "sources.nix"],
    ["nix-instantiate", "test-build.nix", "-A", "webui-deps"],
    ["nix-instantiate", "test-build.nix", "-A", "python-deps"],
    ["nix-instantiate", "authentik.nix"],
    ["nix-instantiate", "test-build.nix", "-A", "authentik-server"],
    ["nix-instantiate", "test-build.nix", "-A", "vendored"],
    [*NIX_FLAKES, "path-info", "--derivation", ".#python-deps"],
]
# The same, merged as fodhash merges them (one process per file): the stricter baseline.
BARE = [
    ["nix-instantiate", "sources.nix"],
    ["nix-instantiate", "test-build.nix", "-A", "webui-deps", "-A", "python-deps",
     "-A", "authentik-server", "-A", "vendored"],
    ["nix-instantiate", "authentik.nix"],
    [*NIX_FLAKES, "path-info", "--derivation", ".#python-deps"],
]


def timed(commands: list[list[str]], cwd: Path, env: dict[str, str], *,
          check: bool = True) -> float:
    """Seconds the commands take, run one after another."""
    start = time.perf_counter()
    for args in commands:
        subprocess.run(args, cwd=cwd, env=env, check=check, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def fresh_copy(base: Path) -> Path:
    target = Path(tempfile.mkdtemp(dir=base)) / "example"
    shutil.copytree(EXAMPLE, target)
    subprocess.run(["git", "init", "-q"], cwd=target, check=True)
    subprocess.run(["git", "add", "-A"], cwd=target, check=True)
    return target


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="fodhash-bench-"))
    env = {**os.environ, "NIX_CONFIG": os.environ.get("NIX_CONFIG", "substituters =")}
    samples: dict[str, list[float]] = {"cold": [], "warm": [], "bare per target": [],
                                       "bare merged": [], "startup": [],
                                       "same-name: fodhash": [], "same-name: one nix-store": []}
    try:
        for i in range(RUNS):
            repo = fresh_copy(base)
            run_env = {**env, "FODHASH_CACHE_DIR": str(base / f"cache-{i}")}
            samples["cold"].append(timed([[*FODHASH, "update", "--all"]], repo, run_env))
            samples["warm"].append(timed([[*FODHASH, "update", "--all"]], repo, run_env))
            samples["bare per target"].append(timed(BARE_PER_TARGET, repo, env))
            samples["bare merged"].append(timed(BARE, repo, env))
            samples["startup"].append(timed([[*FODHASH, "--version"]], repo, env))
            if i < 3:  # the bare same-name build takes 10 s: three samples
                same = fresh_copy(base)
                same_env = {**env, "FODHASH_CACHE_DIR": str(base / f"same-{i}")}
                samples["same-name: fodhash"].append(
                    timed([[*FODHASH, "update", "vendored"]], same, same_env))
                fakes = subprocess.run(["nix-instantiate", "vendored.nix"], cwd=fresh_copy(base),
                                       env=env, capture_output=True, text=True,
                                       check=True).stdout.split()
                samples["same-name: one nix-store"].append(timed(
                    [["nix-store", "--realise", "--keep-going", *fakes]], same, env, check=False))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    median = {name: statistics.median(values) for name, values in samples.items()}
    budget = 1.5 * median["bare per target"] + 0.3
    strict = 1.5 * median["bare merged"] + 0.3
    nix_version = subprocess.run(["nix-store", "--version"], capture_output=True, text=True,
                                 check=False).stdout.strip()
    lines = [
        f"Medians of {RUNS} runs on fixtures/example (11 hash sites, 7 targets, a chain of two "
        f"rounds); {nix_version}, Python {platform.python_version()}, {os.cpu_count()} cores.",
        "",
        "| measurement | median (s) | min (s) | max (s) |",
        "|---|---|---|---|",
    ]
    for name, values in samples.items():
        lines.append(f"| {name} ({len(values)} runs) | {median[name]:.3f} | {min(values):.3f} "
                     f"| {max(values):.3f} |")
    lines += [
        "",
        f"- warm / bare per target: {median['warm'] / median['bare per target']:.2f}x; "
        f"warm / bare merged: {median['warm'] / median['bare merged']:.2f}x",
        f"- target for warm: 1.5 x bare per target + 0.3 s = {budget:.3f} s; "
        f"measured {median['warm']:.3f} s: {'met' if median['warm'] <= budget else 'NOT met'}",
        f"- against the merged baseline: 1.5 x bare merged + 0.3 s = {strict:.3f} s: "
        f"{'met' if median['warm'] <= strict else 'NOT met'}",
        f"- cold / warm: {median['cold'] / median['warm']:.1f}x",
        f"- same-name FODs: one nix-store call / fodhash: "
        f"{median['same-name: one nix-store'] / median['same-name: fodhash']:.1f}x",
    ]
    report = "\n".join(lines)
    print(report)
    print(f"\n(written to {save(report).relative_to(ROOT)})")


def save(report: str, out: Path = RESULTS) -> Path:
    """Write a run's figures to an untracked file (benchmarks/results/ is in .gitignore)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# make bench, {time.strftime('%Y-%m-%d %H:%M')}\n\n{report}\n")
    return out


if __name__ == "__main__":
    main()
