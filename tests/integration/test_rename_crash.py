"""RENAME of a mailbox with 1500 inferiors, with the server killed (SIGKILL) part-way through
at several moments: after each restart either the old or the new hierarchy exists, whole, with
its messages; LIST shows no inferior without its parent; a retried RENAME succeeds while the
source is whole and answers NONEXISTENT only when the target is whole. A session listing
during an uninterrupted RENAME sees one whole hierarchy each time."""
import os
import random
import re
import signal
import threading
import time

from conftest import DEMO_PASSWORD, DEMO_USER, LineClient
from imap_util import login

CHILDREN = 1500
WITH_MAIL = range(0, CHILDREN, 250)  # children that hold one message each
ROUNDS = 8
NAMES = ("Big", "Renamed")


def account_dir(server):
    return os.path.join(server.data_dir, "mail", "example.test", "demo")


def child(prefix, i):
    return "%s/c%04d" % (prefix, i)


def message(tag):
    return ("From: a@example.test\r\nTo: demo@example.test\r\nSubject: %s\r\n"
            "Message-ID: <%s@x>\r\n\r\nbody %s\r\n" % (tag, tag, tag)).encode()


def make_tree_on_disk(server):
    """Big and its inferiors as Maildir++ folders, written before the first start: the first
    login adopts them. Much faster than 1500 CREATE commands."""
    acct = account_dir(server)

    def folder(name, tag=None):
        path = os.path.join(acct, "." + name.replace("/", "."))
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        if tag is not None:
            with open(os.path.join(path, "new", "1700000000.%s.host" % tag), "wb") as f:
                f.write(message(tag))

    folder("Big", "parent")
    for i in range(CHILDREN):
        folder(child("Big", i), "m%d" % i if i in WITH_MAIL else None)


def listed(c):
    typ, data = c.list('""', "*")
    assert typ == "OK"
    out = set()
    for line in data:
        m = re.match(rb'\((.*?)\) "/" (.*)$', line)
        out.add(m.group(2).strip(b'"').decode())
    return out


def whole_name(server):
    """The name the hierarchy is under; asserts it is whole and alone, in LIST and on disk."""
    c = login(server)
    try:
        names = listed(c)
        counts = {p: sum(1 for n in names if n == p or n.startswith(p + "/")) for p in NAMES}
        assert sorted(counts.values()) == [0, CHILDREN + 1], counts
        prefix = max(NAMES, key=lambda p: counts[p])
        # No inferior without its parent.
        for n in names:
            if "/" in n:
                assert n.rsplit("/", 1)[0] in names, n
        for i in WITH_MAIL:
            typ, data = c.status(child(prefix, i), "(MESSAGES)")
            assert typ == "OK" and b"MESSAGES 1" in data[0], data
        typ, data = c.status(prefix, "(MESSAGES)")
        assert typ == "OK" and b"MESSAGES 1" in data[0], data
    finally:
        c.logout()
    entries = os.listdir(account_dir(server))
    on_disk = {p: sum(1 for e in entries if e == "." + p or e.startswith("." + p + "."))
               for p in NAMES}
    assert sorted(on_disk.values()) == [0, CHILDREN + 1], on_disk
    assert "roost-rename" not in entries
    return prefix


def raw_imap(server):
    c = LineClient(server.connect("imap", timeout=60))
    assert c.line().startswith(b"* OK")
    c.send(b'l LOGIN ' + DEMO_USER.encode() + b' "' + DEMO_PASSWORD.encode() + b'"\r\n')
    assert c.until(b"l ", timeout=60)[-1].startswith(b"l OK")
    return c


def rename(server, src, dst):
    c = raw_imap(server)
    try:
        c.send(b"r RENAME %s %s\r\n" % (src.encode(), dst.encode()))
        return c.until(b"r ", timeout=60)[-1]
    finally:
        c.close()


def kill_during_rename(server, src, dst, delay, after_first_move):
    """Sends the RENAME and kills the server after delay seconds, counted from the moment the
    source's own folder is gone when after_first_move (so the kill lands among the folder
    renames, whatever the machine's speed), else from the send."""
    first = os.path.join(account_dir(server), "." + src)
    c = raw_imap(server)
    c.send(b"r RENAME %s %s\r\n" % (src.encode(), dst.encode()))
    deadline = time.monotonic() + 10
    while after_first_move and os.path.exists(first) and time.monotonic() < deadline:
        pass
    time.sleep(delay)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.log.close()
    server.proc = None
    c.close()


def test_rename_killed_midway_is_all_or_nothing(make_roost):
    server = make_roost(start=False)
    make_tree_on_disk(server)
    server.start()
    assert whole_name(server) == "Big"

    # One rename to completion tells how long the window is; the kills spread over it. Another
    # session listing meanwhile sees one whole hierarchy each time, never a mix.
    watcher = login(server)
    seen, done = [], threading.Event()

    def watch():
        while not done.is_set() and len(seen) < 200:
            names = listed(watcher)
            seen.append(tuple(sum(1 for n in names if n == p or n.startswith(p + "/"))
                              for p in NAMES))

    thread = threading.Thread(target=watch)
    thread.start()
    started = time.monotonic()
    reply = rename(server, "Big", "Renamed")
    window = time.monotonic() - started
    done.set()
    thread.join(60)
    watcher.logout()
    assert reply.startswith(b"r OK"), reply
    assert seen and all(sorted(counts) == [0, CHILDREN + 1] for counts in seen), seen
    assert whole_name(server) == "Renamed"

    rng = random.Random(1500)
    current = "Renamed"
    for k in range(ROUNDS):
        other = NAMES[0] if current == NAMES[1] else NAMES[1]
        # Most kills fall among the folder renames; every third one anywhere in the command.
        after_first_move = k % 3 != 0
        delay = window * (k + rng.random()) / ROUNDS / (4 if after_first_move else 1)
        kill_during_rename(server, current, other, delay, after_first_move)
        server.start()
        now = whole_name(server)
        # A retried RENAME: done if the source is still whole, NONEXISTENT if the target is.
        reply = rename(server, current, other)
        if now == current:
            assert reply.startswith(b"r OK"), reply
        else:
            assert reply.startswith(b"r NO") and b"[NONEXISTENT]" in reply, reply
        assert whole_name(server) == other
        current = other
