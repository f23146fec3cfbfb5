# `nix-build` / `nix-env -if .` of fodhash with the nixpkgs of NIX_PATH (or the `pkgs` given).
{
  pkgs ? import <nixpkgs> { },
}:
pkgs.python3Packages.callPackage ./nix/package.nix { }
