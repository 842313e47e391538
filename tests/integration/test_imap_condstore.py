"""CONDSTORE (RFC 7162 §3.1): MODSEQ per message and HIGHESTMODSEQ per mailbox, FETCH MODSEQ
and CHANGEDSINCE, STORE UNCHANGEDSINCE with MODIFIED, SEARCH MODSEQ, STATUS HIGHESTMODSEQ,
ENABLE CONDSTORE, and HIGHESTMODSEQ that only grows across restarts and index rebuilds."""
import os
import re

from imap_util import append, login, raw_login, simple


def cmd(c, tag, line):
    c.send(tag + b" " + line + b"\r\n")
    lines = c.until(tag + b" ")
    return lines[:-1], lines[-1]


def modseqs(lines):
    """{uid: modseq} from FETCH responses."""
    out = {}
    for l in lines:
        m = re.search(rb"UID (\d+).*MODSEQ \((\d+)\)", l)
        if m:
            out[int(m.group(1))] = int(m.group(2))
    return out


def highestmodseq(lines):
    for l in lines:
        m = re.search(rb"HIGHESTMODSEQ (\d+)", l)
        if m:
            return int(m.group(1))
    return None


def fill(server, n):
    c = login(server)
    for i in range(n):
        append(c, simple("m%d" % i))
    c.logout()


