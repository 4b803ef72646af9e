#!/usr/bin/env bash
# Prints the path of a promtool (Prometheus's rule checker), for the repository tests that check
# deploy/prometheus/: PROMTOOL if set, a promtool on PATH, or the one extracted earlier into
# .local/tools/. Otherwise it extracts Debian's `prometheus` package there (apt-get download and
# dpkg-deb: nothing is installed on the system, no service is started), refreshing the package
# lists first when it may. Exits 1, saying why on stderr, when none can be had.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.local/tools/prometheus"
EXTRACTED="$TOOLS/usr/bin/promtool"

if [ -n "${PROMTOOL:-}" ]; then echo "$PROMTOOL"; exit 0; fi
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
if [ -x "$EXTRACTED" ]; then echo "$EXTRACTED"; exit 0; fi

command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 ||
  { echo "promtool: not found, and no apt-get/dpkg-deb to fetch Debian's prometheus package; install promtool or set PROMTOOL" >&2; exit 1; }
download="$(mktemp -d)"
trap 'rm -rf "$download"' EXIT
fetch() { (cd "$download" && apt-get download -qq prometheus >/dev/null 2>&1); }
if ! fetch; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  $SUDO apt-get update -qq >/dev/null 2>&1 && fetch ||
    { echo "promtool: apt-get could not download Debian's prometheus package; install promtool or set PROMTOOL" >&2; exit 1; }
fi
mkdir -p "$TOOLS"
dpkg-deb -x "$download"/prometheus_*.deb "$TOOLS"
"$EXTRACTED" --version >/dev/null
echo "$EXTRACTED"
