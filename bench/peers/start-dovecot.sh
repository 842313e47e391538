#!/bin/bash
# Starts the private Dovecot made by setup-dovecot.sh in the foreground mode (dovecot -F),
# detached, and records its PID in DIR/dovecot.pid. Waits until IMAP answers.
#   start-dovecot.sh [DIR]        DIR defaults to /tmp/roost-bench/dovecot
#   CONF=FILE start-dovecot.sh    runs a variant config instead of DIR/dovecot.conf (one that
#                                 does "!include DIR/dovecot.conf" and overrides settings)
set -euo pipefail
DIR=$(realpath -m "${1:-/tmp/roost-bench/dovecot}")
PIDFILE=$DIR/dovecot.pid CONF=${CONF:-$DIR/dovecot.conf}   # CONF: run a variant config
if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
  echo "dovecot already running (pid $(cat "$PIDFILE"))"; exit 0
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1000+ clients need many fds
setsid dovecot -F -c "$CONF" </dev/null >>"$DIR/dovecot.out" 2>&1 &
echo $! > "$PIDFILE"
port=$(doveconf -c "$CONF" -h 'service/imap-login/inet_listener/imap/port')
for _ in $(seq 100); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    echo "dovecot started (pid $(cat "$PIDFILE"), imap port $port)"; exit 0
  fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
  sleep 0.1
done
echo "dovecot failed to start; see $DIR/dovecot.out and $DIR/dovecot.log" >&2; exit 1
