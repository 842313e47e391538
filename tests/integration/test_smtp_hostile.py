"""Hostile SMTP clients: smuggling end-of-data sequences,
unauthorised pipelining, STARTTLS injection, recipient floods, broken parameters, shell
metacharacters, the open-relay matrix, the unknown-recipient slow-down, long lines and
garbage, stalled clients and a full disk. Every test checks what was stored or queued."""
import base64
import glob
import os
import random
import socket
import subprocess
import threading
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, Roost, SmtpClient, client_tls_context

SEQUENCES = [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n",
             b"\r\r\n.\r\r\n"]
SMUGGLED = (b"MAIL FROM:<x@y.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
            b"From: <demo@example.test>\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")


def _stop_and_check(r):
    status = r.stop()
    log = r.log_text()
    assert status == 0, "roost exited with status %s\n%s" % (status, log[-3000:])
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in log, "sanitizer report in roost's log:\n" + log[-6000:]


@pytest.fixture(scope="module")
def server(tmp_path_factory, certificate):
    r = Roost(str(tmp_path_factory.mktemp("smtphostile")), certificate[0], certificate[1],
              {"limits": {"recipients": "100", "message_size": "1M"},
               "smtp": {"timeout": "10"},
               "auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000",
                        "failure_delay": "0", "failure_delay_max": "0"}})
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.cli("alias", "add", "postmaster@example.test", DEMO_USER)
    r.start()
    yield r
    _stop_and_check(r)


class Smtp(SmtpClient):
    def __init__(self, server, listener="smtp", ehlo=True, tls=False):
        super().__init__(server.connect(listener, tls=tls))
        assert self.reply()[0] == 220
        if ehlo:
            code, self.ehlo_lines = self.cmd(b"EHLO client.test")
            assert code == 250

    def auth(self):
        token = base64.b64encode(("\0%s\0%s" % (DEMO_USER, DEMO_PASSWORD)).encode())
        assert self.cmd(b"AUTH PLAIN " + token)[0] == 235



@pytest.fixture
def smtp(server):
    clients = []

    def factory(*args, **kw):
        c = Smtp(kw.pop("srv", server), *args, **kw)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()


def inbox(server, address=DEMO_USER):
    user, domain = address.split("@")
    d = os.path.join(server.data_dir, "mail", domain, user)
    return sorted(glob.glob(os.path.join(d, "cur", "*")) + glob.glob(os.path.join(d, "new", "*")))


def queued(server):
    return sorted(glob.glob(os.path.join(server.data_dir, "queue", "active", "*")))


def settle():
    time.sleep(0.1)


def open_txn(c, sender=b"a@remote.test"):
    c.send(b"MAIL FROM:<%s>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n" % sender)
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]


# ---------------- §3.1 smuggling ----------------

@pytest.mark.parametrize("seq", SEQUENCES, ids=[repr(s) for s in SEQUENCES])
def test_smuggling_on_mx_never_two_messages(server, smtp, seq):
    c = smtp()
    before = inbox(server)
    open_txn(c)
    c.send(b"From: <a@remote.test>\r\nSubject: carrier\r\n\r\nhello" + seq + SMUGGLED)
    code, lines = c.reply()
    # Every sequence holds a bare CR or LF: the MX refuses the whole thing.
    assert code == 554 and lines[0].startswith(b"554 5.6.0"), lines
    assert c.silent(0.3), c.buf  # no second reply: the smuggled commands were data
    assert c.cmd(b"NOOP")[0] == 250
    settle()
    assert inbox(server) == before
    assert queued(server) == []


@pytest.mark.parametrize("seq", SEQUENCES, ids=[repr(s) for s in SEQUENCES])
def test_smuggling_on_submission_one_message_crlf_only(server, smtp, seq):
    c = smtp("submission")
    c.auth()
    before = inbox(server)
    open_txn(c, DEMO_USER.encode())
    c.send(b"From: <demo@example.test>\r\nSubject: carrier\r\n\r\nhello" + seq + SMUGGLED)
    code, lines = c.reply()
    assert code == 250, lines
    assert c.silent(0.3), c.buf
    for _ in range(50):
        new = [f for f in inbox(server) if f not in before]
        if new:
            break
        time.sleep(0.02)
    assert len(new) == 1
    with open(new[0], "rb") as f:
        stored = f.read()
    assert b"Subject: smuggled" in stored and b"MAIL FROM:<x@y.test>" in stored
    assert stored.count(b"\n") == stored.count(b"\r\n")
    assert stored.count(b"\r") == stored.count(b"\r\n")
    assert stored.endswith(b"evil\r\n")


