#!/bin/bash
# Stops the private Dovecot started by start-dovecot.sh (PID from DIR/dovecot.pid).
#   stop-dovecot.sh [DIR]         DIR defaults to /tmp/roost-bench/dovecot
set -uo pipefail
DIR=$(realpath -m "${1:-/tmp/roost-bench/dovecot}")
PIDFILE=$DIR/dovecot.pid
[ -s "$PIDFILE" ] || { echo "dovecot not running (no $PIDFILE)"; exit 0; }
pid=$(cat "$PIDFILE")
if kill "$pid" 2>/dev/null; then
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { echo "dovecot (pid $pid) did not stop" >&2; exit 1; }
fi
rm -f "$PIDFILE"
echo "dovecot stopped (pid $pid)"
