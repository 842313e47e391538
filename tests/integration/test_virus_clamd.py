"""Virus scanning through a real clamd (Debian's clamav-daemon), started here on a loopback port
with a private database directory that holds one signature made by the test (the EICAR test
string as an .ndb body signature); the public databases are never downloaded.

Covers: a clean message gets X-Virus-Scanned/X-Virus-Status (and a forged X-Virus-Status is
dropped); EICAR over the MX (DATA and BDAT), submission and LMTP is refused with 554 5.7.0
naming the signature; action = junk files it into \\Junk (seen over IMAP); action =
quarantine keeps it aside and stores nothing; a stopped clamd gives 451 4.7.0, or a pass with
a header under on_error = accept; a 20 MB message is scanned with the server's anonymous
memory growing by a small constant; `roost check` warns when clamd does not answer."""
import base64
import glob
import imaplib
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, SmtpClient, free_port, wait_until
from preflight import find_program

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Roost-Test-EICAR"
BOB = "bob@example.test"
BOB_PASSWORD = "bob's password"


class Clamd:
    """One clamd on a free loopback port with a one-signature database; stop() ends it."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "clamd")
        db = os.path.join(self.dir, "db")
        os.makedirs(db)
        with open(os.path.join(db, "roost-test.ndb"), "w") as f:
            f.write("%s:0:*:%s\n" % (SIGNATURE, EICAR.hex()))
        self.port = free_port()
        self.conf = os.path.join(self.dir, "clamd.conf")
        with open(self.conf, "w") as f:
            f.write("Foreground yes\nTCPSocket %d\nTCPAddr 127.0.0.1\nDatabaseDirectory %s\n"
                    "LogFile %s\nStreamMaxLength 64M\nMaxThreads 4\n"
                    % (self.port, db, os.path.join(self.dir, "clamd.log")))
            if os.geteuid() == 0:
                f.write("User root\n")
        binary = find_program("clamd")
        assert binary, "clamd is not installed: apt-get install clamav-daemon"
        self.log = open(os.path.join(self.dir, "stdout.log"), "w")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        assert wait_until(self.pong, timeout=60), "clamd did not answer PING"

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def pong(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                s.sendall(b"zPING\0")
                return s.recv(16) == b"PONG\0"
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    c = Clamd(str(tmp_path_factory.mktemp("clamd")))
    yield c
    c.stop()


def virus_server(make_roost, clamd_address, lmtp=False, **virus):
    settings = {"clamd": clamd_address, "timeout": "10"}
    settings.update(virus)
    extra = {"virus": settings, "limits": {"message_size": "32M"},
             "auth": {"failure_refuse_after": "100000", "user_ip_connections": "100000"}}
    ports = None
    if lmtp:
        from conftest import LISTENERS
        ports = {name: free_port() for name in LISTENERS}
        ports["lmtp"] = free_port()
    return make_roost(extra, users=((DEMO_USER, DEMO_PASSWORD), (BOB, BOB_PASSWORD)),
                      ports=ports)


class Smtp(SmtpClient):
    def __init__(self, server, listener="smtp", verb=b"EHLO"):
        super().__init__(server.connect(listener, timeout=60))
        assert self.reply()[0] == 220
        assert self.cmd(verb + b" client.test")[0] == 250

    def auth_plain(self, user, password):
        token = base64.b64encode(("\0%s\0%s" % (user, password)).encode())
        assert self.cmd(b"AUTH PLAIN " + token)[0] == 235


def message(subject, body=b"Hello.\r\n", extra=b""):
    return (b"From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s\r\n"
            % (DEMO_USER.encode(), DEMO_USER.encode(), subject.encode(), extra) + body)


def send(c, msg, rcpts=(DEMO_USER,), sender=DEMO_USER, replies=1):
    assert c.cmd(b"MAIL FROM:<%s>" % sender.encode())[0] == 250
    for r in rcpts:
        assert c.cmd(b"RCPT TO:<%s>" % r.encode())[0] == 250
    assert c.cmd(b"DATA")[0] == 354
    lines = msg.split(b"\r\n")
    c.send(b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines) + b".\r\n")
    return [c.reply(timeout=60) for _ in range(replies)]


def inbox(server, address):
    user, domain = address.split("@")
    d = os.path.join(server.data_dir, "mail", domain, user)
    return sorted(glob.glob(os.path.join(d, "cur", "*")) + glob.glob(os.path.join(d, "new", "*")))


def read_one(server, address):
    files = inbox(server, address)
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        return f.read()


def refused_with_signature(reply):
    code, lines = reply
    return code == 554 and lines[0].startswith(b"554 5.7.0") and SIGNATURE.encode() in lines[0]


def test_clean_message_passes_with_headers(make_roost, clamd):
    server = virus_server(make_roost, clamd.address)
    c = Smtp(server)
    forged = b"X-Virus-Status: Clean\r\n"
    [(code, lines)] = send(c, message("clean", extra=forged))
    assert code == 250, lines
    stored = read_one(server, DEMO_USER)
    header = stored.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nX-Virus-Scanned: ClamAV on mail.example.test\r\n" in header
    # ours once, after Received:; the sender's copy is gone
    assert header.count(b"X-Virus-Status:") == 1
    assert header.index(b"Received:") < header.index(b"X-Virus-Status: Clean")
    assert stored.endswith(b"Subject: clean\r\n\r\nHello.\r\n")
    assert 'msg="virus scanning on"' in server.log_text()


def test_eicar_refused_by_data_and_bdat(make_roost, clamd):
    server = virus_server(make_roost, clamd.address)
    c = Smtp(server)
    [reply] = send(c, message("eicar", body=EICAR + b"\r\n"))
    assert refused_with_signature(reply), reply
    # BDAT: the same verdict
    msg = message("eicar bdat", body=EICAR + b"\r\n")
    assert c.cmd(b"MAIL FROM:<%s>" % DEMO_USER.encode())[0] == 250
    assert c.cmd(b"RCPT TO:<%s>" % DEMO_USER.encode())[0] == 250
    c.send(b"BDAT %d LAST\r\n" % len(msg) + msg)
    reply = c.reply(timeout=60)
    assert refused_with_signature(reply), reply
    # the session goes on
    assert send(c, message("after"))[0][0] == 250
    assert len(inbox(server, DEMO_USER)) == 1
    log = server.log_text()
    assert "event=rcpt outcome=rejected stage=data" in log
    assert 'reason="virus: %s' % SIGNATURE in log


def test_eicar_submission_refused_even_with_junk_action(make_roost, clamd):
    server = virus_server(make_roost, clamd.address, action="junk")
    c = Smtp(server, "submission")
    c.auth_plain(DEMO_USER, DEMO_PASSWORD)
    [reply] = send(c, message("submitted eicar", body=EICAR + b"\r\n"), rcpts=(BOB,))
    assert refused_with_signature(reply), reply
    assert inbox(server, BOB) == []


def test_lmtp_refusal_one_reply_per_recipient(make_roost, clamd):
    server = virus_server(make_roost, clamd.address, lmtp=True)
    c = Smtp(server, "lmtp", verb=b"LHLO")
    replies = send(c, message("lmtp eicar", body=EICAR + b"\r\n"), rcpts=(DEMO_USER, BOB),
                   replies=2)
    assert all(refused_with_signature(r) for r in replies), replies
    assert c.cmd(b"NOOP")[0] == 250  # no third reply was waiting


def test_action_junk_files_into_junk(make_roost, clamd):
    server = virus_server(make_roost, clamd.address, action="junk")
    c = Smtp(server)
    [(code, lines)] = send(c, message("junk me", body=EICAR + b"\r\n"))
    assert code == 250, lines
    imap = imaplib.IMAP4(server.addr, server.ports["imap"])
    try:
        imap.login(DEMO_USER, DEMO_PASSWORD)
        assert imap.select("INBOX")[1] == [b"0"]
        typ, data = imap.select("Junk")
        assert typ == "OK" and data == [b"1"], data
        typ, data = imap.fetch("1", "(BODY.PEEK[HEADER])")
        header = data[0][1]
        assert b"Subject: junk me" in header
        assert b"X-Virus-Status: Infected (%s" % SIGNATURE.encode() in header
    finally:
        imap.logout()


def test_action_quarantine_keeps_it_aside(make_roost, clamd):
    server = virus_server(make_roost, clamd.address, action="quarantine")
    c = Smtp(server)
    [(code, lines)] = send(c, message("quarantine me", body=EICAR + b"\r\n"))
    assert code == 250, lines
    assert inbox(server, DEMO_USER) == []
    kept = glob.glob(os.path.join(server.data_dir, "quarantine", "*"))
    assert len(kept) == 1, kept
    with open(kept[0], "rb") as f:
        text = f.read()
    assert b"X-Quarantine-Mailbox: <%s>" % DEMO_USER.encode() in text
    assert text.endswith(EICAR + b"\r\n")


def test_stopped_clamd_tempfails_or_passes_as_configured(make_roost, tmp_path):
    own = Clamd(str(tmp_path))
    try:
        tempfail = virus_server(make_roost, own.address)
        accept = virus_server(make_roost, own.address, on_error="accept")
        assert send(Smtp(tempfail), message("while up"))[0][0] == 250
    finally:
        own.stop()
    [(code, lines)] = send(Smtp(tempfail), message("while down"))
    assert code == 451 and lines[0].startswith(b"451 4.7.0"), lines
    assert len(inbox(tempfail, DEMO_USER)) == 1
    assert "virus scan failed; message deferred" in tempfail.log_text()
    [(code, lines)] = send(Smtp(accept), message("passes unscanned"))
    assert code == 250, lines
    header = read_one(accept, DEMO_USER).split(b"\r\n\r\n", 1)[0]
    assert b"X-Virus-Status: Unscanned (scanner unavailable)" in header
    assert "virus scan failed; message passed unscanned" in accept.log_text()


def under_sanitizer(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def rss_anon_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon")


def test_20mb_message_scanned_in_bounded_memory(make_roost, clamd):
    server = virus_server(make_roost, clamd.address)
    c = Smtp(server)
    assert send(c, message("warm up"))[0][0] == 250
    base = rss_anon_kib(server.proc.pid)
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_anon_kib(server.proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        line = b"A" * 76 + b"\r\n"
        body = line * (20 * 1024 * 1024 // len(line)) + EICAR + b"\r\n"
        [reply] = send(c, message("twenty megabytes", body=body))
    finally:
        stop.set()
        sampler.join()
    # the signature at the very end: the whole stream reached clamd
    assert refused_with_signature(reply), reply
    growth = peak[0] - base
    print("RssAnon before %d KiB, peak %d KiB, growth %d KiB" % (base, peak[0], growth))
    if not under_sanitizer(server.proc.pid):  # ASan holds freed buffers in its quarantine
        assert growth < 8 * 1024, growth


def test_check_warns_when_clamd_does_not_answer(make_roost):
    server = make_roost({"virus": {"clamd": "127.0.0.1:%d" % free_port(), "timeout": "2"}},
                        start=False)
    r = server.cli("check")
    assert "warning: [virus] clamd" in r.stderr and "PING" in r.stderr, r.stderr
    bad = make_roost({"virus": {"clamd": "clamd.example:3310"}}, start=False)
    r = bad.cli("check", check=False)
    assert r.returncode != 0 and "[virus] clamd" in r.stderr