def test_pipelining_after_ehlo_refused(server, smtp):
    c = smtp(ehlo=False)
    c.send(b"EHLO a\r\nMAIL FROM:<>\r\n")
    code, _ = c.reply()
    assert code == 250
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith(b"554 5.5.0"), lines
    assert c.closed()


def test_pipelining_before_greeting_refused(server):
    s = server.connect("smtp")
    s.sendall(b"EHLO a\r\nMAIL FROM:<>\r\n")  # before reading the greeting
    data = b""
    s.settimeout(5)
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert b"\r\n554 5.5.0" in data, data
    assert b"250 2.1.0" not in data


def test_data_before_354_refused(server, smtp):
    c = smtp()
    before = inbox(server)
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n"
           b"Subject: early\r\n\r\nbody\r\n.\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith(b"554 5.5.0"), lines
    assert c.closed()
    settle()
    assert inbox(server) == before


@pytest.mark.parametrize("listener", ["smtp", "submission"])
def test_starttls_injection(server, smtp, listener):
    c = smtp(listener)
    c.send(b"STARTTLS\r\nRSET\r\n")
    assert c.reply()[0] == 220
    c.sock = client_tls_context().wrap_socket(c.sock)
    assert c.buf == b""
    c.sock.settimeout(0.7)
    try:
        data = c.sock.recv(1000)
    except (socket.timeout, TimeoutError):
        data = b""
    assert data == b"", data  # the injected RSET got no reply
    # The session starts over inside TLS: MAIL before EHLO is refused.
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 503
    assert c.cmd(b"EHLO client.test")[0] == 250
    assert c.cmd(b"STARTTLS")[0] == 503  # twice


def test_from_beyond_the_checked_header_refused(server, smtp):
    """Submission checks From: in the first 64 KiB; a longer header block could hide a
    second From: there, so it is refused rather than passed unchecked."""
    c = smtp("submission")
    c.auth()
    before = inbox(server)
    filler = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 70) for i in range(1000))
    msg = (b"From: <demo@example.test>\r\n" + filler + b"From: <someone@else.test>\r\n"
           b"Subject: hidden\r\n\r\nbody\r\n")
    open_txn(c, DEMO_USER.encode())
    c.send(msg + b".\r\n")
    code, lines = c.reply()
    assert code == 553 and lines[0].startswith(b"553 5.7.1"), lines
    # A large body after a short header is fine.
    open_txn(c, DEMO_USER.encode())
    c.send(b"From: <demo@example.test>\r\nSubject: big body\r\n\r\n" +
           (b"b" * 78 + b"\r\n") * 2000 + b".\r\n")
    assert c.reply()[0] == 250
    for _ in range(50):
        if len(inbox(server)) > len(before):
            break
        time.sleep(0.02)
    new = [f for f in inbox(server) if f not in before]
    assert len(new) == 1
    with open(new[0], "rb") as f:
        assert b"Subject: big body" in f.read()


# ---------------- §3.3 recipients and parameters ----------------

def test_recipient_limit(server, smtp):
    c = smtp()
    c.send(b"MAIL FROM:<a@remote.test>\r\n" +
           b"".join(b"RCPT TO:<demo+%d@example.test>\r\n" % i for i in range(101)))
    codes = [c.reply()[0] for _ in range(102)]
    assert codes[:101] == [250] * 101
    assert codes[101] == 452
    # One more and the session is still fine.
    code, lines = c.cmd(b"RCPT TO:<demo@example.test>")
    assert code == 452 and lines[0].startswith(b"452 4.5.3"), lines
    assert c.cmd(b"RSET")[0] == 250


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def test_ten_thousand_pipelined_recipients(server, smtp):
    c = smtp()
    rss_before = _rss_kb(server.proc.pid)
    payload = b"MAIL FROM:<a@remote.test>\r\n" + b"".join(
        b"RCPT TO:<demo+%d@example.test>\r\n" % i for i in range(10000))
    t = threading.Thread(target=c.send, args=(payload,))
    t.start()
    codes = [c.reply(timeout=30)[0] for _ in range(10001)]
    t.join()
    assert codes[0] == 250
    assert codes[1:101] == [250] * 100
    assert set(codes[101:]) == {452}
    rss_after = _rss_kb(server.proc.pid)
    assert rss_after - rss_before < 64 * 1024, (rss_before, rss_after)
    assert c.cmd(b"RSET")[0] == 250
    assert queued(server) == []


