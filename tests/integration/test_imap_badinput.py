"""Bad input: BAD without dropping the connection, literals of a bad
command skipped, limits, NUL and control characters, select parameters, curl interop."""
import shutil
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER
from imap_util import append, login, raw_login, simple


def test_bad_command_skips_its_literals(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    payload = b"\r\nx DELETE INBOX\r\n"
    r.send(b"a BOGUS {%d+}\r\n" % len(payload) + payload + b"\r\nb NOOP\r\n")
    assert r.line().startswith(b"a BAD")
    assert r.line() == b"b OK NOOP completed"
    r.send(b"c STATUS INBOX (MESSAGES)\r\n")
    assert r.until(b"c ")[-1].startswith(b"c OK")


def test_select_params_refused_cleanly(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    # QRESYNC before ENABLE QRESYNC, and a parameter nobody defined.
    r.send(b"a SELECT INBOX (CONDSTORE QRESYNC (1 1))\r\nb NOOP\r\n")
    assert r.line().startswith(b"a BAD")
    assert r.line() == b"b OK NOOP completed"
    r.send(b"c SELECT INBOX (NOSUCHPARAM)\r\n")
    assert r.line().startswith(b"c BAD")
    r.send(b"d SELECT INBOX\r\n")
    assert r.until(b"d ")[-1].startswith(b"d OK")


def test_nul_and_controls_refused(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    for i, cmd in enumerate([b'SELECT "IN\x00BOX"', b'SELECT "IN\\\x00BOX"', b"SELECT IN\x00BOX",
                             b"CREATE {3+}\r\na\x00b", b'CREATE "a\x01b"']):
        tag = b"n%d" % i
        r.send(tag + b" " + cmd + b"\r\n")
        reply = r.until(tag + b" ")[-1]
        assert reply.startswith(tag + b" BAD") or reply.startswith(tag + b" NO"), cmd
    r.send(b"t\x01g NOOP\r\n")
    assert r.line().startswith(b"* BAD")
    r.send(b"z NOOP\r\n")
    assert r.line() == b"z OK NOOP completed"


def test_literal_limits(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"a SELECT {999999999}\r\n")
    assert r.line().startswith(b"a BAD [TOOBIG]")
    r.send(b"b SELECT {18446744073709551616}\r\n")
    assert r.line().startswith(b"b BAD")
    r.send(b"c SELECT {-1}\r\n")
    assert r.line().startswith(b"c BAD")
    r.send(b"d NOOP\r\n")
    assert r.line() == b"d OK NOOP completed"
    r.send(b"e SELECT {999999+}\r\n")
    assert r.line().startswith(b"* BYE [TOOBIG]")
    assert r.closed()


def test_unterminated_literal_and_long_line(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"a LOGIN {10}\r\n")  # wrong state but still a literal to wait for
    assert r.line().startswith(b"+ ")
    r.send(b"abc")
    assert r.silent(0.5)
    r.close()
    # A line over the 64 KiB limit that does end is answered BAD [TOOBIG]
    # with its tag and skipped; the session goes on.
    r = raw_login(roost_server, line_client)
    r.send(b"b NOOP " + b"x" * (100 * 1024) + b"\r\n")
    assert r.line().startswith(b"b BAD [TOOBIG]")
    r.send(b"c NOOP\r\n")
    assert r.until(b"c ")[-1].startswith(b"c OK")
    # One that does not end within 1 MiB is a flood: the server hangs up.
    try:
        for _ in range(20):
            r.send(b"x" * 65536)
    except OSError:
        pass
    assert r.closed(10)


def test_invalid_sequence_sets_and_unknown(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"s SELECT INBOX\r\n")
    r.until(b"s OK")
    for i, cmd in enumerate([b"FETCH 0:1 FLAGS", b"FETCH 1:: FLAGS", b"FETCH , FLAGS",
                             b"UID FETCH 4294967296 FLAGS", b"STORE 1,$ +FLAGS (\\Seen)",
                             b"COPY a INBOX", b"FROBNICATE", b"UID FROB 1", b"NOOP extra"]):
        tag = b"q%d" % i
        r.send(tag + b" " + cmd + b"\r\n")
        assert r.until(tag + b" ")[-1].startswith(tag + b" BAD"), cmd
    r.send(b"z UID FETCH 1:* FLAGS\r\n")  # empty mailbox: fine
    assert r.until(b"z ")[-1] == b"z OK FETCH completed"


def test_too_many_bad_commands_disconnect(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    for i in range(19):
        r.send(b"x%d BOGUS\r\n" % i)
        assert r.line().startswith(b"x%d BAD" % i)
    r.send(b"y BOGUS\r\n")
    assert r.line().startswith(b"y BAD")
    assert r.line().startswith(b"* BYE")


def test_capabilities_after_login(roost_server, line_client):
    r = raw_login(roost_server, line_client)
    r.send(b"c CAPABILITY\r\n")
    caps = r.until(b"c ")[0].split()
    for cap in (b"IMAP4rev2", b"IDLE", b"UIDPLUS", b"MOVE", b"LITERAL+", b"NAMESPACE",
                b"ENABLE", b"SPECIAL-USE", b"CREATE-SPECIAL-USE", b"LIST-EXTENDED",
                b"LIST-STATUS", b"CHILDREN", b"ESEARCH", b"SASL-IR", b"ID", b"UNSELECT",
                b"BINARY", b"STATUS=SIZE", b"UTF8=ACCEPT", b"CONDSTORE", b"QRESYNC",
                b"COMPRESS=DEFLATE"):
        assert cap in caps, cap


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_lists_and_fetches(roost_server):
    c = login(roost_server)
    msg = simple("via curl")
    append(c, msg)
    base = "imap://127.0.0.1:%d/" % roost_server.ports["imap"]
    auth = "%s:%s" % (DEMO_USER, DEMO_PASSWORD)
    out = subprocess.run(["curl", "-s", "--url", base, "-u", auth], capture_output=True,
                         timeout=30)
    assert out.returncode == 0 and b"INBOX" in out.stdout
    out = subprocess.run(["curl", "-s", "--url", base + "INBOX;UID=1", "-u", auth],
                         capture_output=True, timeout=30)
    assert out.returncode == 0 and out.stdout == msg
    out = subprocess.run(["curl", "-s", "--url", base + "INBOX", "-u", auth,
                          "-X", "EXAMINE INBOX"], capture_output=True, timeout=30)
    assert out.returncode == 0 and b"1 EXISTS" in out.stdout
