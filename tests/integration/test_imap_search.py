"""SEARCH / UID SEARCH keys (RFC 9051 §6.4.4), ESEARCH (RFC 4731), CHARSET, nesting limit."""
from imap_util import append, login, message, raw_login, simple


def populate(c):
    append(c, simple("Grüße aus Köln", "Body mentions Zebra.\r\n", "alice@example.test"),
           flags="(\\Seen)", date='"01-Jan-2020 10:00:00 +0000"')
    append(c, simple("second", "nothing here\r\n", "bob@example.test"),
           flags="(\\Flagged $Work)", date='"15-Jun-2021 10:00:00 +0000"')
    append(c, message("msg_10.txt"), date='"20-Apr-2001 12:00:00 +0000"')
    c.select("INBOX")


def s(c, *keys):
    typ, data = c.search(None, *keys)
    assert typ == "OK", data
    return data[0].split()


def test_keys(roost_server):
    c = login(roost_server)
    populate(c)
    assert s(c, "ALL") == [b"1", b"2", b"3"]
    assert s(c, "SEEN") == [b"1"] and s(c, "UNSEEN") == [b"2", b"3"]
    assert s(c, "FLAGGED") == [b"2"] and s(c, "UNFLAGGED") == [b"1", b"3"]
    assert s(c, "KEYWORD", "$Work") == [b"2"] and s(c, "UNKEYWORD", "$Work") == [b"1", b"3"]
    assert s(c, "FROM", "bob") == [b"2"]
    assert s(c, "TO", "cravindogs") == [b"3"]
    assert s(c, "SUBJECT", "lyrics") == [b"3"]
    assert s(c, "HEADER", "Message-ID", "second") == [b"2"]
    assert s(c, "HEADER", "MIME-Version", '""') == [b"3"]
    assert s(c, "BODY", "zebra") == [b"1"]
    # decoded bodies: base64 and quoted-printable parts
    assert s(c, "BODY", '"Base64 encoded"') == [b"3"]
    assert s(c, "TEXT", "Cravindogs") == [b"3"]
    assert s(c, "BEFORE", "1-Jan-2020") == [b"3"]
    assert s(c, "ON", "01-Jan-2020") == [b"1"]
    assert s(c, "SINCE", "2-Jan-2020") == [b"2"]
    assert s(c, "SENTON", "20-Apr-2001") == [b"3"]
    assert s(c, "SENTBEFORE", "1-Jan-2000") == [b"1", b"2"]
    assert s(c, "SENTSINCE", "1-Jan-2000") == [b"3"]
    assert s(c, "LARGER", "500") == [b"3"] and s(c, "SMALLER", "500") == [b"1", b"2"]
    assert s(c, "NOT", "SEEN") == [b"2", b"3"]
    assert s(c, "OR", "SEEN", "FLAGGED") == [b"1", b"2"]
    assert s(c, "(SEEN UNFLAGGED)") == [b"1"]
    assert s(c, "2:*") == [b"2", b"3"] and s(c, "*:2") == [b"2", b"3"]
    assert s(c, "UID", "1,3") == [b"1", b"3"]
    assert s(c, "ANSWERED") == [] and s(c, "UNANSWERED") == [b"1", b"2", b"3"]
    assert s(c, "DELETED") == [] and s(c, "UNDELETED") == [b"1", b"2", b"3"]
    assert s(c, "DRAFT") == [] and s(c, "UNDRAFT") == [b"1", b"2", b"3"]
    # The first SELECT of the mailbox: all three are recent here (RFC 3501 §2.3.2).
    assert s(c, "NEW") == [b"2", b"3"] and s(c, "OLD") == [] and s(c, "RECENT") == [b"1", b"2", b"3"]
    typ, data = c.uid("SEARCH", "FLAGGED")
    assert data == [b"2"]


def test_charset_and_utf8(roost_server, line_client):
    c = login(roost_server)
    populate(c)
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    word = "KÖLN".encode()
    r.send(b"a SEARCH CHARSET UTF-8 SUBJECT {%d+}\r\n" % len(word) + word + b"\r\n")
    assert r.until(b"a ")[0] == b"* SEARCH 1"
    r.send(b"b SEARCH CHARSET ISO-8859-1 ALL\r\n")
    assert r.line() == b"b NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset"


def test_esearch(roost_server, line_client):
    c = login(roost_server)
    populate(c)
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"e SEARCH RETURN (MIN MAX COUNT ALL) UNFLAGGED\r\n")
    lines = r.until(b"e ")
    assert lines[0] == b'* ESEARCH (TAG "e") MIN 1 MAX 3 ALL 1,3 COUNT 2'
    r.send(b"u UID SEARCH RETURN () ALL\r\n")
    assert r.until(b"u ")[0] == b'* ESEARCH (TAG "u") UID ALL 1:3'
    r.send(b"c SEARCH RETURN (COUNT) DELETED\r\n")
    assert r.until(b"c ")[0] == b'* ESEARCH (TAG "c") COUNT 0'
    # IMAP4rev2: SEARCH answers with ESEARCH
    r.send(b"v ENABLE IMAP4rev2\r\nw SEARCH SEEN\r\n")
    r.until(b"v ")
    assert r.until(b"w ")[0] == b'* ESEARCH (TAG "w") ALL 1'


def test_bad_searches(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    deep = b"NOT " * 40 + b"ALL"
    nested = b"(" * 40 + b"ALL" + b")" * 40
    for i, q in enumerate([deep, nested, b"BOGUS", b"BEFORE 32-Foo-2020", b"$,1", b"",
                           b"OR SEEN", b"HEADER Subject", b"(", b"RETURN (SAVE BOGUS) ALL"]):
        tag = b"b%d" % i
        r.send(tag + b" SEARCH " + q + b"\r\n")
        assert r.until(tag + b" ")[-1].startswith(tag + b" BAD"), q
    r.send(b"ok SEARCH " + b"NOT " * 20 + b"ALL\r\n")
    assert r.until(b"ok ")[-1] == b"ok OK SEARCH completed"
