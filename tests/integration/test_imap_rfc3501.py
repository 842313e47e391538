"""RFC 3501 behaviour IMAP4rev1 clients rely on: \\Recent, new keywords announced with FLAGS,
BINARY (RFC 3516) of every part, long command lines, COPY/MOVE into the same mailbox, UID
ranges past the last UID, address SEARCH keys over the whole field, LIST-EXTENDED
(RFC 5258) selection and LSUB parents, and the CAPABILITY words behind them."""
import re

from imap_util import append, login, raw_login, simple


def run(c, tag, line):
    """Sends one command; returns its lines, the tagged one last."""
    c.send(tag + b" " + line + b"\r\n")
    lines = c.until(tag + b" ")
    return lines


def ok(c, tag, line):
    lines = run(c, tag, line)
    assert lines[-1].startswith(tag + b" OK"), lines
    return lines


def recent_uids(c, tag):
    """UIDs whose FETCH FLAGS show \\Recent."""
    uids = set()
    for l in ok(c, tag, b"UID FETCH 1:* (FLAGS)"):
        m = re.match(rb"\* \d+ FETCH \((.*)\)$", l)
        if m and b"\\Recent" in m.group(1):
            uids.add(int(re.search(rb"UID (\d+)", l).group(1)))
    return uids


def search(c, tag, line):
    for l in ok(c, tag, line):
        if l.startswith(b"* SEARCH"):
            return [int(x) for x in l.split()[2:]]
    raise AssertionError("no SEARCH response")


# ---------------------------------------------------------------- \Recent (RFC 3501 §2.3.2)

