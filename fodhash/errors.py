"""The exception hierarchy: every error a user can cause or meet, caught once by the CLI."""

from __future__ import annotations


class FodhashError(Exception):
    """An error with a message fit for the user: what is wrong and what to do."""

    exit_code = 1


class UsageError(FodhashError):
    """Bad input: configuration, arguments, files. Exit code 2."""

    exit_code = 2


class HashError(UsageError):
    """A string that is not a hash fodhash understands."""


class NixError(FodhashError):
    """Nix failed for a reason other than a hash mismatch."""
