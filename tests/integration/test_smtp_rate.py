"""Message rates ([smtp] rate_per_ip on the MX, rate_per_user on submission): a burst up to
the hourly rate goes through, the next MAIL gets 451 4.7.1 with the wait, the session stays
usable, and other addresses or users are not affected. LMTP is never limited."""
import smtplib

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context

OTHER = ("other@example.test", "other password")


def mx_send(r, n):
    s = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=20)
    s.ehlo("client.test")
    try:
        s.sendmail("sender@remote.test", [DEMO_USER],
                   b"Subject: rate %d\r\n\r\nbody\r\n" % n)
    finally:
        s.quit()


def test_mx_rate_per_ip(make_roost):
    r = make_roost(extra={"smtp": {"rate_per_ip": "3"}})
    for n in range(3):
        mx_send(r, n)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        mx_send(r, 3)
    assert refused.value.smtp_code == 451
    assert b"4.7.1" in refused.value.smtp_error and b"minutes" in refused.value.smtp_error
    # The refusal does not end the session: RSET and QUIT still work.
    s = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=20)
    s.ehlo("client.test")
    code, _ = s.mail("sender@remote.test")
    assert code == 451
    assert s.rset()[0] == 250
    s.quit()


def submit(r, user, password, n):
    s = smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=20)
    s.starttls(context=client_tls_context())
    s.login(user, password)
    try:
        s.sendmail(user, [DEMO_USER], ("From: <%s>\r\nSubject: sub %d\r\n\r\nbody\r\n" %
                                       (user, n)).encode())
    finally:
        s.quit()


def test_submission_rate_per_user(make_roost):
    r = make_roost(users=((DEMO_USER, DEMO_PASSWORD), OTHER),
                   extra={"smtp": {"rate_per_user": "2"}})
    submit(r, DEMO_USER, DEMO_PASSWORD, 1)
    submit(r, DEMO_USER, DEMO_PASSWORD, 2)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        submit(r, DEMO_USER, DEMO_PASSWORD, 3)
    assert refused.value.smtp_code == 451
    assert b"from this account" in refused.value.smtp_error
    # Another user from the same address is not limited by demo's rate.
    submit(r, *OTHER, 1)
    # Nor is the MX, which has no limit by default.
    mx_send(r, 10)
