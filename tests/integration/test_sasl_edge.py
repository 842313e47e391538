"""SASL edge cases over IMAP AUTHENTICATE (with SASL-IR), SMTP AUTH on the submission port and
POP3 AUTH, all on loopback where PLAIN and LOGIN are allowed.

Every case runs against the three protocols through one small driver that sends a mechanism
and responses and classifies the reply as a continuation, success, authentication failure or
protocol error. IMAP counts a BAD reply toward its pre-auth limit of three, so cases that expect
a protocol error use a fresh connection each.
"""
import base64
import hashlib
import hmac
import os
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, Roost

PROTOCOLS = ("imap", "smtp", "pop3")
LISTENER = {"imap": "imap", "smtp": "submission", "pop3": "pop3"}
OTHER_USER = "other@example.test"
OTHER_PASSWORD = "another secret"
SASL_LIMIT = 12288  # RFC 4954 §4 line bound for AUTH responses


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(authcid, password, authzid=""):
    return b64(("%s\0%s\0%s" % (authzid, authcid, password)).encode())


class Reply:
    """One server reply: kind is cont, ok, fail (credentials refused), error (protocol error),
    bye (connection closing) or other; payload is the continuation data."""

    def __init__(self, kind, line, payload=b""):
        self.kind, self.line, self.payload = kind, line, payload

    def __repr__(self):
        return "Reply(%s, %r)" % (self.kind, self.line)


class Session:
    """A raw connection to one protocol, past its greeting (and EHLO for SMTP)."""

    def __init__(self, server, proto, line_client, tag="a"):
        self.proto = proto
        self.c = line_client(server.connect(LISTENER[proto]))
        self.tag_base = tag
        self.n = 0
        self.tag = None
        greeting = self.c.line()
        if proto == "imap":
            assert greeting.startswith(b"* OK"), greeting
        elif proto == "smtp":
            assert greeting.startswith(b"220 "), greeting
            self.c.send(b"EHLO client.test\r\n")
            ehlo = self.c.until(b"250 ")
            assert any(l.startswith(b"250-AUTH") for l in ehlo), ehlo
        else:
            assert greeting.startswith(b"+OK"), greeting

    def classify(self, line):
        p = self.proto
        if p == "imap":
            if line == b"+" or line.startswith(b"+ "):
                return Reply("cont", line, line[2:])
            if line.startswith(b"* BYE"):
                return Reply("bye", line)
            word = line[len(self.tag) + 1:].split(b" ", 1)[0]
            if not line.startswith(self.tag.encode() + b" "):
                return Reply("other", line)
            return Reply({b"OK": "ok", b"NO": "fail", b"BAD": "error"}.get(word, "other"),
                         line)
        if p == "smtp":
            code = line[:3]
            if code == b"334":
                return Reply("cont", line, line[4:])
            if code == b"235":
                return Reply("ok", line)
            if code == b"535":
                return Reply("fail", line)
            if code == b"421":
                return Reply("bye", line)
            if code[:1] == b"5":
                return Reply("error", line)
            return Reply("other", line)
        if line.startswith(b"+OK"):
            return Reply("ok", line)
        if line == b"+" or line.startswith(b"+ "):
            return Reply("cont", line, line[2:])
        if line.startswith(b"-ERR [AUTH]"):
            return Reply("fail", line)
        if line.startswith(b"-ERR"):
            return Reply("error", line)
        return Reply("other", line)

    def read(self, timeout=10):
        line = self.c.line(timeout)
        while self.proto == "imap" and line.startswith(b"* ") and not line.startswith(b"* BYE"):
            line = self.c.line(timeout)
        return self.classify(line)

    def auth(self, mech, initial=None):
        """Starts an exchange; initial is the SASL-IR/initial-response text ("=" for empty)."""
        arg = "" if initial is None else " " + initial
        if self.proto == "imap":
            self.n += 1
            self.tag = "%s%d" % (self.tag_base, self.n)
            self.c.send(("%s AUTHENTICATE %s%s\r\n" % (self.tag, mech, arg)).encode())
        else:
            self.c.send(("AUTH %s%s\r\n" % (mech, arg)).encode())
        return self.read()

    def respond(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.c.send(text + b"\r\n")
        return self.read()

    def alive(self):
        """True when the connection still answers a harmless command."""
        try:
            if self.proto == "imap":
                self.c.send(b"z NOOP\r\n")
                return self.c.until(b"z ")[-1].startswith(b"z OK")
            if self.proto == "smtp":
                self.c.send(b"NOOP\r\n")
                return self.c.line().startswith(b"250")
            self.c.send(b"CAPA\r\n")
            lines = self.c.until(b".")
            return lines[0].startswith(b"+OK")
        except (EOFError, OSError):
            return False

    def login_plain(self, user=DEMO_USER, password=DEMO_PASSWORD):
        return self.auth("PLAIN", plain(user, password))


# One server for the module keeps the suite fast; login penalties that would refuse a busy
# test client are set out of the way (their own tests live elsewhere).
MODULE_SETTINGS = {
    "auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000"},
    "limits": {"bad_commands": "1000"},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, certificate):
    r = Roost(str(tmp_path_factory.mktemp("sasl")), certificate[0], certificate[1],
              MODULE_SETTINGS)
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.add_user(OTHER_USER, OTHER_PASSWORD)
    r.start()
    yield r
    status = r.stop()
    log = r.log_text()
    assert status == 0, "roost exited with status %s\n%s" % (status, log[-3000:])
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in log, "sanitizer report in roost's log:\n" + log[-6000:]


