#!/bin/bash
# Side-by-side benchmark: the same loadgen workloads against Roost and against Debian's Dovecot
# (IMAP, POP3, LMTP) + Postfix (SMTP, LMTP to Dovecot), all on loopback, in one run; writes a
# table of Roost/peer ratios to bench/RESULTS.md with the machine, date and git commit.
#   bench/compare.sh            (as root: it installs and starts the peers; `make bench`)
# Environment (defaults in brackets):
#   SECS [15]          seconds per throughput workload
#   IDLE_CONNS [1000]  IMAP connections held in IDLE      SAMPLES [20] push-latency samples
#   FILL [100]         messages per mailbox before POP3/IMAP runs (size mix, mean ~24 KiB)
#   SMTP_SIZE [4096]   SMTP message size                  DRAIN [90] s to wait for delivery
#   SERVERS ["peer roost"]  which columns to run          KEEP_PEERS [0] leave peers running
#   BENCH_DIR [/tmp/roost-bench]  scratch space (peer mail, Roost data, logs)
#   OUT [bench/RESULTS.md]
# A server side that does not answer gives "n/a" for that workload; the run itself goes on.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SECS=${SECS:-15} IDLE_CONNS=${IDLE_CONNS:-1000} SAMPLES=${SAMPLES:-20} FILL=${FILL:-100}
SMTP_SIZE=${SMTP_SIZE:-4096} DRAIN=${DRAIN:-90} SERVERS=${SERVERS:-"peer roost"}
KEEP_PEERS=${KEEP_PEERS:-0} BENCH_DIR=${BENCH_DIR:-/tmp/roost-bench} OUT=${OUT:-bench/RESULTS.md}
USERS=1-10            # users driven by the throughput workloads
IDLE_USERS=1-100      # users the idle connections spread over
LOADGEN=$ROOT/build/bench/loadgen
ROOST=$ROOT/build/roost
LOG=$BENCH_DIR/compare.log

# Ports: the peers keep their scripts' defaults, Roost gets its own.
PEER_SMTP=10025 PEER_IMAP=10143 PEER_POP3=10110
ROOST_SMTP=12025 ROOST_IMAP=12143 ROOST_POP3=12110

mkdir -p "$BENCH_DIR"
: > "$LOG"
say() { echo "== $*" | tee -a "$LOG"; }

