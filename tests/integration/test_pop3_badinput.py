"""Bad input to the POP3 server: over-long lines (read to their end and discarded, never
parsed as a second command), unknown commands, bad arguments, RETR of deleted and nonexistent
messages, AUTH garbage, and the close after too many errors."""
import base64

from test_pop3_commands import import_messages, message, pop_connect


def test_overlong_line_discarded_whole(make_roost):
    r = make_roost()
    import_messages(r, [message(1)])
    p = pop_connect(r)
    # 300 octets: over RFC 2449's 255, under the reader's limit
    assert p.cmd("NOOP " + "x" * 300).startswith(b"-ERR")
    # 20000 octets with a command hidden behind the reader's limit
    p.sock.sendall(b"LIST " + b"9" * 20000 + b"DELE 1\r\nSTAT\r\n")
    assert p.line().startswith(b"-ERR")
    assert p.line().startswith(b"+OK 1 ")
    assert p.cmd("NOOP") == b"+OK"
    p.close()


def test_prelogin_line_cap_is_512_octets(make_roost):
    """A command line is read only up to 512 octets, before login too: an unterminated longer
    line is answered as soon as that much has arrived, not buffered up to the 12 KiB that a
    SASL response may take, and its rest is discarded when it ends."""
    r = make_roost()
    p = pop_connect(r, login=False)
    p.sock.sendall(b"USER " + b"u" * 2000)  # no line end yet
    assert b"too long" in p.line().lower()
    p.sock.sendall(b"u" * 3000 + b"PASS x\r\n")  # the rest of that line: never a command
    p.login()
    assert p.cmd("NOOP") == b"+OK"
    p.close()


def test_unknown_and_malformed_commands(make_roost):
    r = make_roost()
    import_messages(r, [message(1)])
    p = pop_connect(r, login=False)
    assert p.cmd("HELO there").startswith(b"-ERR")
    assert p.cmd("").startswith(b"-ERR")
    p.login()
    for c in ("XYZZY", "RETRX 1", "RETR", "RETR x", "RETR -1", "RETR 0", "RETR 1 2",
              "LIST a", "DELE", "TOP 1", "TOP 1 -1", "RETR 99999999999999999999",
              "TOP 1 99999999999999999999999"):
        assert p.cmd(c).startswith(b"-ERR"), c
    p.sock.sendall(b"NOOP\x00\r\n")
    assert p.line().startswith(b"-ERR")
    assert p.cmd("noop") == b"+OK"
    assert p.cmd("list 1").startswith(b"+OK 1 ")
    p.close()


def test_retr_nonexistent_and_deleted(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2)])
    p = pop_connect(r)
    assert p.cmd("RETR 3").startswith(b"-ERR")
    assert p.cmd("RETR 4294967295").startswith(b"-ERR")
    assert p.cmd("DELE 3").startswith(b"-ERR")
    assert p.cmd("DELE 1").startswith(b"+OK")
    assert p.cmd("RETR 1").startswith(b"-ERR")
    assert p.cmd("DELE 1").startswith(b"-ERR")
    assert p.cmd("LIST 1").startswith(b"-ERR")
    assert p.cmd("RETR 2").startswith(b"+OK")
    p.multi()
    p.close()


def test_auth_garbage(make_roost):
    r = make_roost()
    p = pop_connect(r, login=False)
    assert p.cmd("AUTH PLAIN !!!notbase64").startswith(b"-ERR")
    assert p.cmd("AUTH PLAIN =").startswith(b"-ERR")
    assert p.cmd("AUTH NOSUCHMECH").startswith(b"-ERR")
    assert p.cmd("AUTH " + "A" * 100).startswith(b"-ERR")
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd("*").startswith(b"-ERR")
    assert p.cmd("AUTH PLAIN") == b"+ "
    assert p.cmd("A" * 13000).startswith(b"-ERR")
    bad = base64.b64encode(b"\0\0\0\0").decode()
    assert p.cmd("AUTH PLAIN " + bad).startswith(b"-ERR")
    # still usable afterwards
    assert p.cmd("CAPA").startswith(b"+OK")
    p.multi()
    p.close()


def test_too_many_errors_close(make_roost):
    r = make_roost(extra={"limits": {"bad_commands": "5"}})
    p = pop_connect(r)
    for _ in range(4):
        assert p.cmd("BOGUS").startswith(b"-ERR")
    assert p.cmd("BOGUS").startswith(b"-ERR")
    assert p.line().startswith(b"-ERR Too many errors")
    p.close()


def test_quit_before_login_and_pipelined_after_quit_ignored(make_roost):
    r = make_roost()
    import_messages(r, [message(1)])
    p = pop_connect(r)
    p.sock.sendall(b"DELE 1\r\nQUIT\r\nRSET\r\n")
    assert p.line().startswith(b"+OK")
    assert p.line() == b"+OK Roost POP3 signing off"
    try:
        extra = p.sock.recv(100)
    except OSError:
        extra = b""
    assert extra == b""
    p.close()
    p = pop_connect(r, login=False)
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()
