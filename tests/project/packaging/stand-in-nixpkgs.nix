# A stand-in for nixpkgs, small enough to evaluate offline: enough of `lib`, `stdenv` and
# `python3Packages` for ../../default.nix, ../../flake.nix and ../../nix/package.nix.
# `buildPythonApplication` builds nothing: it returns the arguments it was given (plus an
# outPath, so that strings can refer to the "package"), and every Python package is a
# record of the attribute name it was asked for under, so that a test can read back which
# nixpkgs packages the expression depends on.
{
  system ? "x86_64-linux",
}:

let
  lib = {
    fileset = {
      toSource = { root, fileset }: { inherit root fileset; };
      unions = files: files;
    };
    licenses.mit = "mit";
    genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  };

  callPackageWith =
    scope: f: overrides:
    let
      fn = if builtins.isFunction f then f else import f;
    in
    fn (builtins.intersectAttrs (builtins.functionArgs fn) scope // overrides);

  # Every attribute nixpkgs' python3Packages is asked for: a record of its name.
  package = name: { nixpkgsAttribute = name; };
  names = [
    "setuptools"
    "typer"
    "pexpect"
    "diskcache"
    "rich"
    "tree-sitter"
    "tree-sitter-language-pack"
  ];

  python3Packages =
    lib.genAttrs names package
    // {
      buildPythonApplication = args: args // { outPath = "/stand-in/fodhash"; };
      callPackage = callPackageWith (python3Packages // { inherit lib; });
    };
in
{
  inherit lib python3Packages;
  stdenv.hostPlatform.system = system;
}
