"""Logs an operator can follow a message by: one line per recipient and outcome with the
queue ID, Message-ID, size, client and reason (event=rcpt outcome=... stage=...), DNS
deferrals of the queue (event=dns), failed logins with the real reason (event=login) while
the client's reply stays the same, and [log] format = json writing one JSON object per line."""
import base64
import json
import re
import time

from conftest import DEMO_PASSWORD, DEMO_USER, SmtpClient

MESSAGE_SIZE = 4096


def lines_with(server, *needles, timeout=0.0):
    """Log lines holding every needle; waits up to timeout seconds for one to appear."""
    deadline = time.monotonic() + timeout
    while True:
        found = [l for l in server.log_text().splitlines() if all(n in l for n in needles)]
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def logfmt(line):
    """key=value pairs of a logfmt line (quoted values unquoted)."""
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'(\w+)=(?:"((?:[^"\\]|\\.)*)"|(\S*))', line)}


def smtp(server, listener="smtp"):
    c = SmtpClient(server.connect(listener))
    assert c.reply()[0] == 220
    assert c.cmd(b"EHLO client.test")[0] == 250
    return c


def send(c, sender, rcpts, body):
    """One transaction; returns the RCPT codes and the reply to the data (None if no DATA)."""
    assert c.cmd(b"MAIL FROM:<" + sender.encode() + b">")[0] == 250
    codes = [c.cmd(b"RCPT TO:<" + r.encode() + b">")[0] for r in rcpts]
    if 250 not in codes:
        c.cmd(b"RSET")
        return codes, None
    assert c.cmd(b"DATA")[0] == 354
    c.send(body + b".\r\n")
    return codes, c.reply()


def message(msgid, to, filler=b""):
    return (b"From: sender@remote.test\r\nTo: " + to.encode() + b"\r\nMessage-ID: <" +
            msgid.encode() + b">\r\nSubject: log test\r\n\r\nHello.\r\n" + filler)


def mail_run(server):
    """Local delivery, an unknown user, a message too big, and a remote recipient."""
    c = smtp(server)
    codes, reply = send(c, "sender@remote.test",
                        [DEMO_USER, "nobody@example.test", "someone@elsewhere.test"],
                        message("local.1@remote.test", DEMO_USER))
    assert codes == [250, 550, 554] and reply[0] == 250
    codes, reply = send(c, "sender@remote.test", [DEMO_USER],
                        message("big.1@remote.test", DEMO_USER, b"x" * 70 + b"\r\n") * 100)
    assert reply[0] == 552
    c.close()

    s = smtp(server, "submission")
    token = base64.b64encode(b"\0" + DEMO_USER.encode() + b"\0" + DEMO_PASSWORD.encode())
    assert s.cmd(b"AUTH PLAIN " + token)[0] == 235
    codes, reply = send(s, DEMO_USER, ["friend@far-away.test"],
                        message("remote.1@example.test", "friend@far-away.test").replace(
                            b"From: sender@remote.test", b"From: " + DEMO_USER.encode()))
    assert codes == [250] and reply[0] == 250
    s.close()


