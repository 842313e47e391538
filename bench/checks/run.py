#!/usr/bin/python3
"""SMTP inbound throughput with the delivery checks on and off, in the same run.

Starts one dnsmasq on loopback answering the sender's SPF and DMARC records (so every lookup
is local and fast, and its cost is ours, not the network's) and two roost servers: "on" with
[mailauth] verify = yes, [dmarc] reports = on (each evaluation counted in the report store)
and [spam] enabled = yes (classifier of an untrained account, anomaly rules; the FCrDNS and
DNSBL lookups are skipped for the loopback client, as for any local peer); "off" with
[mailauth] verify = no and [spam] enabled = no. Virus scanning is off in both. The same
bounded batch goes to each over the MX (CLIENTS connections in parallel, MESSAGES messages
each, every one waited for until its 250, after the fsync into the store); prints messages per
second for both and their ratio. A third server, "on-noreports", is "on" with [dmarc] reports
= off, to show what counting the evaluations for DMARC reports costs by itself.

usage: ROOST_BIN=build/roost bench/checks/run.py [--clients 4] [--messages 100] [--size 4096]
"""
import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from email.utils import formatdate

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

import conftest  # noqa: E402
from conftest import DEMO_PASSWORD, DEMO_USER, Roost, make_certificate  # noqa: E402
from test_mailauth_cli import dnsmasq, txt_args  # noqa: E402
from test_virus_clamd import Smtp, send  # noqa: E402

DEADLINE_S = 300  # the whole run stops by then, whatever is left
SENDER = "news@bench.test"
ZONE = {
    "bench.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "_dmarc.bench.test": "v=DMARC1; p=quarantine; rua=mailto:dmarc@bench.test",
}


def message(subject, body):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\n"
            b"Message-ID: <%s@bench.test>\r\n\r\n"
            % (SENDER.encode(), DEMO_USER.encode(), subject.encode(), formatdate().encode(),
               subject.replace(" ", ".").encode()) + body)


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
                [(code, lines)] = send(c, message("bench %d-%d" % (n, i), body),
                                       sender=SENDER)
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
    work = tempfile.mkdtemp(prefix="roost-bench-checks-")
    servers = []
    try:
        with dnsmasq([txt_args(n, t) for n, t in ZONE.items()]) as resolver:
            cert, key = make_certificate(work)
            results = {}
            for mode in ("off", "on", "on-noreports"):
                extra = {"auth": {"failure_refuse_after": "100000"},
                         "smtp": {"rate_per_ip": "0"},
                         "dns": {"resolvers": resolver}}
                if mode.startswith("on"):
                    extra["mailauth"] = {"verify": "yes"}
                    extra["dmarc"] = {"reports": "on" if mode == "on" else "off"}
                    extra["spam"] = {"enabled": "yes"}
                else:
                    extra["mailauth"] = {"verify": "no"}
                    extra["spam"] = {"enabled": "no"}
                r = Roost(tempfile.mkdtemp(dir=work), cert, key, extra)
                r.add_user(DEMO_USER, DEMO_PASSWORD)
                servers.append(r)
                r.start()
                run_batch(r, 1, 5, args.size)  # warm up: account open, first lookups
                results[mode] = run_batch(r, args.clients, args.messages, args.size)
                rate, elapsed, errors = results[mode]
                print("checks %-12s: %d messages in %.2f s = %.1f msg/s, %d errors"
                      % (mode, args.clients * args.messages, elapsed, rate, len(errors)))
                if errors:
                    print("  first error:", errors[0])
                if mode == "on":
                    listed = r.cli("dmarc", "report", "--day", "today", "--list").stdout
                    print("  DMARC report domains recorded:", listed.split())
            print("on/off throughput ratio: %.2f" % (results["on"][0] / results["off"][0]))
            print("on-noreports/off throughput ratio: %.2f"
                  % (results["on-noreports"][0] / results["off"][0]))
    finally:
        for r in servers:
            r.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
