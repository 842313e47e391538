"""FETCH (RFC 9051 §6.4.5): items, macros, sections, byte-exact partials, BINARY, RFC822.*,
UID first, \\Seen on BODY[], streaming of a large message."""
import re

from imap_util import append, login, message, raw_login, simple


def test_items_and_uid_first(roost_server):
    c = login(roost_server, "INBOX")
    m = simple("items")
    append(c, m, flags="(\\Flagged $Work)", date='"07-Feb-1994 21:52:25 -0800"')
    c.noop()
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE UID ENVELOPE)")
    line = data[0]
    # Appended while this session had INBOX selected: recent here (RFC 3501 §2.3.2).
    assert line.startswith(b"1 (UID 1 FLAGS (\\Recent \\Flagged $Work) ")
    assert b'INTERNALDATE "08-Feb-1994 05:52:25 +0000"' in line
    assert b"RFC822.SIZE %d" % len(m) in line
    assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "items"' in line
    for macro, want in (("FAST", [b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"]),
                        ("ALL", [b"ENVELOPE"]), ("FULL", [b"BODY ("])):
        typ, data = c.fetch("1", macro)
        assert all(w in data[0] for w in want), (macro, data)
    typ, data = c.uid("FETCH", "1", "(FLAGS)")
    assert data[0].startswith(b"1 (UID 1 FLAGS")


def test_sections_and_bodystructure(roost_server):
    c = login(roost_server, "INBOX")
    m = message("msg_10.txt")
    append(c, m)
    c.noop()
    typ, data = c.fetch("1", "(BODYSTRUCTURE)")
    assert data[0].startswith(b'1 (UID 1 BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "us-ascii")')
    assert b'"MIXED" ("BOUNDARY" "BOUNDARY")' in data[0]
    typ, data = c.fetch("1", "(BODY.PEEK[1] BODY.PEEK[3.MIME] BODY.PEEK[HEADER.FIELDS.NOT (From To Date MIME-Version)])")
    parts = {}
    for item in data:
        if isinstance(item, tuple):
            parts[re.search(rb"(BODY\[[^\]]*\])", item[0]).group(1)] = item[1]
    assert parts[b"BODY[1]"] == b"This is a 7bit encoded message.\r\n"
    assert parts[b"BODY[3.MIME]"].startswith(b'Content-Type: text/plain; charset="iso-8859-1"\r\n')
    assert parts[b"BODY[HEADER.FIELDS.NOT (From To Date MIME-Version)]"] == (
        b'Subject: Lyrics\r\nContent-Type: multipart/mixed; boundary="BOUNDARY"\r\n\r\n')
    typ, data = c.fetch("1", "(BINARY.PEEK[3] BINARY.SIZE[3] BODY.PEEK[TEXT]<0.10>)")
    assert data[0][1] == b"This is a Base64 encoded message."
    assert b"BINARY.SIZE[3] 33" in data[1][0] or b"BINARY.SIZE[3] 33" in data[0][0]
    typ, data = c.fetch("1", "(BODY.PEEK[HEADER] RFC822.HEADER)")
    assert data[0][1] == data[1][1] and data[0][1].endswith(b"\r\n\r\n")


def test_partial_byte_exact(roost_server):
    c = login(roost_server, "INBOX")
    m = message("msg_02.txt")
    append(c, m)
    c.noop()
    for start, count in ((0, 1), (5, 100), (len(m) - 3, 10), (len(m) + 5, 4), (17, len(m))):
        typ, data = c.fetch("1", "(BODY.PEEK[]<%d.%d>)" % (start, count))
        assert data[0][0].endswith(b"BODY[]<%d> {%d}" % (start, len(m[start:start + count])))
        assert data[0][1] == m[start:start + count]
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == m


def test_body_sets_seen_peek_does_not(roost_server):
    c = login(roost_server, "INBOX")
    append(c, simple("seen"))
    c.noop()
    c.fetch("1", "(BODY.PEEK[])")
    c.fetch("1", "(RFC822.PEEK)")
    assert c.fetch("1", "(FLAGS)")[1][0] == b"1 (UID 1 FLAGS (\\Recent))"
    typ, data = c.fetch("1", "(BODY[TEXT])")
    assert b"FLAGS (\\Recent \\Seen)" in data[0][0] + (data[1] if len(data) > 1 else b"")
    assert c.fetch("1", "(FLAGS)")[1][0] == b"1 (UID 1 FLAGS (\\Recent \\Seen))"
    # EXAMINE never sets \Seen
    append(c, simple("ro"))
    c.select("INBOX", readonly=True)
    c.fetch("2", "(RFC822)")
    assert c.fetch("2", "(FLAGS)")[1][0] == b"2 (UID 2 FLAGS ())"


def test_rfc822_items_outlook(roost_server, line_client):
    c = login(roost_server, "INBOX")
    m = simple("outlook")
    append(c, m)
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"f FETCH 1 (RFC822.PEEK RFC822.HEADER)\r\n")
    lines = r.until(b"f ")
    joined = b"\r\n".join(lines)
    assert lines[0] == b"* 1 FETCH (UID 1 RFC822 {%d}" % len(m)
    assert b"RFC822.HEADER {" in joined and lines[-1] == b"f OK FETCH completed"


def test_large_message_streamed(roost_server):
    c = login(roost_server, "INBOX")
    body = b"".join(b"line %07d abcdefghijklmnopqrstuvwxyz0123456789\r\n" % i for i in range(120000))
    m = simple("big", body.decode())
    append(c, m)
    c.noop()
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == m
    typ, data = c.fetch("1", "(BODY.PEEK[TEXT]<1000000.20>)")
    assert data[0][1] == m[m.index(b"\r\n\r\n") + 4:][1000000:1000020]


def test_missing_section_and_bad_fetch(roost_server, line_client):
    c = login(roost_server, "INBOX")
    append(c, simple("x"))
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"a FETCH 1 (BODY.PEEK[7])\r\n")
    assert r.until(b"a ")[0] == b"* 1 FETCH (UID 1 BODY[7] {0}"
    for i, cmd in enumerate([b"FETCH 2 FLAGS", b"FETCH 0 FLAGS", b"FETCH 1 (BOGUS)",
                             b"FETCH 1 BODY[HEADER.FIELDS]", b"FETCH 1 BODY[]<5>",
                             b"FETCH $,1 FLAGS", b"FETCH 1:x FLAGS", b"FETCH 1,,2 FLAGS"]):
        tag = b"b%d" % i
        r.send(tag + b" " + cmd + b"\r\n")
        assert r.until(tag + b" ")[-1].startswith(tag + b" BAD"), cmd
    r.send(b"c FETCH 1 FLAGS\r\n")
    assert r.until(b"c ")[-1] == b"c OK FETCH completed"
