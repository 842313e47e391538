"""POP3 maildrop semantics: UIDL values that survive sessions, restarts and a deleted index;
deletions only at QUIT (never on a dropped connection); new mail shows up in the next session;
the three [pop3] delete_action settings and include_junk."""
import glob
import os
import sqlite3
import time

from conftest import DEMO_USER
from test_pop3_commands import crlf, import_messages, message, pop_connect

USER_DIR = ("data", "mail", "example.test", "demo")


def user_dir(r):
    return os.path.join(r.dir, *USER_DIR)


def uidls(p):
    assert p.cmd("UIDL").startswith(b"+OK")
    return [tuple(l.split()) for l in p.multi().splitlines()]


def subjects(p):
    """Subject of every message in the maildrop, by TOP n 0."""
    out = []
    assert p.cmd("LIST").startswith(b"+OK")
    for n in [l.split()[0] for l in p.multi().splitlines()]:
        assert p.cmd(b"TOP " + n + b" 0\r\n").startswith(b"+OK")
        head = p.multi()
        out.append([l for l in head.split(b"\r\n") if l.startswith(b"Subject:")][0][9:].decode())
    return out


def maildir_with_junk(tmp_path, inbox=(), junk=()):
    """A Maildir++ tree with INBOX and Junk messages, for `roost import`."""
    md = tmp_path / "maildir"
    for d in ("cur", "new", "tmp", ".Junk/cur", ".Junk/new", ".Junk/tmp"):
        (md / d).mkdir(parents=True)
    for i, m in enumerate(inbox):
        (md / "cur" / ("1700000000.%d.host:2," % (i + 1))).write_bytes(m)
    for i, m in enumerate(junk):
        (md / ".Junk" / "cur" / ("1700000000.%d.host:2," % (100 + i))).write_bytes(m)
    return str(md)


def test_uidl_stable_across_sessions_restart_and_index_rebuild(make_roost):
    r = make_roost()
    import_messages(r, [message(i) for i in range(1, 6)])
    p = pop_connect(r)
    first = uidls(p)
    assert len(first) == 5
    p.close()
    p = pop_connect(r)
    assert uidls(p) == first
    p.close()
    assert r.stop() == 0
    r.start()
    p = pop_connect(r)
    assert uidls(p) == first
    p.close()
    # Delete the SQLite index (and its WAL files) while stopped: the store rebuilds it from the
    # Maildir, and UIDVALIDITY and UIDs, hence the UIDLs, must come back unchanged.
    assert r.stop() == 0
    index = os.path.join(user_dir(r), "roost-index.sqlite")
    assert os.path.exists(index)
    for f in glob.glob(index + "*"):
        os.unlink(f)
    r.start()
    p = pop_connect(r)
    assert uidls(p) == first
    assert subjects(p) == ["message %d" % i for i in range(1, 6)]
    p.close()


def test_uidl_not_reused_after_delete(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2)])
    p = pop_connect(r)
    before = dict(uidls(p))
    assert p.cmd("DELE 2").startswith(b"+OK")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    import_messages(r, [message(3)])
    p = pop_connect(r)
    after = uidls(p)
    assert after[0][1] == before[b"1"]
    assert after[1][1] not in before.values()
    p.close()


def test_dropped_connection_deletes_nothing_quit_does(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2), message(3)])
    p = pop_connect(r)
    assert p.cmd("DELE 1").startswith(b"+OK")
    assert p.cmd("DELE 3").startswith(b"+OK")
    p.close()  # no QUIT
    time.sleep(0.3)
    p = pop_connect(r)
    assert p.cmd("STAT").startswith(b"+OK 3 ")
    assert p.cmd("DELE 1").startswith(b"+OK")
    assert p.cmd("DELE 3").startswith(b"+OK")
    assert p.cmd("QUIT") == b"+OK Roost POP3 signing off"
    p.close()
    p = pop_connect(r)
    assert p.cmd("STAT").startswith(b"+OK 1 ")
    assert subjects(p) == ["message 2"]
    p.close()
    # expunge removes the files too
    assert len(os.listdir(os.path.join(user_dir(r), "cur"))) == 1