def test_capability_and_enable(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    caps, done = cmd(c, b"c", b"CAPABILITY")
    assert b" CONDSTORE" in caps[0] and b" QRESYNC" in caps[0]
    lines, done = cmd(c, b"e", b"ENABLE CONDSTORE")
    assert lines == [b"* ENABLED CONDSTORE"] and done.startswith(b"e OK")


def test_select_reports_highestmodseq_and_fetch_modseq(roost_server, line_client):
    fill(roost_server, 3)
    c = raw_login(roost_server, line_client)
    lines, done = cmd(c, b"s", b"SELECT INBOX (CONDSTORE)")
    assert done.startswith(b"s OK")
    top = highestmodseq(lines)
    assert top is not None and top >= 3
    lines, done = cmd(c, b"f", b"FETCH 1:* (FLAGS MODSEQ)")
    ms = modseqs(lines)
    assert sorted(ms) == [1, 2, 3]
    assert max(ms.values()) <= top
    assert len(set(ms.values())) == 3  # each save got its own MODSEQ


def test_changedsince_returns_only_changed(roost_server, line_client):
    fill(roost_server, 5)
    c = raw_login(roost_server, line_client)
    lines, _ = cmd(c, b"s", b"SELECT INBOX")
    before = highestmodseq(lines)
    _, done = cmd(c, b"st", b"UID STORE 2,4 +FLAGS.SILENT (\\Flagged)")
    assert done.startswith(b"st OK")
    lines, done = cmd(c, b"f", b"UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % before)
    assert done.startswith(b"f OK")
    ms = modseqs(lines)
    assert sorted(ms) == [2, 4]
    assert all(v > before for v in ms.values())
    # Once CONDSTORE is on, FETCH of FLAGS carries MODSEQ too.
    lines, _ = cmd(c, b"g", b"FETCH 1 (FLAGS)")
    assert b"MODSEQ (" in lines[0]


def test_store_unchangedsince_reports_modified(roost_server, line_client):
    fill(roost_server, 3)
    a = raw_login(roost_server, line_client)
    lines, _ = cmd(a, b"s", b"SELECT INBOX")
    lines, _ = cmd(a, b"f", b"UID FETCH 1:3 (MODSEQ)")
    known = modseqs(lines)
    # Another client changes message 2 after A read its MODSEQ.
    b = login(roost_server, "INBOX")
    b.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    b.logout()
    lines, done = cmd(a, b"u", b"UID STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Answered)"
                      % max(known[1], known[3]))
    assert b"[MODIFIED 2]" in done, done
    # .SILENT still reports the new MODSEQs (B's change may come as an update with FLAGS).
    changed = modseqs(l for l in lines if b"FLAGS" not in l)
    assert sorted(changed) == [1, 3]
    lines, _ = cmd(a, b"f2", b"UID FETCH 1:3 (FLAGS)")
    flags = {int(re.search(rb"UID (\d+)", l).group(1)): l for l in lines if b"FETCH" in l}
    assert b"\\Answered" in flags[1] and b"\\Answered" in flags[3]
    assert b"\\Answered" not in flags[2]
    # Message sequence numbers in MODIFIED for STORE, and 0 fails everything.
    lines, done = cmd(a, b"z", b"STORE 1:2 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
    assert b"[MODIFIED 1:2]" in done, done


def test_search_modseq(roost_server, line_client):
    fill(roost_server, 4)
    c = raw_login(roost_server, line_client)
    lines, _ = cmd(c, b"s", b"SELECT INBOX")
    top = highestmodseq(lines)
    cmd(c, b"st", b"STORE 3 +FLAGS (\\Flagged)")
    lines, done = cmd(c, b"q", b"SEARCH MODSEQ %d" % (top + 1))
    assert done.startswith(b"q OK")
    m = re.match(rb"\* SEARCH 3 \(MODSEQ (\d+)\)$", lines[-1])
    assert m and int(m.group(1)) > top, lines
    lines, done = cmd(c, b"q2", b'UID SEARCH MODSEQ "/flags/\\\\flagged" all 1')
    assert done.startswith(b"q2 OK")
    assert lines[-1].startswith(b"* SEARCH 1 2 3 4 (MODSEQ ")
    lines, done = cmd(c, b"q3", b"SEARCH RETURN (COUNT) MODSEQ 1")
    assert re.match(rb"\* ESEARCH \(TAG \"q3\"\) COUNT 4 MODSEQ \d+$", lines[-1]), lines


def test_status_highestmodseq_grows_with_expunge(roost_server, line_client):
    fill(roost_server, 2)
    c = raw_login(roost_server, line_client)
    lines, _ = cmd(c, b"a", b"STATUS INBOX (HIGHESTMODSEQ MESSAGES)")
    m = re.search(rb"HIGHESTMODSEQ (\d+) MESSAGES 2", lines[0])
    assert m, lines
    first = int(m.group(1))
    cmd(c, b"s", b"SELECT INBOX")
    cmd(c, b"d", b"STORE 1 +FLAGS (\\Deleted)")
    cmd(c, b"x", b"EXPUNGE")
    lines, _ = cmd(c, b"b", b"STATUS INBOX (HIGHESTMODSEQ)")
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", lines[0]).group(1)) > first + 1


def test_unsolicited_flag_updates_carry_modseq(roost_server, line_client):
    fill(roost_server, 2)
    a = raw_login(roost_server, line_client)
    cmd(a, b"e", b"ENABLE CONDSTORE")
    cmd(a, b"s", b"SELECT INBOX")
    b = login(roost_server, "INBOX")
    b.store("2", "+FLAGS", "(\\Flagged)")
    b.logout()
    lines, _ = cmd(a, b"n", b"NOOP")
    assert any(re.match(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Recent \\Flagged\) MODSEQ \(\d+\)\)", l)
               for l in lines), lines


def test_highestmodseq_survives_restart_and_index_rebuild(make_roost, line_client):
    r = make_roost()
    fill(r, 3)
    c = raw_login(r, line_client)
    lines, _ = cmd(c, b"s", b"SELECT INBOX")
    cmd(c, b"st", b"STORE 1:3 +FLAGS (\\Seen)")
    lines, _ = cmd(c, b"a", b"STATUS INBOX (HIGHESTMODSEQ)")
    before = int(re.search(rb"HIGHESTMODSEQ (\d+)", lines[0]).group(1))
    c.close()
    r.stop()
    r.start()
    c = raw_login(r, line_client)
    lines, _ = cmd(c, b"a", b"STATUS INBOX (HIGHESTMODSEQ)")
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", lines[0]).group(1)) == before
    c.close()
    r.stop()
    # Losing the index rebuilds it from the Maildir: MODSEQs must still only grow, or a
    # client's CHANGEDSINCE would miss changes.
    removed = 0
    for root, _, files in os.walk(r.data_dir):
        for f in files:
            if f.startswith("roost-index.sqlite"):
                os.unlink(os.path.join(root, f))
                removed += 1
    assert removed > 0
    r.start()
    c = raw_login(r, line_client)
    lines, _ = cmd(c, b"s", b"SELECT INBOX")
    after = highestmodseq(lines)
    assert after > before
    lines, _ = cmd(c, b"f", b"UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % before)
    assert sorted(modseqs(lines)) == [1, 2, 3]  # the rebuild counts as a change of all
