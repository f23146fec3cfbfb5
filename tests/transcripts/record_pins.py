"""Record what the real Nix on this machine prints when a pin fetched at evaluation time has
another hash than the one written: `builtins.fetchTarball`, `builtins.fetchurl` (the
builtins niv and npins call) and `builtins.fetchGit` with a `narHash`.

Re-run with `.venv/bin/python tests/transcripts/record_pins.py` (in a Nix-version root:
`tests/nix-versions/run.py sid --shell .venv/bin/python tests/transcripts/record_pins.py`).
It serves a tarball, a file and a git repository from a temporary folder (`file://`), writes
a `.nix` file per fetcher with a wrong hash, runs `nix-instantiate` on it with a fresh fetcher
cache and saves what Nix printed to `nix-<version>-eval-<fetcher>.txt` next to this script,
the temporary folder's path replaced by `/tmp/pins` so that the files are the same on every
run. The wrong hash is the sha256 of the empty string.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WRONG_NIX32 = "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
WRONG_SRI = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
EMPTY_TREE_REV = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
PLACE = "/tmp/pins"

FILES = {
    "fetchtarball": f"""
builtins.fetchTarball {{
  url = "@/release.tar.gz";
  sha256 = "{WRONG_NIX32}";
}}
""",
    "fetchurl": f"""
builtins.fetchurl {{
  url = "@/notes.txt";
  sha256 = "{WRONG_NIX32}";
}}
""",
    "fetchgit": f"""
builtins.fetchGit {{
  url = "@/repo";
  rev = "@REV@";
  narHash = "{WRONG_SRI}";
}}
""",
}


def serve(folder: Path) -> str:
    """The tarball, the file and the git repository; the repository's one commit."""
    data = b"release notes\n"
    with tarfile.open(folder / "release.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("release-1.0/NOTES")
        info.size, info.mtime = len(data), 1
        tar.addfile(info, io.BytesIO(data))
    (folder / "notes.txt").write_bytes(data)
    repo = folder / "repo"
    repo.mkdir()
    (repo / "NOTES").write_bytes(data)
    git = ["git", "-c", "user.name=fodhash", "-c", "user.email=fodhash@example.invalid"]
    dates = {"GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    for args in (["init", "-q"], ["add", "NOTES"], ["commit", "-q", "-m", "notes"]):
        subprocess.run([*git, *args], cwd=repo, check=True, env={**os.environ, **dates})
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> int:
    version = subprocess.run(["nix-instantiate", "--version"], capture_output=True,
                             text=True, check=True).stdout.split()[-1]
    with tempfile.TemporaryDirectory(prefix="pins-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        rev = serve(folder)
        env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache"), "TERM": "dumb",
               "NIX_CONFIG": "substituters =\nexperimental-features = nix-command flakes"}
        for name, text in FILES.items():
            nix = folder / f"{name}.nix"
            nix.write_text(text.replace("@REV@", rev).replace("@", folder.as_uri()))
            result = subprocess.run(["nix-instantiate", "--eval", str(nix)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
            output = result.stdout.decode().replace(str(folder), PLACE).replace(rev, "@REV@")
            out = HERE / f"nix-{version}-eval-{name}.txt"
            out.write_text(output)
            print(f"{out.name}: exit {result.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