def expect_ok(reply):
    assert reply.kind == "ok", reply


def expect_clean_failure(reply):
    """A refused exchange: a failure or protocol error, never success, never a hang-up."""
    assert reply.kind in ("fail", "error"), reply


# ---------------- PLAIN ----------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_with_initial_response(server, line_client, proto):
    s = Session(server, proto, line_client)
    r = s.login_plain()
    expect_ok(r)
    if proto == "imap":
        assert b"[CAPABILITY " in r.line  # RFC 9051 §6.2.2: capabilities after login
    assert s.alive()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_without_initial_response(server, line_client, proto):
    s = Session(server, proto, line_client)
    r = s.auth("PLAIN")
    assert r.kind == "cont" and r.payload == b"", r
    expect_ok(s.respond(plain(DEMO_USER, DEMO_PASSWORD)))
    assert s.alive()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_authzid_equal_to_authcid_accepted(server, line_client, proto):
    s = Session(server, proto, line_client)
    expect_ok(s.auth("PLAIN", plain(DEMO_USER, DEMO_PASSWORD, authzid=DEMO_USER)))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_authzid_other_user_refused(server, line_client, proto):
    s = Session(server, proto, line_client)
    r = s.auth("PLAIN", plain(DEMO_USER, DEMO_PASSWORD, authzid=OTHER_USER))
    assert r.kind == "fail", r
    assert s.alive()


