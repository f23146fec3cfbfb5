"""The evaluation of the files as they are, started before the protocol is even loaded.

A run where nothing changed (a pre-commit hook, a CI check) is one evaluation of the
targets as they are, answered by the cache (fodhash.protocol.rounds, the fast path). Nix
needs 0.05-0.3 s for it, and fodhash about as long again to load its modules and read
the sites: started here, right after the repository is locked and restored, Nix works
while Python does (docs/performance.md, "Evaluation ahead"). The fast path takes the
result; the protocol stops whatever it did not take before it writes anything.

Only where the fast path will ask for exactly these instantiations: no `--platform`, no
[platforms.*] in fodhash.toml and no `{system}` in a flake reference (those sessions
evaluate per platform), and a cache that has been written (else the fast path is not
tried).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fodhash.config import Config, Target
from fodhash.files.dirs import DATABASE, cache_dir
from fodhash.nix import calls


def wanted(targets: list[Target], config: Config, systems: list[str], *,
           use_cache: bool) -> list[calls.Instantiation]:
    """The instantiations the fast path of this run will ask for first, if it is known now."""
    if not use_cache or systems or config.platforms or not targets:
        return []
    if any("{system}" in ref for t in targets for ref in t.instantiation.flake_refs):
        return []
    if not (cache_dir() / DATABASE).is_file():
        return []
    return calls.together([t.instantiation for t in targets])  # as the fast path asks


@contextmanager
def evaluating(targets: list[Target], config: Config, systems: list[str], *,
               use_cache: bool) -> Iterator[None]:
    """Start them, and the questions about Nix itself that fodhash.nix.facts cannot answer
    yet; whatever no one took is stopped when the command ends."""
    calls.start_ahead(wanted(targets, config, systems, use_cache=use_cache))
    calls.ask_ahead()
    try:
        yield
    finally:
        calls.discard_ahead()
        calls.unasked()
