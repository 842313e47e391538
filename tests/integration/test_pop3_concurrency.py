"""Two POP3 sessions on one account: with `[pop3] lock = share` each works on its own snapshot
and a message removed by one is -ERR in the other (never served from a stale position); with
`lock = refuse` the second login gets -ERR [IN-USE] until the first session ends."""
import imaplib
import threading
import time

from test_pop3_commands import crlf, import_messages, message, pop_connect, unstuff


def test_share_deleted_by_other_session_is_err(make_roost):
    r = make_roost()
    import_messages(r, [message(i) for i in range(1, 5)])
    a = pop_connect(r)
    b = pop_connect(r)
    assert a.cmd("STAT").startswith(b"+OK 4 ")
    assert b.cmd("STAT").startswith(b"+OK 4 ")
    assert a.cmd("DELE 2").startswith(b"+OK")
    assert a.cmd("DELE 3").startswith(b"+OK")
    assert a.cmd("QUIT").startswith(b"+OK")
    a.close()
    # b's snapshot still lists them, but their content is gone.
    assert b.cmd("LIST 2").startswith(b"+OK 2 ")
    assert b.cmd("RETR 2").startswith(b"-ERR")
    assert b.cmd("TOP 3 0").startswith(b"-ERR")
    assert b.cmd("RETR 4").startswith(b"+OK")
    assert unstuff(b.multi()) == crlf(message(4))
    assert b.cmd("RETR 1").startswith(b"+OK")
    assert unstuff(b.multi()) == crlf(message(1))
    # DELE of a message already removed, then QUIT: no error, nothing else removed.
    assert b.cmd("DELE 2").startswith(b"+OK")
    assert b.cmd("QUIT").startswith(b"+OK")
    b.close()
    c = pop_connect(r)
    assert c.cmd("STAT").startswith(b"+OK 2 ")
    c.close()


def test_share_parallel_sessions_retrieve(make_roost):
    r = make_roost()
    import_messages(r, [message(i) for i in range(1, 21)])
    errors = []

    def worker():
        try:
            for _ in range(3):
                p = pop_connect(r)
                for n in range(1, 21):
                    assert p.cmd("RETR %d" % n).startswith(b"+OK")
                    assert unstuff(p.multi()) == crlf(message(n))
                assert p.cmd("QUIT").startswith(b"+OK")
                p.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_refuse_second_session_in_use(make_roost):
    r = make_roost(extra={"pop3": {"lock": "refuse"}})
    import_messages(r, [message(1)])
    a = pop_connect(r)
    b = pop_connect(r, login=False)
    assert b.cmd("USER demo@example.test").startswith(b"+OK")
    reply = b.cmd("PASS correct horse battery staple")
    assert reply.startswith(b"-ERR [IN-USE]"), reply
    # still in AUTHORIZATION: commands of TRANSACTION are refused
    assert b.cmd("STAT").startswith(b"-ERR")
    assert a.cmd("QUIT").startswith(b"+OK")
    a.close()
    time.sleep(0.2)
    b.login()
    assert b.cmd("STAT").startswith(b"+OK 1 ")
    b.close()
    # A dropped connection releases the lock too.
    time.sleep(0.3)
    c = pop_connect(r)
    assert c.cmd("STAT").startswith(b"+OK 1 ")
    c.close()


def test_refuse_is_per_account(make_roost):
    r = make_roost(extra={"pop3": {"lock": "refuse"}},
                   users=(("demo@example.test", "correct horse battery staple"),
                          ("other@example.test", "another password")))
    a = pop_connect(r)
    b = pop_connect(r, user="other@example.test", password="another password")
    assert b.cmd("STAT") == b"+OK 0 0"
    a.close()
    b.close()


def test_imap_and_pop3_on_one_account_at_once(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2)])
    p = pop_connect(r)
    imap = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
    imap.login("demo@example.test", "correct horse battery staple")
    assert p.cmd("RETR 2").startswith(b"+OK")
    assert unstuff(p.multi()) == crlf(message(2))
    q = pop_connect(r)
    assert q.cmd("STAT").startswith(b"+OK 2 ")
    imap.logout()
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
    q.close()
