"""Resource exhaustion at the connection layer: descriptors running out (the connection cap
below the descriptor limit, listeners that pause instead of spinning on a failed accept, no
log flood), the pre-login deadline that trickled bytes cannot extend, the idle timeout that
counts from the last complete line, and one log line per connection dropped for not reading
its output.

The server runs under a low descriptor limit set as both soft and hard limit, since serve
raises the soft limit to the hard one. CPU use is read from /proc/PID/stat and compared with
a generous share of the elapsed time: a state check on a spinning loop, not a latency bound.
"""
import imaplib
import os
import resource
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN, wait_for_port
from imap_util import simple

FD_LIMIT = 128
SOURCES = ["127.0.%d.%d" % (i // 250, 2 + i % 250) for i in range(4)]


def start_with_fd_limit(r, limit=FD_LIMIT):
    def lower_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    r.log = open(r.log_path, "a")
    r.proc = subprocess.Popen([ROOST_BIN, "--config", r.conf, "serve"], stdout=r.log,
                              stderr=subprocess.STDOUT, preexec_fn=lower_limit)
    for port in r.ports.values():
        wait_for_port(port, proc=r.proc, addr=r.addr)
    return r


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the line; 12 and 13 after "pid (comm)".
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_many(r, count, listeners=("smtp", "imap")):
    """count connections, spread over several source addresses and listeners; held open."""
    socks = []
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((SOURCES[i % len(SOURCES)], 0))
        s.settimeout(5)
        s.connect((r.addr, r.ports[listeners[i % len(listeners)]]))
        socks.append(s)
    return socks


def pressure_figures(r, seconds=3.0):
    """Log growth (bytes) and server CPU (seconds) while nothing changes for `seconds`."""
    size0, cpu0, t0 = os.path.getsize(r.log_path), cpu_seconds(r.proc.pid), time.monotonic()
    time.sleep(seconds)
    size1, cpu1, t1 = os.path.getsize(r.log_path), cpu_seconds(r.proc.pid), time.monotonic()
    return size1 - size0, cpu1 - cpu0, t1 - t0


def first_line(s, wait=2.0):
    s.settimeout(wait)
    try:
        return s.recv(512)
    except (socket.timeout, ConnectionError):
        return b""


def service_works(r, deadline_s=15.0):
    """A new SMTP session and an IMAP LOGIN + APPEND, retried while listeners resume."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP(r.addr, r.ports["smtp"], timeout=5) as smtp:
                assert smtp.ehlo()[0] == 250
                smtp.sendmail("alice@example.test", [DEMO_USER],
                              simple("after pressure"))
            imap = imaplib.IMAP4(r.addr, r.ports["imap"], timeout=5)
            imap.login(DEMO_USER, DEMO_PASSWORD)
            typ, resp = imap.append("INBOX", None, None, simple("appended after pressure"))
            assert typ == "OK", resp
            imap.logout()
            return True
        except (OSError, smtplib.SMTPException, imaplib.IMAP4.error, EOFError) as e:
            last = e
            time.sleep(0.3)
    raise AssertionError("service did not come back: %r" % (last,))


def close_all(socks):
    for s in socks:
        s.close()


def test_connections_over_the_cap_are_refused_without_spinning(make_roost):
    r = start_with_fd_limit(make_roost(start=False))
    socks = open_many(r, 2 * FD_LIMIT)
    try:
        time.sleep(1.0)  # let the server take what it takes
        grown, cpu, elapsed = pressure_figures(r)
        assert grown < 16 * 1024, "log grew by %d bytes in %.1f s" % (grown, elapsed)
        assert cpu < 0.5 * elapsed, "server used %.2f s CPU in %.2f s" % (cpu, elapsed)
        # Over the cap a client is told so at once, not left in the kernel's queue.
        busy = [first_line(s, 0.2) for s in socks[-32:]]
        assert any(b.startswith((b"421 4.3.2", b"* BYE [UNAVAILABLE]")) for b in busy), busy
    finally:
        close_all(socks)
    service_works(r)
    log = r.log_text()
    assert "connection refused: server at max_connections" in log
    assert "accept failed" not in log


def test_failing_accept_pauses_the_listeners(make_roost):
    # A cap above what the descriptors allow: accept() itself fails with EMFILE.
    r = start_with_fd_limit(make_roost(extra={"limits": {"max_connections": "1000"}},
                                       start=False))
    socks = open_many(r, 2 * FD_LIMIT)
    try:
        time.sleep(1.0)
        grown, cpu, elapsed = pressure_figures(r)
        assert grown < 16 * 1024, "log grew by %d bytes in %.1f s" % (grown, elapsed)
        assert cpu < 0.5 * elapsed, "server used %.2f s CPU in %.2f s" % (cpu, elapsed)
    finally:
        close_all(socks)
    service_works(r)
    log = r.log_text()
    paused = [l for l in log.splitlines() if "accept failed; listeners paused" in l]
    assert 1 <= len(paused) <= 5, paused
    assert "max_connections leaves less than the reserve" in log


@pytest.mark.parametrize("listener,greeting,trickle", [
    ("imap", b"* OK", b"a1 LOGIN someone@example.test secretsecretsecret"),
    ("smtp", b"220", b"EHLO a-name-that-arrives-slowly.example.test"),
    ("pop3", b"+OK", b"USER someone-who-types-slowly@example.test"),
])
def test_prelogin_deadline_ignores_trickled_bytes(make_roost, line_client, listener, greeting,
                                                  trickle):
    r = make_roost(extra={"limits": {"prelogin_timeout": "3"}})
    c = line_client(r.connect(listener))
    assert c.line().startswith(greeting)
    start = time.monotonic()
    closed = False
    for byte in trickle[:40]:  # 40 bytes, one per 0.5 s: 20 s if nothing stops it
        try:
            c.send(bytes([byte]))
        except OSError:
            closed = True
            break
        if not c.silent(0.5):
            closed = c.closed(2)
            break
    assert closed, "still connected after %.1f s of trickling" % (time.monotonic() - start)
    assert "pre-login deadline passed" in r.log_text()


def test_prelogin_deadline_counts_whole_lines_too(make_roost, line_client):
    r = make_roost(extra={"limits": {"prelogin_timeout": "3"}})
    c = line_client(r.connect("smtp"))
    assert c.line().startswith(b"220")
    closed = False
    for _ in range(40):
        c.send(b"NOOP\r\n")
        reply = c.line()
        if not reply.startswith(b"250"):
            assert reply.startswith(b"421 4.4.2"), reply
            closed = c.closed(2)
            break
        time.sleep(0.5)
    assert closed


def test_logged_in_sessions_outlive_the_prelogin_deadline(make_roost, line_client):
    r = make_roost(extra={"limits": {"prelogin_timeout": "2"}})
    imap = imaplib.IMAP4(r.addr, r.ports["imap"], timeout=10)
    imap.login(DEMO_USER, DEMO_PASSWORD)
    pop = line_client(r.connect("pop3"))
    assert pop.line().startswith(b"+OK")
    pop.send(b"USER %s\r\nPASS %s\r\n" % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
    assert pop.line().startswith(b"+OK")
    assert pop.line().startswith(b"+OK")
    smtp = smtplib.SMTP(r.addr, r.ports["smtp"], timeout=10)
    smtp.ehlo()
    assert smtp.mail("alice@example.test")[0] == 250
    time.sleep(3.5)
    assert imap.noop()[0] == "OK"
    pop.send(b"NOOP\r\n")
    assert pop.line().startswith(b"+OK")
    assert smtp.rcpt(DEMO_USER)[0] == 250
    smtp.quit()
    imap.logout()


def test_idle_timeout_counts_from_the_last_complete_line(make_roost, line_client):
    # After MAIL the pre-login deadline is gone; the 10 s idle timeout remains, and a command
    # line trickled one byte per 0.5 s must not keep restarting it.
    r = make_roost(extra={"smtp": {"timeout": "10"}})
    c = line_client(r.connect("smtp"))
    assert c.line().startswith(b"220")
    c.send(b"HELO client.example.test\r\n")
    assert c.line().startswith(b"250")
    c.send(b"MAIL FROM:<alice@example.test>\r\n")
    assert c.line().startswith(b"250")
    start = time.monotonic()
    closed = False
    for byte in (b"RCPT TO:<%s>" % DEMO_USER.encode()) * 2:  # > 40 bytes: > 20 s
        try:
            c.send(bytes([byte]))
        except OSError:
            closed = True
            break
        if not c.silent(0.5):
            assert c.line().startswith(b"421 4.4.2")
            closed = c.closed(2)
            break
    assert closed, "still connected after %.1f s of trickling" % (time.monotonic() - start)


def test_output_cap_warns_once_per_connection(make_roost, line_client):
    """A client that pipelines commands and never reads their replies (IDLE and FETCH are
    paced by back-pressure, SEARCH replies are not): dropped once its pending output passes
    the cap, with exactly one warning, however much the session writes afterwards."""
    r = make_roost()
    writer = imaplib.IMAP4(r.addr, r.ports["imap"], timeout=30)
    writer.login(DEMO_USER, DEMO_PASSWORD)
    for i in range(200):
        typ, _ = writer.append("INBOX", None, None, simple("m%d" % i))
        assert typ == "OK"
    writer.select("INBOX")

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((r.addr, r.ports["imap"]))
    reader = line_client(s)
    assert reader.line().startswith(b"* OK")
    reader.send(b"l LOGIN %s \"%s\"\r\ns SELECT INBOX\r\n"
                % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
    reader.until(b"l OK")
    reader.until(b"s OK")

    # Each SEARCH ALL answers ~900 octets; 30,000 of them pass 16 MiB. The client reads
    # nothing from here on; a thread sends, since the server may stop reading first.
    warning = "peer does not read its output"
    burst = b"".join(b"q%d SEARCH ALL\r\n" % i for i in range(30000))

    def send():
        try:
            s.settimeout(60)
            s.sendall(burst)
        except OSError:
            pass
    t = threading.Thread(target=send, daemon=True)
    t.start()
    deadline = time.monotonic() + 60
    while warning not in r.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert warning in r.log_text(), "the cap was never reached"
    # More writes aimed at the dropped connection: flag updates for its selected mailbox.
    for _ in range(10):
        writer.store("1:*", "+FLAGS.SILENT", "(\\Flagged)")
        writer.store("1:*", "-FLAGS.SILENT", "(\\Flagged)")
    writer.logout()
    s.close()
    t.join(5)
    lines = [l for l in r.log_text().splitlines() if warning in l]
    assert len(lines) == 1, "%d warnings, first: %s" % (len(lines), lines[:2])
