"""Derivations read from their `.drv` files: FOD hashes, closures, normal forms.

fodhash reads the store's `.drv` files itself, not `nix show-derivation`'s JSON, because:
- their ATerm text has kept one format since Nix 1.x, where the JSON has changed under
  every tool that read it (Nix 2.33's format 4: a wrapper object, store paths without the
  store directory, SRI hashes, no output path for a FOD), and `show-derivation` itself is
  renamed or gone depending on the version;
- the protocol needs little of a closure: the outputs and inputs of every derivation to
  walk it and find the FODs, and the rest only of the FODs. Reading the files stops after
  the inputs of a derivation that is not fixed-output, where `show-derivation -r` prints
  everything (8 MB of JSON for a 5,000-derivation closure) for Python to parse whole;
- no Nix process is started at all.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fodhash.errors import NixError
from fodhash.hashes.encoding import Algo, Hash

# Environment variables that nixpkgs fetchers set differently for a fake hash than for a
# real one (fetchurl, fetchgit: SSL_CERT_FILE is the CA bundle only for a fake): ignore
# them when pairing a fake-hash derivation with its sentinel twin.
FAKE_DEPENDENT_ENV = frozenset({"SSL_CERT_FILE", "NIX_SSL_CERT_FILE", "GIT_SSL_CAINFO"})
_OWN_HASH_ENV = frozenset({"outputHash", "outputHashAlgo"})
INSECURE_CERT_FILE = "/no-cert-file.crt"  # nixpkgs' marker for "fetch without TLS checks"


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
    recursive: bool = False  # a FOD's output hash is of its NAR (`r:`), not of a flat file
    # False for a derivation that is not fixed-output, read only up to its inputs (what a
    # closure walk needs): its builder, args and env are left empty.
    complete: bool = field(default=True, compare=False)
    # Of a fixed-output derivation: each input derivation with the outputs it takes.
    input_outputs: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), compare=False)

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
        """True if a nixpkgs fetcher would run with TLS verification off (see docs/design.md)."""
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


# ---- reading .drv files (ATerm) ----------------------------------------------------------
# Derive([outputs],[input drvs],[input srcs],"system","builder",[args],[env]), with
# outputs ("out","/nix/store/…","r:sha256","<base16>") and strings escaped as in C (\" \\
# \n \r \t). Dynamic derivations (experimental) nest the input drvs' outputs deeper;
# the parser reads any nesting of tuples, lists and strings.
_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|([()\[\],])|([A-Za-z][\w-]*)', re.DOTALL)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
ATerm = str | list["ATerm"]


class _Reader:
    """A lazy reader of one ATerm: values are taken one at a time, so that reading can
    stop after the fields it needs."""

    def __init__(self, text: str, where: str) -> None:
        self.tokens: Iterator[re.Match[str]] = _TOKEN.finditer(text)
        self.where = where

    def _next(self) -> re.Match[str]:
        token = next(self.tokens, None)
        if token is None:
            raise NixError(f"{self.where}: the derivation file ends too early")
        return token

    def expect(self, punctuation: str) -> None:
        token = self._next()
        if token[2] != punctuation:
            raise NixError(f"{self.where}: unexpected {token[0][:20]!r} in the derivation file, "
                           f"expected {punctuation!r}")

    def value(self, token: re.Match[str] | None = None) -> ATerm:
        token = token or self._next()
        if token[1] is not None:
            text = token[1] or ""
            return _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[1]), text) if "\\" in text else text
        if token[2] in ("(", "["):
            close = ")" if token[2] == "(" else "]"
            items: list[ATerm] = []
            while True:
                nxt = self._next()
                if nxt[2] == close:
                    return items
                if nxt[2] == ",":
                    continue
                items.append(self.value(nxt))
        raise NixError(f"{self.where}: unexpected {token[0][:20]!r} in the derivation file")

    def header(self) -> None:
        """`Derive(`, or `DrvWithVersion("…",` of newer experimental formats."""
        name = self._next()
        self.expect("(")
        if name[3] == "DrvWithVersion":
            self.value()
            self.expect(",")
        elif name[3] != "Derive":
            raise NixError(f"{self.where}: not a derivation file (it starts with {name[0]!r})")

    def field(self) -> ATerm:
        value = self.value()
        self.expect(",")
        return value


def _strings(value: ATerm) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _fixed_hash(algo: str, digest: str) -> Hash | None:
    """The output hash of a fixed-output derivation: `r:sha256` (recursive), `sha256`
    (flat) or `text:sha256`, with the digest in base16; None for any other output."""
    if not (algo and digest):
        return None
    try:
        return Hash(Algo(algo.removeprefix("r:").removeprefix("text:")), bytes.fromhex(digest))
    except ValueError:
        return None


# The common case, read by one regular expression: `Derive(` then the outputs and the input
# derivations, whose strings (store paths, output names, hash algorithms and digests) never
# hold a quote or a backslash. A derivation that is not fixed-output needs nothing more; any
# other text (a FOD, a versioned or dynamic derivation) goes to the reader above.
_PREFIX = re.compile(r'Derive\(\[((?:\("[^"\\]*","[^"\\]*","[^"\\]*","[^"\\]*"\),?)*)\],'
                     r'\[((?:\("[^"\\]*",\[[^\]]*\]\),?)*)\],')
_OUTPUT = re.compile(r'\("([^"]*)","([^"]*)","([^"]*)","([^"]*)"\)')
_INPUT = re.compile(r'\("([^"]*)",\[')


def parse_drv(path: str, text: str) -> Derivation:
    """A derivation from the text of its .drv file; whole only if it is fixed-output."""
    prefix = _PREFIX.match(text)
    if prefix is not None:
        outputs = _OUTPUT.findall(prefix[1])
        if not any(name == "out" and algo and digest for name, _, algo, digest in outputs):
            return Derivation(
                path=path, name=path.rsplit("/", 1)[-1].split("-", 1)[-1].removesuffix(".drv"),
                system="", output_hash=None,
                input_drvs=tuple(sorted(_INPUT.findall(prefix[2]))), input_srcs=(),
                builder="", args=(), env={},
                output_paths=tuple(sorted(o[1] for o in outputs if o[1])), complete=False)
    reader = _Reader(text, path)
    reader.header()
    # ("out", path, hashAlgo, hash), padded: a floating content-addressed output has no hash.
    outputs = [[*_strings(o), "", "", "", ""] for o in reader.field() if isinstance(o, list)]
    fixed = next((_fixed_hash(o[2], o[3]) for o in outputs if o[0] == "out"), None)
    recursive = any(o[0] == "out" and o[2].startswith("r:") for o in outputs)
    output_paths = tuple(sorted(o[1] for o in outputs if o[1]))
    inputs = sorted((d[0], tuple(_strings(d[1]) if len(d) > 1 and isinstance(d[1], list) else ()))
                    for d in reader.field() if isinstance(d, list) and d and isinstance(d[0], str))
    input_drvs = tuple(d for d, _ in inputs)
    fallback_name = path.rsplit("/", 1)[-1].split("-", 1)[-1].removesuffix(".drv")
    if fixed is None:
        return Derivation(path=path, name=fallback_name, system="", output_hash=None,
                          input_drvs=input_drvs, input_srcs=(), builder="", args=(), env={},
                          output_paths=output_paths, complete=False)
    input_srcs = tuple(sorted(_strings(reader.field())))
    system = reader.field()
    builder = reader.field()
    args = _strings(reader.field())
    env = {str(e[0]): str(e[1]) for e in reader.value()
           if isinstance(e, list) and len(e) == 2}
    return Derivation(
        path=path, name=env.get("name", fallback_name),
        system=system if isinstance(system, str) else "", output_hash=fixed,
        input_drvs=input_drvs, input_srcs=input_srcs,
        builder=builder if isinstance(builder, str) else "", args=tuple(args), env=env,
        output_paths=output_paths, recursive=recursive, input_outputs=tuple(inputs))


def read_drv(path: str) -> Derivation:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as file:
            return parse_drv(path, file.read())
    except OSError as error:
        raise NixError(
            f"cannot read the derivation {path}: {error.strerror}. fodhash reads .drv files "
            "from the local Nix store, where nix-instantiate writes them (an evaluation "
            "with --store elsewhere is not supported)") from None


def read_closure(roots: Sequence[str]) -> dict[str, Derivation]:
    """Every derivation in the closure of `roots` (themselves included), by .drv path."""
    graph: dict[str, Derivation] = {}
    stack = list(roots)
    while stack:
        path = stack.pop()
        if path in graph:
            continue
        drv = graph[path] = read_drv(path)
        stack.extend(p for p in drv.input_drvs if p not in graph)
    return graph


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
