#!/usr/bin/python3
"""SORT and THREAD on one big mailbox, Roost against Dovecot in the same run.

Writes a deterministic mailbox of --count messages (threads of replies with References,
"Re:"/"Fwd:" subjects, varied senders and dates), imports it into a fresh Roost (roost import)
and copies it into the Maildir of user1 of the private Dovecot that bench/peers/setup-dovecot.sh
made (its IMAP port given with --dovecot-port; the script starts and stops nothing of
Dovecot's). Then, against each server, times every command --runs times after one warm-up run
(Dovecot builds its sort and thread caches on first use, Roost computed its keys at save time)
and prints one line per command: the median seconds of each and the ratio. Loopback only.

    bench/sort_thread.py --count 100000 --dovecot-dir /tmp/roost-bench/dovecot --dovecot-port 10143
"""
import argparse
import imaplib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ("SORT (DATE)", ("SORT", "(DATE)", "UTF-8", "ALL")),
    ("SORT (SUBJECT)", ("SORT", "(SUBJECT)", "UTF-8", "ALL")),
    ("SORT (REVERSE ARRIVAL)", ("SORT", "(REVERSE ARRIVAL)", "UTF-8", "ALL")),
    ("SORT (FROM DATE)", ("SORT", "(FROM DATE)", "UTF-8", "ALL")),
    ("SORT (DISPLAYFROM)", ("SORT", "(DISPLAYFROM)", "UTF-8", "ALL")),
    ("SORT (SIZE) UNSEEN", ("SORT", "(SIZE)", "UTF-8", "UNSEEN")),
    ("THREAD ORDEREDSUBJECT", ("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")),
    ("THREAD REFERENCES", ("THREAD", "REFERENCES", "UTF-8", "ALL")),
]


