"""Listeners: implicit TLS on submissions/imaps/pop3s, STARTTLS/STLS on the others, TLS policy,
certificate reload on SIGHUP, clean shutdown on SIGTERM."""
import imaplib
import os
import poplib
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
import warnings

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context, free_port, make_certificate


def test_imaps_login_logout(roost_server):
    m = imaplib.IMAP4_SSL("127.0.0.1", roost_server.ports["imaps"],
                          ssl_context=client_tls_context())
    assert "AUTH=PLAIN" in m.capabilities
    typ, data = m.login(DEMO_USER, DEMO_PASSWORD)
    assert typ == "OK"
    assert m.logout()[0] == "BYE"


def test_pop3s_login_quit(roost_server):
    p = poplib.POP3_SSL("127.0.0.1", roost_server.ports["pop3s"],
                        context=client_tls_context())
    assert p.getwelcome().startswith(b"+OK")
    p.user(DEMO_USER)
    assert p.pass_(DEMO_PASSWORD).startswith(b"+OK")
    assert p.quit().startswith(b"+OK")


def test_submissions_auth(roost_server):
    s = smtplib.SMTP_SSL("127.0.0.1", roost_server.ports["submissions"],
                         context=client_tls_context())
    s.ehlo("client.test")
    assert "auth" in s.esmtp_features
    code, _ = s.login(DEMO_USER, DEMO_PASSWORD)
    assert code == 235
    s.quit()


def test_imap_starttls_then_login(roost_server):
    m = imaplib.IMAP4("127.0.0.1", roost_server.ports["imap"])
    assert "STARTTLS" in m.capabilities
    m.starttls(ssl_context=client_tls_context())
    assert "STARTTLS" not in m.capabilities  # recomputed after TLS
    assert m.login(DEMO_USER, DEMO_PASSWORD)[0] == "OK"
    m.logout()


def test_pop3_stls_then_login(roost_server):
    p = poplib.POP3("127.0.0.1", roost_server.ports["pop3"])
    assert "STLS" in p.capa()
    p.stls(context=client_tls_context())
    assert "STLS" not in p.capa()
    p.user(DEMO_USER)
    assert p.pass_(DEMO_PASSWORD).startswith(b"+OK")
    p.quit()


def test_submission_starttls_then_auth(roost_server):
    s = smtplib.SMTP("127.0.0.1", roost_server.ports["submission"])
    s.ehlo("client.test")
    assert s.has_extn("starttls")
    s.starttls(context=client_tls_context())
    s.ehlo("client.test")
    assert not s.has_extn("starttls")
    assert s.login(DEMO_USER, DEMO_PASSWORD)[0] == 235
    s.quit()


def test_openssl_s_client_reaches_imaps(roost_server):
    r = subprocess.run(["openssl", "s_client", "-connect",
                        "127.0.0.1:%d" % roost_server.ports["imaps"], "-quiet"],
                       input=b"a LOGOUT\r\n", capture_output=True, timeout=20)
    assert b"* OK" in r.stdout
    assert b"a OK LOGOUT" in r.stdout


def test_old_tls_versions_refused(roost_server):
    ctx = client_tls_context()
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", roost_server.ports["imaps"]), timeout=5) as raw:
        try:
            tls = ctx.wrap_socket(raw)
        except (ssl.SSLError, ConnectionResetError, OSError):
            return
        tls.close()
        raise AssertionError("a TLS 1.1 handshake succeeded")


def test_tls13_negotiated(roost_server):
    with roost_server.connect("imaps", tls=True) as s:
        assert s.version() in ("TLSv1.3", "TLSv1.2")


def peer_certificate_der(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with client_tls_context().wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_certificate_reload_on_sighup(make_roost, tmp_path):
    own = tmp_path / "own-cert"
    own.mkdir()
    cert, key = make_certificate(str(own), cn="first.test")
    r = make_roost(extra={"tls": {"cert": cert, "key": key}})
    before = peer_certificate_der(r.ports["imaps"])
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    new_cert, new_key = make_certificate(str(fresh), cn="second.test")
    shutil.copy(new_cert, cert)
    shutil.copy(new_key, key)
    r.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if peer_certificate_der(r.ports["imaps"]) != before:
            break
        time.sleep(0.05)
    assert peer_certificate_der(r.ports["imaps"]) != before
    assert "certificate reloaded" in r.log_text()


def test_sighup_with_broken_certificate_keeps_old_one(make_roost, tmp_path):
    own = tmp_path / "own-cert"
    own.mkdir()
    cert, key = make_certificate(str(own))
    r = make_roost(extra={"tls": {"cert": cert, "key": key}})
    before = peer_certificate_der(r.ports["imaps"])
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    r.proc.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert peer_certificate_der(r.ports["imaps"]) == before
    assert "certificate reload failed" in r.log_text()


def test_sigterm_stops_with_open_connections(make_roost):
    r = make_roost()
    held = [r.connect(name) for name in ("imap", "pop3", "smtp", "submission")]
    for s in held:
        s.recv(100)  # greeting
    status = r.stop()  # fails if the server has not exited 15 s after SIGTERM
    assert status == 0
    # The server closed them rather than waiting for them to time out.
    for s in held:
        s.settimeout(5)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()


def test_ipv6_listener(make_roost):
    if not socket.has_ipv6:
        return
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
        probe.close()
    except OSError:
        return  # no IPv6 loopback on this machine
    v4 = free_port()
    r = make_roost(extra={"listen": {"imap": "127.0.0.1:%d [::1]:%d" % (v4, port)}},
                   start=False)
    r.ports["imap"] = v4
    r.start()
    with socket.create_connection(("::1", port), timeout=5) as s:
        assert s.recv(100).startswith(b"* OK")
