#!/bin/sh
# The manual recipe, as a person runs it: for each stale site, in dependency order, write
# the fake hash into the site, nix-build the FOD's attribute, copy the `got:` hash out of
# the error and write it in; one site after another.
#
# Run in a repository made by benchmarks/generate.py: reads recipe.tsv (one line per site,
# in dependency order: file, its literal, file to nix-build, attribute). Exits 1 if a build
# gives no `got:`.
set -eu

fake='sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='  # lib.fakeHash
tab=$(printf '\t')

while IFS="$tab" read -r file literal build attr; do
  # The literal and the fake are base64: no `|`, and no character special to sed but `+`,
  # which basic regular expressions take literally.
  sed -i "s|\"$literal\"|\"$fake\"|" "$file"
  got=$(nix-build "$build" -A "$attr" --no-out-link 2>&1 |
    sed -n 's/^ *got: *\(sha256-[A-Za-z0-9+/=]*\).*/\1/p' | tail -n 1) || true
  if [ -z "$got" ]; then
    echo "manual-recipe: $file $attr: no got: hash" >&2
    exit 1
  fi
  sed -i "s|\"$fake\"|\"$got\"|" "$file"
done < recipe.tsv
