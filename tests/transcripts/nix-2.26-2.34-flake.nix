# What the Nix 2.26 and 2.34 transcripts next to this file ran (nix-2.26-*.txt, nix-2.34-*.txt,
# each beginning with its command; flake.nix in a git tree of its own). The remote-* ones built
# mn-remote-* FODs of the same kind through a real remote builder on loopback.

{
  description = "modern-nix transcripts";
  outputs = { self }: let
    system = "x86_64-linux";
    fod = name: script: derivation {
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
      outputHashMode = "flat";
      outputHashAlgo = "sha256";
      outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    };
  in {
    packages.${system} = {
      default = fod "mn-flake" "echo flake > $out";
      one = fod "mn-flake-one" "echo flake-one > $out";
      two = fod "mn-flake-two" "echo flake-two > $out";
    };
  };
}
