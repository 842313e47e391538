"""Quotas (RFC 9208 STORAGE and MESSAGE): limits per account and per domain set with the CLI,
GETQUOTAROOT/GETQUOTA/SETQUOTA, refusals of APPEND, COPY, SMTP and LMTP with nothing stored,
usage that stays exact under concurrent deliveries and after kill -9, and the 80 %/95 %
warnings."""
import glob
import imaplib
import os
import re
import signal
import threading
import time

from conftest import DEMO_PASSWORD, DEMO_USER, SmtpClient, free_port, wait_until
from imap_util import login, raw_login

BOB = ("bob@example.test", "bob's password")


def start(make_roost, users=((DEMO_USER, DEMO_PASSWORD),), quota=None, lmtp=False, **limits):
    """A server with the given [quota] section (without warnings unless it asks for them, so
    that usage is what the test stored); limits are `user set` pairs for DEMO_USER applied
    before the start."""
    extra = {"quota": dict({"warn": "none"}, **(quota or {}))}
    port = None
    if lmtp:
        port = free_port()
        extra["listen"] = {"lmtp": "127.0.0.1:%d" % port}
    r = make_roost(users=users, extra=extra, start=False)
    if port:
        r.ports["lmtp"] = port
    for name, value in limits.items():
        r.cli("user", "set", DEMO_USER, name.replace("_", "."), value)
    return r.start()


def msg(size, subject="filler"):
    """A message of exactly `size` octets as stored (CRLF line ends)."""
    head = ("From: a@remote.test\r\nTo: demo@example.test\r\nSubject: %s\r\n\r\n" % subject)
    body_len = size - len(head) - 2
    assert body_len > 0
    return (head + "x" * body_len + "\r\n").encode()


def tagged(c, tag):
    return c.until(tag + b" ")


def quota_lines(c, command):
    lines = c.until(b"q ") if c.send(b"q " + command + b"\r\n") is None else None
    return lines


def inbox_count(c, mailbox="INBOX"):
    typ, data = c.status(mailbox, "(MESSAGES)")
    assert typ == "OK", data
    return int(re.search(rb"MESSAGES (\d+)", data[0]).group(1))


def usage(r, address=DEMO_USER):
    """(octets, messages) as `roost user settings` reports them from the index."""
    out = r.cli("user", "settings", address).stdout
    octets = int(re.search(r"quota\.storage\.used = (\d+)", out).group(1))
    messages = int(re.search(r"quota\.messages\.used = (\d+)", out).group(1))
    return octets, messages


def stored_files(r, address=DEMO_USER):
    user, domain = address.split("@")
    root = os.path.join(r.data_dir, "mail", domain, user)
    return [f for f in glob.glob(os.path.join(root, "**", "cur", "*"), recursive=True)
            + glob.glob(os.path.join(root, "cur", "*"))]


def files_total(r, address=DEMO_USER):
    files = set(stored_files(r, address))
    return sum(os.path.getsize(f) for f in files), len(files)


def smtp_open(r, listener="smtp", verb=b"EHLO"):
    c = SmtpClient(r.connect(listener))
    assert c.reply()[0] == 220
    assert c.cmd(verb + b" client.test")[0] == 250
    return c


def smtp_send(r, rcpts, data, listener="smtp"):
    """Sends one message; returns the RCPT replies and the replies after the data (one, or
    one per accepted recipient with LMTP)."""
    c = smtp_open(r, listener, b"LHLO" if listener == "lmtp" else b"EHLO")
    try:
        assert c.cmd(b"MAIL FROM:<sender@remote.test>")[0] == 250
        rcpt_replies = [c.cmd(b"RCPT TO:<%s>" % a.encode()) for a in rcpts]
        accepted = sum(1 for code, _ in rcpt_replies if code == 250)
        if accepted == 0:
            return rcpt_replies, []
        assert c.cmd(b"DATA")[0] == 354
        c.send(data + b".\r\n")
        finals = [c.reply() for _ in range(accepted if listener == "lmtp" else 1)]
        c.cmd(b"QUIT")
        return rcpt_replies, finals
    finally:
        c.close()


# ---------------- IMAP ----------------

