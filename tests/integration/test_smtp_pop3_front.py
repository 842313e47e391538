"""SMTP (MX and submission) and POP3 before any mail command, over raw sockets: greetings,
EHLO/CAPA contents, where AUTH is offered, error replies and limits, VRFY as no enumeration
oracle, STARTTLS/STLS state and command injection."""
import base64
import re
import ssl

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, Roost

HOSTNAME = b"mail.example.test"
BAD_COMMAND_LIMIT = 20  # [limits] bad_commands default


@pytest.fixture(scope="module")
def server(tmp_path_factory, certificate):
    r = Roost(str(tmp_path_factory.mktemp("smtppop3")), certificate[0], certificate[1],
              {"auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000"}})
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.start()
    yield r
    status = r.stop()
    log = r.log_text()
    assert status == 0, "roost exited with status %s\n%s" % (status, log[-3000:])
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in log, "sanitizer report in roost's log:\n" + log[-6000:]


def plain(user, password):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode())


# ---------------- SMTP ----------------

def smtp(server, line_client, listener="submission", ehlo=True):
    c = line_client(server.connect(listener))
    greeting = c.line()
    assert greeting.startswith(b"220 "), greeting
    if ehlo:
        c.send(b"EHLO client.test\r\n")
        c.until(b"250 ")
    return c


def smtp_cmd(c, line):
    """Sends one command line and returns the reply lines (multi-line replies joined)."""
    c.send(line + b"\r\n")
    return reply(c)


def reply(c):
    lines = []
    while True:
        l = c.line()
        lines.append(l)
        if len(l) < 4 or l[3:4] != b"-":
            return lines


def ehlo_keywords(lines):
    return [l[4:].split(b" ")[0].upper() for l in lines[1:]]


@pytest.mark.parametrize("listener", ("smtp", "submission"))
def test_smtp_greeting_is_220_without_enhanced_code(server, line_client, listener):
    c = line_client(server.connect(listener))
    greeting = c.line()
    assert re.match(rb"^220 mail\.example\.test ESMTP\b", greeting), greeting
    # RFC 2034 §3: the greeting carries no enhanced status code.
    assert not re.match(rb"^220 \d\.\d+\.\d+", greeting), greeting
    assert c.silent(0.3)  # one-line banner, nothing more


def test_submission_ehlo_lists_extensions(server, line_client):
    c = smtp(server, line_client, ehlo=False)
    c.send(b"EHLO client.test\r\n")
    lines = reply(c)
    assert lines[0].startswith(b"250-" + HOSTNAME), lines
    assert all(l.startswith(b"250") for l in lines)
    kw = ehlo_keywords(lines)
    for ext in (b"STARTTLS", b"AUTH", b"PIPELINING", b"ENHANCEDSTATUSCODES"):
        assert ext in kw, (ext, lines)
    auth = [l for l in lines if l[4:].upper().startswith(b"AUTH ")][0]
    assert set(auth[9:].split()) >= {b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"}, auth
    for weak in (b"CRAM-MD5", b"DIGEST-MD5", b"NTLM", b"GSSAPI"):
        assert weak not in auth


def test_mx_port_offers_no_auth(server, line_client):
    c = smtp(server, line_client, "smtp", ehlo=False)
    c.send(b"EHLO client.test\r\n")
    kw = ehlo_keywords(reply(c))
    assert b"AUTH" not in kw and b"STARTTLS" in kw and b"PIPELINING" in kw, kw
    for line in (b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD), b"AUTH LOGIN", b"AUTH PLAIN"):
        r = smtp_cmd(c, line)
        assert r[-1].startswith(b"503 5.5.1"), (line, r)
    assert smtp_cmd(c, b"NOOP")[-1].startswith(b"250")


def test_mx_port_auth_before_ehlo_refused(server, line_client):
    c = smtp(server, line_client, "smtp", ehlo=False)
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"503")


def test_submission_auth_before_ehlo_refused(server, line_client):
    c = smtp(server, line_client, ehlo=False)
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"503")
    # HELO is not enough: AUTH is an ESMTP extension.
    assert smtp_cmd(c, b"HELO client.test")[-1].startswith(b"250")
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"503")
    assert smtp_cmd(c, b"EHLO client.test")[-1].startswith(b"250 ")
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"235")
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"503")


@pytest.mark.parametrize("line", (b"FROBNICATE", b"EHLOX client.test", b"X" * 100, b"\tNOOP",
                                  b"NO\0OP", b"\xff\xfe"))
def test_smtp_unknown_command_500_5_5_2(server, line_client, line):
    c = smtp(server, line_client, "smtp")
    r = smtp_cmd(c, line)
    assert r == [r[-1]] and r[-1].startswith(b"500 5.5.2"), r
    assert smtp_cmd(c, b"NOOP")[-1].startswith(b"250")


