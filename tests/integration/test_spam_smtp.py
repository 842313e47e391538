"""Spam scoring at delivery, end to end over SMTP: the spam check (registered by serve with
[spam] enabled) adds X-Spam-Score/X-Spam-Status, and the delivery files a copy whose score
reaches the account's threshold into the account's Junk; normal mail to a fresh, untrained
account lands in INBOX. Needs the delivery side of delivery/check.h (the transaction that runs
the registered checks), which is built apart from the spam check."""
import smtplib

from conftest import DEMO_USER
from imap_util import login

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def send(server, subject, body):
    msg = ("From: someone@remote.example\r\nTo: %s\r\nSubject: %s\r\n"
           "Message-ID: <%s@remote.example>\r\n\r\n%s\r\n" % (DEMO_USER, subject, subject, body))
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.sendmail("someone@remote.example", [DEMO_USER], msg.encode())


def fetch_subjects_and_headers(client, mailbox):
    typ, exists = client.select(mailbox)
    assert typ == "OK"
    if int(exists[0]) == 0:
        return []
    typ, data = client.fetch("1:*", "(BODY.PEEK[HEADER])")
    if typ != "OK" or data == [None]:
        return []
    return [part[1].decode("utf-8", "replace") for part in data if isinstance(part, tuple)]


def test_gtube_goes_to_junk_and_normal_mail_to_inbox(roost_server):
    send(roost_server, "gtube-check", "This is the GTUBE:\r\n" + GTUBE)
    send(roost_server, "lunch-check", "Shall we meet for lunch on Thursday?")
    c = login(roost_server)
    junk = fetch_subjects_and_headers(c, "Junk")
    inbox = fetch_subjects_and_headers(c, "INBOX")
    c.logout()

    gtube = [h for h in junk if "Subject: gtube-check" in h]
    assert len(gtube) == 1, junk
    assert "X-Spam-Status: Yes" in gtube[0] and "X-Spam-Score:" in gtube[0]
    assert not any("Subject: gtube-check" in h for h in inbox)

    lunch = [h for h in inbox if "Subject: lunch-check" in h]
    assert len(lunch) == 1, inbox
    assert "X-Spam-Status: No" in lunch[0]
    assert not any("Subject: lunch-check" in h for h in junk)
