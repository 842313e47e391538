"""MULTIAPPEND (RFC 3502, all messages or none), OBJECTID (RFC 8474: MAILBOXID, EMAILID,
THREADID) and SAVEDATE (RFC 8514)."""
import os
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
    r.send(b"a APPEND INBOX {%d}\r\n" % len(m1))
    assert r.line().startswith(b"+ ")
    r.send(m1 + b" {%d}\r\n" % len(m2))
    assert r.line().startswith(b"+ ")
    r.send(m2 + b" {5000}\r\n")
    assert r.line().startswith(b"+ ")
    r.send(b"only a part of the third message")
    r.close()
    r2 = raw_login(roost_server, line_client)
    # the server notices the closed connection: nothing of the command is ever stored, and
    # the spool files of the two complete messages and of the cut one go away
    tmp = os.path.join(roost_server.dir, "data", "mail", "example.test", "demo", "tmp")
    deadline = time.monotonic() + 10
    while os.listdir(tmp) and time.monotonic() < deadline:
        assert status_messages(r2) == 0
        time.sleep(0.1)
    assert os.listdir(tmp) == []
    assert status_messages(r2) == 0


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
    # every non-synchronising literal of the refused command is read and dropped
    r.send(b"a APPEND Nope {3+}\r\nabc {3+}\r\nabc {3+}\r\nabc\r\n")
    assert r.line() == b"a NO [TRYCREATE] Mailbox does not exist"
    assert status_messages(r) == 0


# ---- OBJECTID (RFC 8474) ----

def mailboxid_of_select(c, mailbox):
    typ, _ = c.select(mailbox)
    assert typ == "OK"
    code = c.untagged_responses.get("MAILBOXID")
    assert code, c.untagged_responses
    m = re.fullmatch(rb"\(([^()]+)\)", code[-1])
    assert m, code
    return m.group(1)


def status_mailboxid(c, mailbox):
    typ, data = c.status(mailbox, "(MAILBOXID MESSAGES)")
    assert typ == "OK", data
    m = re.search(rb"MAILBOXID \(([A-Za-z0-9_-]+)\)", data[0])
    assert m, data
    return m.group(1)


def fetch_ids(c, uid_set="1:*"):
    typ, data = c.uid("FETCH", uid_set, "(EMAILID)")
    assert typ == "OK", data
    ids = {}
    for line in data:
        m = re.search(rb"UID (\d+) EMAILID \(([A-Za-z0-9_-]+)\)", line)
        assert m, line
        ids[int(m.group(1))] = m.group(2)
    return ids


def fetch_threads(c):
    typ, data = c.uid("FETCH", "1:*", "(THREADID)")
    assert typ == "OK", data
    ids = {}
    for line in data:
        m = re.search(rb"UID (\d+) THREADID (NIL|\(([A-Za-z0-9_-]+)\))", line)
        assert m, line
        ids[int(m.group(1))] = m.group(3)
    return ids


def test_objectid_capability(roost_server):
    c = login(roost_server)
    caps = c.capability()[1][0].split()
    assert b"OBJECTID" in caps and b"SAVEDATE" in caps


def test_mailboxid_select_status_list_status_and_rename(roost_server):
    c = login(roost_server)
    c.create("Work")
    c.create("Other")
    sel_id = mailboxid_of_select(c, "Work")
    assert re.fullmatch(rb"[A-Za-z0-9_-]{1,255}", sel_id)
    assert status_mailboxid(c, "Work") == sel_id
    assert status_mailboxid(c, "Other") != sel_id
    assert status_mailboxid(c, "INBOX") not in (sel_id, status_mailboxid(c, "Other"))
    # LIST-STATUS (RFC 5819) carries it as well
    typ, data = c._simple_command("LIST", '""', "Work", "RETURN", "(STATUS (MAILBOXID))")
    assert typ == "OK"
    statuses = c.untagged_responses.pop("STATUS", [])
    assert any(b"MAILBOXID (" + sel_id + b")" in s for s in statuses), statuses
    c.close()
    typ, _ = c.rename("Work", "Play")
    assert typ == "OK"
    assert status_mailboxid(c, "Play") == sel_id
    assert mailboxid_of_select(c, "Play") == sel_id
    # a new mailbox of the old name is another mailbox
    c.create("Work")
    assert status_mailboxid(c, "Work") != sel_id


