"""IMAP before login, over raw sockets: greeting, tags, literals and their limits, recovery after
BAD, pipelining, byte-at-a-time input, ID, the pre-auth bad-command limit and the pre-auth idle
timeout."""
import socket
import ssl
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, Roost

PREAUTH_LINE = 8 * 1024      # [limits] imap_line_preauth default
PREAUTH_LITERAL = 8 * 1024   # IMAP_PREAUTH_LITERAL_MAX


@pytest.fixture(scope="module")
def server(tmp_path_factory, certificate):
    r = Roost(str(tmp_path_factory.mktemp("imapfront")), certificate[0], certificate[1],
              {"auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000"}})
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.start()
    yield r
    status = r.stop()
    log = r.log_text()
    assert status == 0, "roost exited with status %s\n%s" % (status, log[-3000:])
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in log, "sanitizer report in roost's log:\n" + log[-6000:]


def connect(server, line_client):
    c = line_client(server.connect("imap"))
    greeting = c.line()
    assert greeting.startswith(b"* OK"), greeting
    return c


def command(c, data, tag):
    """Sends data and returns every line up to the one tagged tag (or '* BAD' for '*')."""
    c.send(data)
    return c.until(tag + b" ")


def noop_works(c, tag=b"n1"):
    try:
        lines = command(c, tag + b" NOOP\r\n", tag)
    except (EOFError, OSError):
        return False
    return lines[-1].startswith(tag + b" OK")


def expect_bye_and_close(c, what=b"* BYE"):
    lines = c.until(b"* BYE")
    assert lines[-1].startswith(what), lines
    assert c.closed(5), "connection left open after BYE"
    return lines


# ---------------- greeting ----------------

def test_greeting_has_capabilities_and_never_preauth(server, line_client):
    for _ in range(3):
        c = line_client(server.connect("imap"))
        greeting = c.line()
        assert greeting.startswith(b"* OK [CAPABILITY "), greeting
        assert b"PREAUTH" not in greeting.upper()
        caps = greeting.split(b"[CAPABILITY ", 1)[1].split(b"]", 1)[0].split()
        for cap in (b"IMAP4rev1", b"STARTTLS", b"AUTH=PLAIN", b"SASL-IR", b"LITERAL+"):
            assert cap in caps, (cap, caps)
        assert b"LOGINDISABLED" not in caps  # loopback allows plaintext
        lines = command(c, b"a CAPABILITY\r\n", b"a")
        assert lines[0] == b"* CAPABILITY " + b" ".join(caps)
        assert lines[-1].startswith(b"a OK")


# ---------------- tags ----------------

