#!/usr/bin/python3
"""kill -9 loop for the mail store.

Starts append_child in "run" mode again and again, SIGKILLs it at a random moment (during
start-up recovery, or while it appends and expunges), and checks on every restart:
  - every acknowledged message is present, byte-whole (crc of the body), under its UID;
  - a message whose expunge was acknowledged is gone; unacknowledged messages may or may not
    be there but are never half-written;
  - a UID never changes content (no reuse) and UIDNEXT never decreases;
  - no zero-length or unterminated message file is visible in cur/ or new/.
Usage: kill9.py APPEND_CHILD [SECONDS] [MIN_ITERATIONS]"""
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def fail(msg):
    print("kill9: FAIL: " + msg)
    sys.exit(1)


def check_files(data):
    folder = os.path.join(data, "mail", "example.org", "durable")
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                content = f.read()
            if len(content) == 0:
                fail("zero-length file visible: " + path)
            if not content.endswith(b"END\r\n"):
                fail("half-written file visible: " + path)


def main():
    child = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    min_iter = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    data = tempfile.mkdtemp(prefix="roost-kill9-")
    acked = {}        # uid -> crc of acknowledged appends still expected
    ever = {}         # uid -> crc of every message ever seen or acknowledged
    expunged = set()  # acknowledged expunges
    maybe_gone = set()
    uidnext_max = 0
    start = time.monotonic()
    iterations = 0
    kills_in_recovery = 0
    total_acks = 0
    while True:
        # 500 kills (or more if asked), but never longer than the time bound.
        if iterations >= min_iter or time.monotonic() - start > seconds:
            break
        proc = subprocess.Popen([child, "run", data], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        early = random.random() < 0.1
        if early:
            # Kill during start-up: recovery itself must be crash-safe.
            time.sleep(random.uniform(0, 0.01))
            kills_in_recovery += 1
        else:
            line = proc.stdout.readline()
            while line and line.strip() != b"R":
                line = proc.stdout.readline()
            time.sleep(random.uniform(0, 0.06))
        proc.send_signal(signal.SIGKILL)
        out = proc.stdout.read().decode()
        proc.wait()
        listing = {}
        uidnext = None
        for ln in out.splitlines():
            parts = ln.split()
            if not parts:
                continue
            tag = parts[0]
            if tag == "L":
                uid, crc = int(parts[1]), parts[2]
                if parts[3] != "ok":
                    fail("listed message uid %d is damaged" % uid)
                listing[uid] = crc
                if uid in ever and ever[uid] != crc:
                    fail("uid %d changed content (reuse?)" % uid)
                ever[uid] = crc
            elif tag == "N":
                uidnext = int(parts[1])
                # Check the recovered state against everything acknowledged before.
                for uid, crc in acked.items():
                    if uid in maybe_gone:
                        continue
                    if listing.get(uid) != crc:
                        fail("acknowledged uid %d missing or different after restart" % uid)
                for uid in expunged:
                    if uid in listing:
                        fail("expunged uid %d came back" % uid)
                if uidnext < uidnext_max:
                    fail("UIDNEXT decreased %d -> %d" % (uidnext_max, uidnext))
                if acked and uidnext <= max(acked):
                    fail("UIDNEXT %d not above acknowledged uid %d" % (uidnext, max(acked)))
                uidnext_max = uidnext
                # Unacknowledged messages that survived are now part of the mailbox.
                for uid, crc in listing.items():
                    if uid not in acked and uid not in expunged:
                        acked[uid] = crc
                for uid in list(maybe_gone):
                    if uid not in listing:
                        acked.pop(uid, None)
                        expunged.add(uid)
                    maybe_gone.discard(uid)
            elif tag == "A":
                uid, crc = int(parts[1]), parts[2]
                if uid in ever and ever[uid] != crc:
                    fail("uid %d handed out twice" % uid)
                if uid in expunged:
                    fail("expunged uid %d handed out again" % uid)
                if uid < uidnext_max:
                    fail("new uid %d below UIDNEXT %d" % (uid, uidnext_max))
                ever[uid] = crc
                acked[uid] = crc
                uidnext_max = uid + 1
                total_acks += 1
            elif tag == "P":
                maybe_gone.add(int(parts[1]))
            elif tag == "X":
                uid = int(parts[1])
                maybe_gone.discard(uid)
                acked.pop(uid, None)
                expunged.add(uid)
        check_files(data)
        iterations += 1
    # A final clean open must show everything.
    out = subprocess.run([child, "list", data], stdout=subprocess.PIPE, check=True).stdout.decode()
    final = {}
    for ln in out.splitlines():
        p = ln.split()
        if p and p[0] == "L":
            if p[3] != "ok":
                fail("final listing: uid %s damaged" % p[1])
            final[int(p[1])] = p[2]
    for uid, crc in acked.items():
        if uid not in maybe_gone and final.get(uid) != crc:
            fail("final listing lacks acknowledged uid %d" % uid)
    shutil.rmtree(data, ignore_errors=True)
    if iterations < min_iter:
        print("kill9: WARNING: time bound hit after %d iterations (wanted %d)"
              % (iterations, min_iter))
    print("kill9: OK: %d kills (%d during recovery), %d acknowledged appends, %d expunges, "
          "final UIDNEXT %d, %.1f s" % (iterations, kills_in_recovery, total_acks, len(expunged),
                                       uidnext_max, time.monotonic() - start))


if __name__ == "__main__":
    main()
