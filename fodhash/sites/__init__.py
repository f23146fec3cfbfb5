"""Hash sites: where the hashes are in Nix and JSON files, and which of them a target has."""
