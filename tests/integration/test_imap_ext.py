"""IMAP extensions beyond the base protocol: WITHIN (RFC 5032), SEARCHRES (RFC 5182) and
UNAUTHENTICATE (RFC 8437), with imaplib and a raw socket."""
from conftest import DEMO_PASSWORD, DEMO_USER
from imap_util import append, login, raw_login, simple


def caps(c):
    typ, data = c.capability()
    assert typ == "OK"
    return data[0].decode().split()


def uids(c, *keys):
    typ, data = c.uid("SEARCH", *keys)
    assert typ == "OK", data
    return [int(x) for x in data[0].split()]


def test_within(roost_server):
    c = login(roost_server)
    assert "WITHIN" in caps(c)
    append(c, simple("old"), date='"01-Jan-2020 10:00:00 +0000"')
    append(c, simple("new"))  # internal date: now
    c.select("INBOX")
    assert uids(c, "YOUNGER", "3600") == [2]
    assert uids(c, "OLDER", "3600") == [1]
    assert uids(c, "OR", "YOUNGER", "60", "OLDER", "60") == [1, 2]
    try:
        c.uid("SEARCH", "YOUNGER", "soon")
        assert False, "YOUNGER without a number was accepted"
    except c.error as e:
        assert "BAD" in str(e) or "number" in str(e)
    c.logout()


def cmd(r, tag, line):
    r.send(tag + b" " + line + b"\r\n")
    lines = r.until(tag + b" ")
    return lines[:-1], lines[-1]


def test_searchres(roost_server, line_client):
    c = login(roost_server)
    assert "SEARCHRES" in caps(c)
    for i in range(6):
        append(c, simple("m%d" % i), flags="(\\Seen)" if i % 2 else None)
    r = raw_login(roost_server, line_client)
    cmd(r, b"s", b"SELECT INBOX")
    # before any SAVE, $ is empty
    untagged, tagged = cmd(r, b"a", b"FETCH $ (UID)")
    assert untagged == [] and tagged.startswith(b"a OK")
    # SAVE alone: no ESEARCH, nothing untagged
    untagged, tagged = cmd(r, b"b", b"UID SEARCH RETURN (SAVE) SEEN")
    assert untagged == [] and tagged.startswith(b"b OK"), untagged
    untagged, tagged = cmd(r, b"c", b"FETCH $ (UID)")
    assert [l.split()[1] for l in untagged] == [b"2", b"4", b"6"], untagged
    # $ in SEARCH, by sequence number and by UID
    untagged, _ = cmd(r, b"d", b"SEARCH NOT $")
    assert untagged == [b"* SEARCH 1 3 5"]
    untagged, _ = cmd(r, b"e", b"UID SEARCH UID $")
    assert untagged == [b"* SEARCH 2 4 6"]
    # $ in STORE and COPY
    _, tagged = cmd(r, b"f", b"UID STORE $ +FLAGS.SILENT (\\Flagged)")
    assert tagged.startswith(b"f OK")
    untagged, _ = cmd(r, b"g", b"UID SEARCH FLAGGED")
    assert untagged == [b"* SEARCH 2 4 6"]
    _, tagged = cmd(r, b"h", b"COPY $ Archive")
    assert tagged.startswith(b"h OK")
    # SAVE with other options still answers them; MIN MAX alone saves just those two
    untagged, _ = cmd(r, b"i", b"SEARCH RETURN (SAVE COUNT) UNSEEN")
    assert untagged == [b'* ESEARCH (TAG "i") COUNT 3']
    untagged, _ = cmd(r, b"j", b"UID SEARCH UID $")
    assert untagged == [b"* SEARCH 1 3 5"]
    cmd(r, b"k", b"SEARCH RETURN (SAVE MIN MAX) ALL")
    untagged, _ = cmd(r, b"l", b"UID SEARCH UID $")
    assert untagged == [b"* SEARCH 1 6"]
    # an expunged message drops out of $; an empty $ never means "everything"
    cmd(r, b"m", b"UID STORE 1 +FLAGS.SILENT (\\Deleted)")
    cmd(r, b"n", b"EXPUNGE")
    untagged, _ = cmd(r, b"o", b"UID FETCH $ (UID)")
    assert [l.split()[4].rstrip(b")") for l in untagged] == [b"6"], untagged
    cmd(r, b"p", b"SEARCH RETURN (SAVE) SUBJECT nothing-has-this")
    _, tagged = cmd(r, b"q", b"UID STORE $ +FLAGS.SILENT (\\Deleted)")
    assert tagged.startswith(b"q OK")
    untagged, _ = cmd(r, b"t", b"SEARCH DELETED")
    assert untagged == [b"* SEARCH"]
    # "$" stands alone; a new SELECT empties it
    _, tagged = cmd(r, b"u", b"FETCH 1,$ (UID)")
    assert tagged.startswith(b"u BAD")
    cmd(r, b"v", b"SEARCH RETURN (SAVE) ALL")
    cmd(r, b"w", b"SELECT INBOX")
    untagged, _ = cmd(r, b"x", b"SEARCH $")
    assert untagged == [b"* SEARCH"]
    c.logout()


