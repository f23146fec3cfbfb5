"""Namesakes: a derivation of its own for each FOD that shares its output path with another.

Fetchers name everything `source`, and every fake of an algorithm is the same all-zero
hash, so two ready FODs of one name and mode have one output path: Nix would build them one
after the other, polling the path's lock. Here each of them after the first gets a copy of
its fake-hash derivation that differs in the declared hash alone: a hash no content has
(a digest of the original's .drv path), in the same algorithm and mode. The copy is made by
Nix itself, `derivation` over the original's own builder, arguments and environment, with
its inputs given back as string context (`builtins.appendContext`); it is used only if its
.drv equals the original in everything but that hash and the output path that follows from
it (`Derivation.normal_form`).

Why that is sound: the copy is built from the environment the fetcher computed for the
canonical fake, so its TLS decision (`SSL_CERT_FILE`) is the fake's, never a "known hash"
one; and the copy differs from the fake-hash build only where the fake-hash build differs
from the build with the true hash (the declared hash and `$out`), which the fake-and-`got:`
recipe already relies on. After the mismatch Nix registers the output under the path of
the got hash, with the FOD's own name and mode: the very path the FOD takes with its true
hash, so what consumes it next round finds it built.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fodhash.hashes.encoding import Hash
from fodhash.nix import process
from fodhash.nix.derivations import Derivation, read_drv

# Set by `derivation` itself, or meaning something to it that a copied string would not.
_OWN = {"name", "system", "builder", "out", "outputs"}
_UNCOPIED = {"__structuredAttrs", "__json", "__contentAddressed", "__impure"}

_EXPRESSION = """\
let
  spec = builtins.fromJSON (builtins.readFile ./namesakes.json);
  copy = d: derivation (d.env // {
    inherit (d) name system args;
    builder = builtins.appendContext d.builder d.context;
  });
in
map copy spec
"""


SALT = b"fodhash namesake\0"


def declared(fod: Derivation, salt: bytes = SALT) -> Hash:
    """The hash a copy of `fod` declares: its algorithm, a digest of its .drv path (and of
    `salt`, which tells apart copies made for different reasons: --reproducible's twin)."""
    assert fod.output_hash is not None
    algo = fod.output_hash.algo
    return Hash(algo, hashlib.new(str(algo), salt + fod.path.encode()).digest())


def copyable(fod: Derivation) -> bool:
    return (fod.output_hash is not None and fod.complete and len(fod.output_paths) == 1
            and not _UNCOPIED & set(fod.env))


def _spec(fod: Derivation, salt: bytes) -> dict[str, object]:
    context: dict[str, object] = {d: {"outputs": list(outputs)} for d, outputs in fod.input_outputs}
    context |= {s: {"path": True} for s in fod.input_srcs}
    env = {k: v for k, v in fod.env.items() if k not in _OWN}
    env["outputHash"] = declared(fod, salt).sri
    return {"name": fod.name, "system": fod.system, "builder": fod.builder,
            "args": list(fod.args), "env": env, "context": context}


def copies(fods: Sequence[Derivation], timeout: float | None = None,
           salt: bytes = SALT) -> dict[str, Derivation]:
    """Each FOD's .drv path -> its copy, for the FODs Nix copied faithfully (the others
    keep sharing their path, and build in lanes)."""
    chosen = [f for f in fods if copyable(f)]
    if not chosen:
        return {}
    with tempfile.TemporaryDirectory(prefix="fodhash-namesakes-") as folder:
        (Path(folder) / "namesakes.json").write_text(json.dumps([_spec(f, salt) for f in chosen]))
        (Path(folder) / "namesakes.nix").write_text(_EXPRESSION)
        result = process.run(["nix-instantiate", str(Path(folder) / "namesakes.nix")],
                             timeout=timeout)
    if not result.ok:
        return {}
    paths = [line for line in result.stdout.split() if line.endswith(".drv")]
    if len(paths) != len(chosen):
        return {}
    found: dict[str, Derivation] = {}
    for fod, path in zip(chosen, paths, strict=True):
        copy = read_drv(path)
        if copy.normal_form() == fod.normal_form() and copy.output_hash == declared(fod, salt) \
                and copy.recursive == fod.recursive:
            found[fod.path] = copy
    return found