def test_recent_seen_by_exactly_one_session(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    for i in range(2):
        m = simple("recent %d" % i)
        a.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert a.until(b"p ")[-1].startswith(b"p OK")
    status = ok(a, b"s", b"STATUS INBOX (MESSAGES RECENT)")
    assert b"RECENT 2" in status[0], status

    b = raw_login(roost_server, line_client)
    sel = ok(b, b"s", b"SELECT INBOX")
    assert b"* 2 RECENT" in sel, sel
    assert recent_uids(b, b"f") == {1, 2}
    assert search(b, b"r", b"SEARCH RECENT") == [1, 2]
    ok(b, b"st", b"STORE 1 +FLAGS.SILENT (\\Seen)")
    assert search(b, b"n", b"SEARCH NEW") == [2]
    assert search(b, b"o", b"SEARCH OLD") == []

    c = raw_login(roost_server, line_client)
    sel = ok(c, b"s", b"SELECT INBOX")
    assert b"* 0 RECENT" in sel, sel
    assert recent_uids(c, b"f") == set()
    assert search(c, b"o", b"SEARCH OLD") == [1, 2]
    assert search(c, b"r", b"SEARCH RECENT") == []
    status = ok(a, b"s2", b"STATUS INBOX (RECENT)")
    assert b"RECENT 0" in status[0], status

    # A new message: both selecting sessions hear of it, exactly one sees it as recent.
    m = simple("recent new")
    a.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert a.until(b"p ")[-1].startswith(b"p OK")
    noop_b = ok(b, b"n2", b"NOOP")
    noop_c = ok(c, b"n2", b"NOOP")
    assert b"* 3 EXISTS" in noop_b and b"* 3 EXISTS" in noop_c
    counts = []
    for noop in (noop_b, noop_c):
        r = [l for l in noop if l.endswith(b" RECENT")]
        assert len(r) == 1, noop
        counts.append(int(r[0].split()[1]))
    new_b = recent_uids(b, b"f2") & {3}
    new_c = recent_uids(c, b"f2") & {3}
    assert len(new_b) + len(new_c) == 1
    assert counts == ([3, 0] if new_b else [2, 1])

    # EXAMINE neither claims nor shows what another session holds.
    d = raw_login(roost_server, line_client)
    sel = ok(d, b"s", b"EXAMINE INBOX")
    assert b"* 0 RECENT" in sel, sel


def test_recent_examine_does_not_claim(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    ok(a, b"c", b"CREATE Box")
    m = simple("examined")
    a.send(b"p APPEND Box {%d+}\r\n" % len(m) + m + b"\r\n")
    assert a.until(b"p ")[-1].startswith(b"p OK")
    sel = ok(a, b"e", b"EXAMINE Box")
    assert b"* 1 RECENT" in sel, sel
    ok(a, b"u", b"UNSELECT")
    sel = ok(a, b"s", b"SELECT Box")
    assert b"* 1 RECENT" in sel, sel
    assert recent_uids(a, b"f") == {1}


def test_recent_own_append_and_rev2_sessions(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    ok(a, b"s", b"SELECT INBOX")
    m = simple("mine")
    a.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    lines = a.until(b"p ")
    assert lines[-1].startswith(b"p OK")
    lines += ok(a, b"n", b"NOOP")
    assert b"* 1 EXISTS" in lines and b"* 1 RECENT" in lines, lines
    assert recent_uids(a, b"f") == {1}

    # IMAP4rev2 has no \Recent: nothing of it is reported.
    r = raw_login(roost_server, line_client)
    ok(r, b"e", b"ENABLE IMAP4rev2")
    m = simple("rev2")
    a.send(b"p2 APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert a.until(b"p2 ")[-1].startswith(b"p2 OK")
    sel = ok(r, b"s", b"SELECT INBOX")
    assert not any(b"RECENT" in l for l in sel), sel
    assert all(b"\\Recent" not in l for l in ok(r, b"f", b"FETCH 1:* FLAGS"))


# ---------------------------------------------------------------- new keywords

def test_new_keyword_announced_before_fetch(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    m = simple("kw")
    a.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert a.until(b"p ")[-1].startswith(b"p OK")
    sel_a = ok(a, b"s", b"SELECT INBOX")
    assert not any(b"Fresh" in l for l in sel_a)
    b = raw_login(roost_server, line_client)
    ok(b, b"s", b"SELECT INBOX")

    lines = ok(a, b"st", b"STORE 1 +FLAGS (Fresh)")
    flags = [i for i, l in enumerate(lines) if l.startswith(b"* FLAGS") and b"Fresh" in l]
    fetch = [i for i, l in enumerate(lines) if b"FETCH" in l and b"Fresh" in l]
    assert flags and fetch and flags[0] < fetch[0], lines
    assert any(l.startswith(b"* OK [PERMANENTFLAGS") and b"Fresh" in l for l in lines), lines

    lines = ok(b, b"n", b"NOOP")
    flags = [i for i, l in enumerate(lines) if l.startswith(b"* FLAGS") and b"Fresh" in l]
    fetch = [i for i, l in enumerate(lines) if b"FETCH" in l and b"Fresh" in l]
    assert flags and fetch and flags[0] < fetch[0], lines

    # APPEND from a third session with another new keyword: announced before any FETCH.
    c = raw_login(roost_server, line_client)
    m = simple("kw2")
    c.send(b"p APPEND INBOX (Other) {%d+}\r\n" % len(m) + m + b"\r\n")
    assert c.until(b"p ")[-1].startswith(b"p OK")
    lines = ok(b, b"n2", b"NOOP")
    assert any(l.startswith(b"* FLAGS") and b"Other" in l for l in lines), lines
    # COPY of a message carrying the keyword into a mailbox where it is new
    ok(c, b"cr", b"CREATE Dest")
    d = raw_login(roost_server, line_client)
    ok(d, b"s", b"SELECT Dest")
    ok(a, b"cp", b"COPY 1 Dest")
    lines = ok(d, b"n", b"NOOP")
    assert any(l.startswith(b"* FLAGS") and b"Fresh" in l for l in lines), lines


# ---------------------------------------------------------------- BINARY (RFC 3516)

MULTIPART = (b"From: a@example.test\r\nTo: demo@example.test\r\nSubject: parts\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
             b"--XX\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
             b"--XX\r\nContent-Type: application/octet-stream\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF/w==\r\n"
             b"--XX\r\nContent-Type: message/rfc822\r\n\r\n"
             b"Subject: inner\r\nContent-Type: text/plain\r\n"
             b"Content-Transfer-Encoding: quoted-printable\r\n\r\nsoft=3Dbreak\r\n"
             b"--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n"
             b"--YY\r\nContent-Type: text/plain\r\n\r\nalt\r\n--YY--\r\n"
             b"--XX--\r\n")
NESTED = b"--YY\r\nContent-Type: text/plain\r\n\r\nalt\r\n--YY--"


def fetch_items(c, tag, line):
    """Runs a FETCH; returns (text with literals replaced by <n>, list of literal bodies)."""
    c.send(tag + b" " + line + b"\r\n")
    text, bodies = b"", []
    while True:
        l = c.line()
        if l.startswith(tag + b" "):
            assert l.startswith(tag + b" OK"), l
            return text, bodies
        m = re.search(rb"~?\{(\d+)\}$", l)
        text += l
        if m:
            size = int(m.group(1))
            while len(c.buf) < size:
                c.sock.settimeout(10)
                c.buf += c.sock.recv(65536)
            bodies.append(c.buf[:size])
            c.buf = c.buf[size:]


def test_binary_every_part(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    c.send(b"a APPEND INBOX ~{%d}\r\n" % len(MULTIPART))
    assert c.line().startswith(b"+")
    c.send(MULTIPART + b"\r\n")
    assert c.until(b"a ")[-1].startswith(b"a OK")
    ok(c, b"s", b"SELECT INBOX")
    text, bodies = fetch_items(c, b"f", b"FETCH 1 (BINARY.SIZE[] BINARY.SIZE[1] BINARY.SIZE[2]"
                               b" BINARY.SIZE[3] BINARY.SIZE[3.1] BINARY.SIZE[4]"
                               b" BINARY.SIZE[4.1])")
    assert b"NIL" not in text, text
    assert b"BINARY.SIZE[] %d" % len(MULTIPART) in text, text
    assert b"BINARY.SIZE[1] 10" in text, text
    assert b"BINARY.SIZE[2] 7" in text, text
    assert b"BINARY.SIZE[3.1] 10" in text, text
    assert b"BINARY.SIZE[4] %d" % len(NESTED) in text, text
    assert b"BINARY.SIZE[4.1] 3" in text, text
    text, bodies = fetch_items(c, b"g", b"FETCH 1 (BINARY.PEEK[] BINARY.PEEK[2] BINARY.PEEK[3]"
                               b" BINARY.PEEK[3.1] BINARY.PEEK[4])")
    assert b"NIL" not in text, text
    assert bodies[0] == MULTIPART
    assert b"\x00\x01\x02\x03\x04\x05\xff" in bodies
    assert b"soft=break" in bodies
    assert NESTED in bodies
    assert any(b.startswith(b"Subject: inner") for b in bodies), bodies


# ---------------------------------------------------------------- long command lines

def test_command_line_of_64k(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    fields = b" ".join(b'"f%02d" "%s"' % (i, b"v" * 1024) for i in range(30))
    lines = run(c, b"i", b"ID (" + fields + b")")
    assert lines[-1].startswith(b"i OK"), lines[-1][:200]
    line = b"n NOOP " + b"x" * (60 * 1024)
    lines = run(c, b"n", line[2:])
    assert b"TOOBIG" not in lines[-1], lines[-1][:200]
    lines = run(c, b"t", b"NOOP " + b"x" * (70 * 1024))
    assert b"TOOBIG" in lines[-1], lines[-1][:200]
    assert ok(c, b"z", b"NOOP")


# ---------------------------------------------------------------- COPY/MOVE to itself

def test_copy_and_move_into_same_mailbox(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    m = simple("self")
    c.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
    assert c.until(b"p ")[-1].startswith(b"p OK")
    ok(c, b"s", b"SELECT INBOX")
    lines = ok(c, b"c", b"COPY 1 INBOX")
    assert re.search(rb"\[COPYUID \d+ 1 2\]", lines[-1]), lines
    lines += ok(c, b"n", b"NOOP")
    assert b"* 2 EXISTS" in lines, lines
    lines = ok(c, b"m", b"UID MOVE 1 INBOX")
    assert any(re.search(rb"COPYUID \d+ 1 3", l) for l in lines), lines
    assert b"* 1 EXPUNGE" in lines, lines
    uids = [int(x) for x in re.findall(rb"UID (\d+)", b" ".join(ok(c, b"f", b"FETCH 1:* UID")))]
    assert uids == [2, 3]


# ---------------------------------------------------------------- UID ranges

def test_uid_range_above_highest_matches_nothing(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    for i in range(3):
        m = simple("u%d" % i)
        c.send(b"p APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
        assert c.until(b"p ")[-1].startswith(b"p OK")
    ok(c, b"s", b"SELECT INBOX")
    lines = ok(c, b"f", b"UID FETCH 10:4294967295 (FLAGS)")
    assert not any(b"FETCH" in l for l in lines[:-1]), lines
    assert search(c, b"u", b"UID SEARCH UID 10:4294967295") == []
    lines = ok(c, b"g", b"UID FETCH 10:* (FLAGS)")
    assert sum(l.startswith(b"* 3 FETCH") for l in lines) == 1, lines
    lines = ok(c, b"st", b"UID STORE 4:4294967295 +FLAGS (\\Flagged)")
    assert not any(b"FETCH" in l for l in lines[:-1]), lines


# ---------------------------------------------------------------- address SEARCH keys

def test_search_address_keys_match_display_names_and_groups(roost_server):
    c = login(roost_server)
    append(c, b"From: \"Zed Quux\" <zq@example.test>\r\nTo: Team Alpha: ann@example.test,"
              b" bob@example.test;\r\nCc: =?utf-8?q?J=C3=BCrgen?= <j@example.test>, Carl Cee <cc@example.test>\r\n"
              b"Bcc: Hidden Person <hid@example.test>\r\nSubject: one\r\n\r\nbody\r\n")
    append(c, simple("two"))
    c.select("INBOX")
    for key, value in (("FROM", "Zed Quux"), ("FROM", "zq@example"), ("TO", "Team Alpha"),
                       ("TO", "bob@example.test"), ("CC", "Carl Cee"), ("BCC", "Hidden Person")):
        typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", key, '"%s"' % value)
        assert typ == "OK"
        assert data[0].split() == [b"1"], (key, value, data)
    # An RFC 2047 display name matches decoded (sent as a literal).
    c.literal = "Jürgen".encode()
    typ, data = c.uid("SEARCH", "CHARSET", "UTF-8", "CC")
    assert typ == "OK" and data[0].split() == [b"1"], data


# ---------------------------------------------------------------- LIST-EXTENDED, LSUB

def test_list_subscribed_names_that_do_not_exist(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    # A subscription outlives its mailbox (RFC 3501 §6.3.6).
    ok(c, b"g", b"CREATE Ghost")
    ok(c, b"a", b"SUBSCRIBE Ghost")
    ok(c, b"d", b"DELETE Ghost")
    lines = ok(c, b"l", b'LIST (SUBSCRIBED) "" "*"')
    ghost = [l for l in lines if l.endswith(b" Ghost")]
    assert ghost and b"\\NonExistent" in ghost[0] and b"\\Subscribed" in ghost[0], lines
    lines = ok(c, b"ls", b'LSUB "" "*"')
    assert any(l.startswith(b"* LSUB") and l.endswith(b" Ghost") for l in lines), lines
    # Subscribing to a name that does not exist is allowed too; UNSUBSCRIBE ends it.
    ok(c, b"b", b"SUBSCRIBE Never")
    lines = ok(c, b"l2", b'LIST (SUBSCRIBED) "" "Never"')
    assert any(l.endswith(b" Never") and b"\\NonExistent" in l for l in lines), lines
    ok(c, b"u", b"UNSUBSCRIBE Never")
    lines = ok(c, b"l3", b'LIST (SUBSCRIBED) "" "Never"')
    assert len(lines) == 1, lines
    # Created again, it is the subscribed mailbox once more.
    ok(c, b"g2", b"CREATE Ghost")
    lines = ok(c, b"l4", b'LIST (SUBSCRIBED) "" "Ghost"')
    assert b"\\NonExistent" not in lines[0] and b"\\Subscribed" in lines[0], lines


def test_list_extended_recursivematch_and_lsub_parents(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    ok(c, b"c", b"CREATE Par/Child")
    ok(c, b"c2", b"CREATE Other/Kid")
    ok(c, b"su", b"SUBSCRIBE Par/Child")
    lines = ok(c, b"l2", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    par = [l for l in lines if b' "/" Par' in l]
    assert par and b'("CHILDINFO" ("SUBSCRIBED"))' in par[0], lines
    assert b"\\Subscribed" not in par[0], lines
    # A subscribed parent with a subscribed child left out also gets CHILDINFO...
    ok(c, b"sp", b"SUBSCRIBE Par")
    lines = ok(c, b"l4", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    par = [l for l in lines if b' "/" Par' in l]
    assert par and b"\\Subscribed" in par[0] and b"CHILDINFO" in par[0], lines
    # ... but not when the child is listed itself (RFC 5258 §3.5: redundant).
    lines = ok(c, b"l5", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
    par = [l for l in lines if l.endswith(b' "/" Par')]
    assert par, lines
    ok(c, b"up", b"UNSUBSCRIBE Par")
    # Other has no subscribed child: no CHILDINFO, and it is not listed at all.
    assert not any(b"Other" in l for l in lines), lines
    # Without RECURSIVEMATCH there is no CHILDINFO (RFC 5258 §3.5).
    lines = ok(c, b"l3", b'LIST (SUBSCRIBED) "" "*"')
    assert not any(b"CHILDINFO" in l for l in lines), lines

    lines = ok(c, b"ls", b'LSUB "" "%"')
    par = [l for l in lines if l.startswith(b"* LSUB") and l.endswith(b" Par")]
    assert par and b"\\Noselect" in par[0], lines
    lines = ok(c, b"ls2", b'LSUB "" "*"')
    assert any(l.startswith(b"* LSUB") and l.endswith(b" Par/Child") for l in lines), lines
    assert not any(l.endswith(b" Par") for l in lines if l.startswith(b"* LSUB")), lines


# ---------------------------------------------------------------- CAPABILITY

def test_capability_lists_what_works(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    caps = ok(c, b"c", b"CAPABILITY")[0].split()
    for word in (b"BINARY", b"LIST-EXTENDED", b"MOVE", b"UIDPLUS", b"LITERAL+"):
        assert word in caps, caps
