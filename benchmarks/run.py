"""`make bench`: fodhash against the limits Nix sets, on generated repositories, in one run.

Every shape side by side (docs/performance.md says what each row measures), all with
fodhash installed as users install it (`pip install .` into a virtual environment of the
bench's own, byte-compiled, no editable finder):

- cold: `fodhash update --all --json` on a fresh repository from benchmarks/generate.py
  (every hash stale, new to the Nix store) with an empty cache; against the limit, D*S plus
  one bare `nix-instantiate default.nix` per level, the Nix floor (bare `nix-store
  --realise --keep-going` of the fakes), and (for the first shape) against the manual
  recipe (benchmarks/manual-recipe.sh) on another fresh repository;
- warm: `fodhash update --all` and `fodhash check --all` on a resolved repository whose
  cache one `update --all` filled, against a bare `nix-instantiate` of its entry points;
- start-up: `fodhash --version` and `--help` against `python -c pass`;
- the bundled example (fixtures/example), cold against the manual recipe
  (benchmarks/example-recipe.tsv) and its bare evaluations, and warm.

Medians over R runs, and the peak memory (RSS) of each row: the largest of fodhash and the
Nix processes it waited for, over its runs. The table, with a PASS/FAIL per target of the
issue, is printed and written to benchmarks/results/latest.md and latest.json (untracked).
`--quick` runs fewer runs of smaller shapes. Exits 1 if a run failed, got a hash wrong, or
missed a target.
"""

from __future__ import annotations

import argparse
import functools
import grp
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.generate import FAKE, Repo, Shape, generate

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "benchmarks" / "manual-recipe.sh"
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLE = ROOT / "fixtures" / "example"
EXAMPLE_RECIPE = ROOT / "benchmarks" / "example-recipe.tsv"
TIMEOUT = 900.0  # seconds for any one command: a hung run fails the bench, never stalls it


Trace = list[tuple[float, str]]  # (seconds since start, Nix command line) per Nix process
EXIT = "(exit)"  # the last entry of a trace: when fodhash exited


def timeline(trace: Trace) -> str:
    """When each Nix process started, briefly: `0.21 instantiate, 0.30 realise(6), ...`."""
    parts = []
    for at, command in trace:
        words = command.split()
        program = Path(words[0]).name if words else "?"
        if command == EXIT:
            what = "exit"
        elif program == "nix-store" and "--realise" in words:
            what = f"realise({sum(w.endswith('.drv') for w in words)})"
        elif program == "nix-instantiate" and "--eval" not in words:
            what = "instantiate"
        else:
            what = " ".join([program, *(w for w in words[1:3] if w.startswith("-"))])
        parts.append(f"{at:.2f} {what}")
    return ", ".join(parts)


def nix_calls(trace: Trace) -> dict[str, int]:
    """The Nix processes a run started, by kind."""
    calls = {"instantiate": 0, "realise": 0, "other": 0}
    for _, command in trace:
        if command == EXIT:
            continue
        words = command.split()
        program = Path(words[0]).name if words else ""
        if program == "nix-instantiate" and "--eval" not in words:
            calls["instantiate"] += 1
        elif program == "nix-store" and "--realise" in words:
            calls["realise"] += 1
        else:
            calls["other"] += 1
    return calls


def build_users(env: dict[str, str]) -> int | None:
    """How many builds Nix runs at once at most: the members of its build-users-group
    (None: no such group, builds run as the calling user, no limit)."""
    done = subprocess.run(["nix", "--extra-experimental-features", "nix-command", "show-config"],
                          capture_output=True, text=True, env=env, check=False)
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" = ")
        if key.strip() == "build-users-group" and value.strip():
            try:
                return len(grp.getgrnam(value.strip()).gr_mem)
            except KeyError:
                return None
    return None


class BenchError(Exception):
    """A measured command failed or left a wrong hash: its timing means nothing."""


