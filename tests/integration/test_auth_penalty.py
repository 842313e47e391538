"""Login failure handling (TESTPLAN §3.11, issue acceptance): unknown users and wrong passwords
look the same in reply and timing; failures from one address are slowed down, then refused;
at most N sessions per user and address."""
import imaplib
import statistics
import threading
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER


def timed_login(port, user, password):
    m = imaplib.IMAP4("127.0.0.1", port)
    t0 = time.monotonic()
    try:
        m.login(user, password)
        reply = "OK"
    except imaplib.IMAP4.error as e:
        reply = str(e)
    elapsed = time.monotonic() - t0
    try:
        m.logout()
    except Exception:
        pass
    return reply, elapsed


def test_unknown_user_and_wrong_password_identical(make_roost):
    # No penalty delay: what remains is the check itself. An unknown user must cost the same
    # password hash as a known one (~15 ms of yescrypt); skipping it would show as a gap of
    # most of the time, far beyond scheduling noise.
    r = make_roost(extra={"auth": {"failure_delay": "0", "failure_delay_max": "0",
                                   "failure_refuse_after": "1000"}})
    port = r.ports["imap"]
    wrong, unknown = [], []
    replies = set()
    for i in range(30):
        # alternate the order so drift in machine load hits both sides alike
        order = [(DEMO_USER, wrong), ("nobody@example.test", unknown)]
        for user, times in (order if i % 2 == 0 else order[::-1]):
            reply, t = timed_login(port, user, "not the password")
            replies.add(reply)
            times.append(t)
    assert len(replies) == 1, replies
    assert "AUTHENTICATIONFAILED" in replies.pop()
    mw, mu = statistics.median(wrong), statistics.median(unknown)
    assert abs(mw - mu) / max(mw, mu) < 0.30, (mw, mu)


def test_failures_from_one_address_slow_down(make_roost):
    r = make_roost(extra={"auth": {"failure_delay": "200", "failure_delay_max": "800",
                                   "failure_refuse_after": "1000"}})
    times = [timed_login(r.ports["imap"], DEMO_USER, "bad")[1] for _ in range(4)]
    # 200, 400, 800, 800 ms (capped)
    assert times[0] >= 0.18
    assert times[1] >= 0.38
    assert times[2] >= 0.75
    assert 0.75 <= times[3] < 2.0
    assert times[1] > times[0] and times[2] > times[1]


def test_parallel_connections_share_the_penalty(make_roost):
    r = make_roost(extra={"auth": {"failure_delay": "300", "failure_delay_max": "2400",
                                   "failure_refuse_after": "1000"}})
    results = []

    def attempt():
        results.append(timed_login(r.ports["imap"], DEMO_USER, "bad")[1])

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Four failures at once from one address: the delays grow as if they came one by one.
    assert max(results) >= 2.0, results


def test_penalty_applies_across_protocols(make_roost):
    import poplib
    r = make_roost(extra={"auth": {"failure_delay": "300", "failure_delay_max": "1200",
                                   "failure_refuse_after": "1000"}})
    timed_login(r.ports["imap"], DEMO_USER, "bad")
    timed_login(r.ports["imap"], DEMO_USER, "bad")
    p = poplib.POP3("127.0.0.1", r.ports["pop3"])
    p.user(DEMO_USER)
    t0 = time.monotonic()
    with pytest.raises(poplib.error_proto):
        p.pass_("bad")
    assert time.monotonic() - t0 >= 1.1  # third failure: 1200 ms


def test_refused_after_too_many_failures(make_roost):
    r = make_roost(extra={"auth": {"failure_delay": "10", "failure_delay_max": "10",
                                   "failure_refuse_after": "5"}})
    for _ in range(5):
        timed_login(r.ports["imap"], DEMO_USER, "bad")
    reply, elapsed = timed_login(r.ports["imap"], DEMO_USER, DEMO_PASSWORD)
    assert "UNAVAILABLE" in reply
    assert elapsed < 1.0


def test_success_resets_the_penalty(make_roost):
    r = make_roost(extra={"auth": {"failure_delay": "200", "failure_delay_max": "1600",
                                   "failure_refuse_after": "1000"}})
    timed_login(r.ports["imap"], DEMO_USER, "bad")
    timed_login(r.ports["imap"], DEMO_USER, "bad")
    assert timed_login(r.ports["imap"], DEMO_USER, DEMO_PASSWORD)[0] == "OK"
    _, t = timed_login(r.ports["imap"], DEMO_USER, "bad")
    assert t < 0.35


def test_user_ip_connection_limit(make_roost):
    r = make_roost(extra={"auth": {"user_ip_connections": "3"}})
    held = []
    for _ in range(3):
        m = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
        assert m.login(DEMO_USER, DEMO_PASSWORD)[0] == "OK"
        held.append(m)
    extra = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
    with pytest.raises(imaplib.IMAP4.error, match=r"\[LIMIT\]"):
        extra.login(DEMO_USER, DEMO_PASSWORD)
    held.pop().logout()
    # A slot was freed: the next login succeeds.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert extra.login(DEMO_USER, DEMO_PASSWORD)[0] == "OK"
            break
        except imaplib.IMAP4.error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    for m in held + [extra]:
        m.logout()
    assert "too many connections for user and address" in r.log_text()
