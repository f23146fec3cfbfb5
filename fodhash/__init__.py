"""fodhash: resolve stale fixed-output derivation hashes with real Nix builds."""

__version__ = "0.1.0"
