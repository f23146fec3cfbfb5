"""Pair fakes: find the sentinel twin of each fake-hash FOD, hence the site it belongs to.

By name and system first; where names repeat (fetchers call everything `source`), by the
smallest difference between the derivations, ignoring what fetchers change for a fake hash
(docs/design.md, "Map results by drv path").
"""

from __future__ import annotations

from collections.abc import Sequence

from fodhash.nix.derivations import Derivation, difference
from fodhash.protocol.state import SiteRun


def pair(twins: Sequence[tuple[SiteRun, Derivation]],
         fakes: Sequence[Derivation]) -> dict[str, SiteRun]:
    """Each fake FOD's .drv path -> the site of its twin (each twin and fake used once)."""
    candidates = sorted(
        (difference(twin, fake), i, j)
        for i, (_, twin) in enumerate(twins)
        for j, fake in enumerate(fakes)
        if twin.name == fake.name and twin.system == fake.system
        and twin.output_hash is not None and fake.output_hash is not None
        and twin.recursive == fake.recursive
    )
    paired: dict[str, SiteRun] = {}
    used_twins: set[int] = set()
    used_fakes: set[int] = set()
    for _, i, j in candidates:
        if i in used_twins or j in used_fakes:
            continue
        used_twins.add(i)
        used_fakes.add(j)
        paired[fakes[j].path] = twins[i][0]
    return paired
