"""Derivations as `nix show-derivation` prints them: FOD hashes, closures, normal forms."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from fodhash.hashes import Algo, Hash

# Environment variables that nixpkgs fetchers set differently for a fake hash than for a
# real one (fetchurl, fetchgit: SSL_CERT_FILE is the CA bundle only for a fake): ignore
# them when pairing a fake-hash derivation with its sentinel twin.
FAKE_DEPENDENT_ENV = frozenset({"SSL_CERT_FILE", "NIX_SSL_CERT_FILE", "GIT_SSL_CAINFO"})
_OWN_HASH_ENV = frozenset({"outputHash", "outputHashAlgo"})
INSECURE_CERT_FILE = "/no-cert-file.crt"  # nixpkgs' marker for "fetch without TLS checks"


class OutputJSON(TypedDict, total=False):
    path: str
    hashAlgo: str  # "r:sha256" (recursive) or "sha256" (flat); newer Nix: "sha256" + method
    hash: str  # base16
    method: str


class DerivationJSON(TypedDict, total=False):
    outputs: dict[str, OutputJSON]
    inputSrcs: list[str]
    inputDrvs: dict[str, Any]
    system: str
    platform: str
    builder: str
    args: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Derivation:
    path: str
    name: str
    system: str
    output_hash: Hash | None  # set for a fixed-output derivation
    input_drvs: tuple[str, ...]
    input_srcs: tuple[str, ...]
    builder: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    output_paths: tuple[str, ...]

    @classmethod
    def from_json(cls, path: str, data: DerivationJSON) -> Derivation:
        outputs = data.get("outputs", {})
        out = outputs.get("out", {})
        fixed: Hash | None = None
        if out.get("hash") and out.get("hashAlgo"):
            algo = out["hashAlgo"].removeprefix("r:").removeprefix("text:")
            try:
                fixed = Hash(Algo(algo), bytes.fromhex(out["hash"]))
            except ValueError:
                fixed = None
        env = data.get("env", {})
        return cls(
            path=path,
            name=env.get("name", path.split("-", 1)[-1].removesuffix(".drv")),
            system=data.get("system", data.get("platform", "")),
            output_hash=fixed,
            input_drvs=tuple(sorted(data.get("inputDrvs", {}))),
            input_srcs=tuple(sorted(data.get("inputSrcs", []))),
            builder=data.get("builder", ""),
            args=tuple(data.get("args", [])),
            env=env,
            output_paths=tuple(sorted(o.get("path", "") for o in outputs.values())),
        )

    def normal_form(self, *, ignore_env: Iterable[str] = ()) -> dict[str, Any]:
        """The derivation minus its own hash and output paths (which the hash determines)."""
        skip = _OWN_HASH_ENV | set(ignore_env)
        env = {
            k: v for k, v in self.env.items()
            if k not in skip and v not in self.output_paths
        }
        return {
            "name": self.name,
            "system": self.system,
            "hashAlgo": str(self.output_hash.algo) if self.output_hash else None,
            "builder": self.builder,
            "args": list(self.args),
            "env": env,
            "inputDrvs": list(self.input_drvs),
            "inputSrcs": list(self.input_srcs),
        }

    def digest(self) -> str:
        """A digest of the normal form: equal for the same FOD with any hash."""
        blob = json.dumps(self.normal_form(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def fetches_insecurely(self) -> bool:
        """True if a nixpkgs fetcher would run with TLS verification off (see DESIGN.md)."""
        return INSECURE_CERT_FILE in self.env.values()


def difference(a: Derivation, b: Derivation) -> int:
    """How far apart two derivations are, ignoring what a fake hash changes in fetchers."""
    na = a.normal_form(ignore_env=FAKE_DEPENDENT_ENV)
    nb = b.normal_form(ignore_env=FAKE_DEPENDENT_ENV)
    score: int = sum(na[k] != nb[k] for k in ("name", "system", "builder", "args"))
    keys = set(na["env"]) | set(nb["env"])
    score += sum(na["env"].get(k) != nb["env"].get(k) for k in keys)
    score += len(set(na["inputDrvs"]) ^ set(nb["inputDrvs"]))
    score += len(set(na["inputSrcs"]) ^ set(nb["inputSrcs"]))
    return score


def parse_show_derivation(text: str) -> dict[str, Derivation]:
    data: dict[str, DerivationJSON] = json.loads(text)
    return {path: Derivation.from_json(path, value) for path, value in data.items()}


def closure(graph: Mapping[str, Derivation], root: str) -> set[str]:
    """Every derivation `root` depends on (itself excluded) among those in `graph`."""
    seen: set[str] = set()
    stack = list(graph[root].input_drvs) if root in graph else []
    while stack:
        path = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        if path in graph:
            stack.extend(graph[path].input_drvs)
    return seen
