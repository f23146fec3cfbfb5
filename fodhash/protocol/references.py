"""Store references: a FOD whose output holds a store path is not written.

Nix 2.26 refuses such a FOD before it checks the hash, 2.34 after it (the mismatch with the
fake first, the refusal only once the true hash is written), and 2.8 accepts it, tying the
hash to every update of the referenced inputs. So after every build the output Nix
registered is read (fodhash.nix.outputs): one verdict, `references`, on every version, with
the paths and the files of the output that hold them.
"""

from __future__ import annotations

import re
from pathlib import Path

from fodhash.nix import outputs
from fodhash.nix.derivations import Derivation

CURE = ("cure: strip them (`remove-references-to -t PATH $out/FILE`, or `nuke-refs`), or build "
        "without the path (copy an input under a name of its own, no patched shebang or "
        "wrapper); `--allow-references` writes the hash anyway on a Nix that accepts it")


def message(name: str, found: outputs.Registered) -> str:
    """What a person needs to fix a FOD whose output references store paths."""
    held = outputs.holders(found.path, found.references)
    lines = [f"  {ref}" + (f" (in {', '.join(files)})" if files else "")
             for ref, files in held.items()]
    count = len(found.references)
    paths = "1 store path" if count == 1 else f"{count} store paths"
    return (f"the output of FOD {name!r} ({found.path}) references {paths}: Nix 2.26 and "
            "later refuse it, older Nix ties its hash to them\n" + "\n".join([*lines, CURE]))


_STORE_PATH = re.compile(rb"/nix/store/[0-9a-df-np-sv-z]{32}-[^/\s'\"$;:]+")


def flat_message(drv: Derivation) -> str:
    """A flat FOD Nix refused (2.26, 2.34) for the store paths its file holds: Nix names none,
    but leaves the file, unregistered, at the FOD's own output path."""
    held: list[str] = []
    for output in drv.output_paths:
        try:
            blob = Path(output).read_bytes() if Path(output).is_file() else b""
        except OSError:
            blob = b""
        held += sorted({m.decode(errors="replace") for m in _STORE_PATH.findall(blob)})
    lines = [f"  {ref} (in its file)" for ref in held]
    what = "store paths" if len(held) != 1 else "1 store path"
    return (f"the output of FOD {drv.name!r} (a flat file) holds {what}: Nix refuses it, "
            "older Nix fails an assertion\n" + "\n".join([*lines, CURE]))
