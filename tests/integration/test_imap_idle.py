"""Many sessions on one mailbox (RFC 9051 §5.5, §7.5.1) and IDLE (RFC 2177): pushed updates,
keep-alive, EXPUNGE held back during FETCH/STORE/SEARCH by sequence number."""
import time

from imap_util import append, login, raw_login, simple


def sel(r, box=b"INBOX"):
    r.send(b"s SELECT " + box + b"\r\n")
    return r.until(b"s OK")


def test_three_sessions(roost_server, line_client):
    c = login(roost_server)
    for i in range(4):
        append(c, simple("m%d" % i))
    a = raw_login(roost_server, line_client)
    b = raw_login(roost_server, line_client)
    sel(a)
    sel(b)
    a.send(b"i IDLE\r\n")
    assert a.line() == b"+ idling"
    # B changes flags: A sees them while idling, without sending anything
    b.send(b"f STORE 2 +FLAGS (\\Flagged)\r\n")
    assert b.until(b"f ")[-1] == b"f OK STORE completed"
    # A selected first: the four messages are recent in A only (RFC 3501 §2.3.2).
    assert a.line(timeout=10) == b"* 2 FETCH (UID 2 FLAGS (\\Recent \\Flagged))"
    # B expunges message 1: A (idling) sees EXPUNGE 1 immediately
    b.send(b"d STORE 1 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\n")
    assert b.until(b"d ") == [b"d OK STORE completed"]
    assert b.until(b"x ") == [b"* 1 EXPUNGE", b"x OK EXPUNGE completed"]
    assert a.line(timeout=2) == b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted))"
    assert a.line(timeout=2) == b"* 1 EXPUNGE"
    # C appends: both see EXISTS (A at once, B at its next command)
    append(c, simple("new"))
    assert a.line(timeout=2) == b"* 4 EXISTS"
    assert a.line(timeout=2) == b"* 4 RECENT"
    b.send(b"n NOOP\r\n")
    assert b.until(b"n ") == [b"* 4 EXISTS", b"* 0 RECENT", b"n OK NOOP completed"]
    a.send(b"DONE\r\n")
    assert a.line() == b"i OK IDLE terminated"
    # MSN maps agree: message 1 is UID 2 in both
    for r in (a, b):
        r.send(b"q FETCH 1:* (UID)\r\n")
        assert r.until(b"q ")[:-1] == [b"* 1 FETCH (UID 2)", b"* 2 FETCH (UID 3)",
                                      b"* 3 FETCH (UID 4)", b"* 4 FETCH (UID 5)"]


def test_no_expunge_during_fetch_store_search(roost_server, line_client):
    c = login(roost_server)
    for i in range(3):
        append(c, simple("m%d" % i))
    a = raw_login(roost_server, line_client)
    sel(a)
    c.select("INBOX")
    c.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    c.expunge()
    time.sleep(0.2)
    a.send(b"f FETCH 3 (UID)\r\n")
    lines = a.until(b"f ")
    assert not any(l.endswith(b"EXPUNGE") for l in lines)
    assert b"* 3 FETCH (UID 3)" in lines
    a.send(b"s SEARCH ALL\r\n")
    lines = a.until(b"s ")
    assert b"* SEARCH 2 3" in lines and not any(l.endswith(b"EXPUNGE") for l in lines)
    # a UID command may report it; afterwards the numbers shift
    a.send(b"u UID FETCH 3 (FLAGS)\r\n")
    lines = a.until(b"u ")
    assert lines == [b"* 3 FETCH (UID 3 FLAGS (\\Recent))", b"* 1 EXPUNGE",
                     b"u OK FETCH completed"]
    a.send(b"g FETCH 2 (UID)\r\n")
    assert a.until(b"g ")[0] == b"* 2 FETCH (UID 3)"


def test_idle_keepalive(make_roost, line_client):
    srv = make_roost(extra={"imap": {"idle_keepalive": "1"}})
    a = raw_login(srv, line_client)
    sel(a)
    a.send(b"i IDLE\r\n")
    assert a.line() == b"+ idling"
    assert a.line(timeout=3) == b"* OK Still here"
    assert a.line(timeout=3) == b"* OK Still here"
    a.send(b"DONE\r\n")
    assert a.until(b"i ")[-1] == b"i OK IDLE terminated"
    assert a.silent(1.5)  # no keep-alive outside IDLE


def test_idle_bad_end_and_reissue(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    a.send(b"i IDLE\r\n")
    assert a.line() == b"+ idling"
    a.send(b"NOPE\r\n")
    assert a.line().startswith(b"i BAD")
    for n in range(20):  # cheap DONE/IDLE cycling
        a.send(b"j%d IDLE\r\n" % n)
        assert a.line() == b"+ idling"
        a.send(b"DONE\r\n")
        assert a.line() == b"j%d OK IDLE terminated" % n
