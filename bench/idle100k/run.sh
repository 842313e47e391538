#!/bin/bash
# Roost holding many idle IMAP connections (100,000 by default) on this machine: raises the fd
# limits of itself and the server, spreads the clients over many 127.1.x.y source addresses,
# starts a private `roost serve`, and runs `loadgen -w imap-idle` against it. Reports the
# server's PSS added per connection, push latency on the idlers of each delivered message, and
# fresh LOGINs timed while the others idle. Bounded by LIMIT_SECS; puts back every sysctl it
# changed and stops every process it started. Needs root for the limits and sysctls.
#
# Settings (environment), defaults in brackets:
#   CONNS [100000]     idle connections (clamped to what the fd limit allows, see below)
#   USERS [200]        accounts the connections spread over, user1..userN@bench.test
#   SAMPLES [10]       messages delivered over SMTP, each to the next user (push latency)
#   LOGINS [100]       fresh sequential logins timed while the others idle
#   PER_ADDR [25]      idle connections per source address (server defaults: 100 per address,
#                      30 per user and address)
#   FD_LIMIT [1048576] RLIMIT_NOFILE asked for, soft and hard
#   LIMIT_SECS [600]   ceiling of the whole run
#   BENCH_DIR [/tmp/roost-idle100k]  scratch space: data, config, logs, result.txt
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONNS=${CONNS:-100000} USERS=${USERS:-200} SAMPLES=${SAMPLES:-10} LOGINS=${LOGINS:-100}
PER_ADDR=${PER_ADDR:-25} FD_LIMIT=${FD_LIMIT:-1048576} LIMIT_SECS=${LIMIT_SECS:-600}
BENCH_DIR=${BENCH_DIR:-/tmp/roost-idle100k}
ROOST=$ROOT/build/roost LOADGEN=$ROOT/build/bench/loadgen
# Descriptors the server needs besides its connections: about 22 of its own (listeners, loops,
# pool, logs) and about 3 per open account (the SQLite index, its WAL and shared memory).
FD_RESERVE=$((512 + 4 * USERS))
LOG=$BENCH_DIR/run.log RESULT=$BENCH_DIR/result.txt
T_START=$(date +%s)
ROOST_PID='' LOADGEN_PID='' SAMPLER_PID=''
declare -a RESTORE=()   # "key=old value" of every sysctl changed
NOTES=()

say() { echo "idle100k: $*" | tee -a "$LOG" >&2; }
die() { say "error: $*"; exit 1; }

