"""SRS between two Roost instances over loopback (the federation setup: A on 127.0.0.2 for
a.test, SRS domain mx.a.test; B on 127.0.0.3 for b.test; dnsmasq publishes both): an alias on A
forwarding to B sends with an SRS0 sender in A's domain, a bounce to that address finds the
original sender, and addresses A did not make (tampered, expired) are unknown users."""
import base64
import hashlib
import hmac
import os
import smtplib
import time

import pytest

from test_queue_federation import (dns, inbox_files, make_peer, shared_mx_port,  # noqa: F401
                                   wait_until)

ALICE = ("alice@a.test", "alice password")
BOB = ("bob@b.test", "bob password")
CAROL = ("carol@b.test", "carol password")

BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def srs0(secret, stamp_day, domain, local, srs_domain="mx.a.test"):
    """The SRS0 address the scheme makes, written here independently of the server."""
    days = stamp_day % 1024
    tt = BASE32[days >> 5] + BASE32[days & 31]
    mac = hmac.new(secret, (tt + domain + local).lower().encode(), hashlib.sha1).digest()
    return "SRS0=%s=%s=%s=%s@%s" % (base64.b64encode(mac).decode()[:4], tt, domain, local,
                                   srs_domain)


def secret_of(r):
    path = os.path.join(r.data_dir, "srs.key")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with open(path, "rb") as f:
        return f.read().strip()


def peers(make_roost, dns, a_extra=None):  # noqa: F811
    mx_port = shared_mx_port()
    b = make_peer(make_roost, "127.0.0.3", "b.test", BOB, dns, mx_port, start=False)
    b.add_user(*CAROL)
    b.start()
    a = make_peer(make_roost, "127.0.0.2", "a.test", ALICE, dns, mx_port, start=False)
    a.cli("alias", "add", "fwd@a.test", BOB[0])
    a.cli("alias", "add", "both@a.test", BOB[0], ALICE[0])
    if a_extra:
        with open(a.conf, "a") as f:
            for section, values in a_extra.items():
                f.write("[%s]\n" % section)
                for k, v in values.items():
                    f.write("%s = %s\n" % (k, v))
    a.start()
    return a, b, mx_port


def send_mx(r, port, sender, rcpts, subject):
    msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@b.test>\r\n\r\nbody\r\n" %
           (sender or "mailer-daemon@b.test", rcpts[0], subject, subject))
    with smtplib.SMTP(r.addr, port, timeout=30) as s:
        s.ehlo("client.b.test")
        s.mail(sender)
        for rcpt in rcpts:
            code, text = s.rcpt(rcpt)
            assert code == 250, (rcpt, code, text)
        code, text = s.data(msg.encode())
        assert code == 250, text


def rcpt_code(r, port, sender, rcpt):
    with smtplib.SMTP(r.addr, port, timeout=30) as s:
        s.ehlo("client.b.test")
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        s.rset()
        return code, text


def return_path(data):
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"return-path:"):
            return line.split(b":", 1)[1].strip().strip(b"<>").decode()
    return None


def message_with(r, address, subject):
    for path in inbox_files(r, address):
        data = open(path, "rb").read()
        if ("Subject: %s\r\n" % subject).encode() in data:
            return data
    return None


def test_forwarded_copy_has_srs_sender_and_bounce_comes_back(make_roost, dns):  # noqa: F811
    a, b, mx_port = peers(make_roost, dns)
    send_mx(a, mx_port, CAROL[0], ["both@a.test"], "srs-forward")
    assert wait_until(lambda: message_with(b, BOB[0], "srs-forward"), 20), a.log_text()[-2000:]

    # B sees A's SRS domain in the envelope, with the original sender inside.
    forwarded = return_path(message_with(b, BOB[0], "srs-forward"))
    assert forwarded.startswith("SRS0="), forwarded
    assert forwarded.endswith("=b.test=carol@mx.a.test"), forwarded
    today = int(time.time()) // 86400
    assert forwarded in (srs0(secret_of(a), day, "b.test", "carol") for day in (today, today - 1))
    # The local copy of the same message keeps the original Return-Path.
    local = message_with(a, ALICE[0], "srs-forward")
    assert return_path(local) == CAROL[0]

    # A bounce to the SRS address, sent to A, reaches carol at B.
    send_mx(a, mx_port, "", [forwarded], "srs-bounce")
    assert wait_until(lambda: message_with(b, CAROL[0], "srs-bounce"), 20), a.log_text()[-2000:]
    assert return_path(message_with(b, CAROL[0], "srs-bounce")) == ""
    # The hash compares without case: a relay that lowercased the address still gets through.
    assert rcpt_code(a, mx_port, "", forwarded.lower())[0] == 250

    # A sender in one of A's own domains passes SPF as it is: not rewritten.
    send_mx(a, mx_port, ALICE[0], ["fwd@a.test"], "srs-own-domain")
    assert wait_until(lambda: message_with(b, BOB[0], "srs-own-domain"), 20)
    assert return_path(message_with(b, BOB[0], "srs-own-domain")) == ALICE[0]


