#!/usr/bin/python3
"""Server CPU time per SORT/THREAD command, for a mailbox bench/sort_thread.py filled.

On a machine shared with other work the wall-clock medians of sort_thread.py move by a factor
of two from one minute to the next; the CPU time the serving process spends on a command moves
much less. This logs in to a server that is already running (Roost: `roost serve` on the
workdir's config; Dovecot: the bench/peers instance), selects INBOX read-only and, for each of
sort_thread.py's commands, runs it once (the "first" wall time) and then --runs times, and
prints the median wall time and the mean CPU seconds per command: the sum over the threads
of the serving process of the run time in /proc/PID/task/*/schedstat (Roost: PID given with
--pid; Dovecot: every `imap` child of the master PID given with --pid). Loopback only.

    bench/sort_thread_cpu.py --port 10143 --user user1 --pid "$(cat DIR/dovecot.pid)" --dovecot
"""
import argparse
import imaplib
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sort_thread import COMMANDS  # noqa: E402


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
    return total / 1e9


def imap_children(master):
    out = subprocess.run(["pgrep", "-P", str(master), "-x", "imap"], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="user1@bench.test")
    ap.add_argument("--password", default="pass")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--dovecot", action="store_true", help="--pid is Dovecot's master")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if not 1 <= args.runs <= 20:
        sys.exit("--runs 1..20")
    c = imaplib.IMAP4("127.0.0.1", args.port, timeout=600)
    c.login(args.user, args.password)
    c.select("INBOX", readonly=True)
    pids = imap_children(args.pid) if args.dovecot else [args.pid]
    print("| command | first wall | median wall | CPU per command |")
    print("| --- | --- | --- | --- |")
    for label, cmd in COMMANDS:
        walls, start_cpu = [], 0.0
        for r in range(args.runs + 1):
            if r == 1:
                start_cpu = cpu_seconds(pids)
            t = time.monotonic()
            typ, data = c._simple_command(*cmd)
            walls.append(time.monotonic() - t)
            assert typ == "OK", (label, data)
            c._untagged_response(typ, data, cmd[0])
        cpu = (cpu_seconds(pids) - start_cpu) / args.runs
        print("| %s | %.3f | %.3f | %.3f |" % (label, walls[0], statistics.median(walls[1:]), cpu))
    c.logout()


if __name__ == "__main__":
    main()
