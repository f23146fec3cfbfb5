"""Atomic, reversible edits of byte spans."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fodhash.files.patch import ConflictError, Transaction, apply_edits, atomic_write


def test_apply_edits_changes_only_the_spans() -> None:
    source = b'a = "x"; b = "x"; c = lib.fakeHash;'
    assert apply_edits(source, {(5, 6): "yy", (22, 34): '"z"'}) == b'a = "yy"; b = "x"; c = "z";'
    with pytest.raises(ValueError, match="overlapping"):
        apply_edits(source, {(0, 5): "", (3, 6): ""})


def test_atomic_write_keeps_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "f.nix"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["f.nix"]


@pytest.mark.parametrize(("guarded", "fsyncs"), [(True, 1), (False, 0)])
def test_only_the_users_own_files_are_synced_to_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, guarded: bool, fsyncs: int) -> None:
    """A user's file (guarded) is on disk before fodhash goes on; a scratch copy's file, which
    a crash discards whole, is only replaced (a copy's files may be links to the user's)."""
    synced: list[int] = []
    monkeypatch.setattr("os.fsync", synced.append)
    user = tmp_path / "a.nix"
    user.write_bytes(b'hash = "old";')
    linked = tmp_path / "copy.nix"
    linked.hardlink_to(user)
    doc = Transaction().document(linked, linked.read_bytes(), guarded=guarded)
    doc.write({(8, 11): "fake"})
    assert len(synced) == fsyncs
    assert linked.read_bytes() == b'hash = "fake";'
    assert user.read_bytes() == b'hash = "old";'  # replaced, never written through


def test_transaction_restores_every_file_on_any_exception(tmp_path: Path) -> None:
    files = [tmp_path / "a.nix", tmp_path / "b.nix"]
    for f in files:
        f.write_bytes(b"hash = \"old\";")
    tx = Transaction()
    with pytest.raises(KeyboardInterrupt), tx.guard():
        for f in files:
            tx.document(f, f.read_bytes()).write({(8, 11): "fake"})
        assert files[0].read_bytes() == b'hash = "fake";'
        raise KeyboardInterrupt
    assert [f.read_bytes() for f in files] == [b'hash = "old";'] * 2


def test_edit_by_someone_else_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "a.nix"
    path.write_bytes(b'hash = "old";')
    tx = Transaction()
    doc = tx.document(path, path.read_bytes())
    doc.write({(8, 11): "fake"})
    path.write_bytes(b'hash = "theirs";')
    with pytest.raises(ConflictError, match=r"changed \(or was moved\) while fodhash was running"):
        doc.write({(8, 11): "new"})
    assert tx.restore() == []  # theirs wins: not restored over
    assert path.read_bytes() == b'hash = "theirs";'


def test_symlinked_file_is_edited_at_its_target(tmp_path: Path) -> None:
    real = tmp_path / "real.nix"
    real.write_bytes(b'"old"')
    link = tmp_path / "link.nix"
    link.symlink_to(real)
    Transaction().document(link, link.read_bytes()).write({(1, 4): "new"})
    assert link.is_symlink() and real.read_bytes() == b'"new"'