cleanup() {
	local i
	[ -n "$SAMPLER_PID" ] && kill "$SAMPLER_PID" 2>/dev/null
	[ -n "$LOADGEN_PID" ] && kill "$LOADGEN_PID" 2>/dev/null
	if [ -n "$ROOST_PID" ] && kill -0 "$ROOST_PID" 2>/dev/null; then
		kill -TERM "$ROOST_PID" 2>/dev/null
		for i in $(seq 150); do
			kill -0 "$ROOST_PID" 2>/dev/null || break
			sleep 0.2
		done
		kill -0 "$ROOST_PID" 2>/dev/null && kill -KILL "$ROOST_PID" 2>/dev/null
	fi
	for kv in "${RESTORE[@]}"; do
		sysctl -q -w "$kv" >/dev/null 2>&1 && say "restored $kv"
	done
	RESTORE=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/data"
: >"$LOG"
[ "$(id -u)" -eq 0 ] || say "not root: limits and sysctls stay as they are"

# ---- build ----
say "building roost and loadgen (make all bench-tools)"
make -C "$ROOT" --no-print-directory -j2 all bench-tools >>"$LOG" 2>&1 ||
	die "build failed, see $LOG"

# ---- sysctls, raised only for this run ----
raise_sysctl() { # key minimum
	local key=$1 want=$2 cur
	cur=$(sysctl -n "$key" 2>/dev/null) || return 0
	[ "$cur" -ge "$want" ] 2>/dev/null && return 0
	if sysctl -q -w "$key=$want" >/dev/null 2>&1; then
		RESTORE+=("$key=$cur")
		say "raised $key from $cur to $want for the run"
	else
		NOTES+=("$key is $cur and could not be raised to $want")
	fi
}

# Every connection takes two descriptors on this machine (client and server side).
raise_sysctl fs.nr_open "$FD_LIMIT"
raise_sysctl fs.file-max $((2 * CONNS + 65536))
raise_sysctl net.core.somaxconn 4096
raise_sysctl net.ipv4.tcp_max_syn_backlog 4096
# Loopback connections are tracked when conntrack is loaded in this namespace.
[ -e /proc/sys/net/netfilter/nf_conntrack_max ] &&
	raise_sysctl net.netfilter.nf_conntrack_max $((CONNS + 65536))

# ---- descriptors: this shell's limits are inherited by the server and loadgen ----
ulimit -Hn "$FD_LIMIT" 2>/dev/null
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
FD_HAVE=$(ulimit -Sn)
if [ "$FD_HAVE" != unlimited ] && [ "$FD_HAVE" -lt $((CONNS + FD_RESERVE)) ]; then
	WANTED=$CONNS
	CONNS=$((FD_HAVE - FD_RESERVE))
	[ "$CONNS" -ge 100 ] || die "RLIMIT_NOFILE is $FD_HAVE: too low for this benchmark"
	NOTES+=("RLIMIT_NOFILE could not be raised above $FD_HAVE (hard limit; raising it needs CAP_SYS_RESOURCE): $CONNS idle connections instead of $WANTED")
	say "${NOTES[-1]}"
fi
ADDRS=$(((CONNS + PER_ADDR - 1) / PER_ADDR))
say "fd limit $FD_HAVE; $CONNS connections from $ADDRS source addresses, $USERS users"

# ---- the server ----
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
IMAP_PORT=$(free_port) SMTP_PORT=$(free_port)
while [ "$SMTP_PORT" = "$IMAP_PORT" ]; do SMTP_PORT=$(free_port); done
CONF=$BENCH_DIR/roost.conf
cat >"$CONF" <<EOF
[server]
hostname = bench.test
data_dir = $BENCH_DIR/data
[listen]
imap = 127.0.0.1:$IMAP_PORT
smtp = 127.0.0.1:$SMTP_PORT
EOF
# A global connection cap, where this version has one, must not be what the run measures.
if "$ROOST" --config "$CONF" check 2>/dev/null | grep -q 'max_connections'; then
	printf '[limits]\nmax_connections = %d\n' $((CONNS + 1000)) >>"$CONF"
	NOTES+=("[limits] max_connections set to $((CONNS + 1000))")
fi
"$ROOST" --config "$CONF" domain add bench.test >>"$LOG" 2>&1 || die "domain add failed"
say "creating $USERS users"
for i in $(seq 1 "$USERS"); do
	printf 'pass\n' | "$ROOST" --config "$CONF" user add "user$i@bench.test" >>"$LOG" 2>&1 ||
		die "user add failed, see $LOG"
done
setsid "$ROOST" --config "$CONF" serve </dev/null >>"$BENCH_DIR/roost.out" 2>&1 &
ROOST_PID=$!
for _ in $(seq 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$IMAP_PORT") 2>/dev/null && break
	kill -0 "$ROOST_PID" 2>/dev/null || die "roost serve exited: $(tail -1 "$BENCH_DIR/roost.out")"
	sleep 0.1
done
SERVER_FDS_LIMIT=$(awk '/Max open files/ {print $4}' "/proc/$ROOST_PID/limits")
say "roost serve: pid $ROOST_PID, imap $IMAP_PORT, smtp $SMTP_PORT, fd limit $SERVER_FDS_LIMIT"

# ---- kernel side, sampled while the run goes on (approximate: the machine is shared) ----
kernel_sample() {
	local fds slab tcp
	while kill -0 "$ROOST_PID" 2>/dev/null; do
		# A server out of descriptors logs every failed accept (a busy loop): keep the
		# disk from filling up.
		if [ "$(stat -c %s "$BENCH_DIR/roost.out" 2>/dev/null || echo 0)" -gt $((256 << 20)) ]; then
			tail -c 65536 "$BENCH_DIR/roost.out" >"$BENCH_DIR/roost.out.tail"
			: >"$BENCH_DIR/roost.out"
			echo "truncated roost.out past 256 MiB (see roost.out.tail)" >>"$LOG"
		fi
		fds=$(ls "/proc/$ROOST_PID/fd" 2>/dev/null | wc -l)
		slab=$(awk '/^Slab:/ {print $2}' /proc/meminfo)
		tcp=$(awk '/^TCP:/ {print $3, $11}' /proc/net/sockstat) # inuse, mem (pages)
		echo "$(date +%s) $fds $slab $tcp"
		sleep 2
	done
}
kernel_sample >"$BENCH_DIR/kernel.samples" 2>/dev/null &
SAMPLER_PID=$!
SLAB_BEFORE=$(awk '/^Slab:/ {print $2}' /proc/meminfo)

# ---- the load ----
ELAPSED=$(($(date +%s) - T_START))
LG_SECS=$((LIMIT_SECS - ELAPSED - 30))
[ "$LG_SECS" -ge 60 ] || die "no time left for the run (LIMIT_SECS=$LIMIT_SECS)"
say "loadgen: up to $LG_SECS s"
"$LOADGEN" -w imap-idle -p "$IMAP_PORT" --smtp-port "$SMTP_PORT" --clients "$CONNS" \
	--users "1-$USERS" --user-fmt 'user%d@bench.test' --src-addrs "$ADDRS" \
	--push-fanout --samples "$SAMPLES" --logins "$LOGINS" --server-pid "$ROOST_PID" \
	--warm --size 4096 --parallel 100 --settle 5 --timeout 120 --secs "$LG_SECS" \
	>"$BENCH_DIR/loadgen.out" 2>>"$LOG" &
LOADGEN_PID=$!
wait "$LOADGEN_PID"
LG_STATUS=$?
LOADGEN_PID=

# ---- report ----
PEAK=$(sort -k2,2n "$BENCH_DIR/kernel.samples" | tail -1)
read -r _ PEAK_FDS PEAK_SLAB PEAK_TCP_INUSE PEAK_TCP_PAGES <<<"$PEAK"
ALIVE=yes
kill -0 "$ROOST_PID" 2>/dev/null || ALIVE="no (see $BENCH_DIR/roost.out)"
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD)"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "asked: $CONNS connections, $USERS users, $ADDRS source addresses (127.1.x.y)," \
		"$SAMPLES push messages, $LOGINS fresh logins; server fd limit $SERVER_FDS_LIMIT"
	grep -v '^RESULT' "$BENCH_DIR/loadgen.out"
	grep '^RESULT' "$BENCH_DIR/loadgen.out"
	echo "kernel at the peak: server fds ${PEAK_FDS:-?}, TCP sockets in use ${PEAK_TCP_INUSE:-?}," \
		"TCP buffer pages ${PEAK_TCP_PAGES:-?}, Slab ${SLAB_BEFORE:-?} -> ${PEAK_SLAB:-?} KiB" \
		"(whole machine)"
	echo "server still running after the run: $ALIVE"
	for n in "${NOTES[@]}"; do echo "note: $n"; done
} | tee "$RESULT"
exit "$LG_STATUS"