@pytest.mark.parametrize("listener", ("smtp", "submission"))
def test_smtp_10000_byte_line_500_then_usable(server, line_client, listener):
    c = smtp(server, line_client, listener)
    r = smtp_cmd(c, b"NOOP " + b"x" * 9995)
    assert len(r) == 1 and r[0].startswith(b"500"), r  # one reply, the rest is not parsed
    assert c.silent(0.3)
    assert smtp_cmd(c, b"NOOP")[-1].startswith(b"250 ")


def test_smtp_long_line_tail_is_not_a_command(server, line_client):
    c = smtp(server, line_client, "smtp")
    # The tail after the limit looks like a command; it must be discarded with the line.
    c.send(b"NOOP " + b"x" * 4000 + b"QUIT\r\n")
    r = reply(c)
    assert r[0].startswith(b"500"), r
    assert c.silent(0.3)
    assert smtp_cmd(c, b"NOOP")[-1].startswith(b"250 ")


def test_smtp_20_bad_commands_421_and_close(server, line_client):
    c = smtp(server, line_client, "smtp")
    for i in range(BAD_COMMAND_LIMIT - 1):
        assert smtp_cmd(c, b"BOGUS%d" % i)[-1].startswith(b"500"), i
    assert smtp_cmd(c, b"NOOP")[-1].startswith(b"250")
    c.send(b"BOGUS-LAST\r\n")
    assert c.line().startswith(b"500")
    assert c.line().startswith(b"421 4."), "no 421 after %d errors" % BAD_COMMAND_LIMIT
    assert c.closed(5)


@pytest.mark.parametrize("listener", ("smtp", "submission"))
def test_vrfy_existing_and_unknown_user_identical(server, line_client, listener):
    c = smtp(server, line_client, listener)
    answers = [smtp_cmd(c, b"VRFY " + who) for who in
               (DEMO_USER.encode(), b"nobody@example.test", b"demo", b"nobody",
                b"<" + DEMO_USER.encode() + b">", b"x@unknown.test")]
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][-1][:3] in (b"252", b"502"), answers[0]


def test_helo(server, line_client):
    c = smtp(server, line_client, "smtp", ehlo=False)
    r = smtp_cmd(c, b"HELO client.test")
    assert r == [b"250 " + HOSTNAME], r
    assert smtp_cmd(c, b"HELO")[-1].startswith(b"501")


def test_quit_221_and_close(server, line_client):
    c = smtp(server, line_client, "smtp")
    r = smtp_cmd(c, b"QUIT")
    assert r[-1].startswith(b"221 2.0.0"), r
    assert c.closed(5)


def test_smtp_starttls_injection_discarded(server, line_client):
    # CVE-2011-0411: commands pipelined after STARTTLS are never executed inside TLS.
    c = smtp(server, line_client, "submission")
    c.send(b"STARTTLS\r\nRSET\r\nHELP\r\n")
    assert c.line().startswith(b"220 2.0.0"), "STARTTLS refused"
    try:
        c.starttls()
    except (ssl.SSLError, ConnectionResetError, OSError):
        return  # refusing the handshake is an acceptable answer to injected bytes
    assert c.silent(0.5), "injected command answered: %r" % c.buf
    c.send(b"EHLO client.test\r\n")
    lines = reply(c)
    assert lines[0].startswith(b"250-" + HOSTNAME), lines
    kw = ehlo_keywords(lines)
    assert b"STARTTLS" not in kw and b"AUTH" in kw, kw  # recomputed after TLS
    assert smtp_cmd(c, b"STARTTLS")[-1].startswith(b"503"), "second STARTTLS accepted"


def test_smtp_starttls_forgets_ehlo(server, line_client):
    c = smtp(server, line_client, "submission")
    assert smtp_cmd(c, b"STARTTLS")[-1].startswith(b"220")
    c.starttls()
    # RFC 3207 §4.2: the client must EHLO again before AUTH.
    assert smtp_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD))[-1].startswith(b"503")


# ---------------- POP3 ----------------

def pop3(server, line_client, listener="pop3"):
    c = line_client(server.connect(listener, tls=listener == "pop3s"))
    greeting = c.line()
    assert greeting.startswith(b"+OK"), greeting
    return c


def pop3_cmd(c, line):
    c.send(line + b"\r\n")
    return c.line()


def pop3_multi(c, line):
    c.send(line + b"\r\n")
    first = c.line()
    if not first.startswith(b"+OK"):
        return first, []
    return first, c.until(b".")[:-1]


