#!/bin/sh
# Starts the Conductor server of docker-compose.yml's "conductor" profile: fills in every @NAME@ of
# conductor.properties.template from the variable TEMPLATE_NAME (as test/support/test-conductor.ts
# fills them from its options), refuses to start with one unset (exit 78), then runs the jar with
# the heap the tests give it.
set -eu
DIR="${CONDUCTOR_HOME:-/opt/conductor}"
awk '{
  out = ""; rest = $0
  while (match(rest, /@[A-Z_]+@/)) {
    name = substr(rest, RSTART + 1, RLENGTH - 2)
    if (ENVIRON["TEMPLATE_" name] == "") { print "conductor: TEMPLATE_" name " is not set" > "/dev/stderr"; exit 78 }
    value = ENVIRON["TEMPLATE_" name]
    gsub(/\\/, "\\\\", value)  # a backslash is an escape in a .properties file
    out = out substr(rest, 1, RSTART - 1) value
    rest = substr(rest, RSTART + RLENGTH)
  }
  print out rest
}' "$DIR/conductor.properties.template" >/tmp/conductor.properties
[ "${1:-}" = "--print-properties" ] && exec cat /tmp/conductor.properties
exec java -Xms128m -Xmx512m -XX:TieredStopAtLevel=1 -jar "$DIR/conductor-server-boot.jar" --spring.config.additional-location=file:/tmp/conductor.properties
