"""What a run knows about each site (statuses, per-site state), its options, and the events
a progress display receives."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from fodhash.hashes.encoding import Hash
from fodhash.hashes.fakes import canonical_fake_text, sentinel
from fodhash.sites.site import Site


class Status(enum.StrEnum):
    PENDING = "pending"
    WAITING = "waiting"  # its FOD consumes another pending site's FOD: a later round
    QUEUED = "queued"
    BUILDING = "building"
    UPDATED = "updated"  # the literal was stale (or a placeholder) and now holds the true hash
    CACHED = "cached"  # stale, and patched with the true hash the result cache holds, unbuilt
    OK = "ok"  # the literal already held the true hash (built, or FROM_CACHE in `message`)
    SKIPPED = "skipped"  # not evaluated on this platform
    UNKNOWN = "unknown"  # not computable here (no machine builds its system, builds off) nor cached
    FAILED = "failed"
    # Built, and its true hash is known, but not written: two builds of the very same
    # derivation gave two hashes (its output is not reproducible)...
    NONDETERMINISTIC = "nondeterministic"
    # ... or its output references store paths (docs/why.md).
    REFERENCES = "references"

    @property
    def resolved(self) -> bool:
        """Its true hash is known (the site's `new`)."""
        return self in (Status.UPDATED, Status.CACHED, Status.OK)

    @property
    def done(self) -> bool:
        return self in (Status.UPDATED, Status.CACHED, Status.OK, Status.SKIPPED, Status.UNKNOWN,
                        Status.FAILED, Status.NONDETERMINISTIC, Status.REFERENCES)

    @property
    def refused(self) -> bool:
        """Its hash is not written for a fault of its FOD that a person must fix."""
        return self in (Status.FAILED, Status.NONDETERMINISTIC, Status.REFERENCES)


FROM_CACHE = "from the cache"  # the message of an `ok` site the result cache confirmed


def not_evaluated(site: Site) -> str:
    """Why a site was skipped: no FOD of this platform's evaluation uses it. Another system's
    entry of a system-keyed attrset is resolved on that system, or for it (`--platform`)."""
    if site.branch is not None:
        return (f"this platform takes another branch (this literal is chosen when "
                f"{site.branch}): resolve it on a platform that takes it, configured as "
                "[platforms.SYSTEM] and run with --platform SYSTEM")
    if site.platform is None:
        return "not evaluated on this platform"
    return (f"not evaluated on this platform: resolve it on {site.platform}, or configure "
            f"[platforms.{site.platform}] and run with --platform {site.platform}")


@dataclass(eq=False)
class SiteRun:
    """What a run knows about one site; the UI renders these."""

    target: str
    site: Site
    index: int  # distinguishes the site's sentinel from every other site's
    status: Status = Status.PENDING
    new: Hash | None = None
    message: str = ""
    seconds: float = 0.0
    drvs: list[str] = field(default_factory=list)  # its FODs, in their sentinel form
    started: float | None = None
    upstream: set[SiteRun] = field(default_factory=set)  # pending sites its FODs consume
    keys: list[str] = field(default_factory=list)  # cache keys of its FODs, once they are final
    # A site of another target, in the run because a selected site's FOD may consume its FOD
    # (never trust the store: a stale upstream hash whose old output is still there would
    # build silently). Kept only if some selected site's FOD does consume it.
    extra: bool = False
    pin: str | None = None  # for an evaluation-time pin: what Nix downloaded (its URL)
    # Stale: what changed in its FODs since the hash its literal holds was verified here
    # (fodhash.protocol.drift), and when that was (unix time).
    changed: list[str] = field(default_factory=list)
    verified: float | None = None

    @property
    def sentinel(self) -> Hash:
        return sentinel(self.site.algo, self.index)

    def sentinel_text(self) -> str:
        return self.site.render(self.sentinel)

    def fake_text(self) -> str:
        form = self.site.form
        bare = form is not None and form.encoding != "sri" and not form.prefixed
        return self.site.quote(canonical_fake_text(self.site.algo, bare=bare))

    def final_text(self) -> str | None:
        """The span's text at the end of the run; None keeps the original bytes."""
        resolved = self.status in (Status.UPDATED, Status.CACHED) and self.new is not None
        if resolved and self.new is not None and (self.new != self.site.current
                                                  or self.site.is_placeholder):
            return self.site.render(self.new)
        return None


class Events(Protocol):
    def changed(self, run: SiteRun) -> None: ...
    def log(self, line: str) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class Options:
    jobs: int | None = None  # parallel builds; None: as many as FODs are ready
    timeout: float | None = None  # seconds for the whole run
    use_cache: bool = True  # look results up in the cache (they are stored either way)
    build: bool = True  # False: only the cache answers (fodhash check --cached-only)
    apply: bool = True  # False: files end with their original bytes (check, --dry-run)
    checking: bool = False  # progress speaks of verdicts (stale, ok), not of edits
    # Write the hash of a FOD whose output references store paths (Nix 2.8 accepts it).
    allow_references: bool = False
    # Build each FOD twice at once and compare (implies no cache lookup: a proof is a build).
    reproducible: bool = False


class _Silent:
    """No progress display: for library use and tests."""

    def changed(self, run: SiteRun) -> None:
        return None

    def log(self, line: str) -> None:
        return None

    def note(self, message: str) -> None:
        return None


silent = _Silent()
