"""RETR reads the following messages ahead of the client (src/pop3/readahead.c). These tests
check that what comes out is always the message asked for, whatever order the client uses, and
that a message removed by anyone after the read-ahead is still "-ERR", never served from
memory."""
import imaplib

from conftest import DEMO_PASSWORD, DEMO_USER
from test_pop3_commands import crlf, import_messages, message, pop_connect, unstuff


def sized_message(n, size):
    """Message n with a body of about SIZE bytes; every third line starts with a dot."""
    lines = []
    total = 0
    i = 0
    while total < size:
        line = ("." if i % 3 == 0 else "") + "message %d line %d %s\n" % (n, i, "x" * 50)
        lines.append(line)
        total += len(line) + 1
        i += 1
    return message(n, body="".join(lines))


def retr(p, n, expect):
    head = p.cmd("RETR %d" % n)
    assert head == b"+OK %d octets" % len(crlf(expect)), (n, head)
    assert unstuff(p.multi()) == crlf(expect), n


def test_every_order_gets_the_right_message(make_roost):
    r = make_roost()
    # Small ones (read into memory), 200 KiB ones (mapped) and enough in all to need several
    # read-ahead rounds: the 256 KiB budget ends a round after a few messages.
    sizes = [300, 5000, 70000, 200000, 2000] * 8
    msgs = [sized_message(i + 1, size) for i, size in enumerate(sizes)]
    import_messages(r, msgs)
    p = pop_connect(r)
    assert p.cmd("STAT").startswith(b"+OK %d " % len(msgs))
    # In order, all RETRs pipelined in one write.
    p.sock.sendall(b"".join(b"RETR %d\r\n" % n for n in range(1, len(msgs) + 1)))
    for n in range(1, len(msgs) + 1):
        head = p.line()
        assert head == b"+OK %d octets" % len(crlf(msgs[n - 1])), (n, head)
        assert unstuff(p.multi()) == crlf(msgs[n - 1]), n
    # Backwards, and jumps forward over what was read ahead.
    for n in (40, 39, 1, 3, 2, 10, 30, 31):
        retr(p, n, msgs[n - 1])
    # TOP of a message that was read ahead: header, blank line and two body lines.
    retr(p, 11, msgs[10])
    assert p.cmd("TOP 12 2").startswith(b"+OK")
    header, body = crlf(msgs[11]).split(b"\r\n\r\n", 1)
    assert unstuff(p.multi()) == header + b"\r\n\r\n" + b"".join(body.splitlines(True)[:2])
    # DELE of a message that was read ahead, then RETR past it, RSET, and back to it.
    retr(p, 13, msgs[12])
    assert p.cmd("DELE 14").startswith(b"+OK")
    assert p.cmd("RETR 14").startswith(b"-ERR")
    retr(p, 15, msgs[14])
    assert p.cmd("RSET").startswith(b"+OK")
    retr(p, 14, msgs[13])
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()


def test_removed_by_another_pop3_session_after_read_ahead_is_err(make_roost):
    r = make_roost()
    msgs = [message(i) for i in range(1, 7)]
    import_messages(r, msgs)
    b = pop_connect(r)
    # RETR 1 reads 2..6 ahead.
    retr(b, 1, msgs[0])
    a = pop_connect(r)
    assert a.cmd("DELE 2").startswith(b"+OK")
    assert a.cmd("DELE 3").startswith(b"+OK")
    assert a.cmd("QUIT").startswith(b"+OK")
    a.close()
    assert b.cmd("RETR 2").startswith(b"-ERR")
    assert b.cmd("TOP 3 0").startswith(b"-ERR")
    retr(b, 4, msgs[3])
    retr(b, 5, msgs[4])
    assert b.cmd("QUIT").startswith(b"+OK")
    b.close()


def test_imap_expunge_after_read_ahead_is_err_and_flag_changes_are_not(make_roost):
    r = make_roost()
    msgs = [message(i) for i in range(1, 7)]
    import_messages(r, msgs)
    p = pop_connect(r)
    retr(p, 1, msgs[0])
    imap = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
    imap.login(DEMO_USER, DEMO_PASSWORD)
    imap.select("INBOX")
    # A flag change renames the Maildir file but removes nothing.
    assert imap.store("2", "+FLAGS", "(\\Seen \\Flagged)")[0] == "OK"
    retr(p, 2, msgs[1])
    assert imap.store("4", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert imap.expunge()[0] == "OK"
    imap.logout()
    retr(p, 3, msgs[2])
    assert p.cmd("RETR 4").startswith(b"-ERR")
    retr(p, 5, msgs[4])
    retr(p, 6, msgs[5])
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
