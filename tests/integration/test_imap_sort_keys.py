"""The SORT/THREAD keys the index keeps per message (table sort_cache): derived once, for
messages saved before the index kept them too, forgotten with the message or its envelope,
and used instead of the message files (References included) from then on."""
import glob
import os
import sqlite3

from imap_util import append, login


def msg(subject, msgid, date, refs=None):
    h = "From: a@example.test\r\nTo: b@example.test\r\nSubject: %s\r\nDate: %s\r\n" \
        "Message-ID: <%s>\r\n" % (subject, date, msgid)
    if refs:
        h += "References: %s\r\n" % " ".join("<%s>" % r for r in refs)
    return (h + "\r\nbody\r\n").encode()


def populate(c):
    # distinct subjects: only References can put 2 and 3 into 1's thread
    append(c, msg("Plans", "p1@x", "Mon, 1 Jan 2024 10:00:00 +0000"))
    append(c, msg("Other words", "p2@x", "Tue, 2 Jan 2024 10:00:00 +0000", refs=["p1@x"]))
    append(c, msg("Third", "p3@x", "Wed, 3 Jan 2024 10:00:00 +0000", refs=["p1@x", "p2@x"]))
    append(c, msg("Alone", "p4@x", "Sun, 31 Dec 2023 10:00:00 +0000"))
    c.select("INBOX")


def index_path(server):
    paths = glob.glob(os.path.join(server.data_dir, "**", "roost-index.sqlite"), recursive=True)
    assert len(paths) == 1, paths
    return paths[0]


def kept_uids(server):
    db = sqlite3.connect(index_path(server))
    try:
        return sorted(r[0] for r in db.execute("SELECT uid FROM sort_cache"))
    finally:
        db.close()


def thread_refs(c):
    typ, data = c.thread("REFERENCES", "UTF-8", "ALL")
    assert typ == "OK", data
    return data[0].decode()


def sort_date(c):
    typ, data = c.sort("(DATE)", "UTF-8", "ALL")
    assert typ == "OK", data
    return data[0].decode()


def test_keys_are_kept_and_threads_read_no_message_file(roost_server):
    c = login(roost_server)
    populate(c)
    assert thread_refs(c) == "(4)(1 2 3)"
    assert kept_uids(roost_server) == [1, 2, 3, 4]
    c.logout()
    # The References of message 3 are in the index now: a THREAD after the file lost them
    # (behind the server's back, same size) still threads it under 2.
    roost_server.stop()
    path = next(p for p in glob.glob(os.path.join(roost_server.data_dir, "**", "cur", "*"),
                                     recursive=True)
                if b"<p3@x>" in open(p, "rb").read())
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data.replace(b"References: <p1@x> <p2@x>", b"X-Nowhere1: <p1@x> <p2@x>"))
    roost_server.start()
    c = login(roost_server, "INBOX")
    assert thread_refs(c) == "(4)(1 2 3)"
    c.logout()


def test_messages_saved_before_the_index_kept_keys(roost_server):
    c = login(roost_server)
    populate(c)
    c.logout()
    # An index from before sort_cache: the table and its triggers are not there.
    roost_server.stop()
    db = sqlite3.connect(index_path(roost_server))
    for name in ("sort_cache_on_envelope", "sort_cache_on_envelope_update",
                 "sort_cache_on_envelope_delete", "sort_cache_on_expunge"):
        db.execute("DROP TRIGGER IF EXISTS %s" % name)
    db.execute("DROP TABLE IF EXISTS sort_cache")
    db.commit()
    db.close()
    roost_server.start()
    c = login(roost_server, "INBOX")
    # SORT derives the keys it lacks, without References; THREAD then derives those again
    assert sort_date(c) == "4 1 2 3"
    assert kept_uids(roost_server) == [1, 2, 3, 4]
    assert thread_refs(c) == "(4)(1 2 3)"
    assert sort_date(c) == "4 1 2 3"
    c.logout()


def test_keys_go_with_their_message(roost_server):
    c = login(roost_server)
    populate(c)
    assert thread_refs(c) == "(4)(1 2 3)"
    c.store("2", "+FLAGS", "(\\Deleted)")
    c.expunge()
    assert kept_uids(roost_server) == [1, 3, 4]
    assert thread_refs(c) == "(3)(1 2)"
    # a copy gets keys of its own on its first SORT, equal to the original's
    c.create("Copies")
    c.copy("1:*", "Copies")
    c.select("Copies")
    assert sort_date(c) == "3 1 2"
    assert thread_refs(c) == "(3)(1 2)"
    c.logout()