[ -x "$LOADGEN" ] || make --no-print-directory bench-tools >>"$LOG" 2>&1 ||
	{ echo "compare.sh: cannot build $LOADGEN (see $LOG)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1000+ connections need descriptors

declare -A RES      # "server/workload" -> RESULT line
declare -A NOTE     # "server" -> why it is n/a
ROOST_PID=
INOTIFY_OLD=
INOTIFY_NOTE="left at $(sysctl -n fs.inotify.max_user_instances 2>/dev/null || echo '?')"

cleanup() {
	if [ -n "$ROOST_PID" ] && kill -0 "$ROOST_PID" 2>/dev/null; then
		kill "$ROOST_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$ROOST_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ "$KEEP_PEERS" != 1 ]; then
		bench/peers/stop-postfix.sh "$BENCH_DIR/postfix" >>"$LOG" 2>&1
		bench/peers/stop-dovecot.sh "$BENCH_DIR/dovecot" >>"$LOG" 2>&1
	fi
	if [ -n "$INOTIFY_OLD" ]; then
		sysctl -q -w fs.inotify.max_user_instances="$INOTIFY_OLD" >/dev/null 2>&1
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# run KEY PORT LOADGEN-ARGS...: one loadgen run; stores its RESULT line under KEY when the port
# answers and the run completed at least one operation.
run() {
	local key=$1 port=$2 out rc limit
	shift 2
	if ! port_open "$port"; then
		say "$key: port $port does not answer: n/a"
		return
	fi
	# Each loadgen bounds itself; this is the backstop against a wedged run.
	limit=$(awk -v s="$SECS" -v d="$DRAIN" -v i="$IDLE_CONNS" \
		'BEGIN { printf "%d", s + d + i / 10 + 300 }')
	echo "+ loadgen $*" >>"$LOG"
	# A 10 s reply timeout keeps a server that accepts but never answers from eating the
	# time budget (the slowest healthy reply seen is well under a second).
	out=$(timeout "$limit" "$LOADGEN" --timeout 10 "$@" 2>>"$LOG")
	rc=$?
	echo "$out" >>"$LOG"
	grep -v '^RESULT ' <<<"$out" | sed "s|^|   $key: |"
	if [ $rc -eq 0 ] && grep -q '^RESULT ' <<<"$out"; then
		RES[$key]=$(grep '^RESULT ' <<<"$out" | tail -1)
	else
		say "$key: no result (exit $rc): n/a"
	fi
}

# field KEY NAME: a value of a stored RESULT line, empty when absent.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"${RES[$1]:-}"; }

postfix_queue() {
	local q=$BENCH_DIR/postfix/spool
	find "$q/maildrop" "$q/incoming" "$q/active" "$q/deferred" -type f 2>/dev/null | wc -l
}

wait_postfix_empty() {
	for _ in $(seq $((DRAIN * 2))); do
		[ "$(postfix_queue)" -eq 0 ] && return 0
		sleep 0.5
	done
	say "postfix queue still holds $(postfix_queue) messages"
}

# ---- the peers: Dovecot + Postfix ----
start_peers() {
	if [ "$(id -u)" -ne 0 ]; then
		NOTE[peer]="not run as root (the peer scripts need root)"
		return 1
	fi
	bench/peers/stop-postfix.sh "$BENCH_DIR/postfix" >>"$LOG" 2>&1
	bench/peers/stop-dovecot.sh "$BENCH_DIR/dovecot" >>"$LOG" 2>&1
	rm -rf "$BENCH_DIR/dovecot/mail"   # a fresh store every run
	# Dovecot runs one imap process per session: allow the idle connections and spare.
	if ! MAX_CONNS=$((IDLE_CONNS + 1000 > 2000 ? IDLE_CONNS + 1000 : 2000)) \
		bench/peers/setup-dovecot.sh "$BENCH_DIR/dovecot" >>"$LOG" 2>&1 ||
	   ! bench/peers/setup-postfix.sh "$BENCH_DIR/postfix" >>"$LOG" 2>&1 ||
	   ! bench/peers/start-dovecot.sh "$BENCH_DIR/dovecot" >>"$LOG" 2>&1 ||
	   ! bench/peers/start-postfix.sh "$BENCH_DIR/postfix" >>"$LOG" 2>&1; then
		NOTE[peer]="setup or start failed (see $LOG)"
		return 1
	fi
	say "peers: dovecot $(dovecot --version | cut -d' ' -f1)," \
		"postfix $(postconf -d -h mail_version)"
}

# ---- Roost ----
roost_listening() { port_open "$ROOST_IMAP" || port_open "$ROOST_SMTP" || port_open "$ROOST_POP3"; }

start_roost() {
	local dir=$BENCH_DIR/roost conf=$BENCH_DIR/roost/roost.conf i
	[ -x "$ROOST" ] || make --no-print-directory all >>"$LOG" 2>&1
	if [ ! -x "$ROOST" ]; then
		NOTE[roost]="build/roost does not build (see $LOG)"
		return 1
	fi
	rm -rf "$dir"
	mkdir -p "$dir/data"
	cat > "$conf" <<EOF
[server]
hostname = bench.test
data_dir = $dir/data
[listen]
smtp = 127.0.0.1:$ROOST_SMTP
imap = 127.0.0.1:$ROOST_IMAP
pop3 = 127.0.0.1:$ROOST_POP3
[auth]
plaintext = always
failure_delay = 0
# every server under test gets the same short password 'pass'
min_password_length = 4
user_ip_connections = 100000
[limits]
connections_per_ip = 100000
EOF
	if ! "$ROOST" --config "$conf" domain add bench.test >>"$LOG" 2>&1; then
		NOTE[roost]="'roost domain add' failed (see $LOG)"
	else
		for i in $(seq 1 100); do
			if ! printf 'pass\n' | "$ROOST" --config "$conf" user add \
				"user$i@bench.test" >>"$LOG" 2>&1; then
				NOTE[roost]="'roost user add' failed (see $LOG)"
				break
			fi
		done
	fi
	setsid "$ROOST" --config "$conf" serve </dev/null >>"$dir/roost.out" 2>&1 &
	ROOST_PID=$!
	for _ in $(seq 50); do
		roost_listening && break
		kill -0 "$ROOST_PID" 2>/dev/null || break
		sleep 0.2
	done
	if ! kill -0 "$ROOST_PID" 2>/dev/null; then
		NOTE[roost]="${NOTE[roost]:+${NOTE[roost]}; }'roost serve' exited:"
		NOTE[roost]+=" $(tail -1 "$dir/roost.out")"
		ROOST_PID=
		return 1
	fi
	say "roost: pid $ROOST_PID"
}

# ---- workloads against one server ----
bench_server() {
	local s=$1 smtp imap pop3 pid ufmt
	if [ "$s" = peer ]; then
		smtp=$PEER_SMTP imap=$PEER_IMAP pop3=$PEER_POP3
		pid=$(cat "$BENCH_DIR/dovecot/dovecot.pid" 2>/dev/null)
		ufmt=(--user-fmt 'user%d' --domain peer.test)
	else
		smtp=$ROOST_SMTP imap=$ROOST_IMAP pop3=$ROOST_POP3 pid=$ROOST_PID
		ufmt=(--user-fmt 'user%d@bench.test' --domain bench.test)
	fi
	say "$s: filling $USERS mailboxes to $FILL messages"
	run "$s/imap-fill" "$imap" -w imap-fill -p "$imap" "${ufmt[@]}" --users "$USERS" \
		--clients 10 --fill "$FILL" --secs 120
	sleep 2
	say "$s: pop3-retr"
	run "$s/pop3-retr" "$pop3" -w pop3-retr -p "$pop3" "${ufmt[@]}" --users "$USERS" \
		--clients 4 --secs "$SECS"
	sleep 2
	say "$s: imap-mixed"
	run "$s/imap-mixed" "$imap" -w imap-mixed -p "$imap" "${ufmt[@]}" --users "$USERS" \
		--clients 10 --secs "$SECS"
	sleep 2
	say "$s: smtp-deliver"
	[ "$s" = peer ] && wait_postfix_empty
	run "$s/smtp-deliver" "$smtp" -w smtp-deliver -p "$smtp" "${ufmt[@]}" --users "$USERS" \
		--clients 20 --secs "$SECS" --size "$SMTP_SIZE" --track-imap-port "$imap" \
		--drain "$DRAIN"
	[ "$s" = peer ] && wait_postfix_empty
	sleep 2
	say "$s: imap-idle ($IDLE_CONNS connections)"
	run "$s/imap-idle" "$imap" -w imap-idle -p "$imap" "${ufmt[@]}" --users "$IDLE_USERS" \
		--clients "$IDLE_CONNS" --smtp-port "$smtp" --samples "$SAMPLES" \
		${pid:+--server-pid "$pid"} --secs $((120 + IDLE_CONNS / 10))
}

# ---- main ----
START=$(date -u '+%Y-%m-%d %H:%M UTC')
T0=$(date +%s)
if [ "$(id -u)" -eq 0 ]; then
	INOTIFY_CUR=$(sysctl -n fs.inotify.max_user_instances)
	# Dovecot watches each IDLE mailbox with one inotify instance, all under the one vmail
	# UID; past the limit it falls back to polling every 30 s. Raise it for a fair run.
	if [ "$INOTIFY_CUR" -lt $((IDLE_CONNS + 256)) ]; then
		INOTIFY_OLD=$INOTIFY_CUR
		sysctl -q -w fs.inotify.max_user_instances=$((IDLE_CONNS * 2 + 256))
		INOTIFY_NOTE="raised from $INOTIFY_CUR to $((IDLE_CONNS * 2 + 256)) for the run"
		INOTIFY_NOTE+=" (restored after)"
	fi
fi
for s in $SERVERS; do
	case $s in
	peer) start_peers && bench_server peer ;;
	roost) start_roost; bench_server roost ;;
	esac
