"""Memory and back-pressure bounds of IMAP sessions: change events for selected sessions that
send no command are coalesced and bounded (and still end in the right flags), and a FETCH to
a client that reads slowly is slowed down, never dropped."""
import os
import re
import socket
import threading
import time

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN

FETCH_HEAD = re.compile(rb"\* (\d+) FETCH \(UID (\d+) (?:BODY\[\]|FLAGS \(([^)]*)\))")


def build_mailbox(make_roost, tmp_path, count, body_size):
    """A server whose INBOX holds count messages of about body_size octets (imported before
    the server starts: far quicker than APPEND)."""
    r = make_roost(start=False)
    path = os.path.join(str(tmp_path), "inbox.mbox")
    line = b"x" * 70 + b"\n"
    body = line * max(1, body_size // len(line))
    with open(path, "wb") as f:
        for i in range(count):
            f.write(b"From alice@example.test Mon Feb  7 21:52:25 1994\n")
            f.write(b"From: alice@example.test\nTo: demo@example.test\n"
                    b"Subject: m%d\nMessage-ID: <m%d@x>\n\n" % (i, i))
            f.write(body)
            f.write(b"\n")
    res = r.cli("import", DEMO_USER, path)
    assert ("imported %d message" % count) in res.stdout, res.stdout
    return r.start()


def sanitized():
    """AddressSanitizer keeps freed memory in quarantine: RSS says nothing there."""
    with open(ROOST_BIN, "rb") as f:
        return b"__asan_init" in f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    raise AssertionError("no VmRSS")


class Raw:
    """A raw IMAP client that understands literals, so big responses can be read in a
    stream without keeping them."""

    def __init__(self, server, timeout=60):
        self.sock = socket.create_connection(("127.0.0.1", server.ports["imap"]),
                                             timeout=timeout)
        self.buf = b""
        self.closed = False
        assert self.line().startswith(b"* OK")
        self.send(b'l LOGIN %s "%s"\r\n' % (DEMO_USER.encode(), DEMO_PASSWORD.encode()))
        assert self.until(b"l ")[-1].startswith(b"l OK")

    def send(self, data):
        self.sock.sendall(data)

    def fill(self, want=65536):
        chunk = self.sock.recv(want)
        if not chunk:
            self.closed = True
            raise EOFError("closed by the server; pending %r" % self.buf[-300:])
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l

    def until(self, prefix):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(prefix):
                return lines

    def select(self):
        self.send(b"s SELECT INBOX\r\n")
        lines = self.until(b"s ")
        assert lines[-1].startswith(b"s OK"), lines
        return lines

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def read_flag_updates(c, tag):
    """Untagged FETCH FLAGS up to the tagged line: {uid: flags as a set} (last one wins)."""
    flags = {}
    for l in c.until(tag + b" "):
        m = FETCH_HEAD.match(l)
        if m and m.group(3) is not None:
            flags[int(m.group(2))] = set(m.group(3).split())
        elif l.startswith(tag + b" "):
            assert l.startswith(tag + b" OK"), l
    return flags


# ---------------- (A) change events for sessions that send nothing ----------------

KEYWORD_POOL = [b"keyword%03d_" % i + b"k" * 40 for i in range(200)]


def keyword_set(i):
    """120 long keywords, a different selection for each round."""
    return [KEYWORD_POOL[(i * 7 + j) % len(KEYWORD_POOL)] for j in range(120)]


def test_silent_sessions_keep_memory_bounded_and_catch_up(make_roost, tmp_path):
    server = build_mailbox(make_roost, tmp_path, 2000, 200)
    pid = server.proc.pid
    silent = [Raw(server) for _ in range(5)]
    idlers = [Raw(server) for _ in range(2)]
    writer = Raw(server)
    try:
        # The writer selects first and so holds every message as \Recent (RFC 3501 §2.3.2);
        # the others see the flags alone.
        for c in [writer] + silent + idlers:
            c.select()
        for c in idlers:
            c.send(b"i IDLE\r\n")
            assert c.line() == b"+ idling"
        # Nobody reads from here on: the idlers' socket buffers fill, the silent ones
        # are told nothing until they send a command.
        time.sleep(0.3)
        before = rss_kib(pid)
        peak = before
        rounds = 10
        for i in range(rounds):
            writer.send(b"w%d STORE 1:* FLAGS.SILENT (\\Seen %s)\r\n"
                        % (i, b" ".join(keyword_set(i))))
            lines = writer.until(b"w%d " % i)
            assert lines[-1].startswith(b"w%d OK" % i), lines[-3:]
            # .SILENT: the writer's own changes are not echoed back to it.
            assert not any(b"FETCH" in l for l in lines), lines[:2]
            time.sleep(0.2)  # let every session take its events in
            peak = max(peak, rss_kib(pid))
        after = rss_kib(pid)
        growth_mib = (peak - before) / 1024
        print("RSS before %d KiB, peak %d KiB, after %d KiB (growth %.1f MiB)"
              % (before, peak, after, growth_mib))
        # The old code queued a full copy of every event per session: about 60 MiB per
        # round here.
        if not sanitized():
            assert growth_mib < 100, "RSS grew by %.1f MiB" % growth_mib

        want = {b"\\Seen"} | set(keyword_set(rounds - 1))
        for n, c in enumerate(silent):
            c.send(b"n%d NOOP\r\n" % n)
            flags = read_flag_updates(c, b"n%d" % n)
            assert len(flags) == 2000
            assert all(f == want for f in flags.values())
        for c in idlers:
            c.send(b"DONE\r\n")
            flags = read_flag_updates(c, b"i")
            assert len(flags) == 2000
            assert all(f == want for f in flags.values())
        # And the state every session sees by asking agrees.
        for c in silent[:1] + idlers[:1]:
            c.send(b"q FETCH 1:* (FLAGS)\r\n")
            flags = read_flag_updates(c, b"q")
            assert len(flags) == 2000 and all(f == want for f in flags.values())
        for c in silent + idlers:
            c.close()
        time.sleep(0.5)
        closed = rss_kib(pid)
        print("RSS after the sessions closed: %d KiB" % closed)
        if not sanitized():
            assert (closed - before) / 1024 < 100
    finally:
        for c in silent + idlers + [writer]:
            c.close()


def test_idle_session_sees_appends_flags_and_expunges_in_order(make_roost, tmp_path):
    """Coalescing keeps the view right: an idler that reads late gets EXISTS, the last
    flags and EXPUNGE with sequence numbers that match its view."""
    server = build_mailbox(make_roost, tmp_path, 20, 100)
    a = Raw(server)
    b = Raw(server)
    try:
        b.select()  # first: b holds the messages as \Recent, a sees the flags alone
        a.select()
        a.send(b"i IDLE\r\n")
        assert a.line() == b"+ idling"
        for i in range(5):
            b.send(b"f%d STORE 3 FLAGS.SILENT (k%d)\r\n" % (i, i))
            assert b.until(b"f%d " % i)[-1].startswith(b"f%d OK" % i)
        b.send(b"d STORE 1 +FLAGS.SILENT (\\Deleted)\r\nx EXPUNGE\r\n")
        assert b.until(b"x ")[-1].startswith(b"x OK")
        a.send(b"DONE\r\n")
        lines = a.until(b"i ")
        assert lines[-1] == b"i OK IDLE terminated"
        fetches = [l for l in lines if b"FETCH" in l and b"UID 3 " in l]
        assert fetches and fetches[-1].endswith(b"FLAGS (k4))"), lines
        assert b"* 1 EXPUNGE" in lines
        a.send(b"q FETCH 2 (UID FLAGS)\r\n")
        assert a.until(b"q ")[:-1] == [b"* 2 FETCH (UID 3 FLAGS (k4))"]
    finally:
        a.close()
        b.close()


# ---------------- (B) FETCH back-pressure ----------------

def slow_fetch_all(server, expected, rate, results, index, deadline):
    """FETCH 1:* BODY.PEEK[] read at about rate octets per second; records how many
    messages arrived whole and the tagged line."""
    got = 0
    tagged = None
    c = None
    try:
        c = Raw(server, timeout=30)
        c.select()
        c.send(b"f FETCH 1:* BODY.PEEK[]\r\n")
        t0 = time.monotonic()
        received = 0
        while time.monotonic() < deadline:
            # One response at a time: "* n FETCH (UID u BODY[] {len}" CRLF data ")" CRLF
            while b"\r\n" not in c.buf:
                c.fill(16384)
                received += 16384
            head, rest = c.buf.split(b"\r\n", 1)
            if head.startswith(b"f "):
                tagged = head
                break
            m = re.match(rb"\* \d+ FETCH \(UID \d+ BODY\[\] \{(\d+)\}$", head)
            assert m, head[:200]
            size = int(m.group(1))
            c.buf = rest
            while len(c.buf) < size + 3:
                c.fill(16384)
                received += 16384
                ahead = received / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            assert c.buf[size:size + 3] == b")\r\n"
            c.buf = c.buf[size + 3:]
            got += 1
    except (EOFError, OSError) as e:
        results[index] = (got, tagged, repr(e))
        return
    finally:
        if c is not None:
            c.close()
    results[index] = (got, tagged, None)


def test_slow_fetch_readers_are_slowed_not_dropped(make_roost, tmp_path):
    server = build_mailbox(make_roost, tmp_path, 3000, 12 * 1024)
    deadline = time.monotonic() + 60
    # One reader alone, then four at once; each reads at about 6 MB/s.
    for readers in (1, 4):
        results = [None] * readers
        threads = [threading.Thread(target=slow_fetch_all,
                                    args=(server, 3000, 6e6, results, i, deadline))
                   for i in range(readers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for got, tagged, error in results:
            assert error is None, (got, error)
            assert got == 3000
            assert tagged == b"f OK FETCH completed"
    assert "does not read its output" not in server.log_text()
