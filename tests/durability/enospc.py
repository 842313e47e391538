#!/usr/bin/python3
"""ENOSPC test for the mail store.

Mounts a 4 MiB tmpfs (needs root; skipped with a message when mount is not permitted), runs
append_child "fill": 256 KiB appends until the disk is full, then expunges three messages and
appends again. Asserts: the failing append reports STORE_ERR_NO_SPACE (not a crash, not a
generic error); the expunge on the full disk works and the append after it succeeds; every
acknowledged message (minus the expunged) is listed whole, in the same process and after a
restart; no zero-length file and no leftover tmp/ file.
Usage: enospc.py APPEND_CHILD"""
import os
import subprocess
import sys
import tempfile

STORE_ERR_NO_SPACE = 3


def fail(msg):
    print("enospc: FAIL: " + msg)
    sys.exit(1)


def main():
    child = os.path.abspath(sys.argv[1])
    mnt = tempfile.mkdtemp(prefix="roost-enospc-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        print("enospc: SKIP: cannot mount a tmpfs here (%s)" % r.stderr.decode().strip())
        os.rmdir(mnt)
        return
    try:
        run(child, mnt)
    finally:
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


def run(child, mnt):
    data = os.path.join(mnt, "data")
    r = subprocess.run([child, "fill", data], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        fail("driver died: rc=%d %s" % (r.returncode, r.stderr.decode()[-500:]))
    acked, listed, failures, expunged = {}, {}, [], set()
    phase_after_expunge = False
    acked_after = 0
    for ln in r.stdout.decode().splitlines():
        p = ln.split()
        if not p:
            continue
        if p[0] == "A":
            acked[int(p[1])] = p[2]
            if phase_after_expunge:
                acked_after += 1
        elif p[0] == "F":
            failures.append(int(p[1]))
        elif p[0] == "X":
            expunged.add(int(p[1]))
            acked.pop(int(p[1]), None)
            phase_after_expunge = True
        elif p[0] == "L":
            if p[3] != "ok":
                fail("damaged message listed: " + ln)
            listed[int(p[1])] = p[2]
    if not failures:
        fail("the disk never filled up")
    if failures[0] != STORE_ERR_NO_SPACE:
        fail("full disk reported as error %d, expected NO_SPACE" % failures[0])
    if len(expunged) != 3:
        fail("expunge on a full disk did not work (%d of 3)" % len(expunged))
    if acked_after != 1:
        fail("append after freeing space failed")
    if listed != acked:
        fail("listing %s != acknowledged %s" % (sorted(listed), sorted(acked)))
    folder = os.path.join(data, "mail", "example.org", "durable")
    for sub in ("cur", "new", "tmp"):
        for name in os.listdir(os.path.join(folder, sub)):
            path = os.path.join(folder, sub, name)
            if sub == "tmp":
                fail("leftover tmp file " + path)
            if os.path.getsize(path) == 0:
                fail("zero-length file " + path)
    r2 = subprocess.run([child, "list", data], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    relisted = {}
    for ln in r2.stdout.decode().splitlines():
        p = ln.split()
        if p and p[0] == "L" and p[3] == "ok":
            relisted[int(p[1])] = p[2]
    if relisted != acked:
        fail("after restart %s != acknowledged %s" % (sorted(relisted), sorted(acked)))
    print("enospc: OK: %d messages stored before NO_SPACE, expunge and re-append on a full "
          "disk worked" % (len(acked) + len(expunged) - 1))


if __name__ == "__main__":
    main()
