#!/bin/sh
# The manual recipe, as a person runs it: for each stale site, in dependency order, write
# the fake hash into the site, nix-build the FOD's attribute, copy the `got:` hash out of
# the error and write it in; one site after another.
#
# Reads recipe.tsv in the working directory (or the file given as $1): one line per site,
# in dependency order: file, line, the literal there as written (`"sha256-..."` with its
# quotes, or `lib.fakeHash`), the file to nix-build, and its attribute (empty: the file's
# own derivation). benchmarks/generate.py writes one for each repository;
# benchmarks/example-recipe.tsv is fixtures/example's. Exits 1 if a build gives no `got:`.
set -eu

fake='sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='  # lib.fakeHash
tab=$(printf '\t')

while IFS="$tab" read -r file line literal build attr; do
  # The literal and the fake are base64 or a Nix name: no `|`, and no character special
  # to sed but `+` and `.`, which match themselves here (`.` also matches any character,
  # on this one line only).
  sed -i "${line}s|$literal|\"$fake\"|" "$file"
  if [ -n "$attr" ]; then
    set -- -A "$attr"
  else
    set --
  fi
  got=$(nix-build "$build" "$@" --no-out-link 2>&1 |
    sed -n 's/^ *got: *\(sha256-[A-Za-z0-9+/=]*\).*/\1/p' | tail -n 1) || true
  if [ -z "$got" ]; then
    echo "manual-recipe: $file:$line ($build ${attr:-}): no got: hash" >&2
    exit 1
  fi
  sed -i "${line}s|\"$fake\"|\"$got\"|" "$file"
done < "${1:-recipe.tsv}"
