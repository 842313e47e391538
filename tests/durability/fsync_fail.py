#!/usr/bin/python3
"""fsync-failure injection for the mail store.

For N = 1, 2, ... the append driver runs under the fsync_fail.so shim, whose Nth fsync or
fdatasync fails with EIO (once, then also as a sticky failure). Asserts for every N:
  - the driver keeps running (exit status 0) and the failure reaches it as an error;
  - exactly the acknowledged messages are listed, in the same process and after a restart
    without the shim, each whole; nothing unacknowledged is visible;
  - no zero-length file and no leftover tmp/ file.
Usage: fsync_fail.py APPEND_CHILD FSYNC_FAIL_SO [MAX_N]"""
import os
import shutil
import subprocess
import sys
import tempfile

COUNT = 8


def fail(msg):
    print("fsync_fail: FAIL: " + msg)
    sys.exit(1)


def parse(out):
    acked, listed, failures = {}, {}, 0
    for ln in out.splitlines():
        p = ln.split()
        if not p:
            continue
        if p[0] == "A":
            acked[int(p[1])] = p[2]
        elif p[0] in ("F", "O"):
            failures += 1
        elif p[0] == "L":
            if p[3] != "ok":
                fail("damaged message listed: " + ln)
            listed[int(p[1])] = p[2]
    return acked, listed, failures


def check_dirs(data):
    folder = os.path.join(data, "mail", "example.org", "durable")
    for sub in ("cur", "new", "tmp"):
        d = os.path.join(folder, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            path = os.path.join(d, name)
            if sub == "tmp":
                fail("leftover tmp file " + path)
            if os.path.getsize(path) == 0:
                fail("zero-length file " + path)


def main():
    child, shim = sys.argv[1], os.path.abspath(sys.argv[2])
    max_n = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    injected = 0
    for sticky in ("0", "1"):
        for n in range(1, max_n + 1):
            data = tempfile.mkdtemp(prefix="roost-fsync-")
            env = dict(os.environ, LD_PRELOAD=shim, FSYNC_FAIL_AT=str(n), FSYNC_FAIL_STICKY=sticky)
            r = subprocess.run([child, "fsync", data, str(COUNT)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if r.returncode != 0:
                fail("driver died (N=%d sticky=%s): rc=%d %s" % (n, sticky, r.returncode,
                                                                 r.stderr.decode()[-300:]))
            acked, listed, failures = parse(r.stdout.decode())
            if failures > 0:
                injected += 1
            if sticky == "0" and failures == 0 and len(acked) != COUNT:
                fail("N=%d: appends missing without an error" % n)
            # With a sticky failure the final listing may be impossible; otherwise it must
            # match the acknowledgements exactly.
            if listed or sticky == "0":
                if listed != acked:
                    fail("N=%d sticky=%s: listing %s != acknowledged %s"
                         % (n, sticky, sorted(listed), sorted(acked)))
            # After a restart without the shim: the same set, nothing half-done.
            r2 = subprocess.run([child, "list", data], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
            _, relisted, _ = parse(r2.stdout.decode())
            if relisted != acked:
                fail("N=%d sticky=%s: after restart %s != acknowledged %s"
                     % (n, sticky, sorted(relisted), sorted(acked)))
            check_dirs(data)
            shutil.rmtree(data, ignore_errors=True)
    if injected == 0:
        fail("no failure ever reached the driver: is the shim loaded?")
    print("fsync_fail: OK: %d runs, %d saw an injected EIO as an error" % (2 * max_n, injected))


if __name__ == "__main__":
    main()
