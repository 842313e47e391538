"""SMTP delivery end to end: what a client sends over the MX, submission and LMTP listeners is
what lands in the Maildir (after the added Return-Path:/Received: lines) or in the queue spool.
Covers plain DATA, pipelining, BDAT (RFC 3030), 8BITMIME/SMTPUTF8, per-recipient failures,
aliases/plus-addressing/catch-all/postmaster, AUTH + sender policy, relay policy, SIZE
(RFC 1870) and the message size limit, swaks over STARTTLS, and LMTP (RFC 2033).

Mail is read straight from DATA_DIR/mail/<domain>/<user>/cur/ and DATA_DIR/queue/active/."""
import base64
import glob
import hashlib
import hmac
import os
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, Roost, SmtpClient, free_port

BOB = "bob@example.test"
BOB_PASSWORD = "bob's password"
CAROL = "carol@other.test"
MSG_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory, certificate):
    lmtp = free_port()
    r = Roost(str(tmp_path_factory.mktemp("smtpdel")), certificate[0], certificate[1],
              {"limits": {"message_size": "64K"},
               "listen": {"lmtp": "127.0.0.1:%d" % lmtp},
               "auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000"}})
    r.ports["lmtp"] = lmtp
    r.add_user(DEMO_USER, DEMO_PASSWORD)
    r.add_user(BOB, BOB_PASSWORD)
    r.add_user(CAROL, "carol pw")
    r.cli("alias", "add", "team@example.test", DEMO_USER, BOB)
    r.cli("alias", "add", "sales@example.test", DEMO_USER)
    r.cli("alias", "add", "@other.test", CAROL)
    r.cli("alias", "add", "postmaster@example.test", BOB)
    r.start()
    yield r
    status = r.stop()
    log = r.log_text()
    assert status == 0, "roost exited with status %s\n%s" % (status, log[-3000:])
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in log, "sanitizer report in roost's log:\n" + log[-6000:]


# ---------------- helpers ----------------

class Smtp(SmtpClient):
    """Raw SMTP client: exact bytes out, whole replies in."""

    def __init__(self, server, listener="smtp", ehlo=b"client.test", verb=b"EHLO"):
        super().__init__(server.connect(listener))
        code, _ = self.reply()
        assert code == 220
        if ehlo:
            code, self.ehlo_lines = self.cmd(verb + b" " + ehlo)
            assert code == 250, self.ehlo_lines

    def auth_plain(self, user, password):
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
        code, lines = self.cmd(b"AUTH PLAIN " + token)
        assert code == 235, lines



@pytest.fixture
def smtp(server):
    clients = []

    def factory(*args, **kw):
        c = Smtp(server, *args, **kw)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()


def maildir(server, address):
    user, domain = address.split("@")
    return os.path.join(server.data_dir, "mail", domain, user)


def inbox_files(server, address):
    return sorted(glob.glob(os.path.join(maildir(server, address), "cur", "*")) +
                  glob.glob(os.path.join(maildir(server, address), "new", "*")))


def read_new(server, address, before, count=1):
    """The message files that appeared since `before` (a list of names)."""
    deadline = time.monotonic() + 5
    while True:
        new = [f for f in inbox_files(server, address) if f not in before]
        if len(new) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(new) == count, (address, new)
    out = []
    for f in new:
        with open(f, "rb") as fh:
            out.append(fh.read())
    return out


def queue_files(server):
    return sorted(glob.glob(os.path.join(server.data_dir, "queue", "active", "*")))


# Fields the delivery checks put above the message (mailauth, spam, virus), after Received:.
CHECK_FIELDS = (b"authentication-results:", b"x-spam-score:", b"x-spam-status:",
                b"x-virus-scanned:", b"x-virus-status:")


