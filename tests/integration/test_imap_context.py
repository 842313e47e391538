"""CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): PARTIAL windows of SEARCH and SORT results,
searches kept alive with RETURN (UPDATE) that report ADDTO and REMOVEFROM as another
connection appends, expunges or changes flags (after NOOP and during IDLE), CANCELUPDATE,
NOUPDATE past the bound, and the syntax refused with BAD."""
import re

from imap_util import append, login, raw_login, simple

WAIT = 10  # every wait for an update is bounded by this many seconds


def cmd(r, tag, text):
    """Sends one command; the lines up to its tagged answer."""
    r.send(tag + b" " + text + b"\r\n")
    return r.until(tag + b" ", timeout=WAIT)


def esearch(lines, tag):
    found = [l for l in lines if l.startswith(b'* ESEARCH (TAG "' + tag + b'")')]
    return found


def next_line(r):
    """The next line that is not "* n RECENT" (IMAP4rev1 sends one with every EXISTS)."""
    while True:
        line = r.line(timeout=WAIT)
        if not re.match(rb"\* \d+ RECENT$", line):
            return line


def selected(server, line_client):
    r = raw_login(server, line_client)
    assert cmd(r, b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    return r


def fill(server, subjects):
    """Appends one message per subject; returns the imaplib connection (INBOX selected)."""
    other = login(server)
    for subject in subjects:
        append(other, simple(subject))
    other.select("INBOX")
    return other


def test_capability(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    caps = cmd(r, b"c", b"CAPABILITY")[0]
    assert b" CONTEXT=SEARCH" in caps and b" CONTEXT=SORT" in caps


def test_partial_search(roost_server, line_client):
    fill(roost_server, ["m%d" % i for i in range(1, 11)])
    r = selected(roost_server, line_client)
    lines = cmd(r, b"a", b"UID SEARCH RETURN (PARTIAL 1:3) ALL")
    assert esearch(lines, b"a") == [b'* ESEARCH (TAG "a") UID PARTIAL (1:3 1:3)']
    assert lines[-1].startswith(b"a OK")
    # negative ranges count from the end; either order of the ends
    lines = cmd(r, b"b", b"UID SEARCH RETURN (PARTIAL -1:-3) ALL")
    assert esearch(lines, b"b") == [b'* ESEARCH (TAG "b") UID PARTIAL (-1:-3 8:10)']
    lines = cmd(r, b"c", b"SEARCH RETURN (PARTIAL 5:2 COUNT) NOT 3")
    assert esearch(lines, b"c") == [b'* ESEARCH (TAG "c") PARTIAL (2:5 2,4:6) COUNT 9']
    lines = cmd(r, b"d", b"SEARCH RETURN (PARTIAL -8:-20 MIN) ALL")
    assert esearch(lines, b"d") == [b'* ESEARCH (TAG "d") MIN 1 PARTIAL (-8:-20 1:3)']
    # a window past the end, and an empty result: NIL
    lines = cmd(r, b"e", b"SEARCH RETURN (PARTIAL 20:30) ALL")
    assert esearch(lines, b"e") == [b'* ESEARCH (TAG "e") PARTIAL (20:30 NIL)']
    lines = cmd(r, b"f", b"UID SEARCH RETURN (PARTIAL -1:-5) KEYWORD nothing")
    assert esearch(lines, b"f") == [b'* ESEARCH (TAG "f") UID PARTIAL (-1:-5 NIL)']


def test_partial_sort(roost_server, line_client):
    fill(roost_server, ["c", "a", "e", "b", "d"])  # UIDs 1..5
    r = selected(roost_server, line_client)
    lines = cmd(r, b"a", b"UID SORT RETURN (PARTIAL 1:2) (SUBJECT) UTF-8 ALL")
    assert esearch(lines, b"a") == [b'* ESEARCH (TAG "a") UID PARTIAL (1:2 2,4)']
    lines = cmd(r, b"b", b"SORT RETURN (PARTIAL -1:-3 COUNT) (SUBJECT) UTF-8 ALL")
    assert esearch(lines, b"b") == [b'* ESEARCH (TAG "b") PARTIAL (-1:-3 1,5,3) COUNT 5']
    lines = cmd(r, b"c", b"SORT RETURN (PARTIAL 1:9) (SUBJECT) UTF-8 SUBJECT zzz")
    assert esearch(lines, b"c") == [b'* ESEARCH (TAG "c") PARTIAL (1:9 NIL)']


def test_bad_syntax(roost_server, line_client):
    fill(roost_server, ["x"])
    r = selected(roost_server, line_client)
    for text in (b"SEARCH RETURN (PARTIAL 1:5 ALL) ALL",
                 b"SEARCH RETURN (ALL PARTIAL 1:5) ALL",
                 b"SEARCH RETURN (PARTIAL 0:5) ALL",
                 b"SEARCH RETURN (PARTIAL 1:-5) ALL",
                 b"SEARCH RETURN (PARTIAL 1) ALL",
                 b"SEARCH RETURN (PARTIAL) ALL",
                 b"SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
                 b"SEARCH RETURN (PARTIAL 1:5 SAVE) ALL",
                 b"SEARCH RETURN (UPDATES) ALL",
                 b"SORT RETURN (PARTIAL 1:5 ALL) (ARRIVAL) UTF-8 ALL",
                 b"SORT RETURN (SAVE) (ARRIVAL) UTF-8 ALL",
                 b'CANCELUPDATE "nosuch"',
                 b"CANCELUPDATE",
                 b"CANCELUPDATE nosuch"):
        assert cmd(r, b"x", text)[-1].startswith(b"x BAD"), text
    # CONTEXT is a hint: accepted
    lines = cmd(r, b"h", b"SEARCH RETURN (CONTEXT COUNT) ALL")
    assert esearch(lines, b"h") == [b'* ESEARCH (TAG "h") COUNT 1']


def test_update_search_append_during_idle(roost_server, line_client):
    other = fill(roost_server, ["hot one", "cold"])
    r = selected(roost_server, line_client)
    lines = cmd(r, b"u", b"UID SEARCH RETURN (UPDATE ALL) SUBJECT hot")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ALL 1']
    assert lines[-1].startswith(b"u OK")
    r.send(b"i IDLE\r\n")
    assert r.line(timeout=WAIT).startswith(b"+")
    append(other, simple("cold again"))  # UID 3: no match
    assert next_line(r) == b"* 3 EXISTS"
    append(other, simple("hot two"))  # UID 4
    assert next_line(r) == b"* 4 EXISTS"
    assert next_line(r) == b'* ESEARCH (TAG "u") UID ADDTO (0 4)'
    # a flag change that takes a message out of the result
    other.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    lines = [next_line(r)]
    assert lines[0].startswith(b"* 1 FETCH")
    assert r.silent(0.5)  # the criteria do not look at flags
    other.expunge()
    assert r.until(b"* 1 EXPUNGE", timeout=WAIT) == [
        b'* ESEARCH (TAG "u") UID REMOVEFROM (0 1)', b"* 1 EXPUNGE"]
    r.send(b"DONE\r\n")
    assert r.until(b"i ", timeout=WAIT)[-1].startswith(b"i OK")


def test_update_search_after_noop(roost_server, line_client):
    other = fill(roost_server, ["a", "b", "c"])
    r = selected(roost_server, line_client)
    lines = cmd(r, b"u", b"UID SEARCH RETURN (UPDATE COUNT) UNSEEN")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID COUNT 3']
    other.uid("STORE", "2", "+FLAGS", "(\\Seen)")
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID REMOVEFROM (0 2) COUNT 2']
    assert lines[-1].startswith(b"n OK")
    other.uid("STORE", "2", "-FLAGS", "(\\Seen)")
    append(other, simple("d"))  # UID 4, unseen
    lines = cmd(r, b"n", b"NOOP")
    assert b"* 4 EXISTS" in lines
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ADDTO (0 2,4) COUNT 4']
    assert lines.index(b"* 4 EXISTS") < lines.index(esearch(lines, b"u")[0])
    # this connection's own STORE counts too
    assert cmd(r, b"f", b"UID STORE 4 +FLAGS.SILENT (\\Seen)")[-1].startswith(b"f OK")
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID REMOVEFROM (0 4) COUNT 3']
    # an expunge: REMOVEFROM before the EXPUNGE, numbered as before it
    other.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
    other.expunge()
    lines = cmd(r, b"n", b"NOOP")
    i = lines.index(b"* 3 EXPUNGE")
    assert lines[i - 1] == b'* ESEARCH (TAG "u") UID REMOVEFROM (0 3) COUNT 2'


def test_update_by_sequence_number(roost_server, line_client):
    other = fill(roost_server, ["a", "b", "c"])
    r = selected(roost_server, line_client)
    lines = cmd(r, b"u", b"SEARCH RETURN (UPDATE MIN MAX) FLAGGED")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u")']
    other.uid("STORE", "1", "+FLAGS", "(\\Deleted)")
    other.expunge()  # sequence numbers move down by one
    other.uid("STORE", "3", "+FLAGS", "(\\Flagged)")
    lines = cmd(r, b"n", b"NOOP")
    # the ADDTO comes before the command's EXPUNGE, numbered as the client knows it then
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") ADDTO (0 3) MIN 3 MAX 3']
    assert lines.index(esearch(lines, b"u")[0]) < lines.index(b"* 1 EXPUNGE")


def test_sort_update_positions(roost_server, line_client):
    other = fill(roost_server, ["b", "d", "f"])  # UIDs 1..3
    r = selected(roost_server, line_client)
    lines = cmd(r, b"u", b"UID SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 NOT SUBJECT x")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ALL 1,2,3']
    append(other, simple("c"))  # UID 4 goes between b and d
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ADDTO (2 4)']
    append(other, simple("a"))  # UID 5 goes first
    append(other, simple("x"))  # UID 6 does not match
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ADDTO (1 5)']
    # order now a b c d f = 5 1 4 2 3; expunging d (UID 2) takes position 4
    other.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
    other.expunge()
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID REMOVEFROM (4 2)']
    lines = cmd(r, b"a", b"UID SORT RETURN (ALL) (SUBJECT) UTF-8 NOT SUBJECT x")
    assert esearch(lines, b"a") == [b'* ESEARCH (TAG "a") UID ALL 5,1,4,3']


def test_sort_update_many_at_once(roost_server, line_client):
    other = fill(roost_server, ["b", "d", "f"])  # UIDs 1..3
    r = selected(roost_server, line_client)
    lines = cmd(r, b"u", b"UID SORT RETURN (UPDATE COUNT) (SUBJECT) UTF-8 UNDELETED")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID COUNT 3']
    for subject in ("a", "c", "e"):  # UIDs 4..6, all told of at the next NOOP
        append(other, simple(subject))
    lines = cmd(r, b"n", b"NOOP")
    # a b c d e f: each position right once the ones before it are in
    assert esearch(lines, b"u") == [
        b'* ESEARCH (TAG "u") UID ADDTO (1 4) ADDTO (3 5) ADDTO (5 6) COUNT 6']
    other.uid("STORE", "1,3", "+FLAGS", "(\\Deleted)")
    lines = cmd(r, b"n", b"NOOP")
    # b leaves position 2; f, last of six, is fifth once b is gone
    assert esearch(lines, b"u") == [
        b'* ESEARCH (TAG "u") UID REMOVEFROM (2 1) REMOVEFROM (5 3) COUNT 4']
    lines = cmd(r, b"a", b"UID SORT RETURN (ALL) (SUBJECT) UTF-8 UNDELETED")
    assert esearch(lines, b"a") == [b'* ESEARCH (TAG "a") UID ALL 4,5,2,6']


def test_sort_update_during_idle(roost_server, line_client):
    other = fill(roost_server, ["b", "d"])
    r = selected(roost_server, line_client)
    cmd(r, b"u", b"SORT RETURN (UPDATE COUNT) (REVERSE SUBJECT) UTF-8 ALL")
    r.send(b"i IDLE\r\n")
    assert r.line(timeout=WAIT).startswith(b"+")
    append(other, simple("c"))  # order d c b: position 2, sequence number 3
    assert next_line(r) == b"* 3 EXISTS"
    assert next_line(r) == b'* ESEARCH (TAG "u") ADDTO (2 3) COUNT 3'
    r.send(b"DONE\r\n")
    assert r.until(b"i ", timeout=WAIT)[-1].startswith(b"i OK")


def test_update_pushed_under_notify(roost_server, line_client):
    other = fill(roost_server, ["hot one"])
    r = selected(roost_server, line_client)
    lines = cmd(r, b"n", b"NOTIFY SET (selected (MessageNew MessageExpunge FlagChange))")
    assert lines[-1].startswith(b"n OK")
    cmd(r, b"u", b"UID SEARCH RETURN (UPDATE) SUBJECT hot")
    append(other, simple("hot two"))  # no command: NOTIFY pushes the changes
    got = []
    for _ in range(20):  # EXISTS, FETCH, then the ADDTO
        got.append(next_line(r))
        if got[-1].startswith(b"* ESEARCH"):
            break
    assert got[0] == b"* 2 EXISTS"
    assert got[-1] == b'* ESEARCH (TAG "u") UID ADDTO (0 2)'


def test_cancelupdate_stops_updates(roost_server, line_client):
    other = fill(roost_server, ["a"])
    r = selected(roost_server, line_client)
    cmd(r, b"t1", b"UID SEARCH RETURN (UPDATE) ALL")
    cmd(r, b"t2", b"UID SEARCH RETURN (UPDATE) ALL")
    lines = cmd(r, b"c", b'CANCELUPDATE "t1"')
    assert lines[-1].startswith(b"c OK")
    append(other, simple("b"))
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"t1") == []
    assert esearch(lines, b"t2") == [b'* ESEARCH (TAG "t2") UID ADDTO (0 2)']
    # an unknown tag among known ones: BAD, and nothing is cancelled
    assert cmd(r, b"c", b'CANCELUPDATE "t2" "t1"')[-1].startswith(b"c BAD")
    assert cmd(r, b"c", b'CANCELUPDATE "t2"')[-1].startswith(b"c OK")
    append(other, simple("c"))
    lines = cmd(r, b"n", b"NOOP")
    assert b"* 3 EXISTS" in lines and not [l for l in lines if b"ESEARCH" in l]
    assert cmd(r, b"c", b'CANCELUPDATE "t2"')[-1].startswith(b"c BAD")


def test_selection_change_ends_updates(roost_server, line_client):
    other = fill(roost_server, ["a"])
    r = selected(roost_server, line_client)
    cmd(r, b"u", b"UID SEARCH RETURN (UPDATE) ALL")
    append(other, simple("b"))
    lines = cmd(r, b"n", b"NOOP")
    assert esearch(lines, b"u") == [b'* ESEARCH (TAG "u") UID ADDTO (0 2)']
    assert cmd(r, b"x", b"UNSELECT")[-1].startswith(b"x OK")
    assert cmd(r, b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    append(other, simple("c"))
    lines = cmd(r, b"n", b"NOOP")
    assert b"* 3 EXISTS" in lines and not [l for l in lines if b"ESEARCH" in l]
    assert cmd(r, b"c", b'CANCELUPDATE "u"')[-1].startswith(b"c BAD")


def test_noupdate_past_the_bound(roost_server, line_client):
    other = fill(roost_server, ["a"])
    r = selected(roost_server, line_client)
    for i in range(16):
        tag = b"t%d" % i
        lines = cmd(r, tag, b"UID SEARCH RETURN (UPDATE COUNT) ALL")
        assert esearch(lines, tag) == [b'* ESEARCH (TAG "' + tag + b'") UID COUNT 1']
        assert not [l for l in lines if b"NOUPDATE" in l]
    lines = cmd(r, b"over", b"UID SEARCH RETURN (UPDATE COUNT) ALL")
    assert esearch(lines, b"over") == [b'* ESEARCH (TAG "over") UID COUNT 1']
    assert any(l.startswith(b'* OK [NOUPDATE "over"]') for l in lines)
    assert lines[-1].startswith(b"over OK")
    # PARTIAL results are not kept up to date either
    cmd(r, b"c", b'CANCELUPDATE "t0"')
    lines = cmd(r, b"p", b"UID SEARCH RETURN (UPDATE PARTIAL 1:5) ALL")
    assert esearch(lines, b"p") == [b'* ESEARCH (TAG "p") UID PARTIAL (1:5 1)']
    assert any(l.startswith(b'* OK [NOUPDATE "p"]') for l in lines)
    append(other, simple("b"))
    lines = cmd(r, b"n", b"NOOP")
    tags = sorted(re.match(rb'\* ESEARCH \(TAG "([^"]+)"\)', l).group(1)
                  for l in lines if l.startswith(b"* ESEARCH"))
    assert tags == sorted(b"t%d" % i for i in range(1, 16))
