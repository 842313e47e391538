"""Helpers shared by the IMAP integration tests: logged-in imaplib clients, raw clients, and
test messages."""
import imaplib
import os

from conftest import DEMO_PASSWORD, DEMO_USER

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "imap")


def message(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def simple(subject="Hello", body="Just a test.\r\n", frm="alice@example.test"):
    return ("From: %s\r\nTo: demo@example.test\r\nSubject: %s\r\n"
            "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <%s@x>\r\n\r\n%s"
            % (frm, subject, subject.replace(" ", "."), body)).encode()


def login(server, select=None):
    c = imaplib.IMAP4("127.0.0.1", server.ports["imap"])
    c.login(DEMO_USER, DEMO_PASSWORD)
    if select:
        typ, _ = c.select(select)
        assert typ == "OK"
    return c


def raw_login(server, line_client):
    c = line_client(server.connect("imap"))
    assert c.line().startswith(b"* OK")
    c.send(b'l LOGIN ' + DEMO_USER.encode() + b' "' + DEMO_PASSWORD.encode() + b'"\r\n')
    assert c.until(b"l ")[-1].startswith(b"l OK")
    return c


def append(c, data, mailbox="INBOX", flags=None, date=None):
    typ, resp = c.append(mailbox, flags, date, data)
    assert typ == "OK", resp
    return resp
