"""fodhash: resolve stale fixed-output derivation hashes with real Nix builds."""

from __future__ import annotations


def version() -> str:
    """The installed distribution's version (pyproject.toml's), read from the package
    metadata: the one place a release sets it is pyproject.toml."""
    return _own_metadata_version() or _scanned_version()


def _own_metadata_version() -> str | None:
    """The Version: of the dist-info folder beside this package (a wheel's install: one
    `fodhash-<version>.dist-info` in the same site-packages), read directly: importing
    importlib.metadata (email, zipfile, csv, ...) costs more than all of `--version` else
    (docs/performance.md, "Start-up"). None where there is no single such folder (an
    editable install, a source tree on sys.path): the scan below decides."""
    import os  # noqa: PLC0415

    site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        found = [n for n in os.listdir(site) if n.startswith("fodhash-") and n.endswith(".dist-info")]
    except OSError:
        return None
    if len(found) != 1:
        return None
    try:
        with open(os.path.join(site, found[0], "METADATA"), encoding="utf-8") as metadata:
            for line in metadata:
                if line.startswith("Version:"):
                    return line.split(":", 1)[1].strip()
                if not line.strip():  # the headers end at the first blank line
                    break
    except OSError:
        return None
    return None


def _scanned_version() -> str:
    from importlib.metadata import PackageNotFoundError  # noqa: PLC0415
    from importlib.metadata import version as installed  # noqa: PLC0415

    try:
        return installed("fodhash")
    except PackageNotFoundError:  # a source tree put on sys.path but never installed
        return "unknown (not installed)"


def __getattr__(name: str) -> str:
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'fodhash' has no attribute {name!r}")
