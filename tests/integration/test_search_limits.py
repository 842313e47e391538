"""SEARCH cannot starve the server: a message is decoded once per SEARCH whatever the number of
text keys, each SEARCH has a work budget (NO [LIMIT] beyond it), a search whose client has
gone stops, and logins never queue behind long searches."""
import os
import random
import time

from conftest import DEMO_PASSWORD, DEMO_USER, LineClient

MESSAGES = 60
BODY_BYTES = 200 * 1024
ATTACKERS = 4
NOT_TEXT_KEYS = 60
VICTIM = ("victim@example.test", "victim password 1")
BASELINE = ("baseline@example.test", "baseline password 1")

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey").split()


def big_message(n, rng):
    lines = []
    size = 0
    while size < BODY_BYTES:
        line = " ".join(rng.choice(WORDS) for _ in range(12))
        lines.append(line)
        size += len(line) + 2
    if n % 10 == 3:
        lines.insert(len(lines) // 2, "the needle marker zyzzyva%d sits here" % n)
    body = "\r\n".join(lines)
    return ("From: sender%d@example.test\r\nTo: demo@example.test\r\nSubject: big %d\r\n"
            "Date: Mon, 7 Feb 1994 21:52:25 -0800\r\nMessage-ID: <big%d@x>\r\n\r\n%s\r\n"
            % (n, n, n, body))


def write_mbox(path):
    rng = random.Random(1)
    with open(path, "w", newline="") as f:
        for n in range(1, MESSAGES + 1):
            text = big_message(n, rng).replace("\r\n", "\n")
            f.write("From sender%d@example.test Mon Feb  7 21:52:25 1994\n" % n)
            f.write(text)
            f.write("\n")


def start_server(make_roost, extra=None):
    users = ((DEMO_USER, DEMO_PASSWORD), VICTIM, BASELINE)
    r = make_roost(extra=extra, users=users, start=False)
    mbox = os.path.join(r.dir, "big.mbox")
    write_mbox(mbox)
    r.cli("import", DEMO_USER, mbox)
    return r.start()


def raw_login(server, user, password, timeout=120):
    c = LineClient(server.connect("imap", timeout=timeout))
    assert c.line().startswith(b"* OK")
    c.send(b'l LOGIN ' + user.encode() + b' "' + password.encode() + b'"\r\n')
    assert c.until(b"l ", timeout=timeout)[-1].startswith(b"l OK")
    return c


def timed_login(server, user, password):
    t0 = time.monotonic()
    c = raw_login(server, user, password)
    elapsed = time.monotonic() - t0
    c.close()
    return elapsed


def heavy_search():
    keys = " ".join("NOT TEXT k%d" % i for i in range(NOT_TEXT_KEYS))
    return ("s SEARCH %s\r\n" % keys).encode()


def selected(server):
    c = raw_login(server, DEMO_USER, DEMO_PASSWORD)
    c.send(b"x SELECT INBOX\r\n")
    lines = c.until(b"x ")
    assert lines[-1].startswith(b"x OK"), lines
    assert b"* %d EXISTS" % MESSAGES in lines
    return c


def test_login_does_not_wait_behind_abandoned_searches(make_roost):
    server = start_server(make_roost)
    baseline = timed_login(server, *BASELINE)
    attackers = [selected(server) for _ in range(ATTACKERS)]
    for c in attackers:
        c.send(heavy_search())
    for c in attackers:
        c.close()
    during = timed_login(server, *VICTIM)
    print("login: baseline %.3f s, during the searches %.3f s" % (baseline, during))
    # The searches cost seconds each; a login served beside them costs about one password
    # hash. A generous factor keeps a loaded machine from failing the test.
    assert during <= max(20 * baseline, baseline + 3.0), (baseline, during)
    # Each abandoned search noticed its client had gone and stopped.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.log_text().count("search stopped: connection closed") == ATTACKERS:
            break
        time.sleep(0.2)
    assert server.log_text().count("search stopped: connection closed") == ATTACKERS


def test_over_budget_search_answers_no_limit(make_roost):
    server = start_server(make_roost, extra={"imap": {"search_budget": "64M"}})
    c = selected(server)
    c.send(heavy_search())
    reply = c.until(b"s ", timeout=120)[-1]
    assert reply.startswith(b"s NO [LIMIT]"), reply
    # The connection stays usable, and searches within the budget still work.
    c.send(b"f SEARCH FLAGGED\r\n")
    assert c.until(b"f ") == [b"* SEARCH", b"f OK SEARCH completed"]
    c.send(b"u SEARCH SUBJECT \"big 7\"\r\n")
    assert c.until(b"u ") == [b"* SEARCH 7", b"u OK SEARCH completed"]
    c.send(b"n NOOP\r\n")
    assert c.until(b"n ")[-1].startswith(b"n OK")
    c.close()


def test_text_search_still_finds_messages(make_roost):
    server = start_server(make_roost)
    c = selected(server)
    expected = [n for n in range(1, MESSAGES + 1) if n % 10 == 3]
    c.send(b"a SEARCH TEXT zyzzyva\r\n")
    lines = c.until(b"a ", timeout=120)
    assert lines == [b"* SEARCH " + b" ".join(b"%d" % n for n in expected),
                     b"a OK SEARCH completed"]
    # Many keys on one message, each answered from the same decoded text.
    c.send(b"b SEARCH TEXT ZYZZYVA13 BODY needle NOT BODY k1 FROM sender13 TEXT \"big 13\"\r\n")
    assert c.until(b"b ", timeout=120) == [b"* SEARCH 13", b"b OK SEARCH completed"]
    c.send(b"c SEARCH OR TEXT zyzzyva23 SUBJECT \"big 34\" NOT TEXT k5\r\n")
    lines = c.until(b"c ", timeout=120)
    assert lines == [b"* SEARCH 23 34", b"c OK SEARCH completed"]
    c.close()
