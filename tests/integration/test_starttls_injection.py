"""CVE-2011-0411 class: commands pipelined in clear text after STARTTLS/STLS
must never run inside the TLS session."""
import base64

from conftest import DEMO_PASSWORD, DEMO_USER


def test_smtp_starttls_injection(roost_server, line_client):
    c = line_client(roost_server.connect("submission"))
    assert c.line().startswith(b"220 ")
    c.send(b"EHLO client.test\r\n")
    c.until(b"250 ")
    c.send(b"STARTTLS\r\nRSET\r\n")  # one segment
    assert c.line().startswith(b"220 ")
    c.starttls()
    # The injected RSET would answer "250 2.0.0"; nothing may arrive.
    assert c.silent(0.7)
    c.send(b"NOOP\r\n")
    assert c.line().startswith(b"250 ")


def test_imap_starttls_injection(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    assert c.line().startswith(b"* OK")
    c.send(b"a STARTTLS\r\nb CAPABILITY\r\n")
    assert c.line().startswith(b"a OK")
    c.starttls()
    assert c.silent(0.7)
    c.send(b"c NOOP\r\n")
    assert c.line() == b"c OK NOOP completed"


def test_imap_injected_login_not_executed(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    c.line()
    c.send(b"a STARTTLS\r\nb LOGIN " + DEMO_USER.encode() + b' "' +
           DEMO_PASSWORD.encode() + b'"\r\n')
    assert c.line().startswith(b"a OK")
    c.starttls()
    assert c.silent(0.7)
    # Still not authenticated: a command of the authenticated state is refused.
    c.send(b"c CAPABILITY\r\n")
    caps = c.until(b"c OK")
    assert b"AUTH=PLAIN" in caps[0]


def test_pop3_stls_injection(roost_server, line_client):
    c = line_client(roost_server.connect("pop3"))
    assert c.line().startswith(b"+OK")
    c.send(b"STLS\r\nUSER x\r\n")
    assert c.line().startswith(b"+OK")
    c.starttls()
    assert c.silent(0.7)
    c.send(b"CAPA\r\n")
    assert c.line().startswith(b"+OK")


def test_smtp_injected_auth_not_executed(roost_server, line_client):
    c = line_client(roost_server.connect("submission"))
    c.line()
    c.send(b"EHLO client.test\r\n")
    c.until(b"250 ")
    creds = base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" + DEMO_PASSWORD.encode())
    c.send(b"STARTTLS\r\nEHLO x\r\nAUTH PLAIN " + creds + b"\r\n")
    assert c.line().startswith(b"220 ")
    c.starttls()
    assert c.silent(0.7)


def test_starttls_twice_refused(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    c.line()
    c.send(b"a STARTTLS\r\n")
    c.line()
    c.starttls()
    c.send(b"b STARTTLS\r\n")
    reply = c.line()
    assert reply.startswith(b"b BAD") or reply.startswith(b"b NO")


def test_starttls_after_login_refused(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    c.line()
    c.send(b'a LOGIN "%s" "%s"\r\n' % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
    assert c.until(b"a ")[-1].startswith(b"a OK")
    c.send(b"b STARTTLS\r\n")
    assert c.line().startswith(b"b BAD")
