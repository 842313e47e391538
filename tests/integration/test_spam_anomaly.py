"""Header and MIME anomaly rules in the spam score, end to end over SMTP: a message without a
Date carrying an executable attachment scores both rules' points, names them in X-Spam-Status
and, reaching the default threshold of 4 on them alone, goes to Junk; the same message with a
Date and a PDF lands in INBOX with no anomaly named."""
import smtplib
from email.utils import formatdate

from conftest import DEMO_USER
from imap_util import login
from test_spam_smtp import fetch_subjects_and_headers


def message(subject, date, filename):
    return ("From: someone@remote.example\r\nTo: %s\r\nSubject: %s\r\n%s"
            "Message-ID: <%s@remote.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            "--b\r\nContent-Type: text/plain\r\n\r\nThe invoice is attached.\r\n"
            "--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"%s\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n"
            % (DEMO_USER, subject, date, subject, filename)).encode()


def test_anomalies_add_their_points(roost_server):
    with smtplib.SMTP("127.0.0.1", roost_server.ports["smtp"], timeout=30) as s:
        s.sendmail("someone@remote.example", [DEMO_USER],
                   message("invoice-exe", "", "invoice.pdf.exe"))
        s.sendmail("someone@remote.example", [DEMO_USER],
                   message("invoice-pdf", "Date: %s\r\n" % formatdate(), "invoice.pdf"))
    c = login(roost_server)
    junk = fetch_subjects_and_headers(c, "Junk")
    inbox = fetch_subjects_and_headers(c, "INBOX")
    c.logout()

    exe = [h for h in junk if "Subject: invoice-exe" in h]
    assert len(exe) == 1, (junk, inbox)
    status = [line for line in exe[0].split("\r\n") if line.startswith("X-Spam-Status:")][0]
    assert "score=4.0" in status
    assert "MISSING_DATE" in status and "EXECUTABLE_ATTACHMENT" in status

    pdf = [h for h in inbox if "Subject: invoice-pdf" in h]
    assert len(pdf) == 1, inbox
    status = [line for line in pdf[0].split("\r\n") if line.startswith("X-Spam-Status:")][0]
    assert status.startswith("X-Spam-Status: No, score=0.0")
    assert "tests=" not in status
