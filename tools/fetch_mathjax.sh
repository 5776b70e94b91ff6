#!/usr/bin/env bash
# Put MathJax 3 into the site, so math renders with no CDN (the book must work offline).
# Fetches the pinned npm tarball once and copies only what tex-mml-chtml needs (about 2 MB).
set -euo pipefail
version=3.2.2
dest=build-assets/site/mathjax
if [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$version" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed once to fetch MathJax $version: apt-get install npm" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "mathjax@$version" >/dev/null && tar -xzf "mathjax-$version.tgz")
rm -rf "$dest"
mkdir -p "$dest/output/chtml/fonts" "$dest/input/tex"
cp "$work/package/es5/tex-mml-chtml.js" "$dest/"
cp -r "$work/package/es5/output/chtml/fonts/woff-v2" "$dest/output/chtml/fonts/"
cp -r "$work/package/es5/input/tex/extensions" "$dest/input/tex/"
# The accessibility menu loads these on demand.
cp -r "$work/package/es5/a11y" "$work/package/es5/sre" "$dest/"
echo "$version" > "$dest/.version"
echo "MathJax $version -> $dest ($(du -sh "$dest" | cut -f1))"
