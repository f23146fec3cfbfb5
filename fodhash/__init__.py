"""fodhash: resolve stale fixed-output derivation hashes with real Nix builds."""

from __future__ import annotations


def version() -> str:
    """The installed distribution's version (pyproject.toml's), read from the package
    metadata: the one place a release sets it is pyproject.toml."""
    # Imported here: only --version pays for reading the metadata.
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
