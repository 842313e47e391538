"""POP3 commands against a real server (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH): every command
of the TRANSACTION state, TOP with 0 and N lines, exact octet counts and byte-stuffing, with
raw sockets where the exact bytes matter and poplib where a client's view is enough.

The helpers at the top are shared by the other test_pop3_*.py files."""
import base64
import os
import poplib
import socket
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context


def message(n, body=None, extra_headers=""):
    """An RFC 5322 message with LF line ends (the importer turns them into CRLF)."""
    body = body if body is not None else "Body of message %d.\nSecond line.\n" % n
    return ("From: Sender <sender@example.test>\nTo: %s\nSubject: message %d\n%s"
            "Message-ID: <m%d@example.test>\n\n%s" % (DEMO_USER, n, extra_headers, n, body)
            ).encode()


def write_mbox(path, messages):
    with open(path, "wb") as f:
        for i, m in enumerate(messages):
            if i:
                f.write(b"\n")
            f.write(b"From sender@example.test Mon Jan  1 00:00:00 2024\n")
            f.write(m)
            if i + 1 < len(messages) and not m.endswith(b"\n"):
                f.write(b"\n")


def import_messages(r, messages, user=DEMO_USER):
    path = os.path.join(r.dir, "import-%d.mbox" % len(os.listdir(r.dir)))
    write_mbox(path, messages)
    r.cli("import", user, path)


def crlf(m):
    return m.replace(b"\n", b"\r\n")


class Pop:
    """Raw POP3 client: exact bytes of every reply."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed; pending %r" % self.buf)
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def multi(self):
        """Raw body of a multi-line reply up to (excluding) CRLF.CRLF, still stuffed."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return body
            self._fill()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n" if isinstance(text, str) else text)
        return self.line()

    def login(self, user=DEMO_USER, password=DEMO_PASSWORD):
        assert self.cmd("USER " + user).startswith(b"+OK")
        r = self.cmd("PASS " + password)
        assert r.startswith(b"+OK"), r
        return r

    def close(self):
        self.sock.close()


def pop_connect(r, listener="pop3", login=True, **kw):
    sock = socket.create_connection(("127.0.0.1", r.ports[listener]), timeout=20)
    if listener == "pop3s":
        sock = client_tls_context().wrap_socket(sock)
    p = Pop(sock)
    assert p.line().startswith(b"+OK")
    if login:
        p.login(**kw)
    return p


def unstuff(body):
    return b"".join(l[1:] if l.startswith(b".") else l for l in body.splitlines(True))


# ---------------------------------------------------------------------------------------------

@pytest.fixture
def server(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2), message(3, body="Only line\n")])
    return r


def test_stat_list_uidl_and_sizes_match_retr(server):
    p = pop_connect(server)
    count, total = (int(x) for x in p.cmd("STAT").split()[1:3])
    assert count == 3
    assert p.cmd("LIST").startswith(b"+OK")
    sizes = {int(a): int(b) for a, b in (l.split() for l in p.multi().splitlines())}
    assert sorted(sizes) == [1, 2, 3]
    assert sum(sizes.values()) == total
    for n in (1, 2, 3):
        assert p.cmd("LIST %d" % n) == b"+OK %d %d" % (n, sizes[n])
        head = p.cmd("RETR %d" % n)
        assert head == b"+OK %d octets" % sizes[n]
        body = unstuff(p.multi())
        assert len(body) == sizes[n]
        assert body == crlf(message(n, body="Only line\n" if n == 3 else None))
    assert p.cmd("UIDL").startswith(b"+OK")
    uidls = [l.split() for l in p.multi().splitlines()]
    assert [int(n) for n, _ in uidls] == [1, 2, 3]
    assert len({u for _, u in uidls}) == 3
    for n, u in uidls:
        assert p.cmd("UIDL %s" % n.decode()) == b"+OK " + n + b" " + u
        assert 1 <= len(u) <= 70 and all(0x21 <= c <= 0x7e for c in u)
    assert p.cmd("NOOP") == b"+OK"
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()


def test_top_zero_and_n_lines(make_roost):
    r = make_roost()
    body = "".join("line %d\n" % i for i in range(1, 11))
    import_messages(r, [message(1, body=body)])
    p = pop_connect(r)
    full = crlf(message(1, body=body))
    header = full[:full.index(b"\r\n\r\n") + 4]
    assert p.cmd("TOP 1 0").startswith(b"+OK")
    assert unstuff(p.multi()) == header
    assert p.cmd("TOP 1 3").startswith(b"+OK")
    assert unstuff(p.multi()) == header + b"line 1\r\nline 2\r\nline 3\r\n"
    assert p.cmd("TOP 1 1000").startswith(b"+OK")
    assert unstuff(p.multi()) == full
    assert p.cmd("TOP 1").startswith(b"-ERR")
    assert p.cmd("TOP 2 1").startswith(b"-ERR")
    assert p.cmd("TOP 1 x").startswith(b"-ERR")
    p.close()


