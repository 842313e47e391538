"""MULTIAPPEND (RFC 3502, all messages or none), OBJECTID (RFC 8474: MAILBOXID, EMAILID,
THREADID) and SAVEDATE (RFC 8514)."""
import re
import time

from imap_util import append, login, raw_login, simple


def status_messages(r, tag=b"s", mailbox=b"INBOX"):
    r.send(tag + b" STATUS " + mailbox + b" (MESSAGES)\r\n")
    lines = r.until(tag + b" ")
    assert lines[-1].startswith(tag + b" OK"), lines
    return int(re.search(rb"MESSAGES (\d+)", lines[0]).group(1))


# ---- MULTIAPPEND ----

def test_multiappend_capability(roost_server):
    c = login(roost_server)
    typ, caps = c.capability()
    assert b"MULTIAPPEND" in caps[0].split()


def test_multiappend_three_messages_one_appenduid(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    m1, m2, m3 = simple("one"), simple("two"), simple("three")
    r.send(b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(m1))
    assert r.line().startswith(b"+ ")
    r.send(m1 + b' (\\Flagged kw) "05-Mar-2023 01:02:03 +0000" {%d}\r\n' % len(m2))
    assert r.line().startswith(b"+ ")
    # the third as a non-synchronising literal, in the same write as its CRLF
    r.send(m2 + b" {%d+}\r\n" % len(m3) + m3 + b"\r\n")
    reply = r.line()
    m = re.match(rb"a OK \[APPENDUID (\d+) (\S+)\]", reply)
    assert m, reply
    assert m.group(2) == b"1:3"
    r.send(b"x SELECT INBOX\r\n")
    r.until(b"x OK")
    r.send(b"f FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n")
    lines = r.until(b"f ")
    text = b"\n".join(lines)
    assert text.count(b" FETCH (") == 3
    assert b"Subject: one" in text and b"Subject: two" in text and b"Subject: three" in text
    assert b"\\Seen" in lines[0]
    two = [l for l in lines if b"kw" in l]
    assert two and b"\\Flagged" in two[0] and b'"05-Mar-2023 01:02:03 +0000"' in two[0]


def test_multiappend_via_imaplib_then_single(roost_server, line_client):
    # A plain one-message APPEND still answers with one UID after a MULTIAPPEND.
    r = raw_login(roost_server, line_client)
    a, b = simple("a"), simple("b")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(a) + a + b" {%d+}\r\n" % len(b) + b + b"\r\n")
    assert r.line().startswith(b"a OK [APPENDUID ")
    c = login(roost_server)
    resp = append(c, simple("c"))
    assert resp[0].startswith(b"[APPENDUID ") and resp[0].split()[2] == b"3]"


def test_multiappend_third_too_big_stores_none(make_roost, line_client):
    srv = make_roost(extra={"limits": {"message_size": "1M"}})
    r = raw_login(srv, line_client)
    m1, m2 = simple("one"), simple("two")
    r.send(b"a APPEND INBOX {%d}\r\n" % len(m1))
    assert r.line().startswith(b"+ ")
    r.send(m1 + b" {%d}\r\n" % len(m2))
    assert r.line().startswith(b"+ ")
    r.send(m2 + b" {2000000}\r\n")
    assert r.line().startswith(b"a NO [TOOBIG]")
    # the connection goes on, and nothing of the command was stored
    assert status_messages(r) == 0
    r.send(b"n NOOP\r\n")
    assert r.line() == b"n OK NOOP completed"


def test_multiappend_third_with_nul_stores_none(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    m1, m2 = simple("one"), simple("two")
    bad = b"Subject: x\r\n\r\nnul\x00here\r\n"
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(m1) + m1 + b" {%d+}\r\n" % len(m2) + m2 +
           b" ~{%d+}\r\n" % len(bad) + bad + b" {%d+}\r\n" % len(m1) + m1 + b"\r\n")
    assert r.line().startswith(b"a NO [UNKNOWN-CTE]")
    # the fourth literal (non-synchronising) was read and dropped; the session is in step
    assert status_messages(r) == 0


def test_multiappend_cut_off_stores_none(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    m1, m2 = simple("one"), simple("two")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(m1) + m1 + b" {%d+}\r\n" % len(m2) + m2 +
           b" {5000+}\r\nonly a part of the third message")
    time.sleep(0.3)
    r.close()
    r2 = raw_login(roost_server, line_client)
    assert status_messages(r2) == 0
    # and no spool file is left behind once the server noticed
    r2.send(b"n NOOP\r\n")
    assert r2.line() == b"n OK NOOP completed"


def test_multiappend_bad_second_message(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    m1 = simple("one")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(m1) + m1 + b" (\\Bogus) {3}\r\n")
    assert r.line().startswith(b"a BAD")
    # a synchronising literal was never invited: the session goes on
    assert status_messages(r) == 0
    # after a non-synchronising one nobody can tell where the next command starts
    r.send(b"b APPEND INBOX {%d+}\r\n" % len(m1) + m1 + b" (\\Bogus) {3+}\r\nabc\r\n")
    assert r.line().startswith(b"b BAD")
    assert r.line().startswith(b"* BYE")


def test_multiappend_missing_mailbox(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"a APPEND Nope {3}\r\n")
    assert r.line() == b"a NO [TRYCREATE] Mailbox does not exist"
    assert status_messages(r) == 0