NUL_CASES = {
    0: (DEMO_USER + DEMO_PASSWORD).encode(),
    1: (DEMO_USER + "\0" + DEMO_PASSWORD).encode(),
    3: ("\0" + DEMO_USER + "\0" + DEMO_PASSWORD + "\0").encode(),
    200: b"\0" * 200,
}


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("nuls", sorted(NUL_CASES))
def test_plain_wrong_number_of_nuls(server, line_client, proto, nuls):
    message = NUL_CASES[nuls]
    assert message.count(b"\0") == nuls
    # As initial response and as a continuation line, each on its own connection.
    s = Session(server, proto, line_client)
    expect_clean_failure(s.auth("PLAIN", b64(message)))
    assert s.alive()
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    expect_clean_failure(s.respond(b64(message)))
    assert s.alive()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_plain_255_octet_fields_are_valid_syntax(server, line_client, proto):
    # RFC 4616 §2: servers MUST accept authcid and passwd of up to 255 octets.
    long_user = "u" * 242 + "@example.test"
    assert len(long_user) == 255
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN", plain(long_user, "p" * 255)).kind == "fail"
    s2 = Session(server, proto, line_client)
    assert s2.auth("PLAIN", plain(DEMO_USER, "p" * 255)).kind == "fail"
    s3 = Session(server, proto, line_client)
    assert s3.auth("PLAIN", plain(DEMO_USER, DEMO_PASSWORD, authzid=DEMO_USER)).kind == "ok"
    assert s.alive() and s2.alive()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_empty_responses_fail_cleanly(server, line_client, proto):
    # CVE-2020-12674: a zero-length SASL message must be a clean failure.
    s = Session(server, proto, line_client)
    expect_clean_failure(s.auth("PLAIN", "="))
    assert s.alive()
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    expect_clean_failure(s.respond(b""))
    assert s.alive()
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    expect_clean_failure(s.respond(b"="))
    assert s.alive()


BAD_BASE64 = (
    "!!!!",
    "AGRlbW8=AGNvcnJlY3Q=",           # '=' in the middle
    "AGRl bW9AZXhhbXBsZS50ZXN0",       # space inside
    "AGRlbW9AZXhhbXBsZS50ZXN0AGE",     # truncated quantum
    "\u00e9\u00e9\u00e9\u00e9",        # 8-bit
)


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("text", BAD_BASE64, ids=range(len(BAD_BASE64)))
def test_invalid_base64_is_a_clean_error(server, line_client, proto, text):
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    r = s.respond(text.encode("utf-8"))
    assert r.kind == "error", r
    assert s.alive()
    # Once more as initial response, where the protocol allows the characters on one line.
    s = Session(server, proto, line_client)
    r = s.auth("PLAIN", text)
    assert r.kind == "error", r
    assert s.alive()


def too_long_reply_matches(proto, reply):
    if proto == "imap":
        return reply.kind == "error" and b"[TOOBIG]" in reply.line
    if proto == "smtp":
        return reply.line.startswith(b"500 5.5.6")
    return reply.kind == "error" and b"too long" in reply.line.lower()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_response_over_12288_octets_refused_and_connection_usable(server, line_client, proto):
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    r = s.respond(b"A" * (SASL_LIMIT + 1))
    assert too_long_reply_matches(proto, r), r
    assert s.alive()
    # The session is not stuck in the exchange: a new login works.
    expect_ok(s.login_plain())


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_response_of_exactly_12288_octets_is_not_too_long(server, line_client, proto):
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    # Valid base64 that decodes to 9216 NULs: malformed PLAIN, but within the line bound.
    r = s.respond(b"A" * SASL_LIMIT)
    expect_clean_failure(r)
    assert not too_long_reply_matches(proto, r), r
    assert s.alive()


# ---------------- cancel ----------------

def expect_cancel(proto, reply):
    if proto == "imap":
        assert reply.kind == "error", reply  # RFC 9051 §6.2.2: tagged BAD
    elif proto == "smtp":
        assert reply.line.startswith(b"501 "), reply  # RFC 4954 §4
    else:
        assert reply.line.startswith(b"-ERR"), reply


def login_with_login_mech(s, user=DEMO_USER, password=DEMO_PASSWORD):
    r = s.auth("LOGIN")
    assert r.kind == "cont" and base64.b64decode(r.payload) == b"Username:", r
    r = s.respond(b64(user))
    assert r.kind == "cont" and base64.b64decode(r.payload) == b"Password:", r
    return s.respond(b64(password))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_cancel_then_another_mechanism_works(server, line_client, proto):
    s = Session(server, proto, line_client)
    assert s.auth("PLAIN").kind == "cont"
    expect_cancel(proto, s.respond(b"*"))
    expect_ok(login_with_login_mech(s))
    assert s.alive()


