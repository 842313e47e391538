"""QRESYNC (RFC 7162 §3.2): ENABLE QRESYNC, SELECT (QRESYNC (uidvalidity modseq known-uids))
with VANISHED (EARLIER) and FETCH of exactly what changed, UID FETCH ... (CHANGEDSINCE n
VANISHED), VANISHED in place of EXPUNGE, and the answer once the expunge history is gone."""
import os
import re

from imap_util import append, login, raw_login, simple


def cmd(c, tag, line):
    c.send(tag + b" " + line + b"\r\n")
    lines = c.until(tag + b" ")
    return lines[:-1], lines[-1]


def fill(server, n, mailbox="INBOX"):
    c = login(server)
    for i in range(n):
        append(c, simple("m%d" % i), mailbox)
    c.logout()


def state(lines):
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(lines)).group(1))
    ms = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(lines)).group(1))
    return uv, ms


def fetched(lines):
    """{uid: line} of the FETCH responses."""
    return {int(re.search(rb"UID (\d+)", l).group(1)): l for l in lines if b" FETCH (" in l}


def vanished(lines):
    return [l for l in lines if l.startswith(b"* VANISHED")]


def cache_inbox(server, line_client, n):
    """Client A's cache: UIDVALIDITY and HIGHESTMODSEQ after seeing n messages."""
    fill(server, n)
    a = raw_login(server, line_client)
    lines, _ = cmd(a, b"s", b"SELECT INBOX")
    uv, ms = state(lines)
    cmd(a, b"o", b"LOGOUT")
    a.close()
    return uv, ms


