"""`make bench`: fodhash against the limits Nix sets, on generated repositories, in one run.

Every shape side by side (docs/performance.md says what each row measures):

- cold: `fodhash update --all --json` on a fresh repository from benchmarks/generate.py
  (every hash stale, new to the Nix store) with an empty cache; against the limit, D*S plus
  one bare `nix-instantiate default.nix` per level, and (for the first shape) against the
  manual recipe (benchmarks/manual-recipe.sh) on another fresh repository;
- warm: `fodhash update --all` and `fodhash check --all` on a resolved repository whose
  cache one `update --all` filled, against a bare `nix-instantiate default.nix` there;
- start-up: `fodhash --version` and `--help` against `python -c pass`;
- the bundled example (fixtures/example), cold and warm, against its bare evaluations.

Medians over R runs; the table (with a PASS/MISS per target of the issue) is printed and
written to benchmarks/results/latest.md and latest.json (untracked). `--quick` runs fewer
runs of smaller shapes, in under 3 minutes. Exits 1 if a run failed or got a hash wrong.
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
# `python -m fodhash` of this checkout (PYTHONPATH below), whatever the venv's editable
# install points at; the console script does the same imports.
FODHASH = [sys.executable, "-m", "fodhash"]
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


@dataclass(frozen=True)
class Plan:
    runs: int  # R: samples of every fodhash measurement
    recipe_runs: int
    cold: dict[str, Shape]
    recipe: tuple[str, ...]  # the cold shapes the manual recipe also runs on
    warm: dict[str, Shape]
    startup_runs: int
    example: bool


FULL = Plan(
    runs=5, recipe_runs=5,
    cold={"cold-same": Shape(8, 2, 2.0, same_name=2),
          "cold-unique": Shape(8, 2, 2.0, same_name=0),
          "cold-all-same": Shape(8, 2, 2.0, same_name=4),
          "cold-k32": Shape(32, 2, 2.0, same_name=2)},
    recipe=("cold-same",),
    warm={"warm-n0": Shape(8, 2, 2.0, same_name=2, closure=0),
          "warm-n5000": Shape(8, 2, 2.0, same_name=2, closure=5000)},
    startup_runs=20, example=True,
)
# Fewer runs and smaller shapes: K=16 for the K=32 row, N=2000 for N=5000.
QUICK = replace(
    FULL, runs=2, recipe_runs=1, startup_runs=10, example=False,
    cold=FULL.cold | {"cold-k32": replace(FULL.cold["cold-k32"], sites=16)},
    warm=FULL.warm | {"warm-n5000": replace(FULL.warm["warm-n5000"], closure=2000)},
)

# The targets (checked in `rows`).
# cold-all-same (all 4 sources of K=8, D=2 named `source`) holds the same-name bound past two.
COLD_BOUND = {"cold-same": 1.25, "cold-all-same": 1.25, "cold-k32": 1.3}
RECIPE_SPEEDUP = 3.0
WARM_FACTOR, WARM_SLACK = 1.5, 0.3
STARTUP_BOUND = 0.1


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Measure:
    """Samples (seconds) of one command and, for fodhash, its --json stats."""

    samples: list[float] = field(default_factory=list)
    stats: list[dict[str, int]] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.samples)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"median": self.median, "samples": self.samples}
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
        path = os.environ.get("PYTHONPATH")
        self.env = {**os.environ,
                    "NIX_CONFIG": os.environ.get("NIX_CONFIG", "substituters ="),
                    "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}
        self.env.pop("FODHASH_CACHE_DIR", None)
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
            ok: Callable[[int], bool] = lambda code: code == 0) -> tuple[float, str]:
        """Seconds the command took, and its stdout; BenchError if `ok(exit code)` fails."""
        start = time.perf_counter()
        try:
            done = subprocess.run(args, cwd=cwd, env=env or self.env, capture_output=True,
                                  text=True, timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as error:
            raise BenchError(f"`{' '.join(args)}` in {cwd} ran over {TIMEOUT:g} s") from error
        seconds = time.perf_counter() - start
        if not ok(done.returncode):
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
            raise BenchError(f"`{' '.join(args)}` in {cwd} exited with {done.returncode}:\n{tail}")
        return seconds, done.stdout

    def traced(self, args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str, Trace]:
        """Run fodhash with -v (it logs each Nix command as it starts it): seconds, stdout
        and, per Nix command, when it started (seconds from our start)."""
        assert args[:len(FODHASH)] == FODHASH
        argv = [*FODHASH, "-v", *args[len(FODHASH):]]
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
            try:
                code = proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired as error:
                proc.kill()
                raise BenchError(f"`{' '.join(argv)}` in {cwd} ran over {TIMEOUT:g} s") from error
            seconds = time.perf_counter() - start
            trace.append((round(seconds, 4), EXIT))
            stdout.seek(0)
            out = stdout.read()
        if code != 0:
            tail = "".join(lines[-15:])
            raise BenchError(f"`{' '.join(argv)}` in {cwd} exited with {code}:\n{tail}")
        return seconds, out, trace

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
                seconds, out, trace = self.traced([*FODHASH, "update", "--all", "--json"],
                                                  repo.path, self.cache_env())
                self.resolved(repo, "fodhash update --all")
                measures["fodhash"].samples.append(seconds)
                measures["fodhash"].stats.append(json.loads(out)["stats"])
                measures["fodhash"].traces.append(trace)
                self.note(f"{name}: fodhash {seconds:.2f} s {measures['fodhash'].stats[-1]}")
            if i < recipe_runs:
                repo = self.fresh(shape)
                seconds, _ = self.run(["sh", str(RECIPE)], repo.path)
                self.resolved(repo, "the manual recipe")
                measures["recipe"].samples.append(seconds)
                self.note(f"{name}: manual recipe {seconds:.2f} s")
        # A bare evaluation of a repository new to the store, as each of fodhash's is (its
        # sentinels and fakes make new .drv files): the per-level cost in the limit.
        for _ in range(max(self.plan.runs, 5)):
            repo = self.fresh(shape)
            measures["instantiate"].samples.append(
                self.run(["nix-instantiate", "default.nix"], repo.path)[0])
        measures["realise"] = self.bare_realise(shape)

    def bare_realise(self, shape: Shape) -> Measure:
        """Nix's own cost of one level's builds: one `nix-store --realise --keep-going` of the
        level-1 FODs of a fresh repository with the fake in every site and every name made
        unique (so that they can build at once), as many jobs at once as Nix has build users
        (more make Nix 2.8 print "waiting for UID to build" and poll every 5 s)."""
        measure = Measure()
        for _ in range(self.plan.runs):
            repo = self.fresh(replace(shape, same_name=0))
            sources = repo.path / "sources.nix"
            text = sources.read_text()
            for site in repo.sites:
                text = text.replace(f'"{site.stale}"', f'"{FAKE}"')
            sources.write_text(text)
            _, out = self.run(["nix-instantiate", "sources.nix"], repo.path)
            drvs = out.split()
            jobs = min(len(drvs), self.build_users or len(drvs))
            seconds, _ = self.run(["nix-store", "--realise", "--keep-going", "--max-jobs",
                                   str(jobs), *drvs], repo.path, ok=lambda code: code != 0)
            measure.samples.append(seconds)
        return measure

    def warm(self, name: str, shape: Shape) -> None:
        measures = self.results[name] = {"update": Measure(), "check": Measure(),
                                         "instantiate": Measure()}
        repo = self.fresh(shape, resolved=True)
        env = self.cache_env()
        self.run([*FODHASH, "update", "--all"], repo.path, env)  # fills the cache: builds
        self.unchanged(repo, "the first fodhash update --all")
        for command in ("update", "check"):  # stats from one -v --json run each (not timed)
            _, out, trace = self.traced([*FODHASH, command, "--all", "--json"], repo.path, env)
            measures[command].stats.append(json.loads(out)["stats"])
            measures[command].traces.append(trace)
        for _ in range(self.plan.runs * 2):
            measures["instantiate"].samples.append(
                self.run(["nix-instantiate", "default.nix"], repo.path)[0])
            for command in ("update", "check"):
                measures[command].samples.append(
                    self.run([*FODHASH, command, "--all"], repo.path, env)[0])
        self.unchanged(repo, "fodhash update --all (warm)")
        self.note(f"{name}: update {measures['update'].median:.3f} s, check "
                  f"{measures['check'].median:.3f} s, instantiate "
                  f"{measures['instantiate'].median:.3f} s")

    def startup(self) -> None:
        commands = {"--version": [*FODHASH, "--version"], "--help": [*FODHASH, "--help"],
                    "python -c pass": [sys.executable, "-c", "pass"]}
        measures = self.results["startup"] = {name: Measure() for name in commands}
        for _ in range(self.plan.startup_runs):
            for name, args in commands.items():
                measures[name].samples.append(self.run(args, self.base)[0])
        self.note("startup: " + ", ".join(f"{n} {m.median:.3f} s" for n, m in measures.items()))

    def example(self) -> None:
        """fixtures/example: 11 sites, 7 targets (a flake among them), a chain of 2 rounds."""
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
            n: Measure() for n in ("cold", "warm", "bare per target", "bare merged")}
        for _ in range(self.plan.runs):
            self.counter += 1
            repo = self.base / f"example-{self.counter}" / "example"
            shutil.copytree(EXAMPLE, repo)
            self.run(["git", "init", "-q"], repo)
            self.run(["git", "add", "-A"], repo)
            env = self.cache_env()
            seconds, out, trace = self.traced([*FODHASH, "update", "--all", "--json"], repo, env)
            measures["cold"].samples.append(seconds)
            measures["cold"].stats.append(json.loads(out)["stats"])
            measures["cold"].traces.append(trace)
            measures["warm"].samples.append(self.run([*FODHASH, "update", "--all"], repo, env)[0])
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


def rows(bench: Bench) -> tuple[list[list[str]], list[dict[str, Any]]]:
    """The side-by-side table, and the targets with their verdicts."""
    table: list[list[str]] = []
    targets: list[dict[str, Any]] = []

    def target(what: str, measured: float, bound: float, shown: str, bound_shown: str, *,
               at_least: bool = False) -> None:
        passed = measured >= bound if at_least else measured <= bound
        targets.append({"target": what, "measured": measured, "bound": bound,
                        "shown": shown, "bound_shown": bound_shown,
                        "verdict": "PASS" if passed else "MISS"})

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
                      m["fodhash"].stats_text(), m["fodhash"].calls_text()])
        if name in COLD_BOUND:
            bound = COLD_BOUND[name]
            target(f"cold {shape.describe()}: <= {bound}x the limit", fod / lim, bound,
                   f"{_s(fod)} = {_x(fod / lim)}", f"{_s(bound * lim)} = {bound}x")
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
        for command in ("update", "check"):
            value = m[command].median
            label = f"warm `{command} --all`, N={shape.closure}"
            table.append([label, _s(value), f"bare `nix-instantiate` {_s(inst)}",
                          _x(value / inst), "", "", "", "", m[command].stats_text(),
                          m[command].calls_text()])
            target(f"{label}: <= {WARM_FACTOR:g}x bare + {WARM_SLACK:g} s", value, budget,
                   _s(value), _s(budget))
    if "startup" in results and "startup" not in bench.errors:
        m = results["startup"]
        floor = m["python -c pass"].median
        for flag in ("--version", "--help"):
            value = m[flag].median
            table.append([f"`fodhash {flag}`", _s(value), f"`python -c pass` {_s(floor)}",
                          _x(value / floor), "", "", "", "", "", ""])
            target(f"start-up `fodhash {flag}` < {STARTUP_BOUND:g} s", value, STARTUP_BOUND,
                   _s(value), _s(STARTUP_BOUND))
    if "example" in results and "example" not in bench.errors:
        m = results["example"]
        merged = m["bare merged"].median
        for which in ("cold", "warm"):
            table.append([f"fixtures/example {which} `update --all`", _s(m[which].median),
                          f"bare merged {_s(merged)}, per target {_s(m['bare per target'].median)}",
                          _x(m[which].median / merged) if which == "warm" else "", "", "", "", "",
                          m[which].stats_text(), m[which].calls_text()])
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
             "| Nix calls: instantiate / realise / other |",
             "|---|---|---|---|---|---|---|---|---|---|"]
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
                        help="fewer runs, smaller shapes: under 3 minutes")
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
    # Measure fodhash as installed (byte-compiled), not its first import writing bytecode.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "fodhash")], check=True)
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
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