def test_dot_stuffing_and_final_line_without_crlf(make_roost):
    r = make_roost()
    dotted = ".starts with a dot\n..two dots\n.\nnormal\n. space\n"
    last = "no newline at the end"
    import_messages(r, [message(1, body=dotted), message(2, body=last)])
    p = pop_connect(r)
    size1 = int(p.cmd("LIST 1").split()[2])
    assert p.cmd("RETR 1").startswith(b"+OK")
    raw = p.multi()
    assert b"\r\n..starts with a dot\r\n...two dots\r\n..\r\nnormal\r\n.. space\r\n" in raw
    assert len(unstuff(raw)) == size1
    assert unstuff(raw) == crlf(message(1, body=dotted))
    # The stored message ends without CRLF: LIST counts the stored octets, RETR adds the
    # CRLF before the terminating dot (RFC 1939 §3).
    size2 = int(p.cmd("LIST 2").split()[2])
    assert p.cmd("RETR 2").startswith(b"+OK")
    raw = p.multi()
    assert raw.endswith(b"no newline at the end\r\n")
    assert len(raw) == size2 + 2
    p.close()


def test_dele_rset_and_stat_exclude_deleted(server):
    p = pop_connect(server)
    sizes = [int(p.cmd("LIST %d" % n).split()[2]) for n in (1, 2, 3)]
    assert p.cmd("DELE 2") == b"+OK Message 2 deleted"
    assert p.cmd("DELE 2").startswith(b"-ERR")
    assert p.cmd("STAT") == b"+OK 2 %d" % (sizes[0] + sizes[2])
    assert p.cmd("LIST 2").startswith(b"-ERR")
    assert p.cmd("RETR 2").startswith(b"-ERR")
    assert p.cmd("TOP 2 0").startswith(b"-ERR")
    assert p.cmd("UIDL 2").startswith(b"-ERR")
    assert p.cmd("LIST").startswith(b"+OK 2 messages")
    assert [l.split()[0] for l in p.multi().splitlines()] == [b"1", b"3"]
    assert p.cmd("UIDL").startswith(b"+OK")
    assert [l.split()[0] for l in p.multi().splitlines()] == [b"1", b"3"]
    assert p.cmd("RSET").startswith(b"+OK")
    assert p.cmd("STAT") == b"+OK 3 %d" % sum(sizes)
    assert p.cmd("RETR 2").startswith(b"+OK")
    p.multi()
    p.close()


def test_capa_in_both_states(server):
    p = pop_connect(server, login=False)
    assert p.cmd("CAPA").startswith(b"+OK")
    caps = p.multi().decode().splitlines()
    for c in ("TOP", "UIDL", "USER", "STLS", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "EXPIRE NEVER", "LOGIN-DELAY 0", "IMPLEMENTATION Roost"):
        assert c in caps, caps
    assert any(c.startswith("SASL ") and "PLAIN" in c for c in caps)
    assert not any(c.startswith("APOP") for c in caps)
    p.login()
    assert p.cmd("CAPA").startswith(b"+OK")
    caps = p.multi().decode().splitlines()
    assert "TOP" in caps and "UIDL" in caps and "PIPELINING" in caps
    assert "USER" not in caps and "STLS" not in caps
    assert not any(c.startswith("SASL") for c in caps)
    p.close()


def test_login_delay_is_announced_and_enforced(make_roost):
    """RFC 2449 §6.5/§8.1.1: with [pop3] login_delay a second login of the same user within
    the delay is refused with [LOGIN-DELAY] after PASS or AUTH (never at USER), other users
    are not affected, and a refused login does not restart the clock."""
    r = make_roost(users=((DEMO_USER, DEMO_PASSWORD), ("other@example.test", "other pass")),
                   extra={"pop3": {"login_delay": "3"}})
    p = pop_connect(r, login=False)
    assert p.cmd("CAPA").startswith(b"+OK")
    assert "LOGIN-DELAY 3" in p.multi().decode().splitlines()
    p.login()
    first_login = time.monotonic()
    assert p.cmd("CAPA").startswith(b"+OK")
    assert "LOGIN-DELAY 3" in p.multi().decode().splitlines()
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    # Refused half-way through the delay; had the refusals restarted the clock, the login
    # at 3.3 s below would come only 1.8 s after them and be refused too.
    time.sleep(max(0.0, 1.5 - (time.monotonic() - first_login)))
    q = pop_connect(r, login=False)
    assert q.cmd("USER " + DEMO_USER).startswith(b"+OK")
    reply = q.cmd("PASS " + DEMO_PASSWORD)
    assert reply.startswith(b"-ERR [LOGIN-DELAY]"), reply
    token = base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" + DEMO_PASSWORD.encode())
    reply = q.cmd("AUTH PLAIN " + token.decode())
    assert reply.startswith(b"-ERR [LOGIN-DELAY]"), reply
    # A wrong password is still a plain authentication failure, not a delay hint.
    assert q.cmd("USER " + DEMO_USER).startswith(b"+OK")
    assert q.cmd("PASS wrong").startswith(b"-ERR [AUTH]")
    o = pop_connect(r, user="other@example.test", password="other pass")
    assert o.cmd("QUIT").startswith(b"+OK")
    o.close()
    time.sleep(max(0.0, 3.3 - (time.monotonic() - first_login)))
    q.login()
    assert q.cmd("STAT").startswith(b"+OK")
    q.close()