BAD_TAG_COMMANDS = {
    "nul": b"a\0b NOOP\r\n",
    "leading-nul": b"\0 NOOP\r\n",
    "cr": b"a\rb NOOP\r\n",
    "tab": b"a\tb NOOP\r\n",
    "ctl-01": b"a\x01 NOOP\r\n",
    "del": b"a\x7f NOOP\r\n",
    "star": b"* NOOP\r\n",
    "star-inside": b"a*b NOOP\r\n",
    "plus": b"+ NOOP\r\n",
    "plus-inside": b"a+b NOOP\r\n",
    "8bit": b"\xc3\xa9t\xc3\xa9 NOOP\r\n",
    "8bit-inside": b"a\xff NOOP\r\n",
    "brace": b"a{ NOOP\r\n",
    "quote": b"\"a\" NOOP\r\n",
    "empty": b" NOOP\r\n",
    "bare-line": b"\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_TAG_COMMANDS))
def test_bad_tag_gets_bad_and_connection_stays_usable(server, line_client, name):
    c = connect(server, line_client)
    c.send(BAD_TAG_COMMANDS[name])
    reply = c.line()
    assert reply.startswith(b"* BAD ") or reply.startswith(b"a BAD "), reply
    # The offending bytes are never echoed back (CVE-2020-24386 class).
    assert all(0x20 <= ch < 0x7f for ch in reply), reply
    assert noop_works(c)
    # Second bad command: still under the limit of three.
    c.send(BAD_TAG_COMMANDS[name])
    assert b" BAD " in c.line()
    assert noop_works(c, b"n2")


def test_third_bad_command_before_login_ends_the_connection(server, line_client):
    c = connect(server, line_client)
    for i in range(2):
        assert command(c, b"a%d BOGUS\r\n" % i, b"a%d" % i)[-1].startswith(b"a%d BAD" % i)
    assert noop_works(c)  # a good command does not reset the count
    c.send(b"a9 BOGUS\r\n")
    assert c.line().startswith(b"a9 BAD")
    expect_bye_and_close(c)


def test_10k_tag_within_a_raised_line_limit_gets_bad(make_roost, line_client):
    r = make_roost(extra={"limits": {"imap_line_preauth": "16K"}})
    c = connect(r, line_client)
    c.send(b"t" * 10240 + b" NOOP\r\n")
    reply = c.line()
    assert reply.startswith(b"* BAD"), reply[:100]
    assert len(reply) < 200  # not echoed
    assert noop_works(c)


def test_10k_tag_over_the_preauth_line_limit_gets_bad_toobig(server, line_client):
    c = connect(server, line_client)
    c.send(b"t" * 10240 + b" NOOP\r\n")
    reply = c.line()
    assert reply.startswith(b"* BAD [TOOBIG]"), reply
    assert noop_works(c)


def test_overlong_line_with_tag_gets_tagged_bad_and_its_literal_is_skipped(server, line_client):
    """An over-long line is answered BAD [TOOBIG] with its tag, skipped to
    its end, and a non-synchronising literal it announces is skipped unread: a command hidden
    in that literal never runs."""
    c = connect(server, line_client)
    hidden = b"\r\nx LOGOUT\r\n"
    c.send(b"a1 LOGIN " + b"u" * 9000 + b" {%d+}\r\n" % len(hidden) + hidden + b"\r\n")
    reply = c.line()
    assert reply.startswith(b"a1 BAD [TOOBIG]"), reply
    assert noop_works(c)


def test_line_without_end_is_cut_off(server, line_client):
    """A 'line' that never ends is a flood: the server closes once it passed the hard cap."""
    c = connect(server, line_client)
    try:
        for _ in range(40):
            c.send(b"x" * 65536)
    except OSError:
        pass
    assert c.closed(10)


def test_10k_tag_over_the_preauth_line_limit_is_refused_without_crash(server, line_client):
    c = connect(server, line_client)
    c.send(b"t" * 10240 + b" NOOP\r\n")
    reply = c.line()
    assert b"[TOOBIG]" in reply and (reply.startswith(b"* BAD") or reply.startswith(b"* BYE"))
    assert len(reply) < 200
    assert noop_works(connect(server, line_client))


# ---------------- commands ----------------

def test_unknown_command_gets_bad(server, line_client):
    c = connect(server, line_client)
    lines = command(c, b"a FROBNICATE x\r\n", b"a")
    assert lines == [lines[-1]] and lines[-1].startswith(b"a BAD"), lines
    assert noop_works(c)


@pytest.mark.parametrize("cmd", (b"SELECT INBOX", b"EXAMINE INBOX", b"LIST \"\" *",
                                 b"STATUS INBOX (MESSAGES)", b"CREATE x", b"LOGOUTX",
                                 b"APPEND INBOX {3}", b"UID FETCH 1 BODY[]", b"ENABLE UTF8=ACCEPT",
                                 b"IDLE"))
def test_commands_before_login_get_bad(server, line_client, cmd):
    c = connect(server, line_client)
    c.send(b"a " + cmd + b"\r\n")
    reply = c.line()
    if cmd.endswith(b"{3}") and reply.startswith(b"+ "):
        # The command is assembled (within the 8 KiB pre-auth literal bound) before it is
        # judged; the literal is then skipped with it.
        c.send(b"abc\r\n")
        reply = c.line()
    assert reply.startswith(b"a BAD"), reply  # never OK
    assert noop_works(c)


def test_pipelined_commands_answered_in_order(server, line_client):
    c = connect(server, line_client)
    c.send(b"a NOOP\r\nb NOOP\r\nc CAPABILITY\r\n")
    lines = c.until(b"c ")
    assert lines[0].startswith(b"a OK"), lines
    assert lines[1].startswith(b"b OK"), lines
    assert lines[2].startswith(b"* CAPABILITY "), lines
    assert lines[3].startswith(b"c OK"), lines
    assert len(lines) == 4


def send_slowly(sock, data, pause=0.002):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        sock.sendall(data[i:i + 1])
        time.sleep(pause)


def test_byte_at_a_time_capability_and_login(server, line_client):
    c = connect(server, line_client)
    send_slowly(c.sock, b"a CAPABILITY\r\n")
    lines = c.until(b"a ")
    assert lines[0].startswith(b"* CAPABILITY ") and lines[-1].startswith(b"a OK"), lines
    send_slowly(c.sock, b'b LOGIN "%s" "%s"\r\n' % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
    assert c.until(b"b ")[-1].startswith(b"b OK"), "byte-at-a-time LOGIN failed"


def test_byte_at_a_time_login_with_literal(server, line_client):
    c = connect(server, line_client)
    pw = DEMO_PASSWORD.encode()
    send_slowly(c.sock, b"a LOGIN %s {%d}\r\n" % (DEMO_USER.encode(), len(pw)))
    assert c.line().startswith(b"+ ")
    send_slowly(c.sock, pw + b"\r\n")
    assert c.until(b"a ")[-1].startswith(b"a OK")


# ---------------- literals ----------------

def test_login_with_literal_password(server, line_client):
    c = connect(server, line_client)
    pw = DEMO_PASSWORD.encode()
    c.send(b"a LOGIN %s {%d}\r\n" % (DEMO_USER.encode(), len(pw)))
    cont = c.line()
    assert cont.startswith(b"+ "), cont
    c.send(pw + b"\r\n")
    assert c.until(b"a ")[-1].startswith(b"a OK [CAPABILITY")
    assert noop_works(c)


def test_login_with_literals_for_both_and_nonsync(server, line_client):
    c = connect(server, line_client)
    user, pw = DEMO_USER.encode(), DEMO_PASSWORD.encode()
    c.send(b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(pw), pw))
    lines = c.until(b"a ")
    assert lines[-1].startswith(b"a OK"), lines
    assert not any(l.startswith(b"+") for l in lines)  # RFC 7888: no continuation


def test_login_with_wrong_literal_password_fails(server, line_client):
    c = connect(server, line_client)
    c.send(b"a LOGIN %s {5}\r\n" % DEMO_USER.encode())
    assert c.line().startswith(b"+ ")
    c.send(b"wrong\r\n")
    assert c.until(b"a ")[-1].startswith(b"a NO [AUTHENTICATIONFAILED]")


@pytest.mark.parametrize("literal", (b"{18446744073709551616}", b"{-1}",
                                     b"{99999999999999999999999}", b"{}", b"{+}"))
def test_invalid_literal_size_gets_bad(server, line_client, literal):
    c = connect(server, line_client)
    c.send(b"a LOGIN " + literal + b"\r\n")
    reply = c.line()
    assert reply.startswith(b"a BAD"), reply
    assert noop_works(c)


def test_preauth_sync_literal_over_8k_gets_toobig_without_continuation(server, line_client):
    c = connect(server, line_client)
    for tag, size in ((b"a", PREAUTH_LITERAL + 1), (b"b", 999999999)):
        c.send(b"%s LOGIN {%d}\r\n" % (tag, size))
        reply = c.line()
        assert reply.startswith(tag + b" BAD [TOOBIG]"), reply
    # Nothing waits for literal bytes: the next command is a command.
    assert noop_works(c)


def test_preauth_literal_of_8k_is_accepted(server, line_client):
    c = connect(server, line_client)
    c.send(b"a LOGIN {%d}\r\n" % PREAUTH_LITERAL)
    assert c.line().startswith(b"+ ")
    c.send(b"u" * PREAUTH_LITERAL + b" x\r\n")
    reply = c.until(b"a ")[-1]
    assert reply.startswith(b"a BAD") or reply.startswith(b"a NO"), reply
    assert noop_works(c)


def test_oversize_nonsync_literal_gets_bye_toobig(server, line_client):
    c = connect(server, line_client)
    c.send(b"a LOGIN {100000+}\r\n" + b"x" * 4096)
    lines = expect_bye_and_close(c, b"* BYE [TOOBIG]")
    assert not any(l.startswith(b"+") for l in lines)


def test_100k_line_without_crlf_gets_bye_toobig(server, line_client):
    c = connect(server, line_client)
    try:
        c.send(b"a NOOP " + b"x" * (100 * 1024))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may hang up before taking all of it
    assert c.line().startswith(b"* BYE [TOOBIG]")
    assert c.closed(5)
    assert noop_works(connect(server, line_client))


@pytest.mark.parametrize("head", (b"a BOGUS", b"a LOGIN", b"a NOOP"))
def test_literal_of_bad_command_is_never_executed(server, line_client, head):
    # After BAD the whole command is skipped, announced literals included.
    c = connect(server, line_client)
    inner = b"\r\nx LOGOUT\r\n"
    c.send(head + b" {%d+}\r\n" % len(inner) + inner + b"\r\ny NOOP\r\n")
    lines = c.until(b"y ")
    assert lines[0].startswith(b"a BAD"), lines
    assert lines[-1].startswith(b"y OK"), lines
    assert not any(l.startswith(b"* BYE") or l.startswith(b"x ") for l in lines), lines
    assert noop_works(c)


def test_sync_literal_of_bad_command_is_never_executed(server, line_client):
    c = connect(server, line_client)
    inner = b"\r\nx LOGOUT\r\n"
    c.send(b"a BOGUS {%d}\r\n" % len(inner))
    assert c.line().startswith(b"+ ")
    c.send(inner + b"\r\ny NOOP\r\n")
    lines = c.until(b"y ")
    assert lines[0].startswith(b"a BAD") and lines[-1].startswith(b"y OK"), lines
    assert not any(l.startswith(b"* BYE") or l.startswith(b"x ") for l in lines), lines


@pytest.mark.parametrize("args", (b'"us\0er" "p"', b'"user" "p\0w"', b"us\0er pw",
                                  b'"us\rer" "p"'))
def test_nul_or_cr_in_login_strings_gets_bad(server, line_client, args):
    # CVE-2019-11500: NUL inside quoted strings and atoms is refused.
    c = connect(server, line_client)
    c.send(b"a LOGIN " + args + b"\r\n")
    reply = c.line()
    assert reply.startswith(b"a BAD") or reply.startswith(b"* BAD"), reply
    assert noop_works(c)


def test_nul_in_literal_password_is_refused_not_truncated(server, line_client):
    c = connect(server, line_client)
    pw = DEMO_PASSWORD.encode() + b"\0tail"
    c.send(b"a LOGIN %s {%d+}\r\n%s\r\n" % (DEMO_USER.encode(), len(pw), pw))
    reply = c.until(b"a ")[-1]
    assert reply.startswith(b"a BAD") or reply.startswith(b"a NO"), reply


# ---------------- ID (RFC 2971) ----------------

def id_pairs(n):
    return b"(" + b" ".join(b'"f%d" "v%d"' % (i, i) for i in range(n)) + b")"


def test_id_variants(server, line_client):
    c = connect(server, line_client)
    for i, args in enumerate((b"NIL", b"()", b'("name" "client" "version" "1.0")',
                              b'("name" NIL "event" "back-fill")', id_pairs(30))):
        tag = b"i%d" % i
        lines = command(c, tag + b" ID " + args + b"\r\n", tag)
        assert lines[-1].startswith(tag + b" OK"), (args, lines)
        assert lines[0].startswith(b'* ID ("name" "Roost"'), lines
    lines = command(c, b"j ID " + id_pairs(31) + b"\r\n", b"j")
    assert lines[-1].startswith(b"j BAD"), lines
    lines = command(c, b'k ID ("' + b"f" * 31 + b'" "v")\r\n', b"k")
    assert lines[-1].startswith(b"k BAD"), lines
    assert noop_works(c)


def test_id_malformed_gets_bad(server, line_client):
    for args in (b"", b"(", b'("name")', b'("a" "b"', b"FOO"):
        c = connect(server, line_client)
        c.send(b"a ID " + args + b"\r\n" if args else b"a ID\r\n")
        assert c.until(b"a ")[-1].startswith(b"a BAD"), args
        assert noop_works(c)


# ---------------- pre-auth timeout ----------------

def test_preauth_idle_timeout_is_configurable(make_roost, line_client):
    r = make_roost(extra={"imap": {"timeout_preauth": "10"}})
    c = connect(r, line_client)
    t0 = time.monotonic()
    line = c.line(timeout=60)
    elapsed = time.monotonic() - t0
    assert line.startswith(b"* BYE"), line
    assert elapsed >= 9.0, elapsed  # not (much) before the configured 10 s
    assert c.closed(3)


# ---------------- STARTTLS ----------------

def test_starttls_injection_discarded_and_capabilities_recomputed(server, line_client):
    c = connect(server, line_client)
    c.send(b"a STARTTLS\r\nb CAPABILITY\r\nc LOGOUT\r\n")
    assert c.line().startswith(b"a OK"), "STARTTLS refused"
    try:
        c.starttls()
    except (ssl.SSLError, ConnectionResetError, OSError):
        return  # a failed handshake is an acceptable answer to injected bytes
    assert c.silent(0.5), "injected command answered: %r" % c.buf
    lines = command(c, b"d CAPABILITY\r\n", b"d")
    caps = lines[0].split()[2:]
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps, lines
    assert command(c, b"e STARTTLS\r\n", b"e")[-1].startswith(b"e BAD")
    lines = command(c, b'f LOGIN "%s" "%s"\r\n' % (DEMO_USER.encode(), DEMO_PASSWORD.encode()),
                    b"f")
    assert lines[-1].startswith(b"f OK"), lines
    assert command(c, b"g STARTTLS\r\n", b"g")[-1].startswith(b"g BAD")
