"""BDAT and the job that opens a delivery: a chunk that is complete as soon as it is announced
(`BDAT 0 LAST`, or a small chunk sent in the same packet as its command) must wait for the
delivery to exist before the transaction ends. Ending it earlier crashed the server without
any login (MX, LMTP) and, on submission, leaked an open file and a tmp/ file per round."""
import base64
import glob
import os

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, LISTENERS, SmtpClient, free_port

ROUNDS = 200


def _fds(proc):
    return len(os.listdir("/proc/%d/fd" % proc.pid))


def _tmp_files(r):
    return glob.glob(os.path.join(r.data_dir, "mail", "*", "*", "tmp", "*")) + \
        glob.glob(os.path.join(r.data_dir, "queue", "tmp", "*"))


def _inbox(r):
    d = os.path.join(r.data_dir, "mail", "example.test", "demo")
    return glob.glob(os.path.join(d, "cur", "*")) + glob.glob(os.path.join(d, "new", "*"))


@pytest.fixture
def server(make_roost):
    """make_roost stops it and fails on a bad exit status or a sanitizer report."""
    ports = {name: free_port() for name in LISTENERS + ("lmtp",)}
    return make_roost(extra={"auth": {"user_ip_connections": "1000",
                                      "failure_refuse_after": "1000"}}, ports=ports)


def _session(r, listener, hello=b"EHLO client.test"):
    c = SmtpClient(r.connect(listener))
    assert c.reply()[0] == 220
    assert c.cmd(hello)[0] == 250
    return c


def _alive(r):
    c = _session(r, "smtp")
    assert c.cmd(b"NOOP")[0] == 250
    c.close()


@pytest.mark.parametrize("listener,hello", [("smtp", b"EHLO x"), ("lmtp", b"LHLO x")])
def test_bdat_0_last_without_login_keeps_the_server_up(server, listener, hello):
    for _ in range(20):
        c = _session(server, listener, hello)
        assert c.cmd(b"MAIL FROM:<a@remote.test>")[0] == 250
        assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
        code, _ = c.cmd(b"BDAT 0 LAST")
        # An empty message is a message: whatever the verdict, it is an answer, not a crash.
        assert 200 <= code < 600
        assert c.cmd(b"NOOP")[0] == 250
        c.close()
        assert server.proc.poll() is None, "roost died:\n" + server.log_text()[-3000:]
    _alive(server)


def test_whole_chunk_in_the_command_packet_is_delivered(server):
    """The chunk's octets arrive with BDAT itself, before the delivery is open."""
    before = len(_inbox(server))
    c = _session(server, "smtp")
    body = b"From: <a@remote.test>\r\nSubject: one packet\r\n\r\nhello\r\n"
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nBDAT %d LAST\r\n%s"
           % (len(body), body))
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
    c.close()
    after = _inbox(server)
    assert len(after) == before + 1
    with open(sorted(after, key=os.path.getmtime)[-1], "rb") as f:
        assert f.read().endswith(body)


def test_bdat_0_then_bdat_last_after_it(server):
    """An empty chunk that is not the last is acknowledged once the delivery exists, and the
    message goes on in the next chunk."""
    before = len(_inbox(server))
    c = _session(server, "smtp")
    body = b"Subject: two chunks\r\n\r\nbody\r\n"
    c.send(b"MAIL FROM:<a@remote.test>\r\nRCPT TO:<demo@example.test>\r\nBDAT 0\r\n")
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
    assert c.cmd(b"BDAT %d LAST\r\n%s" % (len(body), body))[0] == 250
    c.close()
    assert len(_inbox(server)) == before + 1


def test_submission_bdat_0_last_rounds_leak_nothing(server):
    c = SmtpClient(server.connect("submission"))
    assert c.reply()[0] == 220
    assert c.cmd(b"EHLO client.test")[0] == 250
    token = base64.b64encode(("\0%s\0%s" % (DEMO_USER, DEMO_PASSWORD)).encode())
    assert c.cmd(b"AUTH PLAIN " + token)[0] == 235
    fds_before = _fds(server.proc)
    for _ in range(ROUNDS):
        assert c.cmd(b"MAIL FROM:<%s>" % DEMO_USER.encode())[0] == 250
        assert c.cmd(b"RCPT TO:<demo@example.test>")[0] == 250
        code, _ = c.cmd(b"BDAT 0 LAST")
        assert code == 553  # an empty message has no From: naming the user
    assert c.cmd(b"QUIT")[0] == 221
    c.close()
    _alive(server)
    # The old code held one more descriptor per round, also after the connection closed.
    assert _fds(server.proc) <= fds_before + 5
    assert _tmp_files(server) == []