def test_getquotaroot_getquota_setquota_and_capability(make_roost, line_client):
    r = start(make_roost, quota_storage="10K", quota_messages="5")
    c = raw_login(r, line_client)
    c.send(b"c CAPABILITY\r\n")
    caps = b" ".join(c.until(b"c "))
    assert b" QUOTA " in caps and b"QUOTA=RES-STORAGE" in caps and b"QUOTA=RES-MESSAGE" in caps
    assert b"QUOTASET" not in caps
    data = msg(1500)
    c.send(b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    assert tagged(c, b"a")[-1].startswith(b"a OK")
    c.send(b"q GETQUOTAROOT INBOX\r\n")
    lines = c.until(b"q ")
    assert lines[0] == b'* QUOTAROOT INBOX ""', lines
    # STORAGE in units of 1024 octets: 1500 octets are 2 units of 10.
    assert lines[1] == b'* QUOTA "" (STORAGE 2 10 MESSAGE 1 5)', lines
    assert lines[2].startswith(b"q OK")
    # The mailbox need not exist (RFC 9208 §4.1.2).
    c.send(b'q GETQUOTAROOT "Not There"\r\n')
    lines = c.until(b"q ")
    assert lines[0] == b'* QUOTAROOT "Not There" ""' and lines[-1].startswith(b"q OK"), lines
    c.send(b'q GETQUOTA ""\r\n')
    lines = c.until(b"q ")
    assert lines == [b'* QUOTA "" (STORAGE 2 10 MESSAGE 1 5)', lines[-1]]
    assert lines[-1].startswith(b"q OK")
    c.send(b'q GETQUOTA "#user/demo"\r\n')
    assert c.until(b"q ")[-1].startswith(b"q NO [NONEXISTENT]")
    c.send(b'q SETQUOTA "" (STORAGE 100000)\r\n')
    assert c.until(b"q ")[-1].startswith(b"q NO [NOPERM]")
    c.send(b'q SETQUOTA "" (STORAGE\r\n')
    assert c.until(b"q ")[-1].startswith(b"q BAD")
    # What an EXPUNGE would free (RFC 9208 §4.1.4).
    c.send(b"s SELECT INBOX\r\n")
    c.until(b"s ")
    c.send(b"f STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    c.until(b"f ")
    c.send(b"t STATUS INBOX (MESSAGES DELETED DELETED-STORAGE)\r\n")
    lines = c.until(b"t ")
    assert lines[0] == b"* STATUS INBOX (MESSAGES 1 DELETED 1 DELETED-STORAGE 1500)", lines


def test_no_limits_is_an_empty_list(make_roost, line_client):
    r = start(make_roost)
    c = raw_login(r, line_client)
    c.send(b'q GETQUOTA ""\r\n')
    lines = c.until(b"q ")
    # RFC 9208 §4.2.1: a resource that is not limited is not listed.
    assert lines[0] == b'* QUOTA "" ()' and lines[1].startswith(b"q OK"), lines
    r.cli("user", "set", DEMO_USER, "quota.messages", "7")
    c.send(b'q GETQUOTA ""\r\n')
    assert c.until(b"q ")[0] == b'* QUOTA "" (MESSAGE 0 7)'


def test_append_over_storage_and_over_message_stores_nothing(make_roost, line_client):
    r = start(make_roost, quota_storage="4000", quota_messages="3")
    c = login(r)
    try:
        assert c.append("INBOX", None, None, msg(3000))[0] == "OK"
        typ, data = c.append("INBOX", None, None, msg(1500))
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        assert inbox_count(c) == 1
        assert usage(r) == (3000, 1)
        assert c.append("INBOX", None, None, msg(400))[0] == "OK"
        assert c.append("INBOX", None, None, msg(400))[0] == "OK"
        typ, data = c.append("INBOX", None, None, msg(100))  # a fourth message
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        assert inbox_count(c) == 3
        assert usage(r) == (3800, 3)
    finally:
        c.logout()
    # MULTIAPPEND: all or nothing, also when only the last one does not fit.
    r.cli("user", "set", DEMO_USER, "quota.messages", "none")
    raw = raw_login(r, line_client)
    a, b = msg(100), msg(150)
    raw.send(b"m APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(a), a, len(b), b))
    assert raw.until(b"m ")[-1].startswith(b"m NO [OVERQUOTA]")
    assert usage(r) == (3800, 3)
    assert files_total(r) == (3800, 3)


def test_copy_over_quota_stores_nothing_and_move_is_allowed(make_roost):
    r = start(make_roost, quota_messages="3")
    c = login(r)
    try:
        for i in range(2):
            assert c.append("INBOX", None, None, msg(500, "m%d" % i))[0] == "OK"
        c.select("INBOX")
        typ, data = c.copy("1:2", "Archive")
        assert typ == "NO" and b"[OVERQUOTA]" in data[0], data
        assert inbox_count(c, "Archive") == 0
        assert usage(r) == (1000, 2)
        # One more fits.
        assert c.copy("1", "Archive")[0] == "OK"
        assert usage(r) == (1500, 3)
        # Full now, yet MOVE within the account does not grow usage (RFC 9208 §4.3 counts
        # what is stored, and a move stores nothing new).
        typ, data = c._simple_command("MOVE", "1:2", "Trash")
        assert typ == "OK", data
        assert inbox_count(c, "Trash") == 2 and inbox_count(c, "INBOX") == 0
        assert usage(r) == (1500, 3)
    finally:
        c.logout()


def test_expunge_frees_space_at_once(make_roost):
    r = start(make_roost, quota_messages="2")
    c = login(r)
    try:
        assert c.append("INBOX", None, None, msg(300))[0] == "OK"
        assert c.append("INBOX", None, None, msg(300))[0] == "OK"
        assert c.append("INBOX", None, None, msg(300))[0] == "NO"
        c.select("INBOX")
        c.store("1", "+FLAGS", "(\\Deleted)")
        assert c.expunge()[0] == "OK"
        assert usage(r) == (300, 1)
        assert c.append("INBOX", None, None, msg(300))[0] == "OK"
        assert usage(r) == (600, 2)
    finally:
        c.logout()


# ---------------- SMTP and LMTP ----------------

def test_smtp_full_mailbox_is_452_at_rcpt_and_at_end_of_data(make_roost):
    r = start(make_roost, quota_storage="3000")
    # Would exceed: RCPT is fine (there is room), the end of DATA is not.
    rcpts, finals = smtp_send(r, [DEMO_USER], msg(3500))
    assert rcpts[0][0] == 250
    assert finals[0][0] == 452 and b"4.2.2" in finals[0][1][0], finals
    assert files_total(r) == (0, 0)
    rcpts, finals = smtp_send(r, [DEMO_USER], msg(1000))
    assert finals[0][0] == 250
    # A limit of exactly what is stored (our Received field included): full.
    stored = files_total(r)
    r.cli("user", "set", DEMO_USER, "quota.storage", str(stored[0]))
    rcpts, finals = smtp_send(r, [DEMO_USER], msg(500))
    assert rcpts[0][0] == 452 and b"4.2.2" in rcpts[0][1][0], rcpts
    assert files_total(r) == stored


def test_smtp_permanent_setting_is_552(make_roost):
    r = start(make_roost, quota={"smtp_over": "permanent"}, quota_messages="1")
    assert smtp_send(r, [DEMO_USER], msg(400))[1][0][0] == 250
    rcpts, _ = smtp_send(r, [DEMO_USER], msg(400))
    assert rcpts[0][0] == 552 and b"5.2.2" in rcpts[0][1][0], rcpts
    stored = files_total(r)
    r.cli("user", "set", DEMO_USER, "quota.messages", "none")
    r.cli("user", "set", DEMO_USER, "quota.storage", "1000")
    rcpts, finals = smtp_send(r, [DEMO_USER], msg(900))
    assert rcpts[0][0] == 250
    assert finals[0][0] == 552 and b"5.2.2" in finals[0][1][0], finals
    assert files_total(r) == stored


def test_lmtp_answers_per_recipient(make_roost):
    r = start(make_roost, users=((DEMO_USER, DEMO_PASSWORD), BOB), lmtp=True,
              quota_storage="2000")
    rcpts, finals = smtp_send(r, [DEMO_USER, BOB[0]], msg(2500), listener="lmtp")
    assert [code for code, _ in rcpts] == [250, 250]
    assert finals[0][0] == 452 and b"4.2.2" in finals[0][1][0], finals
    assert DEMO_USER.encode() in finals[0][1][0]
    assert finals[1][0] == 250 and BOB[0].encode() in finals[1][1][0], finals
    assert files_total(r) == (0, 0)
    assert files_total(r, BOB[0])[1] == 1


def test_domain_limit_applies_to_the_sum_of_its_accounts(make_roost, line_client):
    r = make_roost(users=((DEMO_USER, DEMO_PASSWORD), BOB), extra={"quota": {"warn": "none"}},
                   start=False)
    r.cli("domain", "set", "example.test", "quota.messages", "3")
    bad = r.cli("domain", "set", "example.test", "quota.storage", "lots", check=False)
    assert bad.returncode != 0 and "quota.storage" in bad.stderr
    bad = r.cli("domain", "set", "example.test", "pop3.include_junk", "yes", check=False)
    assert bad.returncode != 0 and "not a domain setting" in bad.stderr
    assert "quota.messages = 3" in r.cli("domain", "settings", "example.test").stdout
    r.start()
    for rcpt in (DEMO_USER, DEMO_USER, BOB[0]):
        assert smtp_send(r, [rcpt], msg(300))[1][0][0] == 250
    # The domain is full: neither account takes more, although neither has a limit itself.
    for rcpt in (DEMO_USER, BOB[0]):
        rcpts, _ = smtp_send(r, [rcpt], msg(300))
        assert rcpts[0][0] == 452, rcpts
    c = raw_login(r, line_client)
    c.send(b'q GETQUOTA ""\r\n')
    # What demo may keep: its 2 messages, no room left in the domain.
    assert c.until(b"q ")[0] == b'* QUOTA "" (MESSAGE 2 2)'
    data = msg(100)
    c.send(b"a APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    assert c.until(b"a ")[-1].startswith(b"a NO [OVERQUOTA]")
    out = r.cli("user", "settings", BOB[0]).stdout
    octets = files_total(r)[0] + files_total(r, BOB[0])[0]
    assert "quota.domain.used = %d octets, 3 messages" % octets in out, out
    # Lifting the domain limit lets mail in again.
    r.cli("domain", "unset", "example.test", "quota.messages")
    assert smtp_send(r, [BOB[0]], msg(300))[1][0][0] == 250


# ---------------- exact usage ----------------

def test_usage_is_exact_after_concurrent_deliveries(make_roost):
    r = start(make_roost, quota_storage="1G")
    sizes = [1000 + 37 * i for i in range(20)]
    results = [None] * len(sizes)

    def deliver(i):
        results[i] = smtp_send(r, [DEMO_USER], msg(sizes[i], "c%d" % i))[1][0][0]

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(sizes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert results == [250] * len(sizes)
    # Each stored message is what was sent plus our Received field.
    octets, count = files_total(r)
    assert count == len(sizes) and octets > sum(sizes)
    assert usage(r) == (octets, count)


def test_usage_is_exact_after_kill_9_during_a_burst(make_roost):
    r = start(make_roost, quota_storage="1G")
    stop = threading.Event()
    sent = []

    def burst(n):
        i = 0
        while not stop.is_set() and i < 200:  # bounded in count; the kill ends it sooner
            try:
                smtp_send(r, [DEMO_USER], msg(700 + n * 50 + i, "k%d-%d" % (n, i)))
                sent.append(1)
            except Exception:
                return  # the server is gone
            i += 1

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    wait_until(lambda: len(sent) >= 12, timeout=60)
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    r.log.close()
    r.proc = None
    r.start()
    # A message still in tmp/ at the kill was never acknowledged and is not counted.
    octets, count = files_total(r)
    assert count >= 12
    assert usage(r) == (octets, count)
    c = login(r, select="INBOX")
    try:
        typ, data = c.fetch("1:*", "(RFC822.SIZE)")
        sizes = [int(m) for m in re.findall(rb"RFC822\.SIZE (\d+)", b" ".join(
            d if isinstance(d, bytes) else d[0] for d in data))]
        assert sum(sizes) == octets and len(sizes) == count
    finally:
        c.logout()


# ---------------- warnings ----------------

def warnings_in_inbox(c):
    c.select("INBOX")
    typ, data = c.search(None, "FROM", "postmaster@example.test")
    assert typ == "OK"
    uids = data[0].split()
    subjects = []
    for n in uids:
        typ, d = c.fetch(n, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        subjects.append(d[0][1].decode().strip())
    return subjects


def test_warnings_at_80_and_95_percent_once_each(make_roost):
    r = start(make_roost, quota={"warn": "80,95"}, quota_storage="20000")
    c = login(r)
    try:
        for i in range(15):
            assert c.append("INBOX", None, None, msg(1000, "w%d" % i))[0] == "OK"
        assert warnings_in_inbox(c) == []  # 75 %
        assert c.append("INBOX", None, None, msg(1000))[0] == "OK"  # 80 %
        assert warnings_in_inbox(c) == ["Subject: Your mailbox is 80% full"]
        for i in range(2):  # 80 % + the warning, then up to about 94 %
            assert c.append("INBOX", None, None, msg(1000))[0] == "OK"
        assert len(warnings_in_inbox(c)) == 1
        assert c.append("INBOX", None, None, msg(1000))[0] == "OK"  # past 95 %
        assert warnings_in_inbox(c) == ["Subject: Your mailbox is 80% full",
                                        "Subject: Your mailbox is 95% full"]
        # The warnings are stored past the limit; mail is not.
        octets, _ = usage(r)
        assert octets > 19000
        assert c.append("INBOX", None, None, msg(1000))[0] == "NO"
        assert len(warnings_in_inbox(c)) == 2
        # The text says what is used of what and how to free space.
        typ, d = c.search(None, "SUBJECT", "\"95%\"")
        typ, body = c.fetch(d[0].split()[0], "(BODY.PEEK[TEXT])")
        text = body[0][1].decode()
        assert "of its limit of 20 KiB" in text and "delete messages" in text, text
        # Back below 80 %: the next crossing warns again.
        c.select("INBOX")
        c.store("1:8", "+FLAGS", "(\\Deleted)")
        c.expunge()
        assert usage(r)[0] < 16000
        while usage(r)[0] < 16000:
            assert c.append("INBOX", None, None, msg(1000))[0] == "OK"
        assert warnings_in_inbox(c).count("Subject: Your mailbox is 80% full") == 2
    finally:
        c.logout()
