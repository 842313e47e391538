"""APPEND with a literal8 (RFC 3516 §4.4, "~{N}") and with the UTF8 data extension
(RFC 6855 §4, "UTF8 (~{N})") as Thunderbird sends its Sent copy after ENABLE UTF8=ACCEPT;
tagged NO and BAD replies are logged with the command's name."""
import re

from imap_util import raw_login


def utf8_message(subject="Grüße aus Köln"):
    return ("From: Jürgen <demo@example.test>\r\nTo: bob@example.test\r\n"
            "Subject: %s\r\nMessage-ID: <utf8.%d@x>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo, schöne Grüße.\r\n"
            % (subject, len(subject))).encode("utf-8")


def enable_utf8(c):
    c.send(b"e ENABLE UTF8=ACCEPT\r\n")
    lines = c.until(b"e ")
    assert lines[-1].startswith(b"e OK") and b"* ENABLED UTF8=ACCEPT" in lines, lines


def fetch_body(c, mailbox, uid):
    c.send(b'x EXAMINE "%s"\r\n' % mailbox)
    assert c.until(b"x ")[-1].startswith(b"x OK")
    c.send(b"y UID FETCH %d (BODY.PEEK[] FLAGS)\r\n" % uid)
    head = c.line()
    m = re.search(rb"\{(\d+)\}$", head)
    assert m, head
    size = int(m.group(1))
    while len(c.buf) < size:
        c.sock.settimeout(10)
        c.buf += c.sock.recv(65536)
    body, c.buf = c.buf[:size], c.buf[size:]
    rest = c.until(b"y ")
    assert rest[-1].startswith(b"y OK")
    return b" ".join([head] + rest[:-1]), body


def appenduid(line):
    m = re.match(rb"\S+ OK \[APPENDUID (\d+) (\d+)\]", line)
    assert m, line
    return int(m.group(2))


def test_thunderbird_sent_copy_utf8_nonsync(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    enable_utf8(c)
    msg = utf8_message()
    c.send(b'a APPEND "Sent" (\\Seen) UTF8 (~{%d+}\r\n' % len(msg) + msg + b")\r\n")
    uid = appenduid(c.line())
    head, body = fetch_body(c, b"Sent", uid)
    assert body == msg
    assert b"\\Seen" in head
    c.send(b"n NOOP\r\n")
    assert c.line() == b"n OK NOOP completed"


def test_utf8_append_synchronising(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    enable_utf8(c)
    msg = utf8_message("sync")
    c.send(b'a APPEND INBOX UTF8 (~{%d}\r\n' % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b")\r\n")
    uid = appenduid(c.line())
    assert fetch_body(c, b"INBOX", uid)[1] == msg


def test_utf8_append_without_enable_is_refused(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    msg = utf8_message("not enabled")
    c.send(b'a APPEND INBOX UTF8 (~{%d+}\r\n' % len(msg) + msg + b")\r\n")
    reply = c.line()
    assert reply.startswith(b"a BAD") and b"UTF8=ACCEPT" in reply, reply
    # The message octets were skipped, not run as commands.
    c.send(b"s STATUS INBOX (MESSAGES)\r\n")
    assert c.until(b"s ")[0] == b"* STATUS INBOX (MESSAGES 0)"


def test_utf8_append_without_closing_parenthesis(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    enable_utf8(c)
    msg = utf8_message("no paren")
    c.send(b'a APPEND INBOX UTF8 (~{%d+}\r\n' % len(msg) + msg + b"\r\n")
    assert c.line().startswith(b"a BAD")
    c.send(b"s STATUS INBOX (MESSAGES)\r\n")
    assert c.until(b"s ")[0] == b"* STATUS INBOX (MESSAGES 0)"


def test_literal8_append(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    msg = b"From: a@example.test\r\nSubject: binary\r\n\r\n\x01\x02\xff 8-bit\r\n"
    c.send(b"a APPEND INBOX (\\Flagged) ~{%d}\r\n" % len(msg))
    assert c.line().startswith(b"+ ")
    c.send(msg + b"\r\n")
    uid = appenduid(c.line())
    head, body = fetch_body(c, b"INBOX", uid)
    assert body == msg and b"\\Flagged" in head
    c.send(b'b APPEND INBOX "05-Mar-2023 01:02:03 +0100" ~{%d+}\r\n' % len(msg) + msg + b"\r\n")
    assert appenduid(c.until(b"b ")[-1]) == uid + 1


def test_literal8_with_nul_is_refused_unknown_cte(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    msg = b"From: a@example.test\r\nSubject: nul\r\n\r\nbefore\x00after\r\n"
    c.send(b"a APPEND INBOX ~{%d+}\r\n" % len(msg) + msg + b"\r\n")
    reply = c.line()
    assert reply.startswith(b"a NO [UNKNOWN-CTE]"), reply
    c.send(b"s STATUS INBOX (MESSAGES)\r\n")
    assert c.until(b"s ")[0] == b"* STATUS INBOX (MESSAGES 0)"


def test_tagged_failures_are_logged_with_the_command(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    c.send(b"a APPEND Nope {5}\r\n")
    assert c.line() == b"a NO [TRYCREATE] Mailbox does not exist"
    c.send(b"b SELECT Nowhere\r\n")
    assert c.until(b"b ")[-1].startswith(b"b NO")
    c.send(b"c FETCH 1 FLAGS\r\n")
    assert c.line().startswith(b"c BAD")
    c.send(b"d LOGOUT\r\n")
    c.until(b"d ")
    log = roost_server.log_text()
    for cmd, reply in ((b"APPEND", b"a NO [TRYCREATE]"), (b"SELECT", b"b NO"),
                       (b"FETCH", b"c BAD")):
        pattern = (rb"level=info .*proto=imap .*user=demo@example.test cmd=" + cmd +
                   rb' reply="' + re.escape(reply))
        assert re.search(pattern, log.encode()), (cmd, log[-3000:])