BROKEN_PARAMS = [b"AUTH=\"", b"SIZE=", b"=x", b"BODY=8BITMIME BODY=7BIT",
                 b" ".join(b"X%d=1" % i for i in range(20)),
                 b" ".join(b"ENVID=%d" % i for i in range(20)),
                 b"SIZE=99999999999999999999", b"SIZE=-1", b"SIZE=1x", b"BODY=9BIT",
                 b"BODY", b"RET=", b"ENVID=a=b", b"SMTPUTF8=yes", b"AUTH=x+0Ay",
                 b"AUTH=x+0Dy@b", b"AUTH=a+00@b", b"AUTH=a+0", b"ENVID=a+0Ab", b"X\x01=1", b"SIZE=1\x00"]


@pytest.mark.parametrize("params", BROKEN_PARAMS, ids=[repr(p)[:40] for p in BROKEN_PARAMS])
def test_broken_mail_params(server, smtp, params):
    c = smtp()
    code, lines = c.cmd(b"MAIL FROM:<a@remote.test> " + params)
    assert code in (500, 501, 555), lines
    # Nothing half-accepted: a new MAIL is not "sender already specified".
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250


BROKEN_RCPT_PARAMS = [b"ORCPT=rfc822;a+0D+0Ab@c", b"ORCPT=rfc822;a+00b@c", b"ORCPT=rfc822",
                      b"ORCPT=;a@b", b"ORCPT=rfc822;a+0", b"NOTIFY=NEVER,SUCCESS", b"NOTIFY=", b"NOTIFY=SOMETIMES",
                      b"FOO=bar"]


@pytest.mark.parametrize("params", BROKEN_RCPT_PARAMS,
                         ids=[repr(p)[:40] for p in BROKEN_RCPT_PARAMS])
def test_broken_rcpt_params(server, smtp, params):
    c = smtp()
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<demo@example.test> " + params)
    assert code in (501, 555), lines
    assert c.cmd(b"RCPT TO:<demo@example.test> NOTIFY=NEVER ORCPT=rfc822;demo+40x")[0] == 250


SHELL_PROBE = "/tmp/roost-shell-probe"


@pytest.mark.parametrize("sender", [b";touch " + SHELL_PROBE.encode() + b";",
                                    b"$(touch " + SHELL_PROBE.encode() + b")", b"$(id)",
                                    b"a@b;c", b"a b@x", b"a@b c", b"a\x00@b", b"a@[1.2.3.4"])
def test_shell_metacharacters_in_sender(server, smtp, sender):
    if os.path.exists(SHELL_PROBE):
        os.unlink(SHELL_PROBE)
    c = smtp()
    code, lines = c.cmd(b"MAIL FROM:<" + sender + b">")
    assert code in (500, 501, 553), lines
    # No shell ever saw the address (a file it would have made, not a timing).
    assert not os.path.exists(SHELL_PROBE)
    assert queued(server) == []


# ---------------- §3.10 open relay ----------------

@pytest.mark.parametrize("rcpt", [b"a@remote.test", b"a%remote.test@example.test",
                                  b"\"a@remote.test\"@example.test",
                                  b"@example.test:a@remote.test",
                                  b"@example.test,@x.test:a@remote.test",
                                  b"a@remote.test@example.test", b"remote.test!a@example.test",
                                  b"a@[127.0.0.2]", b"a@[IPv6:::1]", b"postmaster@remote.test",
                                  b"a@example.test.remote.test", b"a@remote.test."])
