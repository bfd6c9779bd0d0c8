#!/usr/bin/env bash
# One step of `make test`, run beside the others: every line it prints is prefixed with its name,
# the whole output is kept in var/test/NAME.log, and the last line says how long it took.
# Usage: scripts/step.sh NAME COMMAND...
set -o pipefail
name=$1
shift
mkdir -p var/test
start=$(date +%s)
echo "[$name] started: $*"
"$@" 2>&1 | tee "var/test/$name.log" | sed -u "s/^/[$name] /"
rc=${PIPESTATUS[0]}
verdict=passed
[ "$rc" = 0 ] || verdict="FAILED (exit $rc; var/test/$name.log)"
echo "[$name] $verdict in $(( $(date +%s) - start )) s"
exit "$rc"
