#!/usr/bin/env bash
# The browser tests drive Debian's Chromium. Install it when we may (root), else say how.
set -euo pipefail
browser=${PGLIB_CHROMIUM:-/usr/bin/chromium}
[ -x "$browser" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "The browser tests need Chromium at $browser. Install it with: sudo apt-get install chromium" >&2
exit 1
