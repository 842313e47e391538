#!/usr/bin/env python3
"""QRESYNC reconnect cost on a big mailbox, against any IMAP server on loopback.

A client caches INBOX (UIDVALIDITY, HIGHESTMODSEQ, its UIDs and flags) with one full
UID FETCH 1:* (FLAGS), goes away; another client makes CHANGES changes (flag changes, expunges,
appends, a third each); the first reconnects with SELECT INBOX (QRESYNC (uidvalidity modseq
known-uids)) and UID FETCH of what is new. Prints octets received and time of the full sync
and of the resync, and checks that the resync reported exactly the changes.
  qresync.py HOST PORT USER PASS [--changes 100] [--name NAME]
"""
import argparse
import ipaddress
import re
import socket
import time


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=600)
        self.buf = b""
        self.received = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            self.received += len(chunk)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, tag, text):
        self.sock.sendall(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            l = self.line()
            if l.startswith(tag + b" "):
                if not l.startswith(tag + b" OK"):
                    raise RuntimeError("%r: %r" % (text[:80], l))
                return lines
            lines.append(l)

    def close(self):
        try:
            self.cmd(b"z", b"LOGOUT")
        except (EOFError, OSError, RuntimeError):
            pass
        self.sock.close()


def login(args):
    c = Conn(args.host, args.port)
    c.cmd(b"l", b'LOGIN "%s" "%s"' % (args.user.encode(), args.password.encode()))
    return c


def uid_set(uids):
    uids = sorted(uids)
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out).encode()


def expand(text):
    out = set()
    for part in text.split(b","):
        a, _, b = part.partition(b":")
        out.update(range(int(a), int(b or a) + 1))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("password")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--name", default="server")
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        raise SystemExit("loopback targets only")

    # 1. The client caches the mailbox.
    a = login(args)
    a.cmd(b"e", b"ENABLE QRESYNC")
    t0 = time.monotonic()
    lines = a.cmd(b"s", b"SELECT INBOX")
    t_select = time.monotonic() - t0
    text = b"\n".join(lines)
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", text).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", text).group(1))
    before = a.received
    t0 = time.monotonic()
    lines = a.cmd(b"f", b"UID FETCH 1:* (FLAGS)")
    t_full = time.monotonic() - t0
    full_bytes = a.received - before
    cache = {}
    for l in lines:
        m = re.search(rb"UID (\d+)", l)
        if m:
            cache[int(m.group(1))] = l
    a.close()
    known = sorted(cache)
    n = len(known)

    # 2. Another client changes CHANGES messages: flags, expunges, appends.
    per = args.changes // 3
    flagged = known[n // 7::max(1, n // (per + 1))][:per]
    gone = [u for u in known[n // 5::max(1, n // (per + 2))] if u not in flagged][:per]
    appends = args.changes - len(flagged) - len(gone)
    b = login(args)
    b.cmd(b"s", b"SELECT INBOX")
    for i, u in enumerate(flagged):
        b.cmd(b"f%d" % i, b"UID STORE %d +FLAGS.SILENT (\\Flagged)" % u)
    b.cmd(b"d", b"UID STORE " + uid_set(gone) + b" +FLAGS.SILENT (\\Deleted)")
    b.cmd(b"x", b"UID EXPUNGE " + uid_set(gone))
    for i in range(appends):
        msg = (b"From: bench@example.test\r\nSubject: new %d\r\n\r\nbody\r\n" % i)
        b.cmd(b"a%d" % i, b"APPEND INBOX {%d+}\r\n" % len(msg) + msg)
    b.close()

    # 3. The client comes back with what it knows.
    a = login(args)
    a.cmd(b"e", b"ENABLE QRESYNC")
    before = a.received
    t0 = time.monotonic()
    lines = a.cmd(b"s", b"SELECT INBOX (QRESYNC (%d %d %s))" % (uidvalidity, modseq,
                                                                  uid_set(known)))
    top = known[-1]
    lines += a.cmd(b"n", b"UID FETCH %d:* (FLAGS)" % (top + 1))
    t_resync = time.monotonic() - t0
    resync_bytes = a.received - before
    a.close()
    vanished, fetched, new = set(), set(), set()
    for l in lines:
        m = re.match(rb"\* VANISHED \(EARLIER\) (\S+)", l)
        if m:
            vanished |= expand(m.group(1))
        m = re.search(rb"FETCH \(.*UID (\d+)", l)
        if m:
            (new if int(m.group(1)) > top else fetched).add(int(m.group(1)))
    exact = vanished == set(gone) and fetched == set(flagged) and len(new) == appends
    print("%s: messages %d; first SELECT %.2f s; full sync UID FETCH 1:* (FLAGS) %d octets "
          "%.3f s; QRESYNC resync after %d changes %d octets %.3f s; vanished %d fetched %d "
          "new %d; exact %s" % (args.name, n, t_select, full_bytes, t_full, args.changes,
                                 resync_bytes, t_resync, len(vanished), len(fetched), len(new),
                                 "yes" if exact else "NO"))


if __name__ == "__main__":
    main()