def split_added(stored):
    """Splits off the Return-Path: line and the Received: field the server added, and drops
    the verdict fields of the delivery checks that follow them, leaving the message as sent."""
    assert stored.startswith(b"Return-Path: <"), stored[:200]
    rp, rest = stored.split(b"\r\n", 1)
    assert rest.startswith(b"Received: from "), rest[:200]
    i = 0
    lines = rest.split(b"\r\n")
    received = [lines[0]]
    i = 1
    while lines[i][:1] in (b" ", b"\t"):
        received.append(lines[i])
        i += 1
    while lines[i].lower().startswith(CHECK_FIELDS):
        i += 1
        while lines[i][:1] in (b" ", b"\t"):
            i += 1
    body = b"\r\n".join(lines[i:])
    return rp, b"\r\n".join(received), body


def dot_stuff(msg):
    lines = msg.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def message(subject, sender=DEMO_USER, to=DEMO_USER, body=b"Hello.\r\n", extra=b""):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.test>\r\n%s\r\n"
            % (sender.encode(), to.encode(), subject.encode(),
               hashlib.sha1(subject.encode()).hexdigest().encode(), extra) + body)


def send_data(c, msg):
    code, lines = c.cmd(b"DATA")
    assert code == 354, lines
    c.send(dot_stuff(msg) + b".\r\n")
    return c.reply()


# ---------------- plain delivery ----------------

def test_plain_delivery_is_byte_exact(server):
    body = (b"Line one\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\n"
            b"trailing spaces   \r\n\r\n\tTab line\r\n" + b"x" * 990 + b"\r\n")
    msg = message("byte exact", sender="sender@remote.test", body=body)
    before = inbox_files(server, DEMO_USER)
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as s:
        refused = s.sendmail("sender@remote.test", [DEMO_USER], msg)
        assert refused == {}
    stored, = read_new(server, DEMO_USER, before)
    rp, received, rest = split_added(stored)
    assert rp == b"Return-Path: <sender@remote.test>"
    assert b"by mail.example.test (Roost) with ESMTP" in received, received
    assert b"for <demo@example.test>" in received
    assert rest == msg
    # The file name carries the UID.
    name = os.path.basename(
        [f for f in inbox_files(server, DEMO_USER) if f not in before][0])
    assert ",U=" in name


def test_helo_session_gets_smtp_protocol(server, smtp):
    c = smtp(ehlo=b"oldclient.test", verb=b"HELO")
    before = inbox_files(server, DEMO_USER)
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    msg = message("helo")
    assert send_data(c, msg)[0] == 250
    stored, = read_new(server, DEMO_USER, before)
    _, received, rest = split_added(stored)
    assert b"with SMTP" in received and b"from oldclient.test" in received
    assert rest == msg


