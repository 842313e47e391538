"""SORT and THREAD answers kept between commands (imap/sort_kept.c): a repeated command on an
unchanged mailbox reuses the kept order, and anything that changes the mailbox or a message's
keys (new mail, expunge, another session, another process writing the index) makes the next
command compute it again. Each test sorts first, so that an order is kept, then changes the
mailbox and checks the next answer."""
import glob
import os
import sqlite3

from imap_util import append, login
from conftest import wait_until


def msg(subject, msgid, date, frm="a@example.test", refs=None):
    h = "From: %s\r\nTo: b@example.test\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s>\r\n" \
        % (frm, subject, date, msgid)
    if refs:
        h += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    return (h + "\r\nbody\r\n").encode()


def populate(c):
    append(c, msg("Plans", "p1@x", "Mon, 1 Jan 2024 10:00:00 +0000", "carol@example.test"))
    append(c, msg("Re: Plans", "p2@x", "Tue, 2 Jan 2024 10:00:00 +0000", "bob@example.test",
                  refs=["p1@x"]))
    append(c, msg("Budget", "p3@x", "Wed, 3 Jan 2024 10:00:00 +0000", "dave@example.test"))
    append(c, msg("Alone", "p4@x", "Sun, 31 Dec 2023 10:00:00 +0000", "erin@example.test"))
    c.select("INBOX")


def sort(c, criteria, search="ALL", uid=False):
    if uid:
        typ, data = c.uid("SORT", criteria, "UTF-8", search)
    else:
        typ, data = c.sort(criteria, "UTF-8", search)
    assert typ == "OK", data
    return data[0].decode()


def thread(c, algorithm="REFERENCES"):
    typ, data = c.thread(algorithm, "UTF-8", "ALL")
    assert typ == "OK", data
    return data[0].decode()


def test_new_mail_that_sorts_first(roost_server):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(DATE)") == "4 1 2 3"
    assert sort(c, "(DATE)") == "4 1 2 3"
    append(c, msg("Earliest", "p5@x", "Sat, 30 Dec 2023 10:00:00 +0000", "alice@example.test"))
    c.noop()
    assert sort(c, "(DATE)") == "5 4 1 2 3"
    assert sort(c, "(FROM)") == "5 2 1 3 4"
    assert sort(c, "(REVERSE DATE)", uid=True) == "3 2 1 4 5"
    c.logout()


def test_expunge(roost_server):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(DATE)") == "4 1 2 3"
    assert thread(c) == "(4)(1 2)(3)"
    c.store("1", "+FLAGS", "(\\Deleted)")
    c.expunge()
    # sequence numbers moved down: 4 is 3 now, and the message numbered 1 is gone
    assert sort(c, "(DATE)") == "3 1 2"
    assert sort(c, "(DATE)", uid=True) == "4 2 3"
    assert thread(c) == "(3)(1)(2)"
    c.logout()


def test_a_second_session_changes_the_mailbox(roost_server):
    a = login(roost_server)
    populate(a)
    b = login(roost_server, "INBOX")
    assert sort(a, "(DATE)") == "4 1 2 3"
    assert thread(a) == "(4)(1 2)(3)"
    # as many messages as before, one of them another
    append(b, msg("Re: Alone", "p5@x", "Sat, 3 Feb 2024 10:00:00 +0000", refs=["p4@x"]))
    b.store("1", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.logout()
    # a's view has not learnt of either change yet: the answer numbers what it knows
    assert sort(a, "(DATE)", uid=True) == "4 2 3"
    a.noop()
    assert sort(a, "(DATE)") == "3 1 2 4"
    assert sort(a, "(DATE)", uid=True) == "4 2 3 5"
    assert thread(a) == "(3 4)(1)(2)"
    a.logout()


def test_search_and_flags_filter_the_kept_order(roost_server):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(SUBJECT)") == "4 3 1 2"
    assert sort(c, "(SUBJECT)", "UNSEEN") == "4 3 1 2"
    c.store("3", "+FLAGS", "(\\Seen)")
    assert sort(c, "(SUBJECT)", "UNSEEN") == "4 1 2"
    assert sort(c, "(SUBJECT)", "SEEN") == "3"
    assert sort(c, "(REVERSE SUBJECT)", "2:4") == "2 3 4"
    c.logout()


def index_path(server):
    paths = glob.glob(os.path.join(server.data_dir, "**", "roost-index.sqlite"), recursive=True)
    assert len(paths) == 1, paths
    return paths[0]


def test_another_process_writes_the_index(roost_server):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(SUBJECT)") == "4 3 1 2"
    assert thread(c, "ORDEREDSUBJECT") == "(4)(1 2)(3)"
    # Another process (here: by hand, with the server running) rewrites message 3's file and
    # drops what the index cached of it: its keys are derived again from the new subject
    # and date.
    path = next(p for p in glob.glob(os.path.join(roost_server.data_dir, "**", "cur", "*"),
                                     recursive=True)
                if b"<p3@x>" in open(p, "rb").read())
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data.replace(b"Subject: Budget", b"Subject: Zoning")
                .replace(b"Wed, 3 Jan 2024", b"Fri, 1 Dec 2023"))
    db = sqlite3.connect(index_path(roost_server))
    db.execute("DELETE FROM message_cache WHERE uid = 3")
    db.commit()
    db.close()
    assert sort(c, "(SUBJECT)") == "4 1 2 3"
    assert sort(c, "(DATE)") == "3 4 1 2"
    assert thread(c, "ORDEREDSUBJECT") == "(3)(4)(1 2)"
    c.logout()


def test_import_by_another_process(roost_server, tmp_path):
    c = login(roost_server)
    populate(c)
    assert sort(c, "(DATE)") == "4 1 2 3"
    mbox = tmp_path / "in.mbox"
    mbox.write_bytes(b"From x@example.test Mon Jan  1 00:00:00 2024\n" +
                     msg("Old", "p6@x", "Fri, 1 Dec 2023 10:00:00 +0000").replace(b"\r\n", b"\n"))
    roost_server.cli("import", "demo@example.test", str(mbox))

    def five():
        typ, data = c.noop()
        return typ == "OK" and c.select("INBOX")[1][0] == b"5"
    wait_until(five)
    assert sort(c, "(DATE)") == "5 4 1 2 3"
    c.logout()
