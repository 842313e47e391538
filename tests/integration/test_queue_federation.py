"""Outbound delivery between two Roost instances on 127.0.0.2 (domain a.test) and 127.0.0.3
(domain b.test), with a dnsmasq started on a loopback port publishing their MX records: the
durable queue, MX lookup, retries after an outage, bounces, kill -9 of the sender mid-run."""
import glob
import os
import random
import shutil
import signal
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import LISTENERS, client_tls_context, free_port, wait_for_port
from test_dkim_cli import (ED25519_SPKI_PREFIX, canon_body, header_data, openssl_verify, pem,
                           records, split_message, tags)

ALICE = ("alice@a.test", "alice password")
BOB = ("bob@b.test", "bob password")

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None and
                                not os.path.exists("/usr/sbin/dnsmasq"),
                                reason="dnsmasq is not installed")


def free_udp_port():
    """Below the ephemeral range, like conftest.free_port (resolver queries use that range)."""
    import random
    for _ in range(1000):
        port = random.randint(20000, 32767)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free UDP port")


def dns_answers(port):
    """True once something answers a DNS query on 127.0.0.1:port."""
    query = bytes.fromhex("1234010000010000000000000162047465737400000f0001")  # MX b.test
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(query, ("127.0.0.1", port))
            return s.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False


@pytest.fixture
def dns():
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    for _ in range(5):  # a port taken between choosing and binding: try another
        port = free_udp_port()
        proc = subprocess.Popen(
            [binary, "--no-daemon", "--port=%d" % port, "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--user=root", "--pid-file", "--local=/test/",
             "--mx-host=a.test,mx.a.test,10", "--host-record=mx.a.test,127.0.0.2",
             "--mx-host=b.test,mx.b.test,10", "--host-record=mx.b.test,127.0.0.3",
             "--mx-host=dead.test,mx.dead.test,10", "--host-record=mx.dead.test,127.0.0.4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_until(lambda: proc.poll() is not None or dns_answers(port), 5) and \
                proc.poll() is None:
            break
        proc.kill()
        proc.wait(5)
    else:
        pytest.fail("dnsmasq did not start")
    yield "127.0.0.1:%d" % port
    proc.terminate()
    proc.wait(5)


def shared_mx_port():
    """A port free on both 127.0.0.2 and 127.0.0.3: both servers listen for SMTP on it."""
    for _ in range(50):
        port = free_port("127.0.0.2")
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.3", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no shared port")


def make_peer(make_roost, addr, domain, user, dns_addr, mx_port, start=True):
    ports = {name: free_port(addr) for name in LISTENERS}
    ports["smtp"] = mx_port
    return make_roost(
        extra={"server": {"hostname": "mx." + domain},
               "dns": {"resolvers": dns_addr},
               # retries every 1 s (60 s / 60), warnings and expiry stay far away
               "queue": {"smtp_port": str(mx_port), "retry_first": "60", "retry_max": "120",
                         "time_scale": "60", "threads": "4"},
               "auth": {"user_ip_connections": "1000"},
               # the kill -9 run submits 1,000 messages as one user within seconds
               "smtp": {"rate_per_user": "0"}},
        users=(user,), start=start, addr=addr, ports=ports)


def inbox_files(r, address):
    local, domain = address.split("@")
    return sorted(glob.glob(os.path.join(r.data_dir, "mail", domain, local, "cur", "*")) +
                  glob.glob(os.path.join(r.data_dir, "mail", domain, local, "new", "*")))


def wait_until(predicate, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def queue_count(r):
    out = r.cli("queue", "list").stdout
    return int(out.strip().splitlines()[-1].split()[0])


def submit(r, sender, password, rcpts, subject, body="hello\r\n"):
    s = smtplib.SMTP(r.addr, r.ports["submission"], timeout=30)
    s.starttls(context=client_tls_context())
    s.login(sender, password)
    msg = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@a.test>\r\n\r\n%s" %
           (sender, ", ".join("<%s>" % x for x in rcpts), subject, subject, body))
    refused = s.sendmail(sender, rcpts, msg.encode())
    s.quit()
    return refused


def verify_dkim(signed, sender_peer, domain, tmp_path):
    """Both DKIM signatures (RSA and Ed25519) verify with openssl against the published keys."""
    _, recs = records(sender_peer, domain)
    fields, body = split_message(signed)
    sigs = [f for f in fields if f.lower().startswith(b"dkim-signature:")]
    assert len(sigs) == 2, signed[:800]
    import base64, hashlib, re
    bh = base64.b64encode(hashlib.sha256(canon_body(body)).digest()).decode()
    algorithms = set()
    for f in sigs:
        data, t = header_data(fields, f)
        assert t["d"] == domain and re.sub(r"\s", "", t["bh"]) == bh
        key = tags(recs[t["s"]])
        ed = t["a"] == "ed25519-sha256"
        der = ED25519_SPKI_PREFIX + base64.b64decode(key["p"]) if ed else \
            base64.b64decode(key["p"])
        sig = base64.b64decode(re.sub(r"\s", "", t["b"]))
        assert openssl_verify(tmp_path, pem(der), data, sig, ed), t["a"]
        algorithms.add(t["a"])
    assert algorithms == {"rsa-sha256", "ed25519-sha256"}


def test_message_crosses_to_the_other_server(make_roost, dns, tmp_path):
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port)
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    submit(a, ALICE[0], ALICE[1], [BOB[0]], "federation-1", "across the loopback\r\n")
    assert wait_until(lambda: len(inbox_files(b, BOB[0])) == 1, 20), a.log_text()[-2000:]
    data = open(inbox_files(b, BOB[0])[0], "rb").read()
    assert b"Subject: federation-1" in data
    assert b"across the loopback" in data
    assert b"by mx.b.test (Roost)" in data and b"by mx.a.test (Roost)" in data
    # Signed by A for a.test; the receiver's own trace fields come above the signature.
    signed = data[data.index(b"DKIM-Signature:"):]
    verify_dkim(signed, a, "a.test", tmp_path)
    assert wait_until(lambda: queue_count(a) == 0, 10)
    assert "status=sent" in a.log_text()


