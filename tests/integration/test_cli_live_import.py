"""`roost import` into an account that a running server has open: the server hears of the
new messages at once (the command tells it over its status socket), so a session with the
mailbox selected sees them as EXISTS at its next NOOP or while it idles, and FETCH returns
their data."""
import imaplib

from conftest import DEMO_PASSWORD, DEMO_USER

MBOX = ("From x@remote.test Thu Jan  1 00:00:00 2026\nFrom: x@remote.test\nSubject: old %d\n\n"
        "body %d\n\n")


def write_mbox(path, n):
    with open(path, "w") as f:
        for i in range(n):
            f.write(MBOX % (i, i))


def test_import_into_a_selected_mailbox_is_seen_at_noop(make_roost, tmp_path):
    r = make_roost()
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
    m.login(DEMO_USER, DEMO_PASSWORD)
    m.append("INBOX", None, None, b"Subject: before\r\n\r\nfirst\r\n")
    assert m.select("INBOX") == ("OK", [b"1"])
    mbox = str(tmp_path / "old.mbox")
    write_mbox(mbox, 3)
    res = r.cli("import", DEMO_USER, mbox)
    assert "imported 3" in res.stdout
    typ, data = m.noop()
    assert typ == "OK"
    assert m.untagged_responses.get("EXISTS", [])[-1:] == [b"4"], m.untagged_responses
    typ, data = m.fetch("2:4", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert typ == "OK"
    subjects = [d[1] for d in data if isinstance(d, tuple)]
    assert subjects == [b"Subject: old %d\r\n\r\n" % i for i in range(3)], data
    m.logout()


def test_import_reaches_an_idling_session(make_roost, tmp_path):
    r = make_roost()
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
    m.login(DEMO_USER, DEMO_PASSWORD)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    mbox = str(tmp_path / "old.mbox")
    write_mbox(mbox, 2)
    r.cli("import", DEMO_USER, mbox)
    m.sock.settimeout(10)
    line = m.readline()
    while line.startswith(b"* OK"):
        line = m.readline()
    assert line.strip() in (b"* 2 EXISTS", b"* 1 EXISTS"), line
    m.send(b"DONE\r\n")
    while not m.readline().startswith(tag):
        pass
    m.logout()


def test_import_without_a_running_server_still_works(make_roost, tmp_path):
    r = make_roost(start=False)
    mbox = str(tmp_path / "old.mbox")
    write_mbox(mbox, 2)
    res = r.cli("import", DEMO_USER, mbox)
    assert "imported 2" in res.stdout and "running server" not in res.stderr, res.stderr
    r.start()
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
    m.login(DEMO_USER, DEMO_PASSWORD)
    assert m.select("INBOX") == ("OK", [b"2"])
    m.logout()
