"""Outbound mail through a smarthost with AUTH PLAIN ([relay]): the password only ever travels
inside TLS, [relay] tls = verify checks the smarthost's certificate and name, encrypt takes
any certificate, and a smarthost without STARTTLS (or with a certificate that does not verify)
gets nothing: the message waits in the queue with the reason, the sender hears once that it
is delayed and once that it failed when the queue gives up. The smarthost here is a small
SMTP server in the test that records what it was told."""
import base64
import socket
import ssl
import threading
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, free_port, make_certificate
from test_queue_federation import inbox_files, queue_count, submit, wait_until

RELAY_USER, RELAY_PASSWORD = "relay-account", "relay secret 123"


class FakeSmarthost:
    """One connection at a time: EHLO (STARTTLS when it has a certificate), AUTH PLAIN,
    MAIL, RCPT, DATA, RSET, QUIT. Records each AUTH (with whether it came over TLS) and each
    message."""

    def __init__(self, cert=None, key=None):
        self.port = free_port()
        self.auths = []      # (user, password, over_tls)
        self.messages = []   # (sender, [rcpts], data)
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopping = True
        self.thread.join(10)
        self.sock.close()

    def _serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            try:
                conn.settimeout(10)
                self._session(conn)
            except (OSError, ssl.SSLError, ValueError):
                pass
            finally:
                conn.close()

    def _session(self, conn):
        f = conn.makefile("rb")
        tls = False

        def send(text):
            conn.sendall(text.encode() + b"\r\n")

        send("220 smarthost.test ESMTP")
        sender, rcpts = None, []
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode(errors="replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                caps = ["250-smarthost.test", "250-AUTH PLAIN", "250-8BITMIME"]
                if self.ctx and not tls:
                    caps.append("250-STARTTLS")
                caps.append("250 PIPELINING")
                send("\r\n".join(caps))
            elif verb == "STARTTLS" and self.ctx and not tls:
                send("220 go ahead")
                conn = self.ctx.wrap_socket(conn, server_side=True)
                f = conn.makefile("rb")
                tls = True
            elif verb == "AUTH":
                parts = cmd.split(" ")
                raw = base64.b64decode(parts[2]) if len(parts) > 2 else b""
                _, user, password = raw.split(b"\0")
                self.auths.append((user.decode(), password.decode(), tls))
                send("235 2.7.0 ok")
            elif verb == "MAIL":
                sender, rcpts = cmd[10:].split(">")[0].lstrip("<"), []
                send("250 2.1.0 ok")
            elif verb == "RCPT":
                rcpts.append(cmd[8:].split(">")[0].lstrip("<"))
                send("250 2.1.5 ok")
            elif verb == "DATA":
                send("354 go")
                data = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l
                self.messages.append((sender, rcpts, data))
                send("250 2.0.0 queued")
            elif verb == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")


def relay_roost(make_roost, host, server, tls, ca_file=None):
    relay = {"smarthost": "%s:%d" % (host, server.port), "user": RELAY_USER,
             "password": RELAY_PASSWORD, "tls": tls}
    if ca_file:
        relay["ca_file"] = ca_file
    return make_roost(extra={
        "relay": relay,
        # retries every 1 s (60 s / 60)
        "queue": {"retry_first": "60", "retry_max": "60", "time_scale": "60"}})


def send_one(r, subject):
    assert submit(r, DEMO_USER, DEMO_PASSWORD, ["someone@elsewhere.test"], subject) == {}


@pytest.fixture
def smarthost(tmp_path):
    """smarthost(cn): a recording smarthost offering STARTTLS with a self-signed certificate
    for cn (cert path in .cert), or without STARTTLS for cn None; stopped after the test."""
    servers = []

    def factory(cn=None):
        cert = key = None
        if cn is not None:
            cert, key = make_certificate(str(tmp_path), cn=cn)
        server = FakeSmarthost(cert, key)
        server.cert = cert
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


def assert_delivered_inside_tls(r, server):
    assert wait_until(lambda: server.messages, 20), r.log_text()[-2000:]
    assert server.auths[0] == (RELAY_USER, RELAY_PASSWORD, True)


def assert_kept_back(r, server, reason):
    """The message waits in the queue: the smarthost saw neither password nor message, even
    after a retry."""
    assert wait_until(lambda: reason in r.log_text(), 20), r.log_text()[-2000:]
    time.sleep(1.5)  # at least one retry
    assert server.auths == [] and server.messages == []
    assert queue_count(r) == 1


def test_encrypt_delivers_with_the_password_inside_tls(make_roost, smarthost):
    server = smarthost("smarthost.test")
    r = relay_roost(make_roost, "127.0.0.1", server, "encrypt")
    send_one(r, "via-encrypt")
    assert_delivered_inside_tls(r, server)
    sender, rcpts, data = server.messages[0]
    assert sender == DEMO_USER and rcpts == ["someone@elsewhere.test"]
    assert b"Subject: via-encrypt" in data
    assert wait_until(lambda: queue_count(r) == 0, 10)


def test_verify_accepts_a_certificate_from_the_configured_ca(make_roost, smarthost):
    # A self-signed certificate for "localhost" is its own CA.
    server = smarthost("localhost")
    r = relay_roost(make_roost, "localhost", server, "verify", ca_file=server.cert)
    send_one(r, "via-verify")
    assert_delivered_inside_tls(r, server)


def test_verify_refuses_an_unknown_certificate_and_keeps_the_message(make_roost, smarthost):
    server = smarthost("localhost")
    # The system's CAs do not know this self-signed certificate.
    r = relay_roost(make_roost, "localhost", server, "verify")
    send_one(r, "not-verified")
    assert_kept_back(r, server, "certificate verify failed")


def test_verify_checks_the_name(make_roost, smarthost):
    server = smarthost("other-name.test")
    r = relay_roost(make_roost, "localhost", server, "verify", ca_file=server.cert)
    send_one(r, "wrong-name")
    assert_kept_back(r, server, "certificate verify failed")


def test_no_starttls_means_no_password_and_no_delivery(make_roost, smarthost):
    server = smarthost()  # no certificate: no STARTTLS offered
    r = relay_roost(make_roost, "127.0.0.1", server, "encrypt")
    send_one(r, "no-tls")
    assert_kept_back(r, server, "does not offer STARTTLS")
    listing = r.cli("queue", "list").stdout
    assert "someone@elsewhere.test" in listing
    assert "last error: 451 4.4.1 server does not offer STARTTLS" in listing, listing


def test_delay_warning_once_then_failure_report_at_give_up(make_roost, smarthost):
    """[queue] warn_after and give_up, 60 times faster: one RFC 3464 "delayed" report to the
    sender while the message waits, then one "failed" report when it is given up, and the
    queue is empty."""
    server = smarthost()  # never takes the message (no STARTTLS)
    r = make_roost(extra={
        "relay": {"smarthost": "127.0.0.1:%d" % server.port, "user": RELAY_USER,
                  "password": RELAY_PASSWORD},
        "queue": {"retry_first": "60", "retry_max": "60", "time_scale": "60",
                  "warn_after": "60", "give_up": "240"}})
    send_one(r, "slow-road")

    def reports():
        out = []
        for path in inbox_files(r, DEMO_USER):
            with open(path, "rb") as f:
                data = f.read()
            if b"multipart/report" in data:
                out.append(data)
        return out

    assert wait_until(lambda: len(reports()) == 1, 15), r.log_text()[-2000:]
    first = reports()[0]
    assert b"Action: delayed" in first and b"Final-Recipient: rfc822; " \
        b"someone@elsewhere.test" in first
    assert queue_count(r) == 1
    assert wait_until(lambda: len(reports()) == 2, 20), r.log_text()[-2000:]
    assert wait_until(lambda: queue_count(r) == 0, 5)
    failed = [d for d in reports() if d != first][0]
    assert b"Action: failed" in failed and b"Action: delayed" not in failed
    time.sleep(1.5)
    assert len(reports()) == 2  # nothing more once given up
    assert server.auths == [] and server.messages == []
