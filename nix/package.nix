# fodhash as a Nix package: `nix run`, `nix profile install`, or callPackage from an overlay.
# Called by ../default.nix and ../flake.nix with nixpkgs' python3Packages.
#
# The Python dependencies are pyproject.toml's, under the names nixpkgs gives them
# (tests/project/test_packaging.py checks that the two lists agree). Not built on the machines this
# project is developed on (they reach no binary cache and cannot fetch nixpkgs); see the
# README, "Install".
{
  lib,
  buildPythonApplication,
  setuptools,
  typer,
  pexpect,
  diskcache,
  rich,
  tree-sitter,
  tree-sitter-language-pack,
}:

let
  pyproject = builtins.fromTOML (builtins.readFile ../pyproject.toml);
in
buildPythonApplication {
  pname = "fodhash";
  inherit (pyproject.project) version;
  pyproject = true;

  # The package, its metadata and README; not the tests, fixtures or this folder.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../pyproject.toml
      ../README.md
      ../fodhash
    ];
  };

  build-system = [ setuptools ];

  dependencies = [
    typer
    pexpect
    diskcache
    rich
    tree-sitter
    tree-sitter-language-pack
  ];

  # pyproject.toml pins tree-sitter-language-pack 0.13 because its 1.x wheels on PyPI
  # download grammars at run time; nixpkgs packages 1.x with the grammars fetched at build
  # time, so the pin is relaxed here. typer's upper bound (<0.29: 0.29 imports pydantic for
  # every command) is for speed, not correctness: whatever typer nixpkgs has works.
  pythonRelaxDeps = [ "tree-sitter-language-pack" "typer" ];

  # The test suite runs real Nix builds, which the build sandbox cannot do.
  doCheck = false;
  pythonImportsCheck = [ "fodhash" ];

  meta = {
    description = pyproject.project.description;
    license = lib.licenses.mit;
    mainProgram = "fodhash";
  };
}
