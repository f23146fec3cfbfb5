"""Running Nix and reading what it writes: processes, the commands fodhash calls, derivations, messages."""
