"""The rspamd hand-off of the spam check, against a fake rspamd (http.server on loopback):
its /checkv2 gets the message with the envelope in IP/Helo/From/Rcpt fields and its JSON score
is added to ours and shown in X-Spam-Status; a slow rspamd is given up after [spam]
rspamd_timeout and a dead one is skipped, the message delivered on our score alone, with a
warning in the log."""
import http.server
import json
import smtplib
import threading
from email.utils import formatdate

import pytest

from conftest import DEMO_USER, free_port, wait_until
from imap_util import login
from test_spam_smtp import fetch_subjects_and_headers


class FakeRspamd:
    def __init__(self, answer=None, delay_event=None):
        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append((self.path, self.headers, body))
                if delay_event is not None:
                    delay_event.wait(30)  # the server gives up long before
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


ANSWER = {"is_skipped": False, "score": 5.5, "required_score": 15.0, "action": "add header",
          "symbols": {"FAKE_RULE": {"name": "FAKE_RULE", "score": 9.0}},
          "messages": {}}


def message(subject):
    return ("From: someone@remote.example\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n"
            "Message-ID: <%s@remote.example>\r\n\r\nHello there.\r\n"
            % (DEMO_USER, subject, formatdate(), subject)).encode()


def send(server, subject):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=60) as s:
        s.ehlo("client.remote.example")
        s.sendmail("someone@remote.example", [DEMO_USER], message(subject))


def status_of(server, subject):
    c = login(server)
    found = {}
    for box in ("INBOX", "Junk"):
        for h in fetch_subjects_and_headers(c, box):
            if "Subject: %s\r\n" % subject in h:
                found[box] = [line for line in h.split("\r\n")
                              if line.startswith("X-Spam-Status:")][0]
    c.logout()
    assert len(found) == 1, found
    return found.popitem()


def test_rspamd_score_is_added_to_ours(make_roost):
    fake = FakeRspamd(ANSWER)
    try:
        server = make_roost(extra={"spam": {"rspamd": fake.url}})
        send(server, "with-rspamd")
        box, status = status_of(server, "with-rspamd")
    finally:
        fake.close()
    assert box == "Junk"  # 5.5 reaches the threshold of 4 on rspamd's score alone
    assert status.startswith("X-Spam-Status: Yes, score=5.5 threshold=4.0 rspamd=5.5/add_header")
    assert len(fake.requests) == 1
    path, headers, body = fake.requests[0]
    assert path == "/checkv2"
    assert headers["IP"] == "127.0.0.1" and headers["Helo"] == "client.remote.example"
    assert headers["From"] == "someone@remote.example" and headers["Rcpt"] == DEMO_USER
    # the message as the client sent it (the Date differs between two calls of message())
    assert b"Subject: with-rspamd\r\n" in body and body.endswith(b"\r\n\r\nHello there.\r\n")
    assert b"Received:" not in body


def test_slow_rspamd_is_given_up(make_roost):
    release = threading.Event()
    fake = FakeRspamd(ANSWER, delay_event=release)
    try:
        server = make_roost(extra={"spam": {"rspamd": fake.url, "rspamd_timeout": "1"}})
        send(server, "slow-rspamd")
        box, status = status_of(server, "slow-rspamd")
        assert wait_until(lambda: "spam=rspamd" in server.log_text(), 10)
    finally:
        release.set()
        fake.close()
    assert box == "INBOX"
    assert status.startswith("X-Spam-Status: No, score=0.0") and "rspamd=" not in status
    assert "op=read" in server.log_text() and "scoring without rspamd" in server.log_text()


def test_dead_rspamd_is_skipped(make_roost):
    server = make_roost(extra={"spam": {"rspamd": "http://127.0.0.1:%d" % free_port()}})
    send(server, "dead-rspamd-1")
    send(server, "dead-rspamd-2")
    box, status = status_of(server, "dead-rspamd-2")
    assert box == "INBOX" and "rspamd=" not in status
    log = server.log_text()
    assert "spam=rspamd" in log and "op=connect" in log
    assert log.count("scoring without rspamd") == 1  # once a minute at most


def test_unusable_rspamd_address_is_refused(make_roost):
    server = make_roost(extra={"spam": {"rspamd": "http://rspamd.example:11333"}}, start=False)
    r = server.cli("check", check=False)
    assert r.returncode != 0 and "[spam] rspamd" in r.stderr
