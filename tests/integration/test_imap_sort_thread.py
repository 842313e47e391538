"""SORT and UID SORT (RFC 5256) with DISPLAYFROM/DISPLAYTO (RFC 5957) and ESORT (RFC 5267),
THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (RFC 5256), driven with imaplib and a raw socket."""
from imap_util import append, login, raw_login


def msg(subject, frm, to, date, msgid, refs=None, irt=None, cc=None, body="x\r\n"):
    h = "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n" % (
        frm, to, subject, date, msgid)
    if cc:
        h += "Cc: %s\r\n" % cc
    if refs:
        h += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    if irt:
        h += "In-Reply-To: <%s>\r\n" % irt
    return (h + "\r\n" + body).encode()


def populate(c):
    # 1..5, arrival dates ascending, sent dates in another order
    append(c, msg("Re: Lunch", "Carol <carol@example.test>", "zed@example.test",
                  "Wed, 3 Jan 2024 10:00:00 +0000", "m1@x", refs=["m0@x"]),
           date='"01-Feb-2024 10:00:00 +0000"')
    append(c, msg("Lunch", "bob@example.test", "Yvonne <amy@example.test>",
                  "Mon, 1 Jan 2024 10:00:00 +0000", "m0@x", cc="c2@example.test",
                  body="a longer body\r\n" * 20),
           date='"02-Feb-2024 10:00:00 +0000"')
    append(c, msg("[list] Fwd: Budget (fwd)", "Alice <zz@example.test>", "bob@example.test",
                  "Tue, 2 Jan 2024 10:00:00 +0100", "m2@x", cc="a1@example.test"),
           date='"03-Feb-2024 10:00:00 +0000"')
    append(c, msg("Re: Re: lunch", "dave@example.test", "x@example.test",
                  "Thu, 4 Jan 2024 10:00:00 +0000", "m3@x", refs=["m0@x", "m1@x"]),
           date='"04-Feb-2024 10:00:00 +0000"')
    append(c, msg("budget", "erin@example.test", "x@example.test",
                  "Fri, 5 Jan 2024 10:00:00 +0000", "m4@x"),
           date='"05-Feb-2024 10:00:00 +0000"')
    c.select("INBOX")


def sort(c, criteria, *keys, uid=False):
    if uid:
        typ, data = c.uid("SORT", criteria, "UTF-8", *keys)
    else:
        typ, data = c.sort(criteria, "UTF-8", *keys)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def thread(c, alg, *keys, uid=False):
    if uid:
        typ, data = c.uid("THREAD", alg, "UTF-8", *keys)
    else:
        typ, data = c.thread(alg, "UTF-8", *keys)
    assert typ == "OK", data
    return data[0].decode()