def test_expire_announces_junk_autoexpunge(make_roost):
    r = make_roost(extra={"pop3": {"include_junk": "yes"}, "imap": {"autoexpunge_days": "30"}})
    p = pop_connect(r, login=False)
    assert p.cmd("CAPA").startswith(b"+OK")
    # include_junk may differ per account: before login the smallest value, marked USER.
    assert "EXPIRE 30 USER" in p.multi().decode().splitlines()
    p.login()
    assert p.cmd("CAPA").startswith(b"+OK")
    assert "EXPIRE 30" in p.multi().decode().splitlines()
    p.close()


def test_apop_refused_and_not_advertised(server):
    p = pop_connect(server, login=False)
    assert p.cmd("APOP %s c4c9334bac560ecc979e58001b3e22fb" % DEMO_USER).startswith(b"-ERR")
    p.close()


def test_auth_plain_with_initial_response_and_challenge(server):
    creds = base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" + DEMO_PASSWORD.encode())
    p = pop_connect(server, login=False)
    assert p.cmd(b"AUTH PLAIN " + creds + b"\r\n").startswith(b"+OK")
    assert p.cmd("STAT").startswith(b"+OK 3 ")
    p.close()
    p = pop_connect(server, login=False)
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd(creds + b"\r\n").startswith(b"+OK")
    assert p.cmd("STAT").startswith(b"+OK 3 ")
    p.close()


def test_commands_not_allowed_in_wrong_state(server):
    p = pop_connect(server, login=False)
    for c in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0", "RSET", "NOOP"):
        assert p.cmd(c).startswith(b"-ERR"), c
    p.close()
    p = pop_connect(server)
    for c in ("USER x", "PASS y", "STLS", "AUTH PLAIN"):
        assert p.cmd(c).startswith(b"-ERR"), c
    p.close()


def test_pipelined_commands_answered_in_order(server):
    p = pop_connect(server)
    p.sock.sendall(b"STAT\r\nRETR 1\r\nLIST 2\r\nTOP 3 0\r\nUIDL 1\r\nNOOP\r\n")
    assert p.line().startswith(b"+OK 3 ")
    assert p.line().startswith(b"+OK")
    assert unstuff(p.multi()) == crlf(message(1))
    assert p.line().startswith(b"+OK 2 ")
    assert p.line().startswith(b"+OK")
    p.multi()
    assert p.line().startswith(b"+OK 1 ")
    assert p.line() == b"+OK"
    p.close()


def test_poplib_over_stls_and_pop3s(server):
    m = poplib.POP3("127.0.0.1", server.ports["pop3"], timeout=20)
    m.stls(client_tls_context())
    m.user(DEMO_USER)
    m.pass_(DEMO_PASSWORD)
    assert m.stat()[0] == 3
    resp, lines, octets = m.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf(message(1))
    m.quit()
    m = poplib.POP3_SSL("127.0.0.1", server.ports["pop3s"], context=client_tls_context(),
                        timeout=20)
    m.user(DEMO_USER)
    m.pass_(DEMO_PASSWORD)
    assert len(m.uidl()[1]) == 3
    resp, lines, octets = m.top(2, 0)
    assert lines[0] == b"From: Sender <sender@example.test>"
    m.quit()


def test_large_message_streamed_exactly(make_roost):
    r = make_roost()
    body = "".join("%07d %s\n" % (i, "x" * 90) for i in range(60000))  # ~6 MB
    body += ".a dotted line at the end\n"
    import_messages(r, [message(1, body=body)])
    p = pop_connect(r)
    size = int(p.cmd("LIST 1").split()[2])
    assert size > 5_000_000
    assert p.cmd("RETR 1") == b"+OK %d octets" % size
    raw = p.multi()
    assert len(unstuff(raw)) == size
    assert raw.endswith(b"\r\n..a dotted line at the end\r\n")
    assert p.cmd("NOOP") == b"+OK"
    p.close()
