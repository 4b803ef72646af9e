#!/usr/bin/env bash
# Prints the path of a promtool (Prometheus's rule checker), for the repository tests that check
# deploy/prometheus/: PROMTOOL if set, or Debian 12's, the version docker-compose.yml's Prometheus
# runs: extracted earlier into .local/tools/, or now (apt-get download and dpkg-deb: nothing is
# installed on the system, no service is started; the package lists are refreshed first when the
# download fails and it may). Without apt, a promtool on PATH (the tests then check its version
# against docker-compose.yml's). Exits 1, saying why on stderr, when none can be had.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.local/tools/prometheus"
EXTRACTED="$TOOLS/usr/bin/promtool"

if [ -n "${PROMTOOL:-}" ]; then echo "$PROMTOOL"; exit 0; fi
if [ -x "$EXTRACTED" ]; then echo "$EXTRACTED"; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
  if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
  echo "promtool: not found, and no apt-get/dpkg-deb to fetch Debian's prometheus package; install promtool or set PROMTOOL" >&2
  exit 1
fi
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
