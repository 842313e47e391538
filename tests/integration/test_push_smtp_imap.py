"""Mail delivered over SMTP reaches idling IMAP clients at once through the store's change
feed (no polling), and is readable over IMAP and POP3 byte for byte as sent."""
import imaplib
import poplib
import smtplib
import time

from conftest import DEMO_PASSWORD, DEMO_USER


def idle_client(r):
    c = __import__("conftest").LineClient(r.connect("imap"))
    c.line()
    c.send(b'a LOGIN "%s" "%s"\r\n' % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
    c.until(b"a OK")
    c.send(b"b SELECT INBOX\r\n")
    c.until(b"b OK")
    c.send(b"c IDLE\r\n")
    assert c.line().startswith(b"+")
    return c


def test_smtp_delivery_wakes_idle_clients(roost_server):
    watchers = [idle_client(roost_server) for _ in range(3)]
    s = smtplib.SMTP("127.0.0.1", roost_server.ports["smtp"])
    latencies = []
    for n in range(1, 6):
        s.sendmail("sender@remote.test", [DEMO_USER],
                   b"Subject: push %d\r\n\r\nbody\r\n" % n)
        t0 = time.monotonic()
        for w in watchers:
            line = w.line(timeout=5)
            while b"EXISTS" not in line:
                line = w.line(timeout=5)
            assert line == b"* %d EXISTS" % n
        latencies.append(time.monotonic() - t0)
    s.quit()
    for w in watchers:
        w.send(b"DONE\r\n")
        assert w.until(b"c ")[-1].startswith(b"c OK")
    # Pushed, not polled: all three saw each message well within a second of the 250.
    assert max(latencies) < 1.0, latencies


def test_delivered_message_identical_over_imap_and_pop3(roost_server):
    body = (b"From: sender@remote.test\r\nTo: " + DEMO_USER.encode() +
            b"\r\nSubject: exact\r\n\r\nline one\r\n.leading dot\r\n\r\nlast line\r\n")
    s = smtplib.SMTP("127.0.0.1", roost_server.ports["smtp"])
    s.sendmail("sender@remote.test", [DEMO_USER], body)
    s.quit()
    m = imaplib.IMAP4("127.0.0.1", roost_server.ports["imap"])
    m.login(DEMO_USER, DEMO_PASSWORD)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    stored = data[0][1]
    m.logout()
    # Our trace fields come first, then exactly what the client sent.
    assert stored.startswith(b"Return-Path: <sender@remote.test>\r\nReceived: ")
    assert stored.endswith(body)
    p = poplib.POP3("127.0.0.1", roost_server.ports["pop3"])
    p.user(DEMO_USER)
    p.pass_(DEMO_PASSWORD)
    resp, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == stored
    assert octets == len(stored)
    p.quit()