done
ELAPSED=$(( $(date +%s) - T0 ))

# ---- RESULTS.md ----
val() {  # val KEY FIELD: the value or n/a
	local v
	v=$(field "$1" "$2")
	echo "${v:-n/a}"
}
ratio() {  # ratio ROOST PEER
	awk -v r="$1" -v p="$2" 'BEGIN {
		if (r == "n/a" || p == "n/a" || r == "" || p == "" || p + 0 == 0) print "n/a";
		else printf "%.2f", r / p }'
}
row() {  # row LABEL WORKLOAD FIELD BETTER
	local r p
	r=$(val "roost/$2" "$3") p=$(val "peer/$2" "$3")
	echo "| $1 | $r | $p | $(ratio "$r" "$p") | $4 |"
}

# ---- the store on its own: durable appends with 1 and 20 writers, a 100,000-message mailbox ----
STORE_RESULT="not run"
if [ "${STORE_BENCH:-1}" = 1 ]; then
	say "store micro-benchmark"
	if make --no-print-directory build/bench/store_bench >>"$LOG" 2>&1; then
		mkdir -p "$BENCH_DIR/store"
		STORE_RESULT=$("$ROOT/build/bench/store_bench" "$BENCH_DIR/store" 200 100000 2>&1) ||
			STORE_RESULT="failed: $STORE_RESULT"
	else
		STORE_RESULT="build failed (see $LOG)"
	fi
fi

COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src bench ':!bench/RESULTS.md' 2>/dev/null ||
	COMMIT="$COMMIT (with uncommitted changes)"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
ROOST_STATE="ran"
ROOST_ANY=
for w in pop3-retr imap-mixed smtp-deliver imap-idle; do ROOST_ANY+=${RES[roost/$w]:-}; done
[ -z "$ROOST_ANY" ] && ROOST_STATE="n/a"

