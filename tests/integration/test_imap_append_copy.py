"""APPEND (flags, date, TRYCREATE, TOOBIG before "+", LITERAL+ streaming), COPY/MOVE with
COPYUID (RFC 4315, RFC 6851), EXPUNGE / UID EXPUNGE, CLOSE, UNSELECT, CHECK."""
import glob
import os

from imap_util import append, login, raw_login, simple


def test_append_appenduid_flags_date(roost_server):
    c = login(roost_server)
    resp = append(c, simple("a"), flags="(\\Seen \\Draft kw1)", date='"05-Mar-2023 01:02:03 +0100"')
    assert resp[0].startswith(b"[APPENDUID ") and resp[0].split()[2] == b"1]"
    c.select("INBOX")
    typ, data = c.fetch("1", "(FLAGS INTERNALDATE)")
    assert data[0] == b'1 (UID 1 FLAGS (\\Recent \\Seen \\Draft kw1) INTERNALDATE "05-Mar-2023 00:02:03 +0000")'


def test_append_errors(make_roost, line_client):
    srv = make_roost(extra={"limits": {"message_size": "1M"}})
    r = raw_login(srv, line_client)
    r.send(b"c CAPABILITY\r\n")
    assert b"APPENDLIMIT=1048576" in r.until(b"c ")[0]
    r.send(b"a APPEND Nope {5}\r\n")
    assert r.line() == b"a NO [TRYCREATE] Mailbox does not exist"
    r.send(b"b APPEND INBOX {2000000}\r\n")
    assert r.line().startswith(b"b NO [TOOBIG]")
    # non-synchronising literal to a missing mailbox: the octets are skipped
    r.send(b"d APPEND Nope {22+}\r\nx DELETE INBOX\r\nabcdefgh\r\ne NOOP\r\n")
    assert r.line() == b"d NO [TRYCREATE] Mailbox does not exist"
    assert r.line() == b"e OK NOOP completed"
    r.send(b"f APPEND INBOX (\\Bogus) {3}\r\n")
    assert r.line().startswith(b"f BAD")
    r.send(b"g APPEND INBOX\r\n")
    assert r.line().startswith(b"g BAD")


def test_append_literal_plus_and_sync(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    msg = simple("lit")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    assert r.line().startswith(b"a OK [APPENDUID ")
    r.send(b"b APPEND INBOX (\\Seen) {%d}\r\n" % len(msg))
    assert r.line().startswith(b"+ ")
    for i in range(0, len(msg), 7):  # slowly
        r.send(msg[i:i + 7])
    r.send(b"\r\n")
    assert r.line().startswith(b"b OK [APPENDUID ")
    r.send(b"c STATUS INBOX (MESSAGES)\r\n")
    assert r.until(b"c ")[0] == b"* STATUS INBOX (MESSAGES 2)"


def test_append_to_selected_reports_exists(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    msg = simple("sel")
    r.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    lines = r.until(b"a ")
    assert lines == [b"* 1 EXISTS", b"* 1 RECENT", lines[-1]] and lines[-1].startswith(b"a OK")


def test_copy_move_copyuid(roost_server, line_client):
    c = login(roost_server)
    for i in range(3):
        append(c, simple("m%d" % i))
    c.create("Dest")
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"c COPY 1:2 Dest\r\n")
    lines = r.until(b"c ")
    assert lines[-1].startswith(b"c OK [COPYUID ") and lines[-1].split()[4:6] == [b"1:2", b"1:2]"]
    r.send(b"n COPY 1 Nope\r\n")
    assert r.line() == b"n NO [TRYCREATE] Target mailbox does not exist"
    r.send(b"m MOVE 2 Dest\r\n")
    lines = r.until(b"m ")
    assert lines[0].startswith(b"* OK [COPYUID ") and lines[0].split()[4:6] == [b"2", b"3]"]
    assert lines[1] == b"* 2 EXPUNGE" and lines[2] == b"m OK MOVE completed"
    r.send(b"u UID MOVE 3 Dest\r\n")
    lines = r.until(b"u ")
    assert lines[1] == b"* 2 EXPUNGE"
    r.send(b"t STATUS Dest (MESSAGES)\r\n")
    assert r.until(b"t ")[0] == b"* STATUS Dest (MESSAGES 4)"


def test_expunge_variants(roost_server, line_client):
    c = login(roost_server)
    for i in range(5):
        append(c, simple("e%d" % i), flags="(\\Deleted)" if i != 2 else None)
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"u UID EXPUNGE 4:5\r\n")
    assert r.until(b"u ") == [b"* 4 EXPUNGE", b"* 4 EXPUNGE", b"u OK EXPUNGE completed"]
    r.send(b"e EXPUNGE\r\n")
    assert r.until(b"e ") == [b"* 1 EXPUNGE", b"* 1 EXPUNGE", b"e OK EXPUNGE completed"]
    r.send(b"c CHECK\r\nx STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    assert r.until(b"c ")[-1] == b"c OK CHECK completed"
    assert r.until(b"x ") == [b"x OK STORE completed"]
    r.send(b"u UNSELECT\r\n")
    assert r.line() == b"u OK UNSELECT completed"
    r.send(b"f FETCH 1 FLAGS\r\n")
    assert r.line().startswith(b"f BAD")
    r.send(b"s SELECT INBOX\r\nz CLOSE\r\n")
    r.until(b"s OK")
    assert r.line() == b"z OK CLOSE completed"
    r.send(b"t STATUS INBOX (MESSAGES)\r\n")
    assert r.until(b"t ")[0] == b"* STATUS INBOX (MESSAGES 0)"


def test_store_variants(roost_server, line_client):
    c = login(roost_server)
    append(c, simple("st"))
    c.logout()
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    r.send(b"a STORE 1 FLAGS (\\Answered kw)\r\n")
    lines = r.until(b"a ")
    # kw is new to the mailbox: announced first (RFC 3501 §7.2.6)
    assert lines[0] == b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft kw)"
    assert lines[2] == b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Answered kw))"
    r.send(b"b STORE 1 -FLAGS \\Answered\r\n")
    assert r.until(b"b ")[0] == b"* 1 FETCH (UID 1 FLAGS (\\Recent kw))"
    r.send(b"c STORE 1 (NOSUCHMODIFIER 5) FLAGS ()\r\n")
    assert r.line().startswith(b"c BAD")
    r.send(b"e EXAMINE INBOX\r\nf STORE 1 +FLAGS (\\Seen)\r\n")
    r.until(b"e OK")
    assert r.line().startswith(b"f NO [READ-ONLY]")