def test_remote_down_then_back(make_roost, dns):
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port, start=False)
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    submit(a, ALICE[0], ALICE[1], [BOB[0]], "while-down")
    # The message waits in the queue with the reason, and is retried on schedule.
    assert wait_until(lambda: "last error" in a.cli("queue", "list").stdout, 15)
    listing = a.cli("queue", "list").stdout
    assert "bob@b.test" in listing and "tries" in listing
    time.sleep(2.5)
    assert a.log_text().count("delivery attempt failed") >= 2
    b.start()
    assert wait_until(lambda: len(inbox_files(b, BOB[0])) == 1, 20), a.log_text()[-2000:]
    assert wait_until(lambda: queue_count(a) == 0, 10)


def test_permanent_failure_gives_exactly_one_report(make_roost, dns):
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port)
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    submit(a, ALICE[0], ALICE[1], ["nobody@b.test", BOB[0]], "partly-bad")
    assert wait_until(lambda: len(inbox_files(a, ALICE[0])) == 1, 20), a.log_text()[-2000:]
    assert wait_until(lambda: len(inbox_files(b, BOB[0])) == 1, 10)
    assert wait_until(lambda: queue_count(a) == 0, 10)
    time.sleep(2)  # a second report would have come by now
    reports = inbox_files(a, ALICE[0])
    assert len(reports) == 1
    dsn = open(reports[0], "rb").read()
    assert b"Return-Path: <>" in dsn
    assert b"multipart/report; report-type=delivery-status" in dsn
    assert b"Final-Recipient: rfc822; nobody@b.test" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.1.1" in dsn
    assert b"bob@b.test" not in dsn.split(b"message/delivery-status")[1].split(b"--")[0]
    assert b"Subject: partly-bad" in dsn  # the original comes back (RET defaults to FULL)


def test_unknown_domain_bounces(make_roost, dns):
    mx_port = shared_mx_port()
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    submit(a, ALICE[0], ALICE[1], ["someone@no-such-domain.test"], "nxdomain")
    assert wait_until(lambda: len(inbox_files(a, ALICE[0])) == 1, 30), a.log_text()[-2000:]
    dsn = open(inbox_files(a, ALICE[0])[0], "rb").read()
    assert b"Status: 5.1.2" in dsn


def test_kill9_during_outbound_run(make_roost, dns):
    count = int(os.environ.get("ROOST_FEDERATION_MESSAGES", "1000"))
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port, start=False)
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    # Fill the queue while B is down: every one of these was acknowledged (250).
    s = smtplib.SMTP(a.addr, a.ports["submission"], timeout=60)
    s.login(ALICE[0], ALICE[1])
    for i in range(count):
        s.sendmail(ALICE[0], [BOB[0]], ("From: <%s>\r\nSubject: run-%05d\r\n\r\nbody %d\r\n" %
                                        (ALICE[0], i, i)).encode())
    s.quit()
    b.start()
    # Kill A while its runner is sending, then start it again on the same data.
    rng = random.Random(7)
    assert wait_until(lambda: len(inbox_files(b, BOB[0])) >= rng.randint(count // 10, count // 3),
                      60)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    a.log.close()
    a.proc = None
    a.start()
    assert wait_until(lambda: queue_count(a) == 0, 180), a.cli("queue", "list").stdout[-1500:]
    seen = {}
    for path in inbox_files(b, BOB[0]):
        data = open(path, "rb").read()
        i = data.index(b"Subject: run-")
        n = int(data[i + 13:i + 18])
        seen[n] = seen.get(n, 0) + 1
    missing = [n for n in range(count) if n not in seen]
    assert not missing, "lost: %s" % missing[:20]
    duplicates = sum(v - 1 for v in seen.values())
    # A delivery acknowledged by B but not yet recorded when A died is sent again: at most one
    # per delivery thread in flight at the moment of the kill.
    assert duplicates <= 4, duplicates


def test_messages_to_one_server_share_connections(make_roost, dns):
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port, start=False)
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port)
    s = smtplib.SMTP(a.addr, a.ports["submission"], timeout=30)
    s.login(ALICE[0], ALICE[1])
    for i in range(30):
        s.sendmail(ALICE[0], [BOB[0]], ("From: <%s>\r\nSubject: reuse-%d\r\n\r\nx\r\n" %
                                        (ALICE[0], i)).encode())
    s.quit()
    b.start()
    assert wait_until(lambda: len(inbox_files(b, BOB[0])) == 30, 30), a.log_text()[-2000:]
    accepted = [l for l in b.log_text().splitlines()
                if "proto=smtp" in l and "msg=accepted" in l]
    assert len(accepted) == 30
    connections = {l.split("conn=")[1].split()[0] for l in accepted}
    # four delivery threads, each keeping its session for the next message
    assert len(connections) <= 8, len(connections)