{
	echo "# Benchmark results: Roost vs Dovecot + Postfix"
	echo
	echo "Written by \`bench/compare.sh\` (\`make bench\`); see bench/README.md for what each"
	echo "workload does. One run, same machine, same load generator for every server."
	echo
	if [ "$ROOST_STATE" = "n/a" ]; then
		echo "**Peers only.** Roost's protocols did not answer in this run, so its column"
		echo "is n/a: ${NOTE[roost]:-its ports did not answer}."
		echo "The peer figures are real measurements and serve as the baseline until"
		echo "Roost's SMTP, IMAP and POP3 exist."
		echo
	fi
	echo "- date: $START; run took ${ELAPSED} s"
	echo "- git commit: $COMMIT"
	echo "- machine: $(nproc) CPUs ($CPU), $MEM memory, Linux $(uname -r)"
	echo "- peers: Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1 || echo '?')," \
	     "Postfix $(postconf -d -h mail_version 2>/dev/null || echo '?')" \
	     "(Debian packages, bench/peers/)${NOTE[peer]:+; not run: ${NOTE[peer]}}"
	echo "- settings: $SECS s per throughput workload; users $USERS, $FILL messages per"
	echo "  mailbox (size mix, mean ~24 KiB); SMTP $SMTP_SIZE-byte messages, 20 clients, 10 per"
	echo "  session; IMAP mixed 10 clients; POP3 4 clients; $IDLE_CONNS idle connections over"
	echo "  users $IDLE_USERS, $SAMPLES push samples 0.5-1 s apart"
	echo "- fs.inotify.max_user_instances: $INOTIFY_NOTE"
	echo
	echo "| metric | Roost | Dovecot/Postfix | Roost / peer | better |"
	echo "| --- | --- | --- | --- | --- |"
	row "pop3-retr: messages/s" pop3-retr ops_per_s higher
	row "pop3-retr: MB/s" pop3-retr mb_per_s higher
	row "pop3-retr: RETR p99 ms" pop3-retr p99_ms lower
	row "imap-mixed: commands/s" imap-mixed ops_per_s higher
	row "imap-mixed: command p50 ms" imap-mixed p50_ms lower
	row "imap-mixed: command p99 ms" imap-mixed p99_ms lower
	row "smtp-deliver: accepted msgs/s (250 after DATA)" smtp-deliver ops_per_s higher
	row "smtp-deliver: in-mailbox msgs/s (end to end)" smtp-deliver delivered_per_s higher
	row "smtp-deliver: transaction p99 ms (MAIL..250)" smtp-deliver p99_ms lower
	row "imap-idle: RSS KiB per connection" imap-idle rss_kib_per_conn lower
	row "imap-idle: PSS KiB per connection" imap-idle pss_kib_per_conn lower
	row "imap-idle: PSS KiB added per connection" imap-idle pss_added_kib_per_conn lower
	row "imap-idle: push latency p50 ms (250 -> EXISTS)" imap-idle p50_ms lower
	row "imap-idle: push latency p99 ms" imap-idle p99_ms lower
	row "imap-idle: seconds to open all connections" imap-idle connect_s lower
	echo
	printf 'Errors per workload (Roost / peer):'
	for w in pop3-retr imap-mixed smtp-deliver imap-idle; do
		printf ' %s %s / %s;' "$w" "$(val "roost/$w" errors)" "$(val "peer/$w" errors)"
	done
	echo
	echo
	echo "Peer memory is Dovecot's whole process tree (master, imap-login, imap, auth...): the"
	echo "processes that hold IDLE clients. Push latency for the peer goes through Postfix,"
	echo "LMTP and Dovecot's IDLE, whose notifications wait a fixed 0.5 s. Roost's can be"
	echo "negative: its change feed wakes the idling session at the commit, so the EXISTS may"
	echo "reach the IMAP client before the SMTP client has read its 250."
	echo
	# Figures measured by hand (bench/README.md says how); kept across regenerations.
	if [ -f bench/RESULTS-by-hand.md ]; then
		cat bench/RESULTS-by-hand.md
		echo
	fi
	echo "## The store on its own"
	echo
	echo "\`build/bench/store_bench\` (bench/store/): 4 KiB messages appended with fsync on,"
	echo "acknowledged only when durable; 20 writers share fsyncs through group commit."
	echo
	echo '```'
	echo "$STORE_RESULT"
	echo '```'
	echo
	echo "## Raw results"
	echo
	echo '```'
	for s in peer roost; do
		for w in imap-fill pop3-retr imap-mixed smtp-deliver imap-idle; do
			echo "$s ${RES[$s/$w]:-$w: n/a}"
		done
	done
	echo '```'
} > "$OUT"
say "wrote $OUT in ${ELAPSED} s"
cat "$OUT"