def test_emailid_distinct_and_stable_across_copy_and_move(roost_server):
    c = login(roost_server)
    for s in ("one", "two", "three"):
        append(c, simple(s))
    c.create("Archive2")
    c.select("INBOX")
    ids = fetch_ids(c)
    assert len(ids) == 3 and len(set(ids.values())) == 3
    for v in ids.values():
        assert re.fullmatch(rb"[A-Za-z0-9_-]{1,255}", v)
    typ, data = c.uid("COPY", "1", "Archive2")
    assert typ == "OK"
    typ, data = c.uid("MOVE", "2", "Archive2")
    assert typ == "OK"
    c.select("Archive2")
    moved = fetch_ids(c)
    assert sorted(moved.values()) == sorted([ids[1], ids[2]])
    # SEARCH EMAILID finds the copy by the id of the original (RFC 8474 §6)
    typ, data = c.uid("SEARCH", "EMAILID", ids[2].decode())
    assert typ == "OK" and len(data[0].split()) == 1
    assert moved[int(data[0])] == ids[2]
    typ, data = c.uid("SEARCH", "EMAILID", ids[3].decode())
    assert data == [b""]
    typ, data = c.uid("SEARCH", "THREADID", "T1")
    assert typ == "OK" and data == [b""]
    typ, data = c.uid("SEARCH", "EMAILID", "nonsense")
    assert typ == "OK" and data == [b""]
    # the copy left behind in INBOX keeps its id too
    c.select("INBOX")
    assert fetch_ids(c)[1] == ids[1]


def reply(subject, msgid, refs=None, in_reply_to=None):
    head = "From: bob@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n" % (subject, msgid)
    if in_reply_to:
        head += "In-Reply-To: <%s>\r\n" % in_reply_to
    if refs:
        head += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    return (head + "\r\nbody\r\n").encode()


def test_threadid_groups_a_thread(roost_server):
    c = login(roost_server)
    append(c, reply("root", "a@x"))
    append(c, reply("Re: root", "b@x", refs=["a@x"], in_reply_to="a@x"))
    append(c, reply("other", "d@x"))
    append(c, reply("Re: Re: root", "c@x", refs=["a@x", "b@x"], in_reply_to="b@x"))
    append(c, b"Subject: no ids at all\r\n\r\nx\r\n")
    c.create("Kept")
    c.select("INBOX")
    t = fetch_threads(c)
    assert t[1] is not None and t[1] == t[2] == t[4]
    assert t[3] is not None and t[3] != t[1]
    assert t[5] is None  # RFC 8474 §5.2: NIL when the server has no thread for it
    typ, data = c.uid("SEARCH", "THREADID", t[1].decode())
    assert data == [b"1 2 4"]
    typ, _ = c.uid("COPY", "2", "Kept")
    c.select("Kept")
    assert fetch_threads(c) == {1: t[1]}


def test_emailid_survives_restart(make_roost):
    srv = make_roost()
    c = login(srv)
    append(c, simple("keep"))
    c.select("INBOX")
    before = fetch_ids(c)
    c.logout()
    srv.stop()
    srv.start()
    c = login(srv, select="INBOX")
    assert fetch_ids(c) == before


# ---- SAVEDATE (RFC 8514) ----

def test_savedate_after_copy_and_search(roost_server):
    c = login(roost_server)
    # an old internal date: APPEND cannot set the save date, which is today
    append(c, simple("old"), date='"05-Mar-2001 01:02:03 +0000"')
    c.create("Kept")
    c.select("INBOX")
    typ, data = c.uid("FETCH", "1", "(INTERNALDATE SAVEDATE)")
    assert typ == "OK"
    m = re.search(rb'INTERNALDATE "([^"]+)" SAVEDATE "([^"]+)"', data[0])
    assert m, data
    assert m.group(1) == b"05-Mar-2001 01:02:03 +0000"
    today = time.strftime("%d-%b-%Y", time.gmtime())
    assert m.group(2).startswith(today.encode())
    typ, _ = c.uid("COPY", "1", "Kept")
    assert typ == "OK"
    c.select("Kept")
    typ, data = c.fetch("1", "(SAVEDATE INTERNALDATE)")
    m = re.search(rb'SAVEDATE "([^"]+)" INTERNALDATE "([^"]+)"', data[0])
    assert m, data
    assert m.group(1).startswith(today.encode())
    assert m.group(2) == b"05-Mar-2001 01:02:03 +0000"
    typ, data = c.search(None, "SAVEDSINCE", today)
    assert data == [b"1"]
    typ, data = c.search(None, "SAVEDON", today)
    assert data == [b"1"]
    typ, data = c.search(None, "SAVEDBEFORE", today)
    assert data == [b""]
    typ, data = c.search(None, "SINCE", today)
    assert data == [b""]  # the internal date is 2001
    typ, data = c.search(None, "SAVEDBEFORE", "01-Jan-2002")
    assert data == [b""]
    typ, data = c.search(None, "SAVEDATESUPPORTED")
    assert data == [b"1"]


def test_savedate_persists_across_restart(make_roost):
    srv = make_roost()
    c = login(srv)
    append(c, simple("p"), date='"05-Mar-2001 01:02:03 +0000"')
    c.select("INBOX")
    typ, data = c.fetch("1", "(SAVEDATE)")
    first = re.search(rb'SAVEDATE "([^"]+)"', data[0]).group(1)
    c.logout()
    srv.stop()
    srv.start()
    c = login(srv, select="INBOX")
    typ, data = c.fetch("1", "(SAVEDATE)")
    assert re.search(rb'SAVEDATE "([^"]+)"', data[0]).group(1) == first
