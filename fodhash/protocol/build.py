"""Build: realise the fake-hash FODs and map every `got:` to its site by .drv path.

FODs that share an output path (same name, same mode, same fake) cannot build at once: Nix
builds them one after another, polling the path's lock every 5 s. So every FOD after the
first of an output path is built as a copy of its own, declaring another hash
(fodhash.protocol.namesakes): however many share a name, all build at once. What Nix could
not copy faithfully goes in successive `nix-store` calls (lanes). Never more builds run at
once than Nix has build users for (or than --jobs allows).
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fodhash.hashes.encoding import Hash
from fodhash.nix import calls, mismatch, outputs
from fodhash.nix.derivations import Derivation
from fodhash.protocol import namesakes, references, reproducible
from fodhash.protocol.state import Events, SiteRun, Status
from fodhash.sites.site import Site


@dataclass(frozen=True)
class Build:
    """One fake-hash FOD to realise for a site."""

    drv: Derivation
    run: SiteRun
    twin_of: str = ""  # --reproducible's second build: the .drv path of the first

    @property
    def twin(self) -> bool:
        return bool(self.twin_of)


def lanes(builds: Sequence[Build]) -> list[list[Build]]:
    """Split the builds so that no two in one `nix-store` call share an output path."""
    result: list[list[Build]] = []
    taken: list[set[str]] = []
    for build in builds:
        outputs = set(build.drv.output_paths)
        for lane, used in zip(result, taken, strict=True):
            if not outputs & used:
                lane.append(build)
                used.update(outputs)
                break
        else:
            result.append([build])
            taken.append(outputs)
    return result


class Builder:
    def __init__(self, *, jobs: int | None, events: Events, set_status: Callable[..., None],
                 remaining: Callable[[], float | None], known: Sequence[tuple[str, Site]],
                 reproducible: bool = False) -> None:
        self.jobs = jobs
        self.reproducible = reproducible
        self.events = events
        self.set = set_status
        self.remaining = remaining
        self.known = known
        self.count = 0  # FOD .drv files realised
        # Of the last build phase: what Nix built (or refused for its references), whose
        # registered output is read for store references afterwards.
        self._built: list[tuple[Build, Hash | None]] = []
        self.references: dict[SiteRun, str] = {}  # sites whose output references store paths
        self.differences: dict[SiteRun, str] = {}  # sites whose two builds differ
        self.once: set[SiteRun] = set()  # --reproducible, yet built once (no faithful copy)

    def build(self, builds: Sequence[Build], build_args: Callable[[SiteRun], tuple[str, ...]]
              ) -> dict[SiteRun, list[Hash]]:
        """Realise every build, lane after lane; the got: hashes of each site."""
        builds = _own_paths(builds, build_args, self.remaining())
        if self.reproducible:
            builds = _with_twins(builds, build_args, self.remaining())
            twinned = {b.run for b in builds if b.twin}
            self.once |= {b.run for b in builds if b.run not in twinned}
        # A copy's output path is the same for the same FOD in every run (its declared hash
        # is a digest of the .drv path), so an interrupted copy's leftover is found too.
        stale = calls.leftovers([o for b in builds for o in b.drv.output_paths])
        if stale:
            calls.remove_leftovers(stale)
        for run in {b.run for b in builds}:
            run.started = time.monotonic()
            self.set(run, Status.BUILDING)
        gots: dict[SiteRun, list[Hash]] = defaultdict(list)
        since = time.time()
        self._built = []
        for lane in lanes(builds):
            by_args: dict[tuple[str, ...], list[Build]] = defaultdict(list)
            for build in lane:
                by_args[build_args(build.run)].append(build)
            for args, group in by_args.items():
                self.realise(group, args, gots)
        self._read_outputs(since)
        return gots

    def _read_outputs(self, since: float) -> None:
        """Read the outputs Nix registered for this phase's builds: a site whose output
        references store paths gets its message in `references` (and, refused by Nix before
        any got:, the status `references`); one whose two builds differ, in `differences`."""
        built = [outputs.Built(b.drv.path, b.drv.name, b.drv.recursive, got)
                 for b, got in self._built]
        if not built:
            return
        found = outputs.registered(built, since)
        for build, got in self._built:
            registered = found.get(build.drv.path)
            if registered is None or not registered.references or build.twin:
                continue  # none, or refused and not found: Nix's own words stay
            text = references.message(build.drv.name, registered)
            if got is None:
                self.set(build.run, Status.REFERENCES, text)
            else:
                self.references[build.run] = text
        firsts = {b.drv.path: got for b, got in self._built if not b.twin and got is not None}
        for twin, other in self._built:
            got = firsts.get(twin.twin_of)
            if got is None or other is None or other == got or twin.run in self.differences:
                continue
            one, two = (r.path if (r := found.get(p)) else None
                        for p in (twin.twin_of, twin.drv.path))
            difference = reproducible.compare(one, two) if one and two else None
            self.differences[twin.run] = reproducible.message((got, other), (one, two),
                                                              difference)

    def realise(self, builds: Sequence[Build], build_args: tuple[str, ...],
                gots: dict[SiteRun, list[Hash]], *, retried: bool = False) -> None:
        """One `nix-store --realise --keep-going`; every got: mapped to its site by .drv path."""
        by_path = {b.drv.path: b for b in builds}
        paths = list(by_path)
        jobs = self.jobs or min(len(paths), calls.build_slots() or len(paths))
        self.count += len(paths)
        result = calls.realise(paths, jobs=jobs, on_line=self.events.log, nix_args=build_args,
                               timeout=self.remaining())
        # An interrupted build can also leave `<true output path>.tmp`, which no one can name
        # before the got: hash is known: Nix names it as it fails. Removed, the call runs again.
        blocking = sorted({p for p in _LEFTOVER.findall(result.stdout) if os.path.lexists(p)}
                          if not result.ok else ())
        if blocking and not retried and calls.remove_leftovers(blocking):
            self.count -= len(paths)
            self.realise(builds, build_args, gots, retried=True)
            return
        failures = {f.path: f for f in mismatch.parse_failures(result.stdout)}
        refusals = {r.path: r for r in mismatch.parse_refusals(result.stdout)}
        named = mismatch.parse_named_refusals(result.stdout)
        unbuildable = mismatch.parse_unbuildable(result.stdout)
        mismatches = mismatch.parse_mismatches(result.stdout)
        untried = _untried(builds, unbuildable, {m.path for m in mismatches} | set(failures)
                           | set(refusals) | {b.drv.path for b in builds if b.drv.name in named})
        if untried:  # built on their own, not reported below
            self.count -= len(untried)
            self.realise(untried, build_args, gots)
        outside: list[str] = []
        found: set[str] = {b.drv.path for b in untried}
        for mismatched in mismatches:
            build = by_path.get(mismatched.path)
            if build is None:
                outside.append(self._outside_message(mismatched))
                continue
            found.add(build.drv.path)
            self._built.append((build, mismatched.got))
            if not build.twin:  # a twin's got: is only compared (_read_outputs)
                gots[build.run].append(mismatched.got)
        for path, build in by_path.items():
            run = build.run
            if path in found or run.status.done:
                continue
            run.seconds = time.monotonic() - (run.started or 0.0)
            if path in unbuildable:
                self.set(run, Status.UNKNOWN,
                         f"no machine here builds {unbuildable[path]}: give that platform "
                         "`build-args` with a builder in fodhash.toml, or import its results "
                         "from a machine that can (fodhash cache import / fodhash apply)")
            elif path in refusals:  # Nix 2.26: refused before the hash check: no got: to write
                self.set(run, Status.REFERENCES, _refusal_message(path, refusals[path]))
                self._built.append((build, None))
            elif build.drv.name in named:  # a flat FOD: its file was left at its own path
                self.set(run, Status.REFERENCES, references.flat_message(build.drv))
            elif path in failures:
                log = calls.build_log(path)
                message = f"the builder failed: {failures[path].message}"
                self.set(run, Status.FAILED,
                         message + (f"\nlast lines of its log:\n{log}" if log else ""))
            elif outside:
                self.set(run, Status.FAILED, "\n".join(outside))
            elif result.ok:
                self.set(run, Status.FAILED,
                         "built with a fake hash without a mismatch: the fake's output path is "
                         "already valid in the store; fodhash cannot learn the hash")
            else:  # nothing in Nix's output names it: say so, and claim no cause
                self.set(run, Status.FAILED, f"Nix named no result for it (exit code "
                         f"{result.returncode}); its last lines:\n{result.tail()}")

    def _outside_message(self, found: mismatch.Mismatch) -> str:
        name = found.path.split("-", 1)[-1].removesuffix(".drv")
        for target, site in self.known:
            if found.specified is not None and site.current == found.specified:
                where = (f" It is set at {site.file}:{site.line} ({site.attrpath}); "
                         f"run `fodhash update {target}`.")
                break
        else:
            where = " Update the file that sets it (fodhash update FILE) and run again."
        specified = found.specified.sri if found.specified else "?"
        return (f"FOD {name!r} ({found.path}), outside what this run updates, has a stale hash: "
                f"specified {specified}, got {found.got.sri}.{where}")


# "creating directory '/nix/store/…-source.tmp': File exists" (2.8), "reading from file
# '/nix/store/…-source.tmp': Is a directory" (2.26).
_LEFTOVER = re.compile(r"(/nix/store/[0-9a-z]{32}-[^'\"\s/:]+\.tmp)\b")


def _own_paths(builds: Sequence[Build], build_args: Callable[[SiteRun], tuple[str, ...]],
               timeout: float | None) -> list[Build]:
    """The builds, each FOD after the first of an output path replaced by its namesake copy
    (another output path). Not where a platform's builds go to another store (`--store`):
    the copies are written to this one."""
    seen: set[str] = set()
    later: list[Build] = []
    for build in builds:
        if set(build.drv.output_paths) & seen and "--store" not in build_args(build.run):
            later.append(build)
        seen.update(build.drv.output_paths)
    if not later:
        return list(builds)
    copied = namesakes.copies([b.drv for b in later], timeout)
    return [Build(copied[b.drv.path], b.run) if b in later and b.drv.path in copied else b
            for b in builds]


def _with_twins(builds: Sequence[Build], build_args: Callable[[SiteRun], tuple[str, ...]],
                timeout: float | None) -> list[Build]:
    """The builds, and beside each a twin: a copy of it with another declared hash, hence
    another output path, so that both build at once (fodhash.protocol.reproducible)."""
    local = [b for b in builds if "--store" not in build_args(b.run)]
    twins = namesakes.copies([b.drv for b in local], timeout, salt=reproducible.SALT)
    return [*builds, *(Build(twins[b.drv.path], b.run, twin_of=b.drv.path) for b in local
                       if b.drv.path in twins)]


def _untried(builds: Sequence[Build], unbuildable: dict[str, str],
             reported: set[str]) -> list[Build]:
    """The builds a call left untried because of a derivation no machine here builds.

    Nix 2.8 and 2.26 end the whole `nix-store --realise --keep-going` at the first such
    derivation and name only it (tests/transcripts/nix-2.26-nix-store-realise-no-machine-
    for-system.txt): every other derivation of its system is as unbuildable (added to
    `unbuildable`), and the others were never started (returned, to realise again). Nix 2.34
    tries each and names each."""
    if not unbuildable:
        return []
    systems = set(unbuildable.values())
    silent = [b for b in builds if b.drv.path not in reported and b.drv.path not in unbuildable
              and not b.run.status.done]
    for build in silent:
        if build.drv.system in systems:
            unbuildable[build.drv.path] = build.drv.system
    untried = [b for b in silent if b.drv.path not in unbuildable]
    # Only fewer builds are tried again (the unbuildable one may be an input of them all).
    return untried if len(untried) < len(builds) else []


def _refusal_message(path: str, refusal: mismatch.Refusal) -> str:
    name = path.split("-", 1)[-1].removesuffix(".drv")
    what = f"the store path {refusal.example}" if refusal.example else "a store path"
    more = (refusal.count or 1) - 1
    return (f"Nix refuses FOD {name!r} ({path}): its output references {what}"
            + (f" and {more} more" if more else "") + ". A fixed-output derivation's output "
            "must contain no store path: not in a file's contents, a file's name or a "
            "symlink's target. Copy an input under a name of its own (`cp ${./lock} "
            "$out/lock`, not `cp ${./lock} $out/`, which names the copy after its store "
            "path), copy files instead of linking to the store, and write no store path into "
            "a file (as patched shebangs and wrappers do)")
