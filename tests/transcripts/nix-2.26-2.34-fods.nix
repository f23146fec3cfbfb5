# What the Nix 2.26 and 2.34 transcripts next to this file ran (nix-2.26-*.txt, nix-2.34-*.txt,
# each beginning with its command; flake.nix in a git tree of its own). The remote-* ones built
# mn-remote-* FODs of the same kind through a real remote builder on loopback, and
# nix-2.34-...-true-hash.txt built `refs` with the got: its fake-hash build reported:
#   derivation (refs.drvAttrs // { outputHash = "sha256-iuRw4QFNobvDrB60v0l8bcrA5ZXsg3k80Xno5f2tAzI="; })

let
  sh = script: [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  fod = { name, script, hash ? "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", algo ? "sha256", mode ? "flat" }: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = sh script;
    outputHashMode = mode;
    outputHashAlgo = algo;
    outputHash = hash;
  };
  plain = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = sh script;
  };
in rec {
  single = fod { name = "mn-single"; script = "echo single > $out"; };
  realise = fod { name = "mn-realise"; script = "echo realise > $out"; };
  pty = fod { name = "mn-pty"; script = "echo building pty; echo pty > $out"; };
  json = fod { name = "mn-json"; script = "echo building json; echo json > $out"; };
  one = fod { name = "mn-one"; script = "echo one > $out"; };
  two = fod { name = "mn-two"; script = "echo two > $out"; };
  broken = fod {
    name = "mn-broken";
    script = ''
      echo trying mirror
      echo 'curl: (6) Could not resolve host: example.invalid' >&2
      exit 3
    '';
  };
  keepGoing = [ one two broken ];
  # A chain: chain-deps reads chain-src's output (as npm deps read a source); app is plain.
  chainSrc = fod { name = "mn-chain-src"; hash = "sha256-74rtVfumQlgAPzR5/2CgYN24MB0XARCg0t+gzk6gTrM="; script = "echo src > $out"; };
  chainDeps = fod { name = "mn-chain-deps"; script = "cat ${chainSrc} > $out; echo deps >> $out"; };
  chainApp = plain "mn-chain-app" "cat ${chainDeps} > $out";
  # Same name, same fake hash: the same output path (DESIGN.md's same-name FODs).
  sameA = fod { name = "mn-same"; script = "echo a > $out"; };
  sameB = fod { name = "mn-same"; script = "echo b > $out"; };
  good = fod { name = "mn-good"; hash = "sha256-74rtVfumQlgAPzR5/2CgYN24MB0XARCg0t+gzk6gTrM="; script = "echo src > $out"; };
  # Output names an input store path (cp into a folder keeps the store path's base name):
  # Nix 2.8 accepts such a FOD; newer ones refuse "fixed-output derivations must not
  # reference store paths" (fixtures/platforms/frontend.nix does this).
  lock = builtins.toFile "lock.json" "{}";
  refs = fod { name = "mn-refs"; mode = "recursive"; script = "mkdir -p $out; cp ${lock} $out/"; };
  # A system no machine here builds.
  darwin = derivation {
    name = "mn-darwin";
    system = "aarch64-darwin";
    builder = "/bin/sh";
    args = sh "echo darwin > $out";
    outputHashMode = "flat";
    outputHashAlgo = "sha256";
    outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  };
}
