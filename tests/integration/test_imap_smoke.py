"""Basic IMAP flow with imaplib: login, SELECT, APPEND, FETCH, STORE, SEARCH, EXPUNGE."""
from imap_util import append, login, simple


def test_basic_flow(roost_server):
    c = login(roost_server)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"0"]
    resp = append(c, simple("one"))
    assert b"APPENDUID" in resp[0]
    append(c, simple("two"))
    typ, data = c.noop()
    typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    assert typ == "OK" and len(data) == 2
    assert data[0].startswith(b"1 (UID 1 ")
    typ, data = c.fetch("2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert data[0][1] == b"Subject: two\r\n\r\n"
    typ, data = c.store("1", "+FLAGS", "(\\Deleted)")
    assert typ == "OK" and b"\\Deleted" in data[0]
    typ, data = c.search(None, "DELETED")
    assert data == [b"1"]
    typ, data = c.expunge()
    assert data == [b"1"]
    typ, data = c.search(None, "ALL")
    assert data == [b"1"]
    c.logout()