def test_empty_message_and_null_sender(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    assert c.cmd(b"MAIL FROM:<>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    assert c.cmd(b"DATA")[0] == 354
    c.send(b".\r\n")
    assert c.reply()[0] == 250
    stored, = read_new(server, DEMO_USER, before)
    rp, _, rest = split_added(stored)
    assert rp == b"Return-Path: <>"
    assert rest == b""


def test_pipelined_transaction_in_one_write(server, smtp):
    c = smtp()
    before_demo = inbox_files(server, DEMO_USER)
    before_bob = inbox_files(server, BOB)
    c.send(b"MAIL FROM:<p@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
           b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(4)]
    assert codes == [250, 250, 250, 354]
    msg = message("pipelined", to=BOB)
    c.send(msg + b".\r\nQUIT\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 221
    for addr, before in ((DEMO_USER, before_demo), (BOB, before_bob)):
        stored, = read_new(server, addr, before)
        _, received, rest = split_added(stored)
        assert b"for <" not in received  # two recipients: no "for" clause
        assert rest == msg


def test_multiple_transactions_on_one_connection(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    for i in range(3):
        assert c.cmd(b"MAIL FROM:<m@remote.test>")[0] == 250
        assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
        assert send_data(c, message("multi %d" % i))[0] == 250
    assert len(read_new(server, DEMO_USER, before, count=3)) == 3


# ---------------- BDAT ----------------

def test_bdat_single_chunk_last(server, smtp):
    c = smtp()
    assert b"250-CHUNKING" in c.ehlo_lines
    before = inbox_files(server, DEMO_USER)
    msg = message("bdat one", body=b".not stuffed in BDAT\r\n")
    assert c.cmd(b"MAIL FROM:<b@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    code, lines = c.reply()
    assert code == 250, lines
    stored, = read_new(server, DEMO_USER, before)
    assert split_added(stored)[2] == msg


def test_bdat_several_chunks_and_zero_last(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    msg = message("bdat many", body=b"part one\r\npart two\r\n" * 50)
    assert c.cmd(b"MAIL FROM:<b@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    pieces = [msg[:7], msg[7:500], msg[500:]]
    for p in pieces:
        c.send(b"BDAT %d\r\n" % len(p) + p)
        code, lines = c.reply()
        assert code == 250, lines
    c.send(b"BDAT 0 LAST\r\n")
    assert c.reply()[0] == 250
    stored, = read_new(server, DEMO_USER, before)
    assert split_added(stored)[2] == msg


def test_bdat_pipelined(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    msg = message("bdat pipelined")
    half = len(msg) // 2
    c.send(b"MAIL FROM:<b@remote.test>\r\nRCPT TO:<demo@example.test>\r\n"
           b"BDAT %d\r\n%sBDAT %d LAST\r\n%sNOOP\r\n"
           % (half, msg[:half], len(msg) - half, msg[half:]))
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 250, 250, 250]
    stored, = read_new(server, DEMO_USER, before)
    assert split_added(stored)[2] == msg


def test_bdat_errors_keep_the_session_in_sync(server, smtp):
    # RFC 3030 + 21Nails CVE-2020-28019: BDAT without MAIL, BDAT then DATA.
    c = smtp()
    c.send(b"BDAT 5 LAST\r\nRSET \r\n")  # the 5 octets "RSET " are chunk data, not a command
    code, _ = c.reply()
    assert code == 503
    assert c.reply()[0] == 500  # the CRLF after the chunk is an empty command, not RSET
    assert c.cmd(b"NOOP")[0] == 250
    assert c.cmd(b"MAIL FROM:<b@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    c.send(b"BDAT 3\r\nabc")
    assert c.reply()[0] == 250
    assert c.cmd(b"DATA")[0] == 503  # DATA cannot follow BDAT
    assert c.cmd(b"RSET")[0] == 250
    assert c.cmd(b"NOOP")[0] == 250


# ---------------- 8BITMIME / SMTPUTF8 ----------------

def test_8bitmime_body_is_stored_unchanged(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    body = "Grüße aus Köln — 日本語\r\n".encode("utf-8") + bytes(range(0x80, 0x100)) + b"\r\n"
    msg = message("8bit", body=body,
                  extra=b"Content-Type: text/plain; charset=utf-8\r\n"
                        b"Content-Transfer-Encoding: 8bit\r\n")
    assert c.cmd(b"MAIL FROM:<e@remote.test> BODY=8BITMIME")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    assert send_data(c, msg)[0] == 250
    stored, = read_new(server, DEMO_USER, before)
    assert split_added(stored)[2] == msg


def test_smtputf8_sender_delivered(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    sender = "jürgen@bücher.test".encode("utf-8")
    assert c.cmd(b"MAIL FROM:<" + sender + b"> SMTPUTF8 BODY=8BITMIME")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    msg = b"From: <" + sender + b">\r\nSubject: utf8\r\n\r\nHi\r\n"
    assert send_data(c, msg)[0] == 250
    stored, = read_new(server, DEMO_USER, before)
    rp, _, rest = split_added(stored)
    assert rp == b"Return-Path: <" + sender + b">"
    assert rest == msg


def test_smtputf8_local_part_recipient(server, smtp):
    """A UTF-8 local part (RFC 6531) passes the SMTP syntax check; the accounts directory only
    holds ASCII local parts (auth/address.c), so `ü@example.test` cannot exist as a user and
    is an unknown recipient, and `roost user add` refuses it."""
    r = server.cli("user", "add", "ü@example.test", input="pw\n", check=False)
    assert r.returncode != 0
    c = smtp()
    assert c.cmd("MAIL FROM:<x@remote.test> SMTPUTF8".encode())[0] == 250
    code, lines = c.cmd("RCPT TO:<ü@example.test>".encode())
    assert code == 550 and b"5.1.1" in lines[0], lines
    # Without SMTPUTF8 the same address is a syntax error.
    assert c.cmd(b"RSET")[0] == 250
    assert c.cmd(b"MAIL FROM:<x@remote.test>")[0] == 250
    code, lines = c.cmd("RCPT TO:<ü@example.test>".encode())
    assert code in (501, 553), lines


def test_utf8_sender_without_smtputf8_refused(server, smtp):
    c = smtp()
    code, lines = c.cmd("MAIL FROM:<jürgen@remote.test>".encode())
    assert code in (501, 553) and b"5." in lines[0], lines


# ---------------- recipients ----------------

def test_one_unknown_recipient_others_delivered(server, smtp):
    c = smtp()
    before_demo = inbox_files(server, DEMO_USER)
    before_bob = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<u@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<nobody@example.test>")
    assert code == 550 and lines[0].startswith(b"550 5.1.1"), lines
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = message("one unknown")
    assert send_data(c, msg)[0] == 250
    assert split_added(read_new(server, DEMO_USER, before_demo)[0])[2] == msg
    assert split_added(read_new(server, BOB, before_bob)[0])[2] == msg
    assert not os.path.exists(maildir(server, "nobody@example.test"))


@pytest.mark.parametrize("rcpt,expect", [
    ("team@example.test", [DEMO_USER, BOB]),          # alias to two users
    ("sales@example.test", [DEMO_USER]),               # alias to one
    ("demo+lists@example.test", [DEMO_USER]),          # plus-addressing
    ("DEMO@EXAMPLE.TEST", [DEMO_USER]),                # case
    ("demo@example.test.", [DEMO_USER]),               # trailing dot
    ("whoever@other.test", [CAROL]),                   # catch-all
    ("postmaster@example.test", [BOB]),                # postmaster alias
    ("postmaster", [BOB]),                             # <postmaster>, RFC 5321 §4.5.1
    ("PostMaster", [BOB]),
])
def test_recipient_resolution(server, smtp, rcpt, expect):
    c = smtp()
    befores = {a: inbox_files(server, a) for a in (DEMO_USER, BOB, CAROL)}
    assert c.cmd(b"MAIL FROM:<r@remote.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<%s>" % rcpt.encode())
    assert code == 250, lines
    msg = message("resolve " + rcpt)
    assert send_data(c, msg)[0] == 250
    for a, before in befores.items():
        if a in expect:
            assert split_added(read_new(server, a, before)[0])[2] == msg
        else:
            time.sleep(0.05)
            assert inbox_files(server, a) == before, a


def test_alias_and_its_target_get_one_copy(server, smtp):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    assert c.cmd(b"MAIL FROM:<r@remote.test>")[0] == 250
    for r in (b"demo@example.test", b"team@example.test", b"demo+x@example.test"):
        assert c.cmd(b"RCPT TO:<%s>" % r)[0] == 250
    assert send_data(c, message("dedupe"))[0] == 250
    assert len(read_new(server, DEMO_USER, before)) == 1


# ---------------- submission, AUTH, sender policy ----------------

def scram_sha256(c, user, password):
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    code, lines = c.cmd(b"AUTH SCRAM-SHA-256 " + base64.b64encode(("n,," + first_bare).encode()))
    assert code == 334, lines
    server_first = base64.b64decode(lines[0][4:]).decode()
    fields = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert fields["r"].startswith(nonce)
    salt = base64.b64decode(fields["s"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(fields["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = "c=biws,r=" + fields["r"]
    auth_msg = ",".join((first_bare, server_first, without_proof)).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    final = without_proof + ",p=" + base64.b64encode(proof).decode()
    code, lines = c.cmd(base64.b64encode(final.encode()))
    assert code == 334, lines
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    expect = "v=" + base64.b64encode(hmac.new(server_key, auth_msg, hashlib.sha256).digest()).decode()
    assert base64.b64decode(lines[0][4:]).decode() == expect
    code, lines = c.cmd(b"")
    assert code == 235, lines


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "SCRAM-SHA-256"])
def test_auth_then_send(server, smtp, mech):
    c = smtp("submission")
    if mech == "PLAIN":
        c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    elif mech == "LOGIN":
        code, lines = c.cmd(b"AUTH LOGIN")
        assert code == 334 and base64.b64decode(lines[0][4:]).lower().startswith(b"user")
        code, lines = c.cmd(base64.b64encode(DEMO_USER.encode()))
        assert code == 334
        assert c.cmd(base64.b64encode(DEMO_PASSWORD.encode()))[0] == 235
    else:
        scram_sha256(c, DEMO_USER, DEMO_PASSWORD)
    before = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = message("auth " + mech, to=BOB)
    assert send_data(c, msg)[0] == 250
    _, received, rest = split_added(read_new(server, BOB, before)[0])
    assert b"with ESMTPA" in received
    assert rest == msg


def test_submission_requires_auth(server, smtp):
    c = smtp("submission")
    code, lines = c.cmd(b"MAIL FROM:<demo@example.test>")
    assert code == 530, lines


@pytest.mark.parametrize("sender,ok", [
    ("demo@example.test", True),
    ("demo+tag@example.test", True),
    ("sales@example.test", True),     # an alias leading to the user
    ("bob@example.test", False),
    ("team@example.test", True),      # team includes demo
    ("anyone@other.test", False),     # catch-all does not make addresses one's own
    ("demo@remote.test", False),
])
def test_sender_must_be_owned(server, smtp, sender, ok):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    code, lines = c.cmd(b"MAIL FROM:<%s>" % sender.encode())
    if ok:
        assert code == 250, lines
    else:
        assert code == 553 and lines[0].startswith(b"553 5.7.1"), lines


def test_from_header_mismatch_refused_after_data(server, smtp):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    before = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    code, lines = send_data(c, message("forged from", sender=BOB, to=BOB))
    assert code == 553 and lines[0].startswith(b"553 5.7.1"), lines
    # A display name holding someone else's address is no address.
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = (b'From: "bob@example.test" <demo@example.test>\r\nTo: bob@example.test\r\n'
           b"Subject: display\r\n\r\nok\r\n")
    assert send_data(c, msg)[0] == 250
    # Several From: addresses: every one must be owned.
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = (b"From: demo@example.test,\r\n bob@example.test\r\nSubject: two\r\n\r\nx\r\n")
    assert send_data(c, msg)[0] == 553
    # No From: at all.
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    assert send_data(c, b"Subject: no from\r\n\r\nx\r\n")[0] == 553
    stored = read_new(server, BOB, before)
    assert b"Subject: display" in stored[0]


@pytest.mark.parametrize("header", [
    b"From: demo@example.test\r\nFrom: bob@example.test\r\n",   # the second From: is shown by some readers
    b"From: demo@example.test\r\nFROM : bob@example.test\r\n",  # obs-optional white space
    b"From : bob@example.test\r\n",
    b"From:\r\n bob@example.test\r\n",                           # folded
    b"From: (demo@example.test) bob@example.test\r\n",           # a comment is no address
])
def test_every_from_field_is_checked(server, smtp, header):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    code, lines = send_data(c, header + b"Subject: two froms\r\n\r\nx\r\n")
    assert code == 553 and b"bob@example.test" in lines[0], lines


@pytest.mark.parametrize("header,field", [
    (b"From: demo@example.test\r\nSender: bob@example.test\r\n", b"Sender"),
    (b"From: demo@example.test\r\nResent-From: bob@example.test\r\n", b"Resent-From"),
    (b"From: demo@example.test\r\nResent-From: demo@example.test\r\n"
     b"Resent-Sender: <bob@example.test>\r\n", b"Resent-Sender"),
    # Resent fields do not make someone else's From: sendable (a redirect of a colleague's
    # message would carry our DKIM signature over their address).
    (b"Resent-From: demo@example.test\r\nFrom: bob@example.test\r\n", b"From"),
])
def test_sender_and_resent_fields_must_be_owned(server, smtp, header, field):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    before = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    code, lines = send_data(c, header + b"Subject: originators\r\n\r\nx\r\n")
    assert code == 553 and lines[0].startswith(b"553 5.7.1 " + field + b":"), lines
    assert b"bob@example.test" in lines[0], lines
    assert inbox_files(server, BOB) == before


def test_nul_in_an_originator_field_refused(server, smtp):
    """Readers differ in what they show around a NUL; the check must not read only up to it."""
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = b"From: demo@example.test\x00bob@example.test\r\nSubject: nul\r\n\r\nx\r\n"
    code, lines = send_data(c, msg)
    assert code == 553 and lines[0].startswith(b"553 5.7.1 From:"), lines


def test_own_sender_and_resent_fields_accepted(server, smtp):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    before = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = (b"From: demo@example.test\r\nSender: sales@example.test\r\n"
           b"Resent-From: demo+tag@example.test\r\nSubject: own\r\n\r\nx\r\n")
    assert send_data(c, msg)[0] == 250
    assert b"Subject: own" in read_new(server, BOB, before)[0]


@pytest.mark.parametrize("body,expect", [
    (b"bare\nLF\r\n", b"bare\r\nLF\r\n"),
    (b"bare\rCR\r\n", b"bare\r\nCR\r\n"),
    (b"dot\n.\nsmuggle\r\n", b"dot\r\n.\r\nsmuggle\r\n"),
    (b"ends in CR\r", b"ends in CR\r\n"),
])
def test_bdat_bare_line_ends_normalised_on_submission(server, smtp, body, expect):
    """As with DATA, a message submitted with BDAT is stored (and queued) with CRLF only, so
    "\n.\n" can never reach the next server."""
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    before = inbox_files(server, BOB)
    head = b"From: <demo@example.test>\r\nSubject: bdat bare\r\n\r\n"
    msg = head + body
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    # split right after the CR of the body, so a CRLF pair can straddle two chunks
    cut = len(head) + body.index(b"\r") + 1 if b"\r" in body else len(msg) // 2
    c.send(b"BDAT %d\r\n" % cut + msg[:cut])
    assert c.reply()[0] == 250
    c.send(b"BDAT %d LAST\r\n" % (len(msg) - cut) + msg[cut:])
    assert c.reply()[0] == 250
    assert split_added(read_new(server, BOB, before)[0])[2] == head + expect


@pytest.mark.parametrize("listener", ["smtp", "lmtp"])
def test_bdat_bare_line_ends_refused_on_mx_and_lmtp(server, smtp, listener):
    c = smtp(listener, verb=b"LHLO" if listener == "lmtp" else b"EHLO")
    before = inbox_files(server, DEMO_USER)
    msg = b"Subject: bdat bare\r\n\r\nx\n.\ny\r\n"
    assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith(b"554 5.6.0"), lines
    assert c.cmd(b"NOOP")[0] == 250
    time.sleep(0.1)
    assert inbox_files(server, DEMO_USER) == before


def test_relay_refused_on_mx(server, smtp):
    c = smtp()
    n = len(queue_files(server))
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<someone@remote.test>")
    assert code == 554 and lines[0].startswith(b"554 5.7.1"), lines
    assert len(queue_files(server)) == n


def test_authenticated_relay_goes_to_queue(server, smtp):
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    before = set(queue_files(server))
    before_bob = inbox_files(server, BOB)
    assert c.cmd(b"MAIL FROM:<demo@example.test> ENVID=abc+2B1 RET=HDRS")[0] == 250
    assert c.cmd(b"RCPT TO:<x@remote.test> NOTIFY=FAILURE,DELAY ORCPT=rfc822;x@remote.test")[0] == 250
    assert c.cmd(b"RCPT TO:<y@far.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = message("relay", to="x@remote.test")
    assert send_data(c, msg)[0] == 250
    new = [f for f in queue_files(server) if f not in before]
    assert len(new) == 1
    with open(new[0], "rb") as f:
        q = f.read()
    head, data = q.split(b"\ndata ", 1)
    lines = head.split(b"\n")
    assert lines[0] == b"ROOSTQ 1"
    assert b"sender demo@example.test" in lines
    assert b"auth demo@example.test" in lines
    rcpts = [l for l in lines if l.startswith(b"rcpt ")]
    assert rcpts == [b"rcpt pending x@remote.test notify=FAILURE,DELAY orcpt=rfc822;x@remote.test",
                     b"rcpt pending y@far.test notify= orcpt="], rcpts
    size, content = data.split(b"\n", 1)
    assert int(size) == len(content)
    assert content.startswith(b"Received: from client.test")
    assert not content.startswith(b"Return-Path")
    assert content.endswith(b"\r\n" + msg) or content.split(b"\r\n\r\n", 1)[1] == msg.split(b"\r\n\r\n", 1)[1]
    # The local recipient got it too, with a Return-Path.
    assert split_added(read_new(server, BOB, before_bob)[0])[2] == msg


def test_relay_of_address_with_space_refused_at_rcpt(server, smtp):
    """A quoted local part with a space is valid SMTP but cannot go into the queue file: it is
    refused at RCPT (permanently), not with a 451 after every DATA."""
    c = smtp("submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    assert c.cmd(b"MAIL FROM:<demo@example.test>")[0] == 250
    code, lines = c.cmd(b'RCPT TO:<"a b"@remote.test>')
    assert code == 553 and lines[0].startswith(b"553 5.1.3"), lines
    assert c.cmd(b'RCPT TO:<"a.b"@remote.test>')[0] == 250
    before = set(queue_files(server))
    assert send_data(c, message("quoted", to="a.b@remote.test"))[0] == 250
    new = [f for f in queue_files(server) if f not in before]
    assert len(new) == 1
    with open(new[0], "rb") as f:
        assert b'\nrcpt pending "a.b"@remote.test notify= orcpt=\n' in f.read()


# ---------------- size ----------------

def test_size_parameter_too_big(server, smtp):
    c = smtp()
    assert b"250-SIZE %d" % MSG_LIMIT in c.ehlo_lines
    code, lines = c.cmd(b"MAIL FROM:<s@remote.test> SIZE=%d" % (MSG_LIMIT + 1))
    assert code == 552 and b"5.3.4" in lines[0], lines
    assert c.cmd(b"MAIL FROM:<s@remote.test> SIZE=%d" % MSG_LIMIT)[0] == 250


@pytest.mark.parametrize("use_bdat", [False, True])
def test_message_over_limit_refused_after_data(server, smtp, use_bdat):
    c = smtp()
    before = inbox_files(server, DEMO_USER)
    assert c.cmd(b"MAIL FROM:<s@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    big = message("too big", body=(b"y" * 998 + b"\r\n") * 70)
    assert len(big) > MSG_LIMIT
    if use_bdat:
        c.send(b"BDAT %d LAST\r\n" % len(big) + big)
        code, lines = c.reply()
    else:
        code, lines = send_data(c, big)
    assert code == 552 and lines[0].startswith(b"552 5.3.4"), lines
    # The connection is still usable and nothing was stored.
    assert c.cmd(b"MAIL FROM:<s@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    small = message("after too big")
    assert send_data(c, small)[0] == 250
    stored = read_new(server, DEMO_USER, before)
    assert split_added(stored[0])[2] == small


# ---------------- swaks over STARTTLS ----------------

def test_swaks_submission_starttls(server):
    before = inbox_files(server, BOB)
    r = subprocess.run(
        ["swaks", "--server", "127.0.0.1:%d" % server.ports["submission"], "--tls",
         "--auth", "PLAIN", "--auth-user", DEMO_USER, "--auth-password", DEMO_PASSWORD,
         "--from", DEMO_USER, "--to", BOB, "--header", "Subject: swaks test",
         "--body", "sent by swaks", "--helo", "swaks.test", "--timeout", "15"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "250 2.0.0" in r.stdout
    stored, = read_new(server, BOB, before)
    _, received, rest = split_added(stored)
    assert b"with ESMTPSA" in received
    assert b"TLS" in received or b"tls" in received.lower()
    assert b"Subject: swaks test" in rest and b"sent by swaks" in rest


# ---------------- LMTP ----------------

def test_lmtp_per_recipient_replies(server, smtp):
    c = smtp("lmtp", verb=b"LHLO", ehlo=b"mta.test")
    assert c.cmd(b"EHLO x")[0] == 500
    befores = {a: inbox_files(server, a) for a in (DEMO_USER, BOB)}
    assert c.cmd(b"MAIL FROM:<l@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    code, lines = c.cmd(b"RCPT TO:<ghost@example.test>")
    assert code == 550 and b"5.1.1" in lines[0]
    assert c.cmd(b"RCPT TO:<team@example.test>")[0] == 250
    assert c.cmd(b"DATA")[0] == 354
    msg = message("lmtp")
    c.send(msg + b".\r\n")
    first = c.reply()
    second = c.reply()
    assert first[0] == 250 and b"demo@example.test" in first[1][0], first
    assert second[0] == 250 and b"team@example.test" in second[1][0], second
    assert c.silent()  # exactly one reply per accepted recipient
    for a, before in befores.items():
        _, received, rest = split_added(read_new(server, a, before)[0])
        assert b"with LMTP" in received
        assert rest == msg


def test_lmtp_refused_data_gets_one_reply_per_recipient(server, smtp):
    """RFC 2033 §4.2: after the final "." one reply for each accepted recipient, also when the
    message as a whole is refused (here: too big, and bare LF)."""
    c = smtp("lmtp", verb=b"LHLO", ehlo=b"mta.test")
    for bad, code in ((b"x" * (MSG_LIMIT + 10) + b"\r\n", 552), (b"bare\nLF\r\n", 554)):
        assert c.cmd(b"MAIL FROM:<l@remote.test>")[0] == 250
        assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
        assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
        assert c.cmd(b"DATA")[0] == 354
        c.send(b"Subject: bad\r\n\r\n" + bad + b".\r\n")
        assert c.reply()[0] == code
        assert c.reply()[0] == code
        assert c.cmd(b"NOOP")[0] == 250


def test_lmtp_data_without_recipients_is_503(server, smtp):
    c = smtp("lmtp", verb=b"LHLO", ehlo=b"mta.test")
    assert c.cmd(b"MAIL FROM:<l@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<ghost@example.test>")[0] == 550
    assert c.cmd(b"DATA")[0] == 503  # RFC 2033 §4.2


def test_lmtp_bdat_per_recipient_replies(server, smtp):
    c = smtp("lmtp", verb=b"LHLO", ehlo=b"mta.test")
    befores = {a: inbox_files(server, a) for a in (DEMO_USER, BOB)}
    assert c.cmd(b"MAIL FROM:<l@remote.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
    assert c.cmd(b"RCPT TO:<bob@example.test>")[0] == 250
    msg = message("lmtp bdat")
    c.send(b"BDAT 10\r\n" + msg[:10])
    assert c.reply()[0] == 250  # a chunk that is not the last: one reply
    c.send(b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:])
    replies = [c.reply() for _ in range(2)]
    assert [r[0] for r in replies] == [250, 250], replies
    assert b"demo@example.test" in replies[0][1][0] and b"bob@example.test" in replies[1][1][0]
    assert c.cmd(b"NOOP")[0] == 250
    for a, before in befores.items():
        assert split_added(read_new(server, a, before)[0])[2] == msg
