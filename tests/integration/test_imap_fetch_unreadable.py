"""A FETCH whose message data cannot be read (its file vanished or cannot be opened) never
answers OK with the data left out: the tagged reply is NO [UNAVAILABLE] and the log names
the file, so an admin can find it; the session goes on."""
import glob
import imaplib
import os

from conftest import DEMO_PASSWORD, DEMO_USER


def test_fetch_of_a_missing_file_is_no_unavailable(make_roost):
    r = make_roost()
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
    m.login(DEMO_USER, DEMO_PASSWORD)
    for i in range(2):
        m.append("INBOX", None, None, b"Subject: m%d\r\n\r\nbody %d\r\n" % (i, i))
    m.select("INBOX")
    files = sorted(glob.glob(os.path.join(r.data_dir, "mail", "example.test", "demo", "cur",
                                          "*")))
    assert len(files) == 2
    os.unlink(files[0])
    typ, data = m.fetch("1:2", "(UID BODY.PEEK[])")
    assert typ == "NO" and b"[UNAVAILABLE]" in data[0], (typ, data)
    # The readable message still works, alone.
    typ, data = m.fetch("2", "(BODY.PEEK[])")
    assert typ == "OK" and b"body 1" in data[0][1]
    # Items that need no file are fine.
    typ, data = m.fetch("1", "(FLAGS)")
    assert typ == "OK"
    m.logout()
    log = r.log_text()
    assert "op=message-open" in log and files[0] in log, log[-2000:]