def test_one_line_per_recipient_and_outcome(make_roost):
    server = make_roost(extra={"limits": {"message_size": str(MESSAGE_SIZE)}})
    mail_run(server)

    delivered = lines_with(server, "event=rcpt", "outcome=delivered", "stage=data",
                           "to=<%s>" % DEMO_USER)
    assert len(delivered) == 1
    kv = logfmt(delivered[0])
    assert kv["message_id"] == "<local.1@remote.test>"
    assert kv["from"] == "<sender@remote.test>"
    assert kv["client"] == "client.test[127.0.0.1]"
    assert int(kv["size"]) > 0

    unknown = lines_with(server, "event=rcpt", "outcome=rejected", "stage=rcpt",
                         "to=<nobody@example.test>")
    assert len(unknown) == 1 and logfmt(unknown[0])["reason"] == "unknown user"
    relay = lines_with(server, "event=rcpt", "outcome=rejected", "to=<someone@elsewhere.test>")
    assert len(relay) == 1 and logfmt(relay[0])["reason"] == "relay denied"

    big = lines_with(server, "event=rcpt", "outcome=rejected", "stage=data",
                     'reason="message too big"')
    assert len(big) == 1
    kv = logfmt(big[0])
    assert kv["to"] == "<%s>" % DEMO_USER and kv["message_id"] == "<big.1@remote.test>"
    assert int(kv["size"]) > MESSAGE_SIZE

    queued = lines_with(server, "event=rcpt", "outcome=queued", "to=<friend@far-away.test>")
    assert len(queued) == 1
    kv = logfmt(queued[0])
    assert kv["queue_id"] and kv["message_id"] == "<remote.1@example.test>"
    assert kv["user"] == DEMO_USER

    # The queue defers on DNS: the resolver at 127.0.0.1:9 never answers.
    dns = lines_with(server, "event=dns", "domain=far-away.test", timeout=30)
    assert dns, "no DNS deferral line"
    kv = logfmt(dns[0])
    assert kv["outcome"] == "deferred" and kv["error"]
    deferred = lines_with(server, "event=rcpt", "outcome=deferred",
                          "queue_id=%s" % logfmt(queued[0])["queue_id"], timeout=30)
    assert deferred, "no deferral line for the queued recipient"
    kv = logfmt(deferred[0])
    assert kv["to"] == "<friend@far-away.test>"
    assert kv["message_id"] == "<remote.1@example.test>"
    assert int(kv["next_retry_s"]) > 0 and kv["reply"].startswith("451 ")


def imap_login(server, user, password):
    c = SmtpClient(server.connect("imap"))
    c.line()
    c.send(b'a LOGIN "' + user.encode() + b'" "' + password.encode() + b'"\r\n')
    reply = c.until(b"a ")
    c.close()
    return reply


def smtp_auth(server, user, password):
    c = smtp(server, "submission")
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    reply = c.cmd(b"AUTH PLAIN " + token)
    c.close()
    return reply


def pop3_login(server, user, password):
    c = SmtpClient(server.connect("pop3"))
    c.line()
    c.send(b"USER " + user.encode() + b"\r\n")
    c.line()
    c.send(b"PASS " + password.encode() + b"\r\n")
    reply = c.line()
    c.close()
    return reply


def test_failed_logins_log_the_reason_and_reply_the_same(make_roost):
    server = make_roost()
    for proto, login in (("imap", imap_login), ("smtp", smtp_auth), ("pop3", pop3_login)):
        unknown = login(server, "ghost@example.test", "whatever")
        wrong = login(server, DEMO_USER, "not the password")
        assert unknown == wrong, proto
        reasons = {logfmt(l)["user"]: logfmt(l)["reason"]
                   for l in lines_with(server, "event=login", "outcome=failed",
                                       "proto=%s" % proto)}
        assert reasons == {"ghost@example.test": "unknown user",
                           DEMO_USER: "wrong password"}, proto


def test_plaintext_refusal_is_logged(make_roost):
    server = make_roost(extra={"auth": {"plaintext": "never"}})
    c = SmtpClient(server.connect("imap"))
    c.line()
    c.send(b'a LOGIN "%s" "x"\r\n' % DEMO_USER.encode())
    assert b"PRIVACYREQUIRED" in c.until(b"a ")[-1]
    c.close()
    refused = lines_with(server, "event=login", "outcome=refused", "proto=imap")
    assert refused and logfmt(refused[0])["reason"] == "plaintext not allowed on this connection"


def test_json_format_every_line_parses(make_roost):
    server = make_roost(extra={"log": {"format": "json"},
                               "limits": {"message_size": str(MESSAGE_SIZE)}})
    mail_run(server)
    imap_login(server, "ghost@example.test", "whatever")
    assert lines_with(server, '"event":"dns"', timeout=30)
    server.stop()
    objects = [json.loads(l) for l in server.log_text().splitlines() if l.strip()]
    assert len(objects) > 10
    assert all("ts" in o and "level" in o for o in objects)
    rcpt = [o for o in objects if o.get("event") == "rcpt" and o.get("outcome") == "delivered"]
    assert rcpt and rcpt[0]["message_id"] == "<local.1@remote.test>"
    assert rcpt[0]["client"] == "client.test[127.0.0.1]"
    login = [o for o in objects if o.get("event") == "login"]
    assert login and login[0]["reason"] == "unknown user"
    assert any(o.get("msg") == "server ready" for o in objects)