def other_client_changes(server):
    b = login(server, "INBOX")
    b.uid("STORE", "2,5", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.uid("STORE", "7", "+FLAGS", "(\\Flagged)")
    append(b, simple("new one"))
    b.logout()


def test_qresync_select_needs_enable(roost_server, line_client):
    fill(roost_server, 1)
    c = raw_login(roost_server, line_client)
    _, done = cmd(c, b"s", b"SELECT INBOX (QRESYNC (1 1))")
    assert done.startswith(b"s BAD")
    lines, done = cmd(c, b"e", b"ENABLE QRESYNC")
    assert lines == [b"* ENABLED QRESYNC"]
    _, done = cmd(c, b"s2", b"SELECT INBOX (QRESYNC (1 1 1:*))")
    assert done.startswith(b"s2 BAD")  # "*" is not allowed in known UIDs
    _, done = cmd(c, b"s3", b"SELECT INBOX (QRESYNC (1 1 1:4 (1:2 1:2)))")
    assert done.startswith(b"s3 OK")


def test_resync_after_changes_gets_exactly_the_changes(roost_server, line_client):
    uv, ms = cache_inbox(roost_server, line_client, 10)
    other_client_changes(roost_server)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    lines, done = cmd(a, b"s", b"SELECT INBOX (QRESYNC (%d %d 1:10))" % (uv, ms))
    assert done.startswith(b"s OK")
    assert b"* 9 EXISTS" in lines
    assert vanished(lines) == [b"* VANISHED (EARLIER) 2,5"]
    f = fetched(lines)
    assert sorted(f) == [7], lines  # 11 is not among the known UIDs
    assert b"\\Flagged" in f[7] and b"MODSEQ (" in f[7]
    assert f[7].startswith(b"* 5 FETCH")
    # Without known UIDs the client means 1:UIDNEXT-1: the new message is reported too.
    a2 = raw_login(roost_server, line_client)
    cmd(a2, b"e", b"ENABLE QRESYNC")
    lines, done = cmd(a2, b"s", b"EXAMINE INBOX (QRESYNC (%d %d))" % (uv, ms))
    assert vanished(lines) == [b"* VANISHED (EARLIER) 2,5"]
    assert sorted(fetched(lines)) == [7, 11]


def test_resync_with_nothing_changed_is_quiet(roost_server, line_client):
    uv, ms = cache_inbox(roost_server, line_client, 4)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    lines, done = cmd(a, b"s", b"SELECT INBOX (QRESYNC (%d %d 1:4))" % (uv, ms))
    assert done.startswith(b"s OK")
    assert vanished(lines) == [] and fetched(lines) == {}


def test_uidvalidity_mismatch_ignores_the_rest(roost_server, line_client):
    uv, ms = cache_inbox(roost_server, line_client, 6)
    other_client_changes(roost_server)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    lines, done = cmd(a, b"s", b"SELECT INBOX (QRESYNC (%d %d 1:6))" % (uv + 1, ms))
    assert done.startswith(b"s OK")
    assert vanished(lines) == [] and fetched(lines) == {}


def test_uid_fetch_changedsince_vanished(roost_server, line_client):
    uv, ms = cache_inbox(roost_server, line_client, 10)
    other_client_changes(roost_server)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    cmd(a, b"s", b"SELECT INBOX")
    lines, done = cmd(a, b"f", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % ms)
    assert done.startswith(b"f OK")
    assert vanished(lines) == [b"* VANISHED (EARLIER) 2,5"]
    assert sorted(fetched(lines)) == [7, 11]
    # Only UIDs of the set are reported; VANISHED needs UID FETCH.
    lines, _ = cmd(a, b"g", b"UID FETCH 3:6 (FLAGS) (CHANGEDSINCE %d VANISHED)" % ms)
    assert vanished(lines) == [b"* VANISHED (EARLIER) 5"] and fetched(lines) == {}
    _, done = cmd(a, b"h", b"FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % ms)
    assert done.startswith(b"h BAD")


def test_vanished_replaces_expunge(roost_server, line_client):
    fill(roost_server, 5)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    cmd(a, b"s", b"SELECT INBOX")
    cmd(a, b"d", b"STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    lines, done = cmd(a, b"x", b"EXPUNGE")
    assert lines == [b"* VANISHED 1:2"] and done.startswith(b"x OK")
    b = login(roost_server, "INBOX")
    b.uid("STORE", "4", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()
    lines, _ = cmd(a, b"n", b"NOOP")
    assert b"* VANISHED 4" in lines
    assert not any(l.endswith(b"EXPUNGE") for l in lines)


def test_moved_messages_are_in_the_history(roost_server, line_client):
    uv, ms = cache_inbox(roost_server, line_client, 4)
    b = login(roost_server, "INBOX")
    typ, _ = b.uid("MOVE", "3", "Archive")
    assert typ == "OK"
    b.logout()
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    lines, _ = cmd(a, b"s", b"SELECT INBOX (QRESYNC (%d %d 1:4))" % (uv, ms))
    assert vanished(lines) == [b"* VANISHED (EARLIER) 3"]


def test_history_lost_with_the_index_falls_back_to_known_uids(make_roost, line_client):
    r = make_roost()
    uv, ms = cache_inbox(r, line_client, 8)
    b = login(r, "INBOX")
    b.uid("STORE", "3,4", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()
    r.stop()
    for root, _, files in os.walk(r.data_dir):
        for f in files:
            if f.startswith("roost-index.sqlite"):
                os.unlink(os.path.join(root, f))
    r.start()
    a = raw_login(r, line_client)
    cmd(a, b"e", b"ENABLE QRESYNC")
    lines, done = cmd(a, b"s", b"SELECT INBOX (QRESYNC (%d %d 1:8))" % (uv, ms))
    assert done.startswith(b"s OK")
    assert state(lines)[0] == uv  # the UIDVALIDITY file survived
    # The rebuilt index has no history before it: every known UID that is gone is listed,
    # and every message counts as changed.
    assert vanished(lines) == [b"* VANISHED (EARLIER) 3:4"]
    assert sorted(fetched(lines)) == [1, 2, 5, 6, 7, 8]