def test_capabilities(roost_server):
    c = login(roost_server)
    typ, data = c.capability()
    caps = data[0].decode().split()
    for cap in ("SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "ESORT"):
        assert cap in caps, caps
    c.logout()


def test_sort_keys(roost_server):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(ARRIVAL)", "ALL") == [1, 2, 3, 4, 5]
    assert sort(c, "(REVERSE ARRIVAL)", "ALL") == [5, 4, 3, 2, 1]
    # sent dates in UTC: 3 (09:00Z on the 2nd) after 2 (the 1st)
    assert sort(c, "(DATE)", "ALL") == [2, 3, 1, 4, 5]
    # base subjects: budget(3) budget(5) lunch(1) lunch(2) lunch(4), sequence breaks ties
    assert sort(c, "(SUBJECT)", "ALL") == [3, 5, 1, 2, 4]
    assert sort(c, "(SUBJECT REVERSE DATE)", "ALL") == [5, 3, 4, 1, 2]
    # first From mailbox: bob carol dave erin zz
    assert sort(c, "(FROM)", "ALL") == [2, 1, 4, 5, 3]
    # first To mailbox: amy bob x x zed
    assert sort(c, "(TO)", "ALL") == [2, 3, 4, 5, 1]
    # no Cc sorts as the empty string, first
    assert sort(c, "(CC)", "ALL") == [1, 4, 5, 3, 2]
    assert sort(c, "(SIZE)", "ALL")[-1] == 2
    # display names: alice carol dave@ erin@ bob@? -> alice(3) bob@(2) carol(1) dave(4) erin(5)
    assert sort(c, "(DISPLAYFROM)", "ALL") == [3, 2, 1, 4, 5]
    # display To: amy? no, Yvonne for 2; bob@ 3, x@ 4 5, zed@ 1
    assert sort(c, "(DISPLAYTO)", "ALL") == [3, 4, 5, 2, 1]
    # search keys apply
    assert sort(c, "(SUBJECT)", "FROM", "example", "NOT", "1") == [3, 5, 2, 4]
    assert sort(c, "(ARRIVAL)", "UID", "2:3") == [2, 3]
    c.logout()


def test_uid_sort_and_view_numbers(roost_server):
    c = login(roost_server)
    populate(c)
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()
    # UIDs 2..5 are now sequence numbers 1..4
    assert sort(c, "(DATE)", "ALL") == [1, 2, 3, 4]
    assert sort(c, "(DATE)", "ALL", uid=True) == [2, 3, 4, 5]
    # REVERSE turns only its own key; equal subjects stay in sequence order
    assert sort(c, "(REVERSE SUBJECT)", "ALL", uid=True) == [2, 4, 3, 5]
    c.logout()


def test_sort_errors(roost_server, line_client):
    c = login(roost_server)
    populate(c)
    typ, data = c.sort("(SUBJECT)", "KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s ")
    for bad in (b"a SORT (NOSUCH) UTF-8 ALL\r\n", b"a SORT () UTF-8 ALL\r\n",
                b"a SORT (SUBJECT) UTF-8\r\n", b"a SORT SUBJECT UTF-8 ALL\r\n",
                b"a THREAD NOSUCH UTF-8 ALL\r\n", b"a SORT (REVERSE) UTF-8 ALL\r\n"):
        r.send(bad)
        assert r.until(b"a ")[-1].startswith(b"a BAD"), bad
    r.send(b"a SORT (SUBJECT) UTF-8 ALL\r\n")
    lines = r.until(b"a ")
    assert lines[0] == b"* SORT 3 5 1 2 4" and lines[-1].startswith(b"a OK")
    c.logout()


def test_esort(roost_server, line_client):
    c = login(roost_server)
    populate(c)
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s ")
    r.send(b"e1 SORT RETURN (MIN MAX COUNT ALL) (DATE) UTF-8 ALL\r\n")
    lines = r.until(b"e1 ")
    assert lines[0] == b'* ESEARCH (TAG "e1") MIN 2 MAX 5 ALL 2,3,1,4,5 COUNT 5', lines
    r.send(b"e2 UID SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT lunch\r\n")
    lines = r.until(b"e2 ")
    assert lines[0] == b'* ESEARCH (TAG "e2") UID COUNT 3', lines
    r.send(b"e3 SORT RETURN () (DATE) UTF-8 SUBJECT nothing-matches\r\n")
    lines = r.until(b"e3 ")
    assert lines[0] == b'* ESEARCH (TAG "e3")', lines
    c.logout()


def test_thread_orderedsubject(roost_server):
    c = login(roost_server)
    populate(c)
    # budget: 3 (Jan 2) then 5; lunch: 2 (Jan 1), 1, 4; threads by first sent date
    assert thread(c, "ORDEREDSUBJECT", "ALL") == "(2 (1)(4))(3 5)"
    assert thread(c, "ORDEREDSUBJECT", "NOT", "5") == "(2 (1)(4))(3)"
    assert thread(c, "ORDEREDSUBJECT", "ALL", uid=True) == "(2 (1)(4))(3 5)"
    c.logout()


def test_thread_references(roost_server):
    c = login(roost_server)
    populate(c)
    # 2 <- 1 <- 4 by References; 3 and 5 share the base subject "budget" and neither is
    # a reply to the other's Message-ID: 3 ("Fwd:") is a forward, so it goes under 5
    assert thread(c, "REFERENCES", "ALL") == "(2 1 4)(5 3)"
    c.logout()


def test_thread_references_missing_parent(roost_server):
    c = login(roost_server)
    # two replies to a message the mailbox does not have: a dummy holds them together
    append(c, msg("Re: gone", "a@example.test", "b@example.test",
                  "Mon, 1 Jan 2024 10:00:00 +0000", "r1@x", irt="root@x"))
    append(c, msg("Re: gone", "a@example.test", "b@example.test",
                  "Tue, 2 Jan 2024 10:00:00 +0000", "r2@x", refs=["root@x"]))
    append(c, msg("other", "a@example.test", "b@example.test",
                  "Wed, 3 Jan 2024 10:00:00 +0000", "o1@x"))
    # a loop of References does not hang or lose a message
    append(c, msg("loop", "a@example.test", "b@example.test",
                  "Thu, 4 Jan 2024 10:00:00 +0000", "l1@x", refs=["l2@x"]))
    append(c, msg("loop", "a@example.test", "b@example.test",
                  "Fri, 5 Jan 2024 10:00:00 +0000", "l2@x", refs=["l1@x"]))
    c.select("INBOX")
    t = thread(c, "REFERENCES", "ALL")
    assert t.startswith("((1)(2))(3)"), t
    assert sorted(int(x) for x in t.replace("(", " ").replace(")", " ").split()) == [1, 2, 3, 4, 5]
    c.logout()


def test_thread_deep_chain(roost_server, line_client):
    """A thread as deep as the mailbox: each message answers the one before."""
    c = login(roost_server)
    n = 300
    for i in range(n):
        refs = ["d%d@x" % j for j in range(max(0, i - 20), i)]
        append(c, msg("Re: deep", "a@example.test", "b@example.test",
                      "Mon, 1 Jan 2024 10:00:00 +0000", "d%d@x" % i, refs=refs or None))
    c.select("INBOX")
    assert thread(c, "REFERENCES", "ALL") == "(" + " ".join(str(i + 1) for i in range(n)) + ")"
    c.logout()
