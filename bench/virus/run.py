#!/usr/bin/python3
"""SMTP end-to-end throughput with virus scanning on and off, in the same run.

Starts one clamd (the tests' one-signature database: no public databases) and two roost
servers that differ only in [virus] clamd, then sends the same bounded batch of messages to
each over the MX (CLIENTS connections in parallel, MESSAGES messages each, every one waited
for until its 250) and prints messages per second for both and their ratio. Every message is
fsync'd into the store before its 250, as always.

usage: ROOST_BIN=build/roost bench/virus/run.py [--clients 4] [--messages 100] [--size 4096]
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

import conftest  # noqa: E402
from conftest import DEMO_PASSWORD, DEMO_USER, Roost, make_certificate  # noqa: E402
from test_virus_clamd import Clamd, Smtp, message, send  # noqa: E402

DEADLINE_S = 300  # the whole run stops by then, whatever is left


def run_batch(server, clients, messages, size):
    body = (b"x" * 70 + b"\r\n") * max(1, size // 72)
    errors = []
    stop_at = time.monotonic() + DEADLINE_S / 2

    def worker(n):
        c = Smtp(server)
        try:
            for i in range(messages):
                if time.monotonic() > stop_at:
                    errors.append("deadline")
                    return
                [(code, lines)] = send(c, message("bench %d-%d" % (n, i), body=body))
                if code != 250:
                    errors.append(lines[0])
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    return clients * messages / elapsed, elapsed, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--messages", type=int, default=100)
    ap.add_argument("--size", type=int, default=4096)
    args = ap.parse_args()
    conftest.ROOST_BIN = os.path.abspath(os.environ.get("ROOST_BIN", "build/roost"))
    work = tempfile.mkdtemp(prefix="roost-bench-virus-")
    clamd = Clamd(work)
    servers = []
    try:
        cert, key = make_certificate(work)
        results = {}
        for mode in ("off", "on"):
            extra = {"auth": {"failure_refuse_after": "100000"},
                     "smtp": {"rate_per_ip": "0"}}
            if mode == "on":
                extra["virus"] = {"clamd": clamd.address}
            r = Roost(tempfile.mkdtemp(dir=work), cert, key, extra)
            r.add_user(DEMO_USER, DEMO_PASSWORD)
            servers.append(r)
            r.start()
            run_batch(r, 1, 5, args.size)  # warm up: account open, first scan
            results[mode] = run_batch(r, args.clients, args.messages, args.size)
            rate, elapsed, errors = results[mode]
            print("scanning %-3s: %d messages in %.2f s = %.1f msg/s, %d errors"
                  % (mode, args.clients * args.messages, elapsed, rate, len(errors)))
            if errors:
                print("  first error:", errors[0])
        print("on/off throughput ratio: %.2f" % (results["on"][0] / results["off"][0]))
    finally:
        for r in servers:
            r.stop()
        clamd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
