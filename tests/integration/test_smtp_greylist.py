"""Greylisting on the MX ([greylist] enabled = yes, delay = 1s): a new (network, sender,
recipient) gets 451 4.7.1 at RCPT, an immediate retry too, a retry after the delay passes and
is remembered; another /24 waits on its own; submission, LMTP and unknown users are never
greylisted; the triplets survive a restart."""
import glob
import os
import smtplib
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context, free_port


@pytest.fixture
def server(make_roost):
    lmtp = free_port()
    r = make_roost(extra={"greylist": {"enabled": "yes", "delay": "1s"},
                          "listen": {"lmtp": "127.0.0.1:%d" % lmtp}}, start=False)
    r.ports["lmtp"] = lmtp
    return r.start()


def inbox_count(r, address):
    local, domain = address.split("@")
    d = os.path.join(r.data_dir, "mail", domain, local)
    return len(glob.glob(os.path.join(d, "cur", "*")) + glob.glob(os.path.join(d, "new", "*")))


def mx(r, source="127.0.0.1"):
    s = smtplib.SMTP(r.addr, r.ports["smtp"], timeout=30, source_address=(source, 0))
    s.ehlo("mta.remote.test")
    return s


def rcpt(s, sender, to):
    s.rset()
    s.mail(sender)
    return s.rcpt(to)


def retry_until_accepted(r, sender, to, source="127.0.0.1", limit=15):
    """Retries like an MTA would, a few times a second, for at most `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with mx(r, source) as s:
            code, _ = rcpt(s, sender, to)
        if code == 250:
            return True
        assert code == 451
        time.sleep(0.2)
    return False


def test_first_attempt_waits_then_retry_passes(server):
    sender = "someone@remote.test"
    with mx(server) as s:
        code, text = rcpt(s, sender, DEMO_USER)
        assert code == 451 and text.startswith(b"4.7.1") and b"Greylisted" in text, text
        # retried at once: still too early
        code, text = rcpt(s, sender, DEMO_USER)
        assert code == 451, text
        # an unknown user is refused as such, not greylisted
        code, _ = rcpt(s, sender, "nobody@example.test")
        assert code == 550
    assert retry_until_accepted(server, sender, DEMO_USER)
    # remembered: the message goes through now, from another address of the same /24
    with mx(server, "127.0.0.9") as s:
        s.sendmail(sender, [DEMO_USER], b"Subject: greylist\r\n\r\nafter the wait\r\n")
    assert inbox_count(server, DEMO_USER) == 1
    # another /24 is another client: it waits on its own
    with mx(server, "127.0.1.9") as s:
        code, _ = rcpt(s, sender, DEMO_USER)
        assert code == 451
    assert retry_until_accepted(server, sender, DEMO_USER, source="127.0.1.9")
    # the null sender is greylisted too
    with mx(server) as s:
        assert rcpt(s, "", DEMO_USER)[0] == 451
    assert "outcome=rejected stage=rcpt" in server.log_text()
    assert "reason=\"greylisted\"" in server.log_text()


def test_remembered_across_restart(server):
    sender = "restart@remote.test"
    with mx(server) as s:
        assert rcpt(s, sender, DEMO_USER)[0] == 451
    assert retry_until_accepted(server, sender, DEMO_USER)
    assert server.stop() == 0
    server.start()
    with mx(server) as s:
        assert rcpt(s, sender, DEMO_USER)[0] == 250


def test_submission_and_lmtp_never_greylisted(server):
    with smtplib.SMTP(server.addr, server.ports["submission"], timeout=30) as s:
        s.starttls(context=client_tls_context())
        s.login(DEMO_USER, DEMO_PASSWORD)
        s.mail(DEMO_USER)
        code, text = s.rcpt(DEMO_USER)
        assert code == 250, text
    with smtplib.LMTP(server.addr, server.ports["lmtp"], timeout=30) as s:
        s.ehlo_or_helo_if_needed()
        s.mail("lmtp-sender@remote.test")
        code, text = s.rcpt(DEMO_USER)
        assert code == 250, text
