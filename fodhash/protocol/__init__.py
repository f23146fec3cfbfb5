"""The resolution protocol (docs/design.md), one stage a module:

- `evaluate`: instantiate the trees the protocol writes into, read the closures, find each
  site's FODs by its sentinel, and which FODs consume another pending site's;
- `pairing`: find each fake-hash FOD's sentinel twin, hence its site;
- `build`: realise the fake-hash FODs, in lanes that never share an output path, and map
  every `got:` to its site by .drv path;
- `results`: the result cache: lookups before a build, entries after, the nothing-changed
  fast path;
- `rounds`: the Resolver, which runs the rounds over those stages.
"""

from fodhash.protocol.rounds import Resolver, Tree

__all__ = ["Resolver", "Tree"]
