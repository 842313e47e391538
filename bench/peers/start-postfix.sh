#!/bin/bash
# Starts the private Postfix made by setup-postfix.sh (postfix -c DIR/conf start) and waits until
# SMTP answers. Its master writes its PID to DIR/spool/pid/master.pid.
#   start-postfix.sh [DIR]        DIR defaults to /tmp/roost-bench/postfix
set -euo pipefail
DIR=$(realpath -m "${1:-/tmp/roost-bench/postfix}")
PIDFILE=$DIR/spool/pid/master.pid
if [ -s "$PIDFILE" ] && kill -0 "$(tr -d ' ' < "$PIDFILE")" 2>/dev/null; then
  echo "postfix already running (pid $(tr -d ' ' < "$PIDFILE"))"; exit 0
fi
postfix -c "$DIR/conf" start
port=$(awk '$2 == "inet" {n = split($1, a, ":"); print a[n]; exit}' "$DIR/conf/master.cf")
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "postfix started (pid $(tr -d ' ' < "$PIDFILE"), smtp port $port)"; exit 0
  fi
  sleep 0.1
done
echo "postfix failed to start; see $DIR/postfix.log" >&2; exit 1
