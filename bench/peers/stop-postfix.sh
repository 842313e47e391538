#!/bin/bash
# Stops the private Postfix started by start-postfix.sh and waits for its master to exit.
#   stop-postfix.sh [DIR]         DIR defaults to /tmp/roost-bench/postfix
set -uo pipefail
DIR=$(realpath -m "${1:-/tmp/roost-bench/postfix}")
PIDFILE=$DIR/spool/pid/master.pid
[ -s "$PIDFILE" ] || { echo "postfix not running (no $PIDFILE)"; exit 0; }
pid=$(tr -d ' ' < "$PIDFILE")
kill -0 "$pid" 2>/dev/null && postfix -c "$DIR/conf" stop
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && { echo "postfix (pid $pid) did not stop" >&2; exit 1; }
echo "postfix stopped (pid $pid)"