def test_keywords_survive_an_index_rebuild(make_roost):
    """Keywords set by STORE, given at APPEND and carried by COPY and MOVE come back from the
    Maildir file names when the index is lost (a folder's first 26 keywords have letters)."""
    r = make_roost()
    c = login(r, select="INBOX")
    append(c, simple("one"))
    append(c, simple("two"), flags="($Forwarded Work)")
    append(c, simple("three"))
    assert c.store("1", "+FLAGS", "(\\Seen $Label1 work)")[0] == "OK"
    assert c.store("3", "+FLAGS", "($Junk)")[0] == "OK"
    assert c.store("3", "-FLAGS", "($Junk)")[0] == "OK"
    assert c.create("Archive2")[0] == "OK"
    assert c.copy("2", "Archive2")[0] == "OK"
    # 27 keywords on one message: only the first 26 of the folder get letters.
    many = " ".join("k%02d" % i for i in range(27))
    append(c, simple("four"), flags="(%s)" % many)
    before = c.fetch("1:4", "(FLAGS)")[1]
    c.logout()
    assert r.stop() == 0
    mail = os.path.join(r.dir, "data", "mail", "example.test", "demo")
    for f in glob.glob(os.path.join(mail, "roost-index.sqlite*")):
        os.unlink(f)
    r.start()
    c = login(r, select="INBOX")
    flags = {}
    for line in c.fetch("1:4", "(UID FLAGS)")[1]:
        text = line.decode()
        seq = int(text.split()[0])
        # Keywords are case-insensitive: the file gives back the spelling first stored.
        flags[seq] = {f.lower() for f in text.split("FLAGS (")[1].split(")")[0].split()}
        flags[seq].discard("\\recent")  # a rebuilt index starts every message recent
    assert flags[1] == {"\\seen", "$label1", "work"}
    assert flags[2] == {"$forwarded", "work"}
    assert flags[3] == set()
    assert len(flags[4]) == 26 - 4  # $Label1, Work, $Forwarded and $Junk took four letters
    c.select("Archive2")
    copied = c.fetch("1", "(FLAGS)")[1][0].decode()
    assert "$Forwarded" in copied
    c.logout()
    assert len(before) == 4
