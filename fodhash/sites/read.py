"""Reading a file of sites (Nix or JSON): its bytes, or a clear error for what cannot be one."""

from __future__ import annotations

from pathlib import Path

from fodhash.errors import UsageError

SUFFIX = ".json"
MAX_FILE_SIZE = 32 * 1024 * 1024  # far above any hand-written or generated Nix file


def read_source_file(file: Path, kind: str, *, key: str, too_large: str = "") -> bytes:
    """The bytes of a `kind` ("Nix", "JSON") file of sites, with a clear error for what
    cannot be one; `key` is the fodhash.toml key that names such files."""
    try:
        size = file.stat().st_size
        if size > MAX_FILE_SIZE:
            raise UsageError(f"{file}: {size // 2**20} MiB is too large for a {kind} file fodhash "
                             f"edits (limit {MAX_FILE_SIZE // 2**20} MiB){too_large}")
        data = file.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{file}: no such file; check the path (or `{key}` in fodhash.toml)") from None
    except IsADirectoryError:
        raise UsageError(f"{file}: is a directory; name a .{kind.lower()} file") from None
    except PermissionError:
        raise UsageError(f"{file}: cannot be read (permission denied)") from None
    if kind == "Nix" and b"\0" in data:  # (JSON's own parser names a NUL byte)
        raise UsageError(f"{file}: is a binary file, not Nix source")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UsageError(f"{file}: is not valid UTF-8 (byte {err.start}); {kind} files are "
                         "UTF-8") from None
    return data


def read_nix_file(file: Path) -> bytes:
    """The bytes of a Nix file, with a clear error for what cannot be one."""
    return read_source_file(file, "Nix", key="file", too_large="; name the file that holds the hash")


def read_json_file(file: Path) -> bytes:
    """The bytes of a JSON file, with a clear error for what cannot be one."""
    return read_source_file(file, "JSON", key="json")


def is_json(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def read_source(file: Path) -> bytes:
    """A file holding sites, read as what its name says it is."""
    return read_json_file(file) if is_json(file) else read_nix_file(file)
