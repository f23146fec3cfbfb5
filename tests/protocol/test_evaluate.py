"""The trees of a round evaluated together: one Nix process per instantiation for every
tree where that leaves no core idle, each tree's derivations told apart, and each tree
alone wherever they cannot be (an error, code that branches on a hash)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fodhash.errors import FodhashError
from fodhash.nix import calls, process
from fodhash.nix.calls import Instantiation
from fodhash.nix.process import ProcessResult
from fodhash.protocol import evaluate

SENTINEL = "sha256-" + "A" * 42 + "E="
FAKE = "sha256-" + "A" * 43 + "="


def drv(name: str, letter: str = "a") -> str:
    return f"/nix/store/{letter * 32}-{name}.drv"


# --- how one process's output is told apart ---------------------------------------------

def test_a_process_output_is_halved_per_tree_when_the_halves_name_alike() -> None:
    tops = [drv("src", "a"), drv("app", "b"), drv("src", "c"), drv("app", "d")]
    assert evaluate._split(tops, 2) == [[drv("src", "a"), drv("app", "b")],
                                        [drv("src", "c"), drv("app", "d")]]


@pytest.mark.parametrize("tops", [
    [drv("src"), drv("app"), drv("src")],  # an odd count: not as many per tree
    [drv("src", "a"), drv("app", "b"), drv("app", "c"), drv("src", "d")],  # out of order
    [drv("src", "a"), drv("app", "b"), drv("src", "c"), drv("lib", "d")],  # another name
])
def test_outputs_that_do_not_pair_up_are_not_split(tops: list[str]) -> None:
    assert evaluate._split(tops, 2) is None


@pytest.mark.parametrize(("args", "free"), [
    ((), True),
    (("--argstr", "system", "x86_64-linux"), True),
    (("--arg", "config", "{ allowUnfree = true; }"), True),
    (("-I", "nixpkgs=/nix/store/x-source"), True),
    (("-I", "nixpkgs=https://example.org/nixpkgs.tar.gz"), True),
    (("-I", "nixpkgs=channel:nixos-24.11"), True),
    (("--arg", "src", 'builtins.fetchurl "https://example.org/a/b"'), True),
    (("--arg", "pkgs", "import <nixpkgs> { }"), True),
    (("--arg", "src", "./src"), False),
    (("--arg", "pkgs", "import nix/pkgs.nix { }"), False),
    (("--arg", "x", "(import ../x.nix)"), False),
    (("-I", "nixpkgs"), False),
    (("-I", "nixpkgs=./nixpkgs"), False),
    (("--include", "pins"), False),
])
def test_only_arguments_read_alike_in_any_folder_share_a_process(args: tuple[str, ...],
                                                                free: bool) -> None:
    assert evaluate._cwd_free(args) is free


def trees_of(tmp_path: Path, *whats: Instantiation) -> list[list[Instantiation]]:
    """The same instantiations in two trees, as fodhash.files.place gives them."""
    trees = []
    for tree in ("tree-0", "tree-1"):
        root = tmp_path / tree
        trees.append([Instantiation(cwd=root, file=root / w.file if w.file else None,
                                    attrs=w.attrs, flake_refs=w.flake_refs,
                                    nix_args=w.nix_args) for w in whats])
    return trees


def test_files_share_a_process_where_the_cores_stay_busy(tmp_path: Path) -> None:
    trees = trees_of(tmp_path, Instantiation(cwd=tmp_path, file=Path("a.nix")),
                     Instantiation(cwd=tmp_path, file=Path("b.nix"), attrs=("x", "y")),
                     Instantiation(cwd=tmp_path, flake_refs=(".#x",)))
    merged = evaluate._across(trees, [0, 1, 2], workers=2)
    assert set(merged) == {0, 1}  # a flake never: `nix path-info` sorts what it prints
    assert merged[1].command() == ["nix-instantiate", str(tmp_path / "tree-0" / "b.nix"),
                                   str(tmp_path / "tree-1" / "b.nix"), "-A", "x", "-A", "y"]
    assert merged[1].cwd == tmp_path / "tree-0"
    # 2 merged + 2 flake processes = 4 jobs: four cores stay busy, not five.
    assert evaluate._across(trees, [0, 1, 2], workers=4) == merged
    assert evaluate._across(trees, [0, 1, 2], workers=5) == {}
    # One instantiation on two cores: two processes evaluate the trees at once.
    assert evaluate._across(trees, [1], workers=2) == {}
    assert evaluate._across(trees[:1], [0, 1], workers=1) == {}  # one tree: nothing to share


def test_flakes_start_first(tmp_path: Path) -> None:
    trees = trees_of(tmp_path, Instantiation(cwd=tmp_path, file=Path("a.nix")),
                     Instantiation(cwd=tmp_path, flake_refs=(".#x",)),
                     Instantiation(cwd=tmp_path, file=Path("b.nix")))
    merged = evaluate._across(trees, [0, 1, 2], workers=2)
    assert set(merged) == {0, 2}
    # A flake is a phase's longest evaluation: its processes, one per tree, go first.
    assert evaluate._jobs(trees, [0, 1, 2], merged) == [(0, 1), (1, 1), (None, 0), (None, 2)]
    assert evaluate._jobs(trees, [0, 2], {}) == [(0, 0), (0, 2), (1, 0), (1, 2)]


def test_relative_arguments_keep_a_process_per_tree(tmp_path: Path) -> None:
    trees = trees_of(tmp_path, Instantiation(cwd=tmp_path, file=Path("a.nix"),
                                             nix_args=("--arg", "src", "./src")),
                     Instantiation(cwd=tmp_path, file=Path("b.nix")))
    assert set(evaluate._across(trees, [0, 1], workers=1)) == {1}


# --- with Nix ------------------------------------------------------------------------------

def write_tree(root: Path, literal: str, *, broken: bool = False) -> None:
    """Two files: `src.nix`, a FOD with the literal; `app.nix`, a set of two derivations
    consuming it. `broken`: app.nix throws."""
    root.mkdir(parents=True)
    (root / "src.nix").write_text(f'''derivation {{
  name = "source";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo > $out" ];
  outputHashMode = "flat";
  outputHash = "{literal}";
}}
''')
    app = '''let src = import ./src.nix; in {
  app = derivation { name = "app"; system = builtins.currentSystem; builder = "/bin/sh";
                     args = [ "-c" "cat ${src} > $out" ]; };
  doc = derivation { name = "doc"; system = builtins.currentSystem; builder = "/bin/sh";
                     args = [ "-c" "echo > $out" ]; };
}
'''
    (root / "app.nix").write_text('throw "app: broken on purpose"' if broken else app)


def two_trees(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, broken: bool = False) -> None:
    """The sentinel tree and the fake tree, on two cores as here. `broken`: the fake tree's
    app.nix throws."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    write_tree(tmp_path / "tree-0", SENTINEL)
    write_tree(tmp_path / "tree-1", FAKE, broken=broken)


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """Every Nix command an instantiation runs."""
    seen: list[list[str]] = []
    real = process.run

    def run(args: list[str], **kwargs: object) -> ProcessResult:
        seen.append(list(args))
        return real(args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(calls, "run", run)
    yield seen


def instantiations(tmp_path: Path) -> list[list[Instantiation]]:
    return trees_of(tmp_path, Instantiation(cwd=tmp_path, file=Path("src.nix")),
                    Instantiation(cwd=tmp_path, file=Path("app.nix"), attrs=("app", "doc")))


def alone(trees: list[list[Instantiation]]) -> list[evaluate.Evaluated]:
    """What each tree evaluated in processes of its own gives."""
    return [evaluate.instantiate_trees([tree], [0, 1], lambda: None)[0] for tree in trees]


@pytest.mark.nix
def test_trees_in_one_process_give_each_tree_its_own_derivations(
        tmp_path: Path, commands: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    two_trees(tmp_path, monkeypatch)
    trees = instantiations(tmp_path)
    together = evaluate.instantiate_trees(trees, [0, 1], lambda: None)
    assert len(commands) == 2  # one process per instantiation, not per tree
    assert all(str(tmp_path / "tree-1") in " ".join(c) for c in commands)
    expected = alone(trees)
    for mine, theirs in zip(together, expected, strict=True):
        assert mine.tops == theirs.tops
        assert mine.graph.keys() == theirs.graph.keys()
        assert not mine.errors
    sentinels = [d.output_hash for d in together[0].graph.values() if d.output_hash]
    fakes = [d.output_hash for d in together[1].graph.values() if d.output_hash]
    assert [str(h) for h in sentinels] != [str(h) for h in fakes]
    assert together[0].tops[1] != together[1].tops[1]  # app consumes the source: it differs
    assert together[0].tops[1][1] == together[1].tops[1][1]  # doc does not: the same .drv


@pytest.mark.nix
def test_an_error_in_one_tree_is_that_trees_alone(tmp_path: Path, commands: list[list[str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    two_trees(tmp_path, monkeypatch, broken=True)
    trees = instantiations(tmp_path)
    sentinel, fake = evaluate.instantiate_trees(trees, [0, 1], lambda: None)
    # The shared process failed; each tree was then evaluated alone.
    assert len(commands) == 4
    assert set(sentinel.tops) == {0, 1} and not sentinel.errors
    assert set(fake.tops) == {0} and set(fake.errors) == {1}
    assert isinstance(fake.errors[1], FodhashError)
    assert "broken on purpose" in str(fake.errors[1].output)  # type: ignore[attr-defined]


@pytest.mark.nix
def test_code_that_branches_on_a_hash_is_evaluated_per_tree(
        tmp_path: Path, commands: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    two_trees(tmp_path, monkeypatch)
    for tree in ("tree-0", "tree-1"):  # one more derivation where the hash is the fake
        app = tmp_path / tree / "app.nix"
        text = app.read_text().replace(
            "doc = derivation", f'doc = (if src.outputHash == "{FAKE}" '
            'then (d: [ d (d // { name = "extra"; }) ]) else (d: d)) (derivation')
        app.write_text(text.replace('"echo > $out" ]; };\n}', '"echo > $out" ]; });\n}'))
    trees = instantiations(tmp_path)
    together = evaluate.instantiate_trees(trees, [0, 1], lambda: None)
    # The source shared a process; app.nix printed 2 + 3 paths, which do not halve, so
    # each tree evaluated it again alone.
    assert len(commands) == 1 + 1 + 2
    assert len(together[1].tops[1]) == len(together[0].tops[1]) + 1
    assert [t.tops for t in together] == [t.tops for t in alone(trees)]


@pytest.mark.nix
def test_after_a_light_phase_even_one_instantiation_shares_a_process(
        tmp_path: Path, commands: list[list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    two_trees(tmp_path, monkeypatch)
    trees = instantiations(tmp_path)
    heavy = evaluate.instantiate_trees(trees, [1], lambda: None)
    assert len(commands) == 2  # a process per tree: each takes a core
    light = evaluate.instantiate_trees(trees, [1], lambda: None, light=True)
    assert len(commands) == 3  # then both trees in one
    assert [e.tops for e in light] == [e.tops for e in heavy]
    assert all(e.seconds > 0 for e in (*heavy, *light))


def test_a_round_after_a_light_evaluation_asks_for_light(tmp_path: Path) -> None:
    """The Resolver passes on what its last evaluation phase took (fodhash.protocol.rounds)."""
    from fodhash.protocol import rounds  # noqa: PLC0415 - this test alone

    seen: list[bool] = []

    def instantiate_trees(*args: object, light: bool = False, **kwargs: object
                          ) -> list[evaluate.Evaluated]:
        seen.append(light)
        return [evaluate.Evaluated({}, {}, seconds=0.05 if len(seen) < 3 else 5.0)]

    resolver = object.__new__(rounds.Resolver)
    resolver.evaluated_in = None
    resolver.evaluations = 0
    resolver.whats = [[Instantiation(cwd=tmp_path, file=tmp_path / "a.nix")]]
    resolver.broken = set()
    resolver.reaches = {}
    resolver.deadline = None
    resolver._fetches = str(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "instantiate_trees", instantiate_trees)
        for _ in range(4):
            resolver._evaluate([], [0])
    assert seen == [False, True, True, False]