def install(venv: Path) -> Path:
    """fodhash as users install it: `pip install .` (a wheel's files, byte-compiled, its
    console script) into a new virtual environment, its dependencies those of this
    checkout's venv (constraints.txt's, through a path entry: the bench measures what the
    lock pins, offline; a path from a .pth file is not scanned for .pth files, so the
    editable fodhash stays out). The `fodhash` to run."""
    import venv as venvs  # noqa: PLC0415

    venvs.create(venv, with_pip=False)
    site = next(venv.glob("lib/python*/site-packages"))
    ours = next(Path(p) for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    (site / "zz-bench-dependencies.pth").write_text(f"{ours}\n")
    with tempfile.TemporaryDirectory() as build:  # the checkout stays free of build/
        source = Path(build) / "fodhash"
        # The work tree's files as a commit of it would hold them (not .venv, caches, build/).
        listing = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                                 capture_output=True, check=True).stdout.decode()
        for name in filter(None, listing.split("\0")):
            if (ROOT / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
        done = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                               "install", "--quiet", "--no-deps", "--no-index",
                               "--no-build-isolation", str(source)],
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench: could not install fodhash into {venv}:\n{done.stderr}")
    return venv / "bin" / "fodhash"


def wait(proc: subprocess.Popen[Any], timeout: float) -> tuple[int, int]:
    """Wait for a child: its exit code and peak RSS (KiB: the largest of it and of the
    children it waited for, as the kernel counts them); killed after `timeout` seconds."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


@dataclass(frozen=True)
class Plan:
    runs: int  # R: samples of every fodhash measurement
    recipe_runs: int
    cold: dict[str, Shape]
    recipe: tuple[str, ...]  # the cold shapes the manual recipe also runs on
    warm: dict[str, Shape]
    startup_runs: int
    example: bool
    # --reproducible: each FOD built twice at once; its extra wall time is the slower build
    reproducible: Shape = field(default_factory=lambda: Shape(4, 1, 2.0, same_name=2))


FULL = Plan(
    runs=5, recipe_runs=5,
    cold={"cold-same": Shape(8, 2, 2.0, same_name=2),
          "cold-unique": Shape(8, 2, 2.0, same_name=0),
          "cold-all-same": Shape(8, 2, 2.0, same_name=4),
          "cold-k32": Shape(32, 2, 2.0, same_name=2),
          "cold-k256": Shape(256, 1, 0.0, same_name=0)},
    recipe=("cold-same",),
    # Warm shapes never build after their first run: S=0 only shortens that first run.
    warm={"warm-six": Shape(12, 2, 0.0, same_name=2, files=3, entries=2),
          "warm-n5000": Shape(8, 2, 0.0, same_name=2, closure=5000),
          "warm-k256": Shape(256, 1, 0.0, same_name=0)},
    startup_runs=20, example=True,
)
# Fewer runs and smaller shapes: K=16 for the K=32 row, K=64 for the cold K=256 one,
# N=2000 for N=5000.
QUICK = replace(
    FULL, runs=2, recipe_runs=1, startup_runs=10,
    cold=FULL.cold | {"cold-k32": replace(FULL.cold["cold-k32"], sites=16),
                      "cold-k256": replace(FULL.cold["cold-k256"], sites=64)},
    warm=FULL.warm | {"warm-n5000": replace(FULL.warm["warm-n5000"], closure=2000)},
)

# The targets (checked in `rows`). cold-all-same (all 4 sources of K=8, D=2 named
# `source`) holds the same-name bound past two. cold-k32 has no target: with 16 FODs a
# level and 10 build users its Nix floor is twice the limit (docs/performance.md).
COLD_BOUND = {"cold-same": 1.2, "cold-all-same": 1.2}  # x the limit (the critical path)
FLOOR_BOUND = {"cold-k256": 1.15}  # x the Nix floor
RECIPE_SPEEDUP = 3.0
WARM_FACTOR, WARM_SLACK = 1.5, 0.15
WARM_RSS_MB = {"warm-n5000": 150.0}
STARTUP_SLACK = 0.05  # seconds over `python -c pass`
# --reproducible builds twice at once: at most this much slower than one build (the sum of
# the two builds, one after the other, would be 2x the build time S).
REPRODUCIBLE_BOUND = 1.25


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Measure:
    """Samples (seconds) of one command and, for fodhash, its --json stats."""

    samples: list[float] = field(default_factory=list)
    stats: list[dict[str, int]] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # peak resident memory of each run, KiB

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def peak_mb(self) -> float:
        return max(self.rss) / 1024 if self.rss else float("nan")

    def add(self, sample: tuple[float, str, int]) -> str:
        """Record one run's (seconds, stdout, peak RSS); its stdout."""
        seconds, out, rss = sample
        self.samples.append(seconds)
        self.rss.append(rss)
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"median": self.median, "samples": self.samples}
        if self.rss:
            out["peak_rss_kib"] = self.rss
        if self.samples:
            out |= {"min": min(self.samples), "max": max(self.samples)}
        if self.stats:
            out["stats"] = self.stats
        if self.traces:
            out["nix_calls"] = [nix_calls(t) for t in self.traces]
            out["first_trace"] = [(at, command[:160]) for at, command in self.traces[0]]
        return out

    def calls_text(self) -> str:
        """Nix processes per run: instantiate / realise / other."""
        if not self.traces:
            return ""
        parts = []
        for key in ("instantiate", "realise", "other"):
            values = sorted({nix_calls(t)[key] for t in self.traces})
            parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
        return " / ".join(parts)

    def stats_text(self) -> str:
        """rounds / evaluations / builds, as a range where runs differ."""
        if not self.stats:
            return ""
        parts = []
        for key in ("rounds", "evaluations", "builds"):
            values = sorted({s.get(key, -1) for s in self.stats})
            parts.append(str(values[0]) if len(values) == 1 else f"{values[0]}-{values[-1]}")
        return " / ".join(parts)