def test_unauthenticate(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    untagged, _ = cmd(r, b"c", b"CAPABILITY")
    assert b" UNAUTHENTICATE" in untagged[0]
    cmd(r, b"e", b"ENABLE UTF8=ACCEPT")
    _, tagged = cmd(r, b"s", b"SELECT INBOX")
    assert tagged.startswith(b"s OK")
    _, tagged = cmd(r, b"u", b"UNAUTHENTICATE")
    assert tagged == b"u OK UNAUTHENTICATE completed"
    # not authenticated again: mailbox commands are refused, the login capabilities are back
    _, tagged = cmd(r, b"a", b"SELECT INBOX")
    assert tagged.startswith(b"a BAD")
    untagged, _ = cmd(r, b"b", b"CAPABILITY")
    assert b"AUTH=PLAIN" in untagged[0] and b"UNAUTHENTICATE" not in untagged[0]
    _, tagged = cmd(r, b"d", b"UNAUTHENTICATE")
    assert tagged.startswith(b"d BAD")
    # and the same connection logs in again, with a fresh state
    _, tagged = cmd(r, b"l", b'LOGIN ' + DEMO_USER.encode() + b' "' + DEMO_PASSWORD.encode() + b'"')
    assert tagged.startswith(b"l OK")
    untagged, tagged = cmd(r, b"t", b'SELECT INBOX')
    assert tagged.startswith(b"t OK")
    _, tagged = cmd(r, b"o", b"LOGOUT")
    assert tagged.startswith(b"o OK")


def test_preview(roost_server, line_client):
    c = login(roost_server)
    assert "PREVIEW" in caps(c)
    body = "Hello   there,\r\n\r\n> quoted words from before\r\nsee you " + "x" * 300 + "\r\n"
    append(c, simple("plain", body))
    append(c, ("From: a@example.test\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Gr\xfc\xdfe <b>aus</b></p>\r\n"
               "--b\r\nContent-Type: application/pdf\r\n\r\nxx\r\n--b--\r\n").encode())
    append(c, ("From: a@example.test\r\nSubject: none\r\nMIME-Version: 1.0\r\n"
               "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n")
           .encode())
    r = raw_login(roost_server, line_client)
    cmd(r, b"s", b"SELECT INBOX")
    untagged, tagged = cmd(r, b"p", b"FETCH 1 (PREVIEW)")
    assert tagged.startswith(b"p OK")
    text = b"\n".join(untagged)
    assert b"Hello there, see you xxx" in text and b"quoted" not in text, text
    assert len(text.split(b'PREVIEW "')[1].rstrip(b'")')) == 200  # 200 characters at most
    untagged, _ = cmd(r, b"q", b"UID FETCH 2 (UID PREVIEW (LAZY))")
    # not ASCII: a literal
    assert untagged == [b"* 2 FETCH (UID 2 PREVIEW {11}", "Grüße aus)".encode()], untagged
    untagged, _ = cmd(r, b"t", b"FETCH 3 PREVIEW")
    assert untagged == [b'* 3 FETCH (UID 3 PREVIEW "")'], untagged
    _, tagged = cmd(r, b"u", b"FETCH 3 (PREVIEW (FAST))")
    assert tagged.startswith(b"u BAD")
    c.logout()