def test_pop3_capa_content(server, line_client):
    c = pop3(server, line_client)
    first, caps = pop3_multi(c, b"CAPA")
    assert first.startswith(b"+OK"), first
    names = [l.split(b" ")[0].upper() for l in caps]
    for cap in (b"USER", b"SASL", b"STLS", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"):
        assert cap in names, (cap, caps)
    sasl = [l for l in caps if l.upper().startswith(b"SASL ")][0]
    assert set(sasl.split()[1:]) == {b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"}, sasl
    assert len(names) == len(set(names))


def test_pop3_user_pass_success(server, line_client):
    c = pop3(server, line_client)
    assert pop3_cmd(c, b"USER " + DEMO_USER.encode()).startswith(b"+OK")
    assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"+OK")
    # TRANSACTION state: AUTHORIZATION commands are gone.
    assert pop3_cmd(c, b"USER " + DEMO_USER.encode()).startswith(b"-ERR")
    assert pop3_cmd(c, b"QUIT").startswith(b"+OK")
    assert c.closed(5)


def test_pop3_user_pass_failure_identical_for_unknown_user(server, line_client):
    replies = []
    for user in (DEMO_USER, "ghost@example.test"):
        c = pop3(server, line_client)
        assert pop3_cmd(c, b"USER " + user.encode()).startswith(b"+OK")
        r = pop3_cmd(c, b"PASS wrong-password")
        assert r.startswith(b"-ERR [AUTH]"), r
        replies.append(r)
        # The USER is consumed: PASS again needs USER again; CAPA still answers.
        assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"-ERR")
        assert pop3_multi(c, b"CAPA")[0].startswith(b"+OK")
    assert replies[0] == replies[1]


def test_pop3_pass_before_user(server, line_client):
    c = pop3(server, line_client)
    r = pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode())
    assert r.startswith(b"-ERR"), r
    assert pop3_cmd(c, b"USER " + DEMO_USER.encode()).startswith(b"+OK")
    assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"+OK")


@pytest.mark.parametrize("size", (256, 1000, 12000))
def test_pop3_overlong_line_err_and_usable(server, line_client, size):
    c = pop3(server, line_client)
    for verb in (b"USER ", b"NOOP ", b"XYZZ "):
        line = verb + b"u" * (size - len(verb))
        assert len(line) == size
        r = pop3_cmd(c, line)
        assert r.startswith(b"-ERR"), (verb, r)
        assert c.silent(0.1)
    assert pop3_cmd(c, b"USER " + DEMO_USER.encode()).startswith(b"+OK")
    assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"+OK")


def test_pop3_255_octet_line_is_accepted(server, line_client):
    c = pop3(server, line_client)
    line = b"USER " + b"u" * 250
    assert len(line) == 255  # RFC 2449 §4: up to 255 octets including the keyword
    assert pop3_cmd(c, line).startswith(b"+OK")


def test_pop3_auth_without_argument_lists_mechanisms(server, line_client):
    c = pop3(server, line_client)
    first, mechs = pop3_multi(c, b"AUTH")
    assert first.startswith(b"+OK"), first
    assert set(mechs) == {b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"}, mechs
    assert pop3_cmd(c, b"AUTH PLAIN " + plain(DEMO_USER, DEMO_PASSWORD)).startswith(b"+OK")


def test_pop3_stls_twice_refused_after_tls(server, line_client):
    c = pop3(server, line_client)
    assert pop3_cmd(c, b"STLS").startswith(b"+OK")
    c.starttls()
    first, caps = pop3_multi(c, b"CAPA")
    assert b"STLS" not in caps, caps
    r = pop3_cmd(c, b"STLS")
    assert r.startswith(b"-ERR"), r
    assert pop3_cmd(c, b"USER " + DEMO_USER.encode()).startswith(b"+OK")
    assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"+OK")


def test_pop3s_stls_refused(server, line_client):
    c = pop3(server, line_client, "pop3s")
    assert pop3_cmd(c, b"STLS").startswith(b"-ERR")
    assert pop3_multi(c, b"CAPA")[0].startswith(b"+OK")


def test_pop3_stls_injection_discarded(server, line_client):
    c = pop3(server, line_client)
    c.send(b"STLS\r\nUSER " + DEMO_USER.encode() + b"\r\n")
    assert c.line().startswith(b"+OK")
    try:
        c.starttls()
    except (ssl.SSLError, ConnectionResetError, OSError):
        return
    assert c.silent(0.5), "injected command answered: %r" % c.buf
    # The injected USER did not count: PASS alone is refused.
    assert pop3_cmd(c, b"PASS " + DEMO_PASSWORD.encode()).startswith(b"-ERR")


def test_pop3_too_many_errors_closes(server, line_client):
    c = pop3(server, line_client)
    for i in range(BAD_COMMAND_LIMIT - 1):
        assert pop3_cmd(c, b"BOGUS").startswith(b"-ERR"), i
    c.send(b"BOGUS\r\n")
    assert c.line().startswith(b"-ERR")
    assert c.line().startswith(b"-ERR")
    assert c.closed(5)


def test_pop3_quit_before_login(server, line_client):
    c = pop3(server, line_client)
    assert pop3_cmd(c, b"QUIT").startswith(b"+OK")
    assert c.closed(5)
