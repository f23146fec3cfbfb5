"""Pair fakes: find the sentinel twin of each fake-hash FOD, hence the site it belongs to.

By name and system first; where names repeat (fetchers call everything `source`), by the
smallest difference between the derivations, ignoring what fetchers change for a fake hash
(docs/design.md, "Map results by drv path").
"""

from __future__ import annotations

from collections.abc import Sequence

from fodhash.nix.derivations import Derivation, difference
from fodhash.protocol.state import SiteRun


def _greedy(twins: Sequence[tuple[SiteRun, Derivation]],
            fakes: Sequence[Derivation]) -> list[tuple[int, int, int]]:
    """(difference, twin index, fake index) of the closest pairs, each twin and fake once."""
    candidates = sorted(
        (difference(twin, fake), i, j)
        for i, (_, twin) in enumerate(twins)
        for j, fake in enumerate(fakes)
        if twin.name == fake.name and twin.system == fake.system
        and twin.output_hash is not None and fake.output_hash is not None
        and twin.recursive == fake.recursive
    )
    chosen: list[tuple[int, int, int]] = []
    used_twins: set[int] = set()
    used_fakes: set[int] = set()
    for score, i, j in candidates:
        if i in used_twins or j in used_fakes:
            continue
        used_twins.add(i)
        used_fakes.add(j)
        chosen.append((score, i, j))
    return chosen


def pair(twins: Sequence[tuple[SiteRun, Derivation]],
         fakes: Sequence[Derivation]) -> dict[str, SiteRun]:
    """Each fake FOD's .drv path -> the site of its twin (each twin and fake used once)."""
    return {fakes[j].path: twins[i][0] for _, i, j in _greedy(twins, fakes)}


def shared(twins: Sequence[tuple[SiteRun, Derivation]],
           fakes: Sequence[Derivation]) -> list[tuple[str, SiteRun]]:
    """The fakes that stand for a second twin, beside `pair`'s: two FODs that differ only in
    their hash (one package in two folders, one of them stale) are one derivation once both
    hold the fake. A twin `pair` left alone takes a fake whose paired twin is exactly as far
    from it as it is itself; the protocol then builds it again as a namesake copy, so that
    each site gets a build of its own."""
    chosen = _greedy(twins, fakes)
    paired_twin = {j: (score, i) for score, i, j in chosen}
    alone = set(range(len(twins))) - {i for _, i, _ in chosen}
    extra: list[tuple[str, SiteRun]] = []
    for i in sorted(alone):
        run, twin = twins[i]
        for j, (score, _) in paired_twin.items():
            fake = fakes[j]
            if fake.name == twin.name and fake.system == twin.system \
                    and difference(twin, fake) == score:
                extra.append((fake.path, run))
                break
    return extra