def server_rss_kib(server):
    with open("/proc/%d/status" % server.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def sanitized(server):
    with open("/proc/%d/maps" % server.proc.pid) as f:
        return "asan" in f.read()


def cancel_cycle(s, proto):
    """Cancel PLAIN before any data, then SCRAM after the server-first message, then LOGIN
    after the user name: three mechanisms, each abandoned mid-exchange (CVE-2011-1720)."""
    assert s.auth("PLAIN").kind == "cont"
    expect_cancel(proto, s.respond(b"*"))
    first, _bare = scram_client_first(DEMO_USER, b64(os.urandom(12)))
    r = s.auth("SCRAM-SHA-256", b64(first))
    assert r.kind == "cont", r
    expect_cancel(proto, s.respond(b"*"))


@pytest.mark.parametrize("proto", ("smtp", "pop3"))
def test_cancel_and_restart_200_times_on_one_connection(server, line_client, proto):
    # Cancels count as errors; the module's server raises that per-connection limit to 1000.
    r = server
    s = Session(r, proto, line_client)
    for _ in range(20):
        cancel_cycle(s, proto)
    rss_before = server_rss_kib(r)
    for _ in range(180):
        cancel_cycle(s, proto)
    growth = server_rss_kib(r) - rss_before
    # Quarantined frees make a sanitizer build grow; a leak per cycle would still show.
    assert growth < (32768 if sanitized(r) else 4096), "server RSS grew by %d KiB" % growth
    expect_ok(login_with_login_mech(s))
    assert s.alive()


def test_imap_cancel_and_restart_200_times(server, line_client):
    # IMAP answers a cancel with BAD, and three BADs before login end the connection, so the
    # 200 cycles run two to a connection (the one-connection form is the next test).
    rss_before = None
    for i in range(100):
        s = Session(server, "imap", line_client)
        cancel_cycle(s, "imap")
        if i == 9:
            rss_before = server_rss_kib(server)
        if i < 99:
            s.c.close()
    growth = server_rss_kib(server) - rss_before
    assert growth < (32768 if sanitized(server) else 4096), "server RSS grew by %d KiB" % growth
    expect_ok(login_with_login_mech(s))


def test_imap_cancel_and_restart_200_times_on_one_connection(server, line_client):
    s = Session(server, "imap", line_client)
    for _ in range(200):
        assert s.auth("PLAIN").kind == "cont"
        expect_cancel("imap", s.respond(b"*"))
    expect_ok(login_with_login_mech(s))


# ---------------- LOGIN ----------------

@pytest.mark.parametrize("proto", PROTOCOLS)
def test_login_mechanism_flow(server, line_client, proto):
    s = Session(server, proto, line_client)
    expect_ok(login_with_login_mech(s))
    s = Session(server, proto, line_client)
    assert login_with_login_mech(s, password="wrong").kind == "fail"
    assert s.alive()


@pytest.mark.parametrize("proto", ("smtp", "pop3", "imap"))
def test_login_mechanism_with_initial_user_name(server, line_client, proto):
    s = Session(server, proto, line_client)
    r = s.auth("LOGIN", b64(DEMO_USER))
    assert r.kind == "cont" and base64.b64decode(r.payload) == b"Password:", r
    expect_ok(s.respond(b64(DEMO_PASSWORD)))


# ---------------- SCRAM-SHA-256 (RFC 5802, RFC 7677) ----------------

def saslname(name):
    return name.replace("=", "=3D").replace(",", "=2C")


def scram_client_first(user, cnonce, gs2="n,,"):
    bare = "n=%s,r=%s" % (saslname(user), cnonce)
    return gs2 + bare, bare


def parse_attrs(message):
    return dict(part.split("=", 1) for part in message.split(","))


def scram_client_final(password, gs2, bare, server_first, cnonce):
    """Returns (client-final-message, expected server signature, parsed server-first)."""
    attrs = parse_attrs(server_first)
    assert attrs["r"].startswith(cnonce) and len(attrs["r"]) > len(cnonce), server_first
    salt, iterations = base64.b64decode(attrs["s"], validate=True), int(attrs["i"])
    assert 4096 <= iterations <= 1000000, server_first  # RFC 7677 §4: at least 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=%s,r=%s" % (b64(gs2), attrs["r"])
    auth_message = ",".join((bare, server_first, without_proof)).encode()
    client_sig = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    server_sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    return without_proof + ",p=" + b64(proof), server_sig, attrs


def scram_begin(s, user, gs2="n,,"):
    cnonce = b64(os.urandom(18))
    first, bare = scram_client_first(user, cnonce, gs2)
    r = s.auth("SCRAM-SHA-256", b64(first))
    return r, gs2, bare, cnonce


def scram_exchange(s, user, password, mutate_final=None):
    """Runs SCRAM up to the server's answer to client-final; returns (reply, server_sig)."""
    r, gs2, bare, cnonce = scram_begin(s, user)
    assert r.kind == "cont", r
    server_first = base64.b64decode(r.payload, validate=True).decode()
    final, server_sig, _ = scram_client_final(password, gs2, bare, server_first, cnonce)
    if mutate_final:
        final = mutate_final(final)
    return s.respond(b64(final)), server_sig


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_scram_success_and_server_signature_verified(server, line_client, proto):
    s = Session(server, proto, line_client)
    r, server_sig = scram_exchange(s, DEMO_USER, DEMO_PASSWORD)
    # The server-final message travels as a last challenge; the client answers it empty.
    assert r.kind == "cont", r
    server_final = base64.b64decode(r.payload, validate=True).decode()
    assert server_final.startswith("v="), server_final
    assert hmac.compare_digest(base64.b64decode(server_final[2:]), server_sig)
    expect_ok(s.respond(b""))
    assert s.alive()


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_scram_wrong_password_fails_like_unknown_user(server, line_client, proto):
    replies = []
    for user, password in ((DEMO_USER, "wrong password"),
                           ("nobody@example.test", "wrong password")):
        s = Session(server, proto, line_client, tag="x")
        r, gs2, bare, cnonce = scram_begin(s, user)
        assert r.kind == "cont", r
        server_first = base64.b64decode(r.payload).decode()
        attrs = parse_attrs(server_first)
        assert set(attrs) == {"r", "s", "i"}, server_first
        assert len(base64.b64decode(attrs["s"])) == 16
        final, _, _ = scram_client_final(password, gs2, bare, server_first, cnonce)
        r = s.respond(b64(final))
        assert r.kind == "fail", r
        replies.append((attrs["i"], r.line))
        assert s.alive()
    assert replies[0] == replies[1]


def replace_nonce(final):
    attrs = final.split(",")
    attrs[1] = attrs[1][:-2] + ("AA" if not attrs[1].endswith("AA") else "BB")
    return ",".join(attrs)


def tamper_proof(final):
    head, proof = final.rsplit(",p=", 1)
    raw = bytearray(base64.b64decode(proof))
    raw[0] ^= 1
    return head + ",p=" + b64(bytes(raw))


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("mutate", (replace_nonce, tamper_proof), ids=("nonce", "proof"))
def test_scram_bad_nonce_or_tampered_proof_fails(server, line_client, proto, mutate):
    s = Session(server, proto, line_client)
    r, _ = scram_exchange(s, DEMO_USER, DEMO_PASSWORD, mutate_final=mutate)
    expect_clean_failure(r)
    assert s.alive()
    expect_ok(s.login_plain())


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_scram_channel_binding_request_refused(server, line_client, proto):
    # We offer no SCRAM-SHA-256-PLUS, so "p=tls-unique" cannot be honoured (RFC 5802 §6).
    s = Session(server, proto, line_client)
    r, _gs2, _bare, _cnonce = scram_begin(s, DEMO_USER, gs2="p=tls-unique,,")
    expect_clean_failure(r)
    assert s.alive()
    # "y" (client supports binding, thinks the server does not) is acceptable.
    s = Session(server, proto, line_client)
    r, gs2, bare, cnonce = scram_begin(s, DEMO_USER, gs2="y,,")
    assert r.kind == "cont", r
    final, server_sig, _ = scram_client_final(
        DEMO_PASSWORD, gs2, bare, base64.b64decode(r.payload).decode(), cnonce)
    r = s.respond(b64(final))
    assert r.kind == "cont", r
    assert base64.b64decode(base64.b64decode(r.payload).decode()[2:]) == server_sig
    expect_ok(s.respond(b""))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_scram_final_with_mismatched_channel_binding_fails(server, line_client, proto):
    s = Session(server, proto, line_client)
    r, _ = scram_exchange(s, DEMO_USER, DEMO_PASSWORD,
                          mutate_final=lambda f: "c=%s,%s" % (b64("y,,"), f.split(",", 1)[1]))
    expect_clean_failure(r)
    assert s.alive()


# ---------------- enumeration: identical failures ----------------

def failure_line(server, line_client, proto, how, user, password):
    s = Session(server, proto, line_client, tag="x")
    if how == "PLAIN":
        r = s.auth("PLAIN", plain(user, password))
    elif how == "PLAIN-cont":
        assert s.auth("PLAIN").kind == "cont"
        r = s.respond(plain(user, password))
    elif how == "LOGIN":
        r = login_with_login_mech(s, user, password)
    elif how == "command" and proto == "imap":
        s.c.send(("x1 LOGIN \"%s\" \"%s\"\r\n" % (user, password)).encode())
        s.tag = "x1"
        r = s.read()
    else:  # POP3 USER/PASS
        s.c.send(("USER %s\r\n" % user).encode())
        assert s.c.line().startswith(b"+OK")
        s.c.send(("PASS %s\r\n" % password).encode())
        r = s.read()
    assert r.kind == "fail", r
    return r.line


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_unknown_user_and_wrong_password_replies_identical(server, line_client, proto):
    hows = ["PLAIN", "PLAIN-cont", "LOGIN"] + (["command"] if proto != "smtp" else [])
    for how in hows:
        wrong = failure_line(server, line_client, proto, how, DEMO_USER, "not the password")
        unknown = failure_line(server, line_client, proto, how, "ghost@example.test",
                               "not the password")
        unknown_domain = failure_line(server, line_client, proto, how, "ghost@nowhere.test",
                                      DEMO_PASSWORD)
        assert wrong == unknown == unknown_domain, (how, wrong, unknown, unknown_domain)
    expected = {"imap": b"x1 NO [AUTHENTICATIONFAILED]", "smtp": b"535 5.7.8",
                "pop3": b"-ERR [AUTH]"}[proto]
    assert wrong.startswith(expected), wrong


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_unknown_mechanism_refused(server, line_client, proto):
    for mech in ("DIGEST-MD5", "NTLM", "CRAM-MD5", "X" * 40):
        s = Session(server, proto, line_client)
        r = s.auth(mech)
        assert r.kind in ("fail", "error"), (mech, r)
        assert s.alive()


def test_failure_delay_applies_to_unknown_user_too(make_roost, line_client):
    r = make_roost(extra={"auth": {"failure_delay": "300", "failure_delay_max": "300"}})
    for user in (DEMO_USER, "ghost@example.test"):
        s = Session(r, "smtp", line_client)
        t0 = time.monotonic()
        assert s.auth("PLAIN", plain(user, "wrong")).kind == "fail"
        assert time.monotonic() - t0 >= 0.25
