{
  description = "fodhash: fix stale fixed-output derivation hashes with real Nix builds";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: rec {
        fodhash = pkgs.python3Packages.callPackage ./nix/package.nix { };
        default = fodhash;
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.stdenv.hostPlatform.system}.fodhash}/bin/fodhash";
        };
      });

      overlays.default = final: prev: {
        fodhash = final.python3Packages.callPackage ./nix/package.nix { };
      };
    };
}