class Bench:
    def __init__(self, plan: Plan, base: Path) -> None:
        self.plan = plan
        self.base = base
        self.stamp = f"{time.time_ns():x}"
        self.env = {**os.environ, "NIX_CONFIG": os.environ.get("NIX_CONFIG", "substituters =")}
        for name in ("FODHASH_CACHE_DIR", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):
            self.env.pop(name, None)
        self.fodhash = [str(install(base / "venv"))]
        # Start-up's floor: the installed environment's own interpreter, empty.
        self.python = str(base / "venv" / "bin" / "python")
        self.results: dict[str, dict[str, Measure]] = {}
        self.errors: dict[str, str] = {}
        self.counter = 0
        self.build_users = build_users(self.env)
        # The 1-minute load average at the start and the end, and after each measurement:
        # other processes on the machine (a test suite) skew every figure.
        self.load: list[float] = []

    # ---- helpers ------------------------------------------------------------------------

    def fresh(self, shape: Shape, *, resolved: bool = False) -> Repo:
        self.counter += 1
        nonce = f"{self.stamp}-{self.counter}"
        return generate(shape, self.base / f"repo-{self.counter}", nonce, resolved=resolved)

    def cache_env(self) -> dict[str, str]:
        self.counter += 1
        return {**self.env, "FODHASH_CACHE_DIR": str(self.base / f"cache-{self.counter}")}

    def run(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, *,
            ok: Callable[[int], bool] = lambda code: code == 0) -> tuple[float, str, int]:
        """Seconds the command took, its stdout and peak RSS (KiB); BenchError if
        `ok(exit code)` fails."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(args, cwd=cwd, env=env or self.env, stdout=out, stderr=err,
                                    text=True)
            code, rss = wait(proc, TIMEOUT)
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read(), err.read()
        if seconds >= TIMEOUT:
            raise BenchError(f"`{' '.join(args)}` in {cwd} ran over {TIMEOUT:g} s")
        if not ok(code):
            tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
            raise BenchError(f"`{' '.join(args)}` in {cwd} exited with {code}:\n{tail}")
        return seconds, stdout, rss

    def traced(self, args: list[str], cwd: Path,
               env: dict[str, str]) -> tuple[float, str, int, Trace]:
        """Run fodhash with -v (it logs each Nix command as it starts it): seconds, stdout,
        peak RSS and, per Nix command, when it started (seconds from our start)."""
        assert args[:len(self.fodhash)] == self.fodhash
        argv = [*self.fodhash, "-v", *args[len(self.fodhash):]]
        trace: Trace = []
        lines: list[str] = []
        with tempfile.TemporaryFile("w+") as stdout:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE,
                                    text=True)
            assert proc.stderr is not None
            for line in proc.stderr:
                at = time.perf_counter() - start
                lines.append(line)
                for mark in ("fodhash: run: ", "fodhash: stream: "):
                    if line.startswith(mark):
                        trace.append((round(at, 4), line[len(mark):].strip()))
            code, rss = wait(proc, TIMEOUT)
            seconds = time.perf_counter() - start
            trace.append((round(seconds, 4), EXIT))
            stdout.seek(0)
            out = stdout.read()
        if seconds >= TIMEOUT:
            raise BenchError(f"`{' '.join(argv)}` in {cwd} ran over {TIMEOUT:g} s")
        if code != 0:
            tail = "".join(lines[-15:])
            raise BenchError(f"`{' '.join(argv)}` in {cwd} exited with {code}:\n{tail}")
        return seconds, out, rss, trace

    def bare_instantiate(self, repo: Repo) -> tuple[float, str, int]:
        """One bare `nix-instantiate` of each entry point of the repository, one after the
        other: seconds in all, and the largest peak RSS."""
        seconds, peak = 0.0, 0
        for entry in repo.shape.entry_files():
            took, _, rss = self.run(["nix-instantiate", entry], repo.path)
            seconds, peak = seconds + took, max(peak, rss)
        return seconds, "", peak

    def bare_instantiate_at_once(self, repos: list[Repo]) -> tuple[float, str, int]:
        """bare_instantiate of each repository, all at once: the seconds until the last
        ends, and the largest peak RSS."""
        done: list[tuple[float, str, int]] = []
        start = time.perf_counter()
        threads = [threading.Thread(target=lambda r=repo: done.append(self.bare_instantiate(r)))
                   for repo in repos]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if len(done) != len(repos):
            raise BenchError("a bare instantiation of a fresh repository failed")
        return time.perf_counter() - start, "", max(rss for _, _, rss in done)

    @staticmethod
    def resolved(repo: Repo, who: str) -> None:
        wrong = repo.wrong()
        if wrong:
            raise BenchError(f"{who} left {len(wrong)} site(s) without their true hash in "
                             f"{repo.path}: {', '.join(wrong[:5])}")

    def unchanged(self, repo: Repo, who: str) -> None:
        try:
            self.run(["git", "diff", "--quiet"], repo.path)
        except BenchError:
            raise BenchError(f"{who} changed files of the resolved repository {repo.path}") from None

    def note(self, text: str) -> None:
        print(f"bench: {text}", file=sys.stderr, flush=True)

    # ---- the shapes ---------------------------------------------------------------------

    def cold(self, name: str, shape: Shape) -> None:
        measures = self.results[name] = {"fodhash": Measure(), "instantiate": Measure()}
        recipe_runs = self.plan.recipe_runs if name in self.plan.recipe else 0
        if recipe_runs:
            measures["recipe"] = Measure()
        for i in range(max(self.plan.runs, recipe_runs)):
            if i < self.plan.runs:
                repo = self.fresh(shape)
                seconds, out, rss, trace = self.traced(
                    [*self.fodhash, "update", "--all", "--json"], repo.path, self.cache_env())
                self.resolved(repo, "fodhash update --all")
                measures["fodhash"].add((seconds, out, rss))
                measures["fodhash"].stats.append(json.loads(out)["stats"])
                measures["fodhash"].traces.append(trace)
                self.note(f"{name}: fodhash {seconds:.2f} s {measures['fodhash'].stats[-1]}")
            if i < recipe_runs:
                repo = self.fresh(shape)
                measures["recipe"].add(self.run(["sh", str(RECIPE)], repo.path))
                self.resolved(repo, "the manual recipe")
                self.note(f"{name}: manual recipe {measures['recipe'].samples[-1]:.2f} s")
        # A bare evaluation of a repository new to the store, as each of fodhash's is (its
        # sentinels and fakes make new .drv files): the per-level cost in the limit.
        for _ in range(max(self.plan.runs, 5)):
            repo = self.fresh(shape)
            measures["instantiate"].add(self.bare_instantiate(repo))
        measures["realise"] = self.bare_realise(shape)
        if name in FLOOR_BOUND:
            # What the protocol itself asks of Nix: its two trees (sentinels and fakes, both
            # new to the store) evaluated at once, then the realise. No target; it says how
            # much of the distance to the Nix floor is the second tree's (docs/performance.md).
            measures["two trees"] = Measure()
            for _ in range(max(self.plan.runs, 5)):
                measures["two trees"].add(self.bare_instantiate_at_once(
                    [self.fresh(shape), self.fresh(shape)]))

    def bare_realise(self, shape: Shape) -> Measure:
        """Nix's own cost of one level's builds: one `nix-store --realise --keep-going` of the
        level-1 FODs of a fresh repository with the fake in every site and every name made
        unique (so that they can build at once), as many jobs at once as Nix has build users
        (more make Nix 2.8 print "waiting for UID to build" and poll every 5 s)."""
        measure = Measure()
        for _ in range(self.plan.runs):
            repo = self.fresh(replace(shape, same_name=0))
            files = sorted({site.file for site in repo.sites if site.level == 1})
            for file in files:
                path = repo.path / file
                text = path.read_text()
                for site in repo.sites:
                    text = text.replace(f'"{site.stale}"', f'"{FAKE}"')
                path.write_text(text)
            drvs = [d for file in files
                    for d in self.run(["nix-instantiate", file], repo.path)[1].split()]
            jobs = min(len(drvs), self.build_users or len(drvs))
            measure.add(self.run(["nix-store", "--realise", "--keep-going", "--max-jobs",
                                  str(jobs), *drvs], repo.path, ok=lambda code: code != 0))
        return measure

    def warm(self, name: str, shape: Shape) -> None:
        measures = self.results[name] = {"update": Measure(), "check": Measure(),
                                         "instantiate": Measure()}
        repo = self.fresh(shape, resolved=True)
        env = self.cache_env()
        self.run([*self.fodhash, "update", "--all"], repo.path, env)  # fills the cache: builds
        self.unchanged(repo, "the first fodhash update --all")
        for command in ("update", "check"):  # stats from one -v --json run each (not timed)
            _, out, _, trace = self.traced([*self.fodhash, command, "--all", "--json"],
                                           repo.path, env)
            measures[command].stats.append(json.loads(out)["stats"])
            measures[command].traces.append(trace)
        for _ in range(self.plan.runs * 2):
            measures["instantiate"].add(self.bare_instantiate(repo))
            for command in ("update", "check"):
                measures[command].add(self.run([*self.fodhash, command, "--all"], repo.path, env))
        self.unchanged(repo, "fodhash update --all (warm)")
        self.note(f"{name}: update {measures['update'].median:.3f} s, check "
                  f"{measures['check'].median:.3f} s, instantiate "
                  f"{measures['instantiate'].median:.3f} s")

    def reproducible(self) -> None:
        """`update --all` and `update --all --reproducible`, each on a fresh repository with a
        fresh cache: the second builds every FOD twice, at once."""
        shape = self.plan.reproducible
        measures = self.results["reproducible"] = {"update": Measure(), "reproducible": Measure()}
        for _ in range(self.plan.runs):
            for name, extra in (("update", []), ("reproducible", ["--reproducible"])):
                repo = self.fresh(shape)
                seconds, out, _rss = self.run([*self.fodhash, "update", "--all", "--json", *extra],
                                              repo.path, self.cache_env())
                self.resolved(repo, f"fodhash update --all {' '.join(extra)}")
                measures[name].samples.append(seconds)
                measures[name].stats.append(json.loads(out)["stats"])
        self.note(f"reproducible: update {measures['update'].median:.2f} s, --reproducible "
                  f"{measures['reproducible'].median:.2f} s")

    def startup(self) -> None:
        commands = {"--version": [*self.fodhash, "--version"],
                    "--help": [*self.fodhash, "--help"],
                    "python -c pass": [self.python, "-c", "pass"]}
        measures = self.results["startup"] = {name: Measure() for name in commands}
        for _ in range(self.plan.startup_runs):
            for name, args in commands.items():
                measures[name].add(self.run(args, self.base))
        self.note("startup: " + ", ".join(f"{n} {m.median:.3f} s" for n, m in measures.items()))

    def example(self) -> None:
        """fixtures/example: 11 sites, 7 targets (a flake among them), a chain of 2 rounds;
        cold against the manual recipe on another fresh copy."""
        flakes = ["nix", "--extra-experimental-features", "nix-command flakes"]
        per_target = [
            ["nix-instantiate", "sources.nix"],
            *(["nix-instantiate", "test-build.nix", "-A", a]
              for a in ("webui-deps", "python-deps", "authentik-server", "vendored")),
            ["nix-instantiate", "authentik.nix"],
            [*flakes, "path-info", "--derivation", ".#python-deps"],
        ]
        merged = [  # as fodhash merges them: one Nix process per file
            ["nix-instantiate", "sources.nix"],
            ["nix-instantiate", "test-build.nix", "-A", "webui-deps", "-A", "python-deps",
             "-A", "authentik-server", "-A", "vendored"],
            ["nix-instantiate", "authentik.nix"],
            [*flakes, "path-info", "--derivation", ".#python-deps"],
        ]
        measures = self.results["example"] = {
            n: Measure() for n in ("cold", "warm", "recipe", "bare per target", "bare merged")}
        expected = json.loads((EXAMPLE / "expected.json").read_text())

        def copy() -> Path:
            self.counter += 1
            repo = self.base / f"example-{self.counter}" / "example"
            shutil.copytree(EXAMPLE, repo)
            self.run(["git", "init", "-q"], repo)
            self.run(["git", "add", "-A"], repo)
            return repo

        def check(repo: Path, who: str) -> None:
            for file, sites in expected.items():
                text = (repo / file).read_text()
                wrong = [site for site, true in sites.items() if f'"{true}"' not in text]
                if wrong:
                    raise BenchError(f"{who} left {file}: {', '.join(wrong)} without their "
                                     f"true hash in {repo}")

        for _ in range(self.plan.runs):
            repo = copy()
            env = self.cache_env()
            seconds, out, rss, trace = self.traced([*self.fodhash, "update", "--all", "--json"],
                                                   repo, env)
            check(repo, "fodhash update --all")
            measures["cold"].add((seconds, out, rss))
            measures["cold"].stats.append(json.loads(out)["stats"])
            measures["cold"].traces.append(trace)
            measures["warm"].add(self.run([*self.fodhash, "update", "--all"], repo, env))
            recipe = copy()
            measures["recipe"].add(self.run(["sh", str(RECIPE), str(EXAMPLE_RECIPE)], recipe))
            check(recipe, "the manual recipe")
            for name, commands in (("bare per target", per_target), ("bare merged", merged)):
                start = time.perf_counter()
                for args in commands:
                    self.run(args, repo)
                measures[name].samples.append(time.perf_counter() - start)
        self.note("example: " + ", ".join(f"{n} {m.median:.3f} s" for n, m in measures.items()))

    def all(self, only: set[str]) -> None:
        jobs: dict[str, Callable[[], None]] = {}
        for name, shape in self.plan.cold.items():
            jobs[name] = functools.partial(self.cold, name, shape)
        for name, shape in self.plan.warm.items():
            jobs[name] = functools.partial(self.warm, name, shape)
        jobs["startup"] = self.startup
        jobs["reproducible"] = self.reproducible
        if self.plan.example:
            jobs["example"] = self.example
        for name, job in jobs.items():
            if only and name not in only:
                continue
            self.note(f"{name} ...")
            try:
                job()
            except BenchError as error:
                self.errors[name] = str(error)
                self.note(f"{name} FAILED: {error}")
            self.load.append(os.getloadavg()[0])


# ---- the report -------------------------------------------------------------------------


def limit(shape: Shape, instantiate: float) -> float:
    """The critical path: D levels, each one instantiation then S seconds of building."""
    return shape.depth * (shape.sleep + instantiate)


def _s(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _x(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.2f}x"


def _mb(measure: Measure | None) -> str:
    return "" if measure is None or not measure.rss else f"{measure.peak_mb:.0f} MB"


def rows(bench: Bench) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The side-by-side table, and the targets with their verdicts."""
    table: list[list[str]] = []
    targets: list[dict[str, Any]] = []

    def target(what: str, measured: float, bound: float, shown: str, bound_shown: str, *,
               at_least: bool = False) -> None:
        passed = measured >= bound if at_least else measured <= bound
        targets.append({"target": what, "measured": measured, "bound": bound,
                        "shown": shown, "bound_shown": bound_shown,
                        "verdict": "PASS" if passed else "FAIL"})

    results = bench.results
    for name, shape in bench.plan.cold.items():
        if name not in results or name in bench.errors:
            continue
        m = results[name]
        fod, inst = m["fodhash"].median, m["instantiate"].median
        lim = limit(shape, inst)
        floor = shape.depth * (inst + m["realise"].median)
        recipe = m["recipe"].median if "recipe" in m else float("nan")
        table.append([f"cold: {shape.describe()}", _s(fod),
                      f"{_s(lim)} ({shape.depth}x({shape.sleep:g} s + {_s(inst)}))",
                      _x(fod / lim), _s(floor), _x(fod / floor), _s(recipe), _x(recipe / fod),
                      m["fodhash"].stats_text(), m["fodhash"].calls_text(), _mb(m["fodhash"])])
        if name in COLD_BOUND:
            bound = COLD_BOUND[name]
            target(f"cold {shape.describe()}: <= {bound}x the limit", fod / lim, bound,
                   f"{_s(fod)} = {_x(fod / lim)}", f"{_s(bound * lim)} = {bound}x")
        if name in FLOOR_BOUND:
            bound = FLOOR_BOUND[name]
            target(f"cold {shape.describe()}: <= {bound}x the Nix floor", fod / floor, bound,
                   f"{_s(fod)} = {_x(fod / floor)}", f"{_s(bound * floor)} = {bound}x")
        if "two trees" in m:
            trees = shape.depth * (m["two trees"].median + m["realise"].median)
            table.append([f"cold: {shape.describe()}, against the protocol's Nix floor",
                          _s(fod), f"both trees at once {_s(m['two trees'].median)} + the "
                          f"realise {_s(m['realise'].median)} = {_s(trees)} (no target)",
                          _x(fod / trees), "", "", "", "", "", "", _mb(m["two trees"])])
        if "recipe" in m:
            target(f"cold {shape.describe()}: >= {RECIPE_SPEEDUP:g}x faster than the recipe",
                   recipe / fod, RECIPE_SPEEDUP, f"{_x(recipe / fod)} faster",
                   f"{RECIPE_SPEEDUP:g}x", at_least=True)
    for name, shape in bench.plan.warm.items():
        if name not in results or name in bench.errors:
            continue
        m = results[name]
        inst = m["instantiate"].median
        budget = WARM_FACTOR * inst + WARM_SLACK
        entries = " + ".join(shape.entry_files())
        for command in ("update", "check"):
            value = m[command].median
            label = f"warm `{command} --all`, {shape.describe()}"
            table.append([label, _s(value), f"bare `nix-instantiate {entries}` {_s(inst)}",
                          _x(value / inst), "", "", "", "", m[command].stats_text(),
                          m[command].calls_text(), _mb(m[command])])
            target(f"{label}: <= {WARM_FACTOR:g}x bare + {WARM_SLACK:g} s", value, budget,
                   _s(value), _s(budget))
            if name in WARM_RSS_MB:
                target(f"{label}: peak RSS <= {WARM_RSS_MB[name]:g} MB", m[command].peak_mb,
                       WARM_RSS_MB[name], _mb(m[command]), f"{WARM_RSS_MB[name]:g} MB")
    if "reproducible" in results and "reproducible" not in bench.errors:
        m = results["reproducible"]
        shape = bench.plan.reproducible
        plain, twice = m["update"].median, m["reproducible"].median
        extra = twice - plain
        table.append([f"`update --all --reproducible`: {shape.describe()}", _s(twice),
                      f"`update --all` {_s(plain)}; extra {_s(extra)}, the sum would add "
                      f"{_s(shape.depth * shape.sleep)}", _x(twice / plain), "", "", "", "",
                      m["reproducible"].stats_text(), "", ""])
        target(f"--reproducible: <= {REPRODUCIBLE_BOUND:g}x `update --all` (builds twice at "
               "once, not one after the other)", twice / plain, REPRODUCIBLE_BOUND,
               _x(twice / plain), _x(REPRODUCIBLE_BOUND))
    if "startup" in results and "startup" not in bench.errors:
        m = results["startup"]
        floor = m["python -c pass"].median
        for flag in ("--version", "--help"):
            value = m[flag].median
            table.append([f"`fodhash {flag}` (installed)", _s(value),
                          f"`python -c pass` {_s(floor)}", _x(value / floor), "", "", "", "", "",
                          "", _mb(m[flag])])
            target(f"start-up `fodhash {flag}`: <= `python -c pass` + {STARTUP_SLACK:g} s",
                   value, floor + STARTUP_SLACK, _s(value), _s(floor + STARTUP_SLACK))
    if "example" in results and "example" not in bench.errors:
        m = results["example"]
        merged = m["bare merged"].median
        recipe = m["recipe"].median
        bare = f"bare merged {_s(merged)}, per target {_s(m['bare per target'].median)}"
        table.append(["fixtures/example cold `update --all`", _s(m["cold"].median), bare, "",
                      "", "", _s(recipe), _x(recipe / m["cold"].median),
                      m["cold"].stats_text(), m["cold"].calls_text(), _mb(m["cold"])])
        table.append(["fixtures/example warm `update --all`", _s(m["warm"].median), bare,
                      _x(m["warm"].median / merged), "", "", "", "", "", "", _mb(m["warm"])])
        target("fixtures/example cold `update --all`: no slower than the manual recipe",
               m["cold"].median, recipe, _s(m["cold"].median), _s(recipe))
    return table, targets


