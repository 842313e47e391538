"""Plaintext mechanisms off encrypted connections: refused except from loopback by default;
with `[auth] plaintext = never` loopback is treated like any remote address."""
import base64
import imaplib
import poplib
import smtplib

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context

REMOTE_LIKE = {"auth": {"plaintext": "never"}}


def test_imap_plaintext_refused_off_tls(make_roost):
    r = make_roost(extra=REMOTE_LIKE)
    m = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
    assert "LOGINDISABLED" in m.capabilities
    assert "AUTH=PLAIN" not in m.capabilities
    assert "AUTH=SCRAM-SHA-256" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
        m.login(DEMO_USER, DEMO_PASSWORD)
    typ, data = m._simple_command("AUTHENTICATE", "PLAIN",
                                  base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" +
                                                   DEMO_PASSWORD.encode()).decode())
    assert typ == "NO"
    m.starttls(ssl_context=client_tls_context())
    assert "LOGINDISABLED" not in m.capabilities
    assert m.login(DEMO_USER, DEMO_PASSWORD)[0] == "OK"
    m.logout()


def test_smtp_auth_plain_refused_off_tls(make_roost, line_client):
    r = make_roost(extra=REMOTE_LIKE)
    c = line_client(r.connect("submission"))
    c.line()
    c.send(b"EHLO client.test\r\n")
    ehlo = c.until(b"250 ")
    assert not any(l[4:].startswith(b"AUTH") for l in ehlo)
    creds = base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" + DEMO_PASSWORD.encode())
    c.send(b"AUTH PLAIN " + creds + b"\r\n")
    assert c.line().startswith(b"530 5.7.0")
    s = smtplib.SMTP("127.0.0.1", r.ports["submission"])
    s.starttls(context=client_tls_context())
    s.ehlo("client.test")
    assert s.login(DEMO_USER, DEMO_PASSWORD)[0] == 235
    s.quit()


def test_pop3_user_refused_off_tls(make_roost):
    r = make_roost(extra=REMOTE_LIKE)
    p = poplib.POP3("127.0.0.1", r.ports["pop3"])
    assert "USER" not in p.capa()
    with pytest.raises(poplib.error_proto):
        p.user(DEMO_USER)
    p.stls(context=client_tls_context())
    p.user(DEMO_USER)
    assert p.pass_(DEMO_PASSWORD).startswith(b"+OK")
    p.quit()


def test_loopback_allowed_by_default(roost_server):
    m = imaplib.IMAP4("127.0.0.1", roost_server.ports["imap"])
    assert "LOGINDISABLED" not in m.capabilities
    assert m.login(DEMO_USER, DEMO_PASSWORD)[0] == "OK"
    m.logout()


def test_no_auth_on_mx_port(roost_server, line_client):
    c = line_client(roost_server.connect("smtp"))
    c.line()
    c.send(b"EHLO client.test\r\n")
    ehlo = c.until(b"250 ")
    assert not any(l[4:].startswith(b"AUTH") for l in ehlo)
    c.send(b"AUTH PLAIN AGFAYg==\r\n")
    assert c.line().startswith(b"503 ")