def test_snapshot_fixed_new_mail_in_next_session(make_roost):
    r = make_roost()
    import_messages(r, [message(1)])
    p = pop_connect(r)
    assert p.cmd("STAT").startswith(b"+OK 1 ")
    import_messages(r, [message(2)])
    assert p.cmd("STAT").startswith(b"+OK 1 ")
    assert p.cmd("LIST 2").startswith(b"-ERR")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    p = pop_connect(r)
    assert p.cmd("STAT").startswith(b"+OK 2 ")
    assert subjects(p) == ["message 1", "message 2"]
    p.close()


def test_delete_action_trash(make_roost):
    r = make_roost(extra={"pop3": {"delete_action": "trash"}})
    import_messages(r, [message(1), message(2)])
    p = pop_connect(r)
    assert p.cmd("DELE 1").startswith(b"+OK")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    p = pop_connect(r)
    assert subjects(p) == ["message 2"]
    p.close()
    trash = glob.glob(os.path.join(user_dir(r), ".Trash", "cur", "*"))
    assert len(trash) == 1
    with open(trash[0], "rb") as f:
        assert f.read() == crlf(message(1))


def test_delete_action_keep(make_roost):
    r = make_roost(extra={"pop3": {"delete_action": "keep"}})
    import_messages(r, [message(1), message(2)])
    p = pop_connect(r)
    assert p.cmd("DELE 2").startswith(b"+OK")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    p = pop_connect(r)
    assert subjects(p) == ["message 1"]
    p.close()
    # The message stays in INBOX for IMAP, marked \Seen and with the keyword, which its file
    # name carries too (letter a of the folder's roost-keywords), so it survives an index loss.
    files = sorted(os.listdir(os.path.join(user_dir(r), "cur")))
    assert len(files) == 2
    assert sum(1 for f in files if f.endswith(":2,Sa")) == 1
    with open(os.path.join(user_dir(r), "roost-keywords")) as f:
        assert f.read() == "0 $POP3Deleted\n"
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(user_dir(r), "roost-index.sqlite"),
                         uri=True)
    rows = [str(row) for row in db.execute("SELECT * FROM messages")]
    db.close()
    assert sum(1 for row in rows if "$POP3Deleted" in row) == 1
    # Index lost while stopped: rebuilt from the files, the message stays hidden from POP3.
    assert r.stop() == 0
    for f in glob.glob(os.path.join(user_dir(r), "roost-index.sqlite*")):
        os.unlink(f)
    r.start()
    p = pop_connect(r)
    assert subjects(p) == ["message 1"]
    p.close()


def test_include_junk(make_roost, tmp_path):
    r = make_roost(extra={"pop3": {"include_junk": "yes"}})
    import_messages(r, [message(1)])
    # A Maildir++ tree with a Junk folder, imported with its folders.
    r.cli("import", DEMO_USER, maildir_with_junk(tmp_path, junk=[message(9)]))
    p = pop_connect(r)
    assert subjects(p) == ["message 1", "message 9"]
    ids = [u for _, u in uidls(p)]
    assert ids[1].startswith(b"J") and not ids[0].startswith(b"J")
    assert p.cmd("DELE 2").startswith(b"+OK")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    p = pop_connect(r)
    assert subjects(p) == ["message 1"]
    p.close()
    assert os.listdir(os.path.join(user_dir(r), ".Junk", "cur")) == []


def test_junk_left_out_by_default(make_roost, tmp_path):
    r = make_roost()
    r.cli("import", DEMO_USER, maildir_with_junk(tmp_path, [message(1)], [message(9)]))
    p = pop_connect(r)
    assert subjects(p) == ["message 1"]
    p.close()


def test_maildir_new_picked_up_at_login(make_roost):
    r = make_roost()
    import_messages(r, [message(1)])
    path = os.path.join(user_dir(r), "new", "1700000001.42.otherhost")
    with open(path, "wb") as f:
        f.write(crlf(message(2)))
    p = pop_connect(r)
    assert subjects(p) == ["message 1", "message 2"]
    p.close()