def test_open_relay_matrix_refused(server, smtp, rcpt):
    c = smtp()
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<" + rcpt + b">")
    assert code in (554, 550, 501), lines
    if code == 554:
        assert lines[0].startswith(b"554 5.7.1"), lines
    # Even with some other accepted recipient the data goes nowhere but to demo.
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    c.cmd(b"DATA")
    c.send(b"Subject: relay\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    settle()
    assert queued(server) == []


@pytest.mark.parametrize("rcpt", [b"demo@EXAMPLE.TEST.", b"Demo@Example.Test", b"postmaster",
                                  b"POSTMASTER@example.test", b"postmaster@mail.example.test"])
def test_local_forms_accepted(server, smtp, rcpt):
    c = smtp()
    before = inbox(server)
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<" + rcpt + b">")
    assert code == 250, lines
    assert c.cmd(b"DATA")[0] == 354
    c.send(b"Subject: local\r\n\r\nx\r\n.\r\n")
    assert c.reply()[0] == 250
    for _ in range(50):
        if len(inbox(server)) > len(before):
            break
        time.sleep(0.02)
    assert len(inbox(server)) == len(before) + 1
    assert queued(server) == []


def test_relay_refused_on_submission_without_auth(server, smtp):
    c = smtp("submission")
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 530
    assert c.cmd(b"RCPT TO:<a@remote.test>")[0] == 503


# ---------------- §3.11 enumeration ----------------

def test_unknown_recipients_slow_down(tmp_path, certificate, smtp):
    r = Roost(str(tmp_path), certificate[0], certificate[1],
              {"auth": {"failure_delay": "500", "failure_delay_max": "5000"}})
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.start()
    try:
        c = smtp(srv=r)
        assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
        times = []
        for i in range(3):
            start = time.monotonic()
            code, lines = c.cmd(b"RCPT TO:<nobody%d@example.test>" % i)
            times.append(time.monotonic() - start)
            assert code == 550 and lines[0].startswith(b"550 5.1.1"), lines
        start = time.monotonic()
        assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
        known = time.monotonic() - start
        # 500, 1000, 2000 ms: lower bounds, which load cannot break
        for t, delay in zip(times, (0.5, 1.0, 2.0)):
            assert t >= delay - 0.02, times
        # A known recipient is not delayed (the next penalty would be 4 s): compared with
        # the slowest reply of this test, not with a number of seconds.
        assert known < times[2], (known, times)
        c.close()
    finally:
        _stop_and_check(r)


def test_vrfy_same_answer(server, smtp):
    c = smtp()
    a = c.cmd(b"VRFY demo@example.test")
    b = c.cmd(b"VRFY nobody@example.test")
    assert a == b and a[0] == 252


# ---------------- lines, garbage, stalls ----------------

def test_long_line_then_usable(server, smtp):
    c = smtp()
    c.send(b"MAIL FROM:<" + b"a" * 10000 + b"@remote.test>\r\n")
    code, lines = c.reply()
    assert code == 500 and b"too long" in lines[0].lower(), lines
    assert c.cmd(b"NOOP")[0] == 250
    c.send(b"EHLO " + b"h" * 65536 + b"\r\n")
    assert c.reply()[0] == 500
    assert c.cmd(b"NOOP")[0] == 250


def test_line_at_the_limit(server, smtp):
    c = smtp()
    # 2K limit (default [limits] smtp_line) including CRLF: a long but legal RCPT works.
    local = b"l" * 64
    domain = b".".join([b"d" * 60] * 2) + b".example.test"
    code, _ = c.cmd(b"MAIL FROM:<" + local + b"@" + domain + b">")
    assert code == 250


def test_garbage_bytes(server, smtp):
    rnd = random.Random(5321)
    for n in range(3):
        c = smtp(ehlo=n == 0)
        junk = bytes(rnd.getrandbits(8) for _ in range(20000)) + b"\0\0\r\n\0\r\n"
        c.send(junk)
        # Errors until the bad-command limit closes the connection.
        assert c.closed(10)
        assert b"421 4.7.0" in c.buf or b"500" in c.buf
    c = smtp()
    assert c.cmd(b"NOOP")[0] == 250


def test_nul_in_command(server, smtp):
    c = smtp()
    code, lines = c.cmd(b"MAIL FROM:<a\0@remote.test>")
    assert code == 500 and b"NUL" in lines[0], lines
    assert c.cmd(b"RCPT\0 TO:<demo@example.test>")[0] == 500
    assert c.cmd(b"NOOP")[0] == 250


def test_bdat_then_close_mid_chunk(server, smtp):
    c = smtp()
    before = inbox(server)
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    c.send(b"BDAT 10\r\nabcde")
    c.close()
    # BDAT after a failed BDAT, BDAT 0 LAST without MAIL, bad sizes.
    c = smtp()
    c.send(b"BDAT 0 LAST\r\n")
    assert c.reply()[0] == 503
    assert c.cmd(b"NOOP")[0] == 250
    code, lines = c.cmd(b"BDAT 99999999999999999999999 LAST")
    assert code == 501 and c.closed()
    c = smtp()
    assert c.cmd(b"BDAT -1")[0] == 501 and c.closed()
    settle()
    assert inbox(server) == before


def test_stall_mid_data_times_out(server, smtp):
    c = smtp()
    before = inbox(server)
    open_txn(c)
    c.send(b"Subject: stalled\r\n\r\npartial body")
    start = time.monotonic()
    code, lines = c.reply(timeout=60)
    elapsed = time.monotonic() - start
    assert code == 421 and lines[0].startswith(b"421 4.4.2"), lines
    assert elapsed > 8, elapsed  # not (much) before the configured 10 s
    assert c.closed()
    settle()
    assert inbox(server) == before


# ---------------- low disk ----------------

def test_low_disk_refused_at_mail(tmp_path, certificate, smtp):
    mnt = str(tmp_path / "tiny")
    os.mkdir(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % r.stderr.decode().strip())
    try:
        srv = Roost(mnt, certificate[0], certificate[1],
                    {"limits": {"message_size": "6M"}})
        srv.add_user(DEMO_USER, DEMO_PASSWORD)
        srv.start()
        try:
            c = smtp(srv=srv)
            code, lines = c.cmd(b"MAIL FROM:<a@remote.test>")
            assert code == 452 and lines[0].startswith(b"452 4.3.1"), lines
            assert c.cmd(b"NOOP")[0] == 250
            c.close()
        finally:
            _stop_and_check(srv)
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)