def test_unverified_srs_addresses_are_unknown(make_roost, dns):  # noqa: F811
    a, b, mx_port = peers(make_roost, dns)
    secret = secret_of(a)
    today = int(time.time()) // 86400
    good = srs0(secret, today, "b.test", "carol")
    assert rcpt_code(a, mx_port, "", good)[0] == 250
    # One character of the hash changed.
    h = good[5:9]
    tampered = good.replace(h, h[:3] + ("A" if h[3] != "A" else "B"), 1)
    code, text = rcpt_code(a, mx_port, "", tampered)
    assert code == 550 and b"5.1.1" in text, text
    # Another destination under a hash made for carol.
    code, _ = rcpt_code(a, mx_port, "", good.replace("=carol@", "=mallory@"))
    assert code == 550
    # Made with the right secret, but 30 days ago (max_age is 21 days).
    code, text = rcpt_code(a, mx_port, "", srs0(secret, today - 30, "b.test", "carol"))
    assert code == 550 and b"5.1.1" in text, text
    # An SRS address in someone else's domain is still not relayed.
    code, _ = rcpt_code(a, mx_port, "", good.replace("@mx.a.test", "@b.test"))
    assert code != 250
    assert "srs address refused" in a.log_text()


def test_srs_off_keeps_the_sender(make_roost, dns):  # noqa: F811
    a, b, mx_port = peers(make_roost, dns, a_extra={"srs": {"enabled": "no"}})
    send_mx(a, mx_port, CAROL[0], ["fwd@a.test"], "srs-off")
    assert wait_until(lambda: message_with(b, BOB[0], "srs-off"), 20), a.log_text()[-2000:]
    assert return_path(message_with(b, BOB[0], "srs-off")) == CAROL[0]
    assert not os.path.exists(os.path.join(a.data_dir, "srs.key"))


def test_one_message_split_by_sender(make_roost, dns):  # noqa: F811
    """A forwarded recipient and a verified SRS address in one transaction: the forwarded copy
    leaves with the SRS sender, the returned one with the sender as given, one entry each."""
    a, b, mx_port = peers(make_roost, dns)
    back = srs0(secret_of(a), int(time.time()) // 86400, "b.test", "carol")
    send_mx(a, mx_port, "dave@remote.test", ["fwd@a.test", back], "srs-split")
    assert wait_until(lambda: message_with(b, BOB[0], "srs-split") and
                      message_with(b, CAROL[0], "srs-split"), 20), a.log_text()[-2000:]
    to_bob = return_path(message_with(b, BOB[0], "srs-split"))
    assert to_bob.startswith("SRS0=") and to_bob.endswith("=remote.test=dave@mx.a.test"), to_bob
    assert return_path(message_with(b, CAROL[0], "srs-split")) == "dave@remote.test"
    queued = [line for line in a.log_text().splitlines() if "msg=queued" in line]
    assert any("sender=<SRS0=" in line for line in queued), queued
    assert any("sender=<dave@remote.test>" in line for line in queued), queued


def test_failed_forward_reports_to_the_original_sender(make_roost, dns):  # noqa: F811
    """B refuses the forwarded copy: A's delivery report goes to the SRS sender, which A
    decodes itself, and reaches the original sender at B."""
    a, b, mx_port = peers(make_roost, dns)
    a.cli("alias", "add", "gone@a.test", "nobody@b.test")
    send_mx(a, mx_port, CAROL[0], ["gone@a.test"], "srs-undeliverable")
    assert wait_until(lambda: len(inbox_files(b, CAROL[0])) == 1, 30), a.log_text()[-3000:]
    report = open(inbox_files(b, CAROL[0])[0], "rb").read()
    assert return_path(report) == ""
    assert b"nobody@b.test" in report
    assert "srs address decoded" in a.log_text()
    # handed over inside A, not sent to A's own MX
    assert "relay=mx.a.test" not in a.log_text()
