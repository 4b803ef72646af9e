#!/usr/bin/env bash
# Fetches the stock Conductor OSS server (scripts/conductor/pom.xml names the version) from Maven
# Central into .local/conductor/conductor-server-boot.jar and prints that path. Maven's cache (~/.m2)
# makes later fetches offline; a jar already fetched for the same pom is reused without running Maven.
# Exits 1, saying why on stderr, when the JDK or Maven is missing or Maven cannot fetch the jar.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
POM="$ROOT/scripts/conductor/pom.xml"
DIR="$ROOT/.local/conductor"
JAR="$DIR/conductor-server-boot.jar"
STAMP="$DIR/.pom.sha"
LOGS="$ROOT/.local/logs"

die() { printf '[conductor] error: %s\n' "$*" >&2; exit 1; }
command -v java >/dev/null 2>&1 || die "'java' is not installed; the Conductor server runs on a JDK 17 or newer"

want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [ -f "$JAR" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then echo "$JAR"; exit 0; fi
command -v mvn >/dev/null 2>&1 || die "'mvn' is not installed; the Conductor server is fetched with Apache Maven 3.8+"

mkdir -p "$DIR" "$LOGS"
version="$(sed -n 's:.*<conductor.version>\(.*\)</conductor.version>.*:\1:p' "$POM")"
printf '[conductor] fetching conductor-server %s (boot jar, about 385 MiB) from Maven Central (cached in ~/.m2 for next time)\n' "$version" >&2
rm -f "$STAMP"
mvn -q -B -f "$POM" dependency:copy -DoutputDirectory="$DIR" >"$LOGS/conductor-maven.log" 2>&1 ||
  die "Maven could not fetch conductor-server $version; see $LOGS/conductor-maven.log"
[ -s "$JAR" ] || die "Maven finished but $JAR is missing; see $LOGS/conductor-maven.log"
echo "$want" >"$STAMP"
echo "$JAR"