def git_describe() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False).stdout.strip()
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "fodhash") else ""
    return f"{git('rev-parse', '--short', 'HEAD')} ({git('rev-parse', '--abbrev-ref', 'HEAD')}){dirty}"


def report(bench: Bench, quick: bool, seconds: float) -> tuple[str, dict[str, Any]]:
    table, targets = rows(bench)
    nix = subprocess.run(["nix-store", "--version"], capture_output=True, text=True,
                         check=False).stdout.strip().rsplit(" ", 1)[-1]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    plan = bench.plan
    head = (f"{when}, fodhash {git_describe()}, Nix {nix}, Python {platform.python_version()}, "
            f"{os.cpu_count()} cores, {bench.build_users or 'unlimited'} Nix build users; "
            f"{'--quick, ' if quick else ''}medians of {plan.runs} runs "
            f"(manual recipe: {plan.recipe_runs}, start-up: {plan.startup_runs}, warm: "
            f"{plan.runs * 2}); the whole bench took {seconds:.0f} s; 1-minute load average "
            f"{bench.load[0]:.2f} at the start, at most {max(bench.load):.2f} after a "
            "measurement.")
    lines = [head, "",
             "| shape | fodhash | the limit | ratio | Nix floor | ratio | manual recipe "
             "| recipe / fodhash | rounds / evaluations / builds "
             "| Nix calls: instantiate / realise / other | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    lines += ["", "| target | measured | bound | verdict |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['shown']} | {t['bound_shown']} | {t['verdict']} |"
              for t in targets]
    traced = [(f"{name} {key}", m.traces[0]) for name, measures in bench.results.items()
              for key, m in measures.items() if m.traces]
    if traced:
        lines += ["", "When each Nix process started (seconds into the first traced run of each; "
                  "realise(n): n .drv files):", ""]
        lines += [f"- {name}: {timeline(trace)}" for name, trace in traced]
    if bench.errors:
        lines += ["", "Failed (no timing):"]
        lines += [f"- {name}: {error}" for name, error in bench.errors.items()]
    data = {
        "date": when, "fodhash": git_describe(), "nix": nix,
        "python": platform.python_version(), "cores": os.cpu_count(),
        "build_users": bench.build_users, "load": bench.load, "quick": quick,
        "seconds": seconds,
        "plan": {"runs": plan.runs, "recipe_runs": plan.recipe_runs,
                 "startup_runs": plan.startup_runs,
                 "cold": {n: asdict(s) for n, s in plan.cold.items()},
                 "warm": {n: asdict(s) for n, s in plan.warm.items()}},
        "results": {name: {k: m.summary() for k, m in measures.items()}
                    for name, measures in bench.results.items()},
        "targets": targets, "errors": bench.errors,
    }
    return "\n".join(lines) + "\n", data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fodhash benchmark (docs/performance.md)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer runs, smaller shapes: about 3 minutes")
    parser.add_argument("--runs", "-r", type=int, help="R: runs per measurement")
    parser.add_argument("--recipe-runs", type=int, help="runs of the manual recipe")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only these measurements (repeatable): "
                             + ", ".join([*FULL.cold, *FULL.warm, "startup", "example"]))
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder for latest.md and latest.json (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the generated repositories")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = replace(plan, runs=args.runs, recipe_runs=min(args.runs, plan.recipe_runs))
    if args.recipe_runs is not None:
        plan = replace(plan, recipe_runs=args.recipe_runs)
    base = Path(tempfile.mkdtemp(prefix="fodhash-bench-"))
    start = time.perf_counter()
    bench = Bench(plan, base)
    bench.load.append(os.getloadavg()[0])
    try:
        bench.all(set(args.only))
    finally:
        if args.keep:
            print(f"bench: the repositories are in {base}", file=sys.stderr)
        else:
            shutil.rmtree(base, ignore_errors=True)
    bench.load.append(os.getloadavg()[0])
    text, data = report(bench, args.quick, time.perf_counter() - start)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(text)
    (args.out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    print(f"bench: written to {args.out / 'latest.md'} and latest.json", file=sys.stderr)
    failed = [t["target"] for t in data["targets"] if t["verdict"] != "PASS"]
    for what in failed:
        print(f"bench: FAIL: {what}", file=sys.stderr)
    return 1 if bench.errors or failed else 0


if __name__ == "__main__":
    sys.exit(main())