def messages(count, seed=1):
    rnd = random.Random(seed)
    topics = ["Topic %d about %s" % (i, rnd.choice(["budget", "lunch", "release", "the build",
                                                    "holidays", "a bug"]))
              for i in range(max(1, count // 20))]
    threads = {}  # topic -> ids of its messages
    base = 1700000000
    for i in range(count):
        t = rnd.randrange(len(topics))
        ids = threads.setdefault(t, [])
        k = rnd.randrange(200)
        name = "Person %d" % k
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(base + i * 60 +
                                                                       rnd.randrange(3600)))
        h = ["From: %s <p%d@example.test>" % (name, k),
             "To: list%d@example.test" % (t % 50),
             "Date: " + date,
             "Message-ID: <%d@bench.test>" % i]
        if ids and rnd.random() < 0.8:
            parent = rnd.randrange(len(ids))
            h.append("Subject: %s%s" % (rnd.choice(["Re: ", "RE: ", "Re: [list] ", "Fwd: "]),
                                        topics[t]))
            h.append("In-Reply-To: <%d@bench.test>" % ids[parent])
            h.append("References: " + " ".join("<%d@bench.test>" % x
                                               for x in ids[max(0, parent - 10):parent + 1]))
        else:
            h.append("Subject: " + topics[t])
        body = "Line of text %d.\n" % i * rnd.randrange(1, 40)
        ids.append(i)
        yield i, ("\n".join(h) + "\n\n" + body).encode()


def write_sources(count, mbox_path, maildir):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    with open(mbox_path, "wb") as mbox:
        for i, data in messages(count):
            mbox.write(b"From bench@example.test Mon Jan  1 00:00:00 2024\n")
            mbox.write(data.replace(b"\nFrom ", b"\n>From ") + b"\n")
            name = "%d.M%dP1.bench,S=%d:2," % (1700000000 + i, i, len(data))
            with open(os.path.join(maildir, "cur", name), "wb") as f:
                f.write(data)


def wait_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("nothing answers on port %d" % port)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_roost(binary, workdir, mbox_path, reuse=False):
    conf = os.path.join(workdir, "roost.conf")
    port = free_port()
    if reuse:  # the mailbox of an earlier run: only the port changes
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(re.sub(r"imap = 127\.0\.0\.1:\d+", "imap = 127.0.0.1:%d" % port, text))
        return serve_roost(binary, workdir, conf, port)
    with open(conf, "w") as f:
        f.write("[server]\nhostname = bench.test\ndata_dir = %s\n[listen]\nimap = 127.0.0.1:%d\n"
                "[auth]\nplaintext = always\nfailure_delay = 0\nmin_password_length = 4\n"
                % (os.path.join(workdir, "data"), port))
    os.makedirs(os.path.join(workdir, "data"), exist_ok=True)
    run = lambda *a, **kw: subprocess.run([binary, "--config", conf] + list(a), check=True,
                                          capture_output=True, text=True, timeout=3600, **kw)
    run("domain", "add", "bench.test")
    run("user", "add", "user1@bench.test", input="pass\n")
    t = time.monotonic()
    print(run("import", "user1@bench.test", mbox_path).stdout.strip(),
          "in %.1f s" % (time.monotonic() - t), flush=True)
    return serve_roost(binary, workdir, conf, port)


def serve_roost(binary, workdir, conf, port):
    log = open(os.path.join(workdir, "roost.log"), "w")
    proc = subprocess.Popen([binary, "--config", conf, "serve"], stdout=log,
                            stderr=subprocess.STDOUT)
    wait_port(port)
    return proc, port


def time_commands(port, user, runs):
    c = imaplib.IMAP4("127.0.0.1", port, timeout=600)
    c.login(user, "pass")
    t = time.monotonic()
    typ, data = c.select("INBOX", readonly=True)
    select_s = time.monotonic() - t
    assert typ == "OK", data
    out = {"SELECT (first)": [select_s], "messages": int(data[0])}
    for label, args in COMMANDS:
        times, answer = [], None
        for r in range(runs + 1):
            t = time.monotonic()
            typ, data = c._simple_command(*args)
            elapsed = time.monotonic() - t
            assert typ == "OK", (label, data)
            _, data = c._untagged_response(typ, data, args[0])
            answer = data[0]
            if r == 0:
                out[label + " (first)"] = [elapsed]
            else:
                times.append(elapsed)
        out[label] = times
        out[label + " answer"] = answer
    c.logout()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/roost-bench/sort-thread")
    ap.add_argument("--roost", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                     "roost"))
    ap.add_argument("--dovecot-dir", default="/tmp/roost-bench/dovecot")
    ap.add_argument("--dovecot-port", type=int, default=10143)
    ap.add_argument("--reuse", action="store_true",
                    help="time the mailboxes an earlier run left in --workdir and --dovecot-dir")
    args = ap.parse_args()
    if not 1 <= args.count <= 1000000 or not 1 <= args.runs <= 20:
        sys.exit("--count 1..1000000, --runs 1..20")
    if args.reuse:
        run_timings(args, *start_roost(os.path.abspath(args.roost), args.workdir, None, True))
        return
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    mbox = os.path.join(args.workdir, "bench.mbox")
    maildir = os.path.join(args.dovecot_dir, "mail", "user1", "Maildir")
    shutil.rmtree(maildir, ignore_errors=True)
    t = time.monotonic()
    write_sources(args.count, mbox, maildir)
    subprocess.run(["chown", "-R", "vmail:vmail", os.path.join(args.dovecot_dir, "mail")],
                   check=True)
    print("wrote %d messages in %.1f s" % (args.count, time.monotonic() - t), flush=True)
    run_timings(args, *start_roost(os.path.abspath(args.roost), args.workdir, mbox))


def run_timings(args, proc, port):
    try:
        roost = time_commands(port, "user1@bench.test", args.runs)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    peer = time_commands(args.dovecot_port, "user1", args.runs)
    print("messages: roost %d, dovecot %d; median of %d runs after one warm-up, seconds"
          % (roost["messages"], peer["messages"], args.runs))
    print("| command | Roost | Dovecot | Roost / Dovecot time | same answer |")
    print("| --- | --- | --- | --- | --- |")
    for label in ["SELECT (first)"] + [l for l, _ in COMMANDS] + \
            [l + " (first)" for l, _ in COMMANDS]:
        a, b = statistics.median(roost[label]), statistics.median(peer[label])
        base = label.replace(" (first)", "")
        same = "" if label.startswith("SELECT") else \
            ("yes" if roost.get(base + " answer") == peer.get(base + " answer") else "no")
        print("| %s | %.3f | %.3f | %.2f | %s |" % (label, a, b, a / b if b else 0, same))


if __name__ == "__main__":
    main()