def test_commands_out_of_sequence_get_their_reply(server):
    """Each command runs only in the states it belongs to; elsewhere the reply names what is
    missing, and the session goes on (RFC 5321 §4.1.4, RFC 3030 §2)."""
    c = Smtp(server, ehlo=False)
    code, lines = c.cmd(b"MAIL FROM:<a@remote.test>")
    assert lines[-1].startswith(b"503 5.5.1 Send EHLO/HELO first"), lines
    assert c.cmd(b"EHLO client.test")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<%s>" % DEMO_USER.encode())
    assert lines[-1].startswith(b"503 5.5.1 Need MAIL before RCPT"), lines
    code, lines = c.cmd(b"DATA")
    assert lines[-1].startswith(b"503 5.5.1 Need MAIL command"), lines
    code, lines = c.cmd(b"DATA now")  # its arguments are refused first, in any state
    assert lines[-1].startswith(b"501 5.5.4 DATA takes no arguments"), lines
    # A chunk outside a transaction is read whole, then refused; nothing in it runs.
    c.send(b"BDAT 6 LAST\r\nRSET\r\n")
    code, lines = c.reply()
    assert lines[-1].startswith(b"503 5.5.1 Need MAIL command"), lines
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    code, lines = c.cmd(b"MAIL FROM:<a@remote.test>")
    assert lines[-1].startswith(b"503 5.5.1 Sender already specified"), lines
    code, lines = c.cmd(b"DATA")
    assert lines[-1].startswith(b"554 5.5.1 No valid recipients"), lines
    assert c.cmd(b"RCPT TO:<%s>" % DEMO_USER.encode())[0] == 250
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    code, lines = c.cmd(b"DATA")
    assert lines[-1].startswith(b"503 5.5.1 DATA cannot follow BDAT"), lines
    assert c.cmd(b"RSET")[0] == 250
    assert c.cmd(b"NOOP")[0] == 250
