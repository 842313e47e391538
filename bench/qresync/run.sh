#!/bin/bash
# QRESYNC reconnect of a big mailbox (100,000 messages by default), Roost and Dovecot side by
# side in one run: each server's INBOX gets the same messages dropped into its Maildir new/
# (as another delivery program would), then qresync.py caches it, makes 100 changes from a
# second client and times the first client's QRESYNC reconnect. Needs root for Dovecot (the
# bench/peers scripts). Loopback only; stops what it started.
#   COUNT [100000] messages, CHANGES [100], BENCH_DIR [/tmp/roost-qresync], SERVERS ["roost peer"]
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COUNT=${COUNT:-100000} CHANGES=${CHANGES:-100} BENCH_DIR=${BENCH_DIR:-/tmp/roost-qresync}
SERVERS=${SERVERS:-roost peer}
ROOST=$ROOT/build/roost RESULT=$BENCH_DIR/result.txt
ROOST_PID=''
say() { echo "qresync: $*" >&2; }
die() { say "error: $*"; exit 1; }
cleanup() {
	if [ -n "$ROOST_PID" ] && kill -0 "$ROOST_PID" 2>/dev/null; then
		kill -TERM "$ROOST_PID"
		wait "$ROOST_PID" 2>/dev/null
	fi
	[ -s "$BENCH_DIR/dovecot/dovecot.pid" ] && "$ROOT/bench/peers/stop-dovecot.sh" "$BENCH_DIR/dovecot" >/dev/null 2>&1
}
trap cleanup EXIT
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
: >"$RESULT"

# Messages into DIR/new, as a delivery program writes them (small, distinct).
fill_maildir() { # dir
	mkdir -p "$1/new" "$1/cur" "$1/tmp"
	python3 - "$1/new" "$COUNT" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, "%d.M%dP1.bench" % (1700000000 + i, i)), "wb") as f:
        f.write(b"From: a%d@example.test\r\nTo: user1@bench.test\r\nSubject: message %d\r\n"
                b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\nbody %d\r\n" % (i, i, i))
PY
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

for server in $SERVERS; do
	case $server in
	roost)
		make -C "$ROOT" --no-print-directory -j2 all >/dev/null || die "build failed"
		PORT=$(free_port) CONF=$BENCH_DIR/roost.conf
		printf '[server]\nhostname = bench.test\ndata_dir = %s\n[listen]\nimap = 127.0.0.1:%s\n' \
			"$BENCH_DIR/data" "$PORT" >"$CONF"
		"$ROOST" --config "$CONF" domain add bench.test >/dev/null 2>&1 || die "domain add"
		printf 'benchpass\n' | "$ROOST" --config "$CONF" user add user1@bench.test >/dev/null 2>&1 ||
			die "user add"
		setsid "$ROOST" --config "$CONF" serve </dev/null >"$BENCH_DIR/roost.out" 2>&1 &
		ROOST_PID=$!
		for _ in $(seq 100); do
			(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
			sleep 0.1
		done
		# A first login makes the account's folders; INBOX is the one with cur/ at its top.
		python3 -c "import imaplib; c=imaplib.IMAP4('127.0.0.1', $PORT); c.login('user1@bench.test','benchpass'); c.select('INBOX'); c.logout()" ||
			die "roost login failed"
		INBOX=$(dirname "$(find "$BENCH_DIR/data" -type d -name cur | awk '{ print length, $0 }' | sort -n | head -1 | cut -d' ' -f2-)")
		say "roost: filling $INBOX with $COUNT messages"
		fill_maildir "$INBOX"
		python3 "$ROOT/bench/qresync/qresync.py" 127.0.0.1 "$PORT" user1@bench.test benchpass \
			--changes "$CHANGES" --name "Roost $(git -C "$ROOT" rev-parse --short HEAD)" | tee -a "$RESULT"
		kill -TERM "$ROOST_PID"; wait "$ROOST_PID" 2>/dev/null; ROOST_PID=''
		;;
	peer)
		D=$BENCH_DIR/dovecot
		"$ROOT/bench/peers/setup-dovecot.sh" "$D" >/dev/null || die "dovecot setup failed"
		say "dovecot: filling $D/mail/user1/Maildir with $COUNT messages"
		fill_maildir "$D/mail/user1/Maildir"
		chown -R vmail:vmail "$D/mail"
		"$ROOT/bench/peers/start-dovecot.sh" "$D" >/dev/null || die "dovecot start failed"
		PORT=$(doveconf -c "$D/dovecot.conf" -h 'service/imap-login/inet_listener/imap/port')
		python3 "$ROOT/bench/qresync/qresync.py" 127.0.0.1 "$PORT" user1 pass \
			--changes "$CHANGES" --name "Dovecot $(dovecot --version | cut -d' ' -f1)" | tee -a "$RESULT"
		"$ROOT/bench/peers/stop-dovecot.sh" "$D" >/dev/null
		;;
	esac
done
say "results in $RESULT"
