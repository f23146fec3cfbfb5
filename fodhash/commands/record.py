"""`fodhash update --commit` and `--patch FILE`: record the change of an update as a git commit
of exactly the files it changed, or as a patch for a place that cannot push.

The commit names only those files (`git commit -- PATHS`), so whatever else is staged or
changed stays as it was, staged or not. A file that already held changes of the user's when
fodhash read it is not committed: its commit would carry them too.

The patch is in the form `git format-patch` writes, so `git apply FILE` takes it (the lines
before the first `diff --git` are ignored) and `git am FILE` makes the commit with the same
message. With `--patch` the files are left as they were: the patch holds the change.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fodhash.errors import FodhashError
from fodhash.nix import process
from fodhash.nix.process import ProcessResult
from fodhash.protocol.state import SiteRun
from fodhash.ui import report

AUTHOR = "fodhash <fodhash@noreply.invalid>"


class RecordError(FodhashError):
    """The update was made but could not be recorded as asked (exit 1)."""


@dataclass(frozen=True)
class FileChange:
    path: Path  # the user's file, absolute
    before: bytes
    after: bytes


def changed_runs(runs: Iterable[SiteRun]) -> list[SiteRun]:
    """The sites whose literal the update rewrites, each once (a site resolved by two
    platforms' sessions is one line of the message)."""
    seen: dict[tuple[Path, str], SiteRun] = {}
    for run in runs:
        if run.final_text() is not None and run.new is not None:
            seen.setdefault((run.site.file, run.site.attrpath), run)
    return list(seen.values())


def message(runs: list[SiteRun], root: Path) -> str:
    """The commit message: a subject, then one line per site with its old and new hash, and
    why the hash changed when the run knows (its note)."""
    count = len(runs)
    lines = [f"fodhash: update {count} stale hash{'es' if count != 1 else ''}", ""]
    for run in runs:
        site = run.site
        new = run.new.sri if run.new is not None else "?"
        old = site.text or "(no entry)"  # the literal as written, or the placeholder
        why = report.note(run)
        lines.append(f"- {report.relative(site.file, root)}:{site.line} {site.attrpath} "
                     f"({run.target}): {old} -> {new}" + (f" ({why})" if why else ""))
    return "\n".join(lines) + "\n"


def _git(cwd: Path, *args: str, stdin: str | None = None) -> ProcessResult:
    return process.run(["git", *args], cwd=cwd, stdin=stdin)


def top_level(root: Path) -> Path | None:
    """The work tree of the git repository holding `root`, or None outside one."""
    done = _git(root, "rev-parse", "--show-toplevel")
    return Path(done.stdout.strip()) if done.returncode == 0 else None


def _name(path: Path, top: Path) -> str:
    return Path(os.path.realpath(path)).relative_to(os.path.realpath(top)).as_posix()


def _hunks(before: bytes, after: bytes) -> str:
    """Unified-diff hunks that `git apply` takes: a last line without a newline is marked."""
    import difflib  # noqa: PLC0415 (a patch only: not every update pays for it)

    out = []
    lines = difflib.unified_diff(before.decode().splitlines(keepends=True),
                                 after.decode().splitlines(keepends=True), lineterm="\n", n=3)
    for line in list(lines)[2:]:  # the ---/+++ header is written by the caller
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def patch_text(changes: list[FileChange], text: str, top: Path) -> str:
    """`git format-patch`'s form: a mail whose subject and body are the commit message."""
    import email.utils  # noqa: PLC0415 (a patch only)

    subject, _, body = text.partition("\n")
    parts = [f"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
             f"From: {AUTHOR}\nDate: {email.utils.formatdate(localtime=False)}\n"
             f"Subject: [PATCH] {subject}\n{body.rstrip()}\n\n---\n"]
    for change in sorted(changes, key=lambda c: c.path):
        name = _name(change.path, top)
        parts.append(f"diff --git a/{name} b/{name}\n--- a/{name}\n+++ b/{name}\n"
                     + _hunks(change.before, change.after))
    return "".join(parts) + "-- \nfodhash\n"


def write_patch(file: Path, changes: list[FileChange], text: str, root: Path) -> None:
    """Write the patch (paths relative to the git work tree, else to fodhash.toml's folder,
    where `git apply` is to be run)."""
    top = top_level(root) or root
    try:
        file.write_text(patch_text(changes, text, top) if changes else "", encoding="utf-8")
    except OSError as error:
        raise RecordError(f"cannot write the patch {file}: {error.strerror}") from None


def commit(changes: list[FileChange], text: str, root: Path) -> str:
    """Commit exactly the changed files, as they now are; return the new commit's hash."""
    top = top_level(root)
    if top is None:
        raise RecordError(f"--commit: {root} is not in a git repository; the files are updated, "
                          "not committed")
    names = [_name(change.path, top) for change in changes]
    theirs = [name for name, change in zip(names, changes, strict=True)
              if _git(top, "cat-file", "-e", f"HEAD:{name}").returncode == 0
              and _git(top, "show", f"HEAD:{name}").stdout != change.before.decode(errors="replace")]
    if theirs:
        raise RecordError("--commit: not committed, these files held uncommitted changes of "
                          "yours before fodhash ran, which a commit would carry too: "
                          + ", ".join(theirs) + "; they are updated: review and commit by hand")
    # An untracked file is added first (only it): `git commit -- PATH` takes tracked paths.
    untracked = [name for name in names
                 if _git(top, "ls-files", "--error-unmatch", "--", name).returncode != 0]
    if untracked:
        _git(top, "add", "--", *untracked)
    done = _git(top, "commit", "--quiet", "--file=-", "--", *names, stdin=text)
    if done.returncode != 0:
        raise RecordError("--commit: git commit failed, the files are updated but not "
                          f"committed:\n{done.stderr.strip()}")
    return _git(top, "rev-parse", "HEAD").stdout.strip()
