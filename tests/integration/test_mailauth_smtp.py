"""Mail authentication at the end of DATA on the SMTP listener, end to end: a server whose
[dns] resolvers is a dnsmasq serving the test zones, mail from 127.0.0.1. DMARC p=reject is
answered with 550 5.7.1; a message that passes is stored with our Authentication-Results field
and without the forged one that claimed our authserv-id; p=quarantine files the copy into
Junk; mail our own user submits is not checked. The delivery side that runs checks (spooled
transaction, verdict) is part of delivery/, which these tests need."""
import smtplib

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER
from imap_util import login
from test_mailauth_cli import dnsmasq, txt_args

HOSTNAME = "mail.example.test"  # conftest's [server] hostname: our authserv-id

ZONE = {
    "good.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "_dmarc.good.test": "v=DMARC1; p=reject",
    "forged.test": "v=spf1 ip4:192.0.2.10 -all",
    "_dmarc.forged.test": "v=DMARC1; p=reject",
    "dubious.test": "v=spf1 ip4:192.0.2.10 -all",
    "_dmarc.dubious.test": "v=DMARC1; p=quarantine",
}


@pytest.fixture
def server(make_roost):
    with dnsmasq([txt_args(name, text) for name, text in ZONE.items()]) as resolver:
        yield make_roost(extra={"dns": {"resolvers": resolver}})


def message(sender, extra=b""):
    return (b"From: " + sender.encode() + b"\r\nTo: " + DEMO_USER.encode() + b"\r\n"
            b"Subject: quarterly figures\r\nMessage-ID: <q@x>\r\n" + extra + b"\r\n"
            b"Please see the attached.\r\n")


def send(server, sender, msg):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.good.test")
        return s.sendmail(sender, [DEMO_USER], msg)


def stored(server, mailbox="INBOX"):
    c = login(server, select=mailbox)
    _, data = c.search(None, "ALL")
    out = []
    for num in data[0].split():
        _, parts = c.fetch(num, "(BODY.PEEK[])")
        out.append(parts[0][1])
    c.logout()
    return out


def header_fields(msg, name):
    head = msg.split(b"\r\n\r\n", 1)[0].decode()
    unfolded = head.replace("\r\n\t", " ").replace("\r\n ", " ")
    return [line.split(":", 1)[1].strip() for line in unfolded.split("\r\n")
            if line.lower().startswith(name.lower() + ":")]


def test_dmarc_reject_is_refused_at_end_of_data(server):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(server, "ceo@forged.test", message("ceo@forged.test"))
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.startswith(b"5.7.1 ")
    assert stored(server) == []


def test_pass_is_stored_with_our_results_and_without_the_forged_ones(server):
    forged = (b"Authentication-Results: " + HOSTNAME.encode() +
              b"; dmarc=pass header.from=forged.test\r\n"
              b"Authentication-Results: elsewhere.example; spf=pass\r\n")
    send(server, "news@good.test", message("news@good.test", forged))
    msgs = stored(server)
    assert len(msgs) == 1
    results = header_fields(msgs[0], "Authentication-Results")
    ours = [r for r in results if r.startswith(HOSTNAME + ";")]
    assert len(ours) == 1, results
    assert "spf=pass" in ours[0] and "smtp.mailfrom=news@good.test" in ours[0]
    assert "dmarc=pass" in ours[0] and "header.from=good.test" in ours[0]
    assert "dkim=none" in ours[0]
    assert "forged.test" not in msgs[0].decode()
    assert any(r.startswith("elsewhere.example;") for r in results)  # not ours: kept


def test_dmarc_quarantine_is_filed_into_junk(server):
    send(server, "x@dubious.test", message("x@dubious.test"))
    assert stored(server) == []
    junk = stored(server, "Junk")
    assert len(junk) == 1
    assert "dmarc=fail" in header_fields(junk[0], "Authentication-Results")[0]


def test_authenticated_submission_is_not_checked(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as s:
        s.ehlo("client")
        s.starttls()
        s.ehlo("client")
        s.login(DEMO_USER, DEMO_PASSWORD)
        s.sendmail(DEMO_USER, [DEMO_USER], message(DEMO_USER))
    msgs = stored(server)
    assert len(msgs) == 1
    assert header_fields(msgs[0], "Authentication-Results") == []
