"""COMPRESS=DEFLATE (RFC 4978): advertised after login, raw deflate both ways from the octet
after the tagged OK, under TLS too, once per connection, and a corrupt stream closes the
connection."""
import re
import socket
import ssl
import zlib

from conftest import DEMO_PASSWORD, DEMO_USER, client_tls_context
from imap_util import raw_login


class Deflated:
    """An IMAP client speaking over raw deflate (what a client does after COMPRESS)."""

    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.out = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.inf = zlib.decompressobj(-15)
        self.buf = self.inf.decompress(leftover)
        self.wire_in = 0

    def send(self, data):
        self.sock.sendall(self.out.compress(data) + self.out.flush(zlib.Z_SYNC_FLUSH))

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.wire_in += len(chunk)
            self.buf += self.inf.decompress(chunk)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed")
            self.wire_in += len(chunk)
            self.buf += self.inf.decompress(chunk)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def cmd(self, tag, text):
        self.send(tag + b" " + text + b"\r\n")
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + b" "):
                return lines


def start_compress(c):
    """COMPRESS DEFLATE on a LineClient; returns the deflated client."""
    c.send(b"z COMPRESS DEFLATE\r\n")
    assert c.line() == b"z OK DEFLATE active"
    return Deflated(c.sock, c.buf)


def test_compress_advertised_only_after_login(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    greeting = c.line()
    assert b"COMPRESS" not in greeting
    c.send(b"a COMPRESS DEFLATE\r\n")
    assert c.until(b"a ")[-1].startswith(b"a BAD")
    c.send(b'l LOGIN ' + DEMO_USER.encode() + b' "' + DEMO_PASSWORD.encode() + b'"\r\n')
    assert b"COMPRESS=DEFLATE" in c.until(b"l ")[-1]


def test_deflate_both_ways_with_a_big_message(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    d = start_compress(c)
    body = b"".join(b"Line %06d of a message that compresses well.\r\n" % i
                    for i in range(20000))
    msg = b"Subject: big\r\n\r\n" + body
    d.send(b"a APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    while True:
        l = d.line()
        if l.startswith(b"a "):
            break
    assert l.startswith(b"a OK"), l
    assert d.cmd(b"s", b"SELECT INBOX")[-1].startswith(b"s OK")
    d.send(b"f FETCH 1 BODY.PEEK[]\r\n")
    head = d.line()
    m = re.match(rb"\* 1 FETCH \(UID 1 BODY\[\] \{(\d+)\}$", head)
    assert m, head
    assert d.take(int(m.group(1))) == msg
    assert d.line() == b")"
    assert d.line().startswith(b"f OK")
    # Far fewer octets on the wire than the message itself.
    assert d.wire_in < len(msg) // 5
    lines = d.cmd(b"c", b"CAPABILITY")
    assert b"COMPRESS=DEFLATE" not in lines[0]  # RFC 4978 §4: not offered twice
    assert d.cmd(b"y", b"COMPRESS DEFLATE")[-1].startswith(b"y NO [COMPRESSIONACTIVE]")
    assert d.cmd(b"n", b"NOOP")[-1] == b"n OK NOOP completed"


def test_compress_over_tls(roost_server):
    raw = socket.create_connection(("127.0.0.1", roost_server.ports["imaps"]), timeout=10)
    tls = client_tls_context().wrap_socket(raw, server_hostname="localhost")
    buf = b""

    def line():
        nonlocal buf
        while b"\r\n" not in buf:
            buf += tls.recv(65536)
        l, buf = buf.split(b"\r\n", 1)
        return l

    assert line().startswith(b"* OK")
    tls.sendall(b'l LOGIN ' + DEMO_USER.encode() + b' "' + DEMO_PASSWORD.encode() + b'"\r\n')
    while not line().startswith(b"l OK"):
        pass
    tls.sendall(b"z COMPRESS DEFLATE\r\n")
    assert line() == b"z OK DEFLATE active"
    d = Deflated(tls, buf)
    lines = d.cmd(b"s", b"SELECT INBOX")
    assert lines[-1].startswith(b"s OK")
    assert d.cmd(b"o", b"LOGOUT")[-1].startswith(b"o OK")
    tls.close()


def test_corrupt_stream_closes(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    start_compress(c)
    c.sock.sendall(b"\xff\xff\xff\xff not deflate at all\r\n")
    assert c.closed(wait=5)


def test_logout_reply_arrives_compressed(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    d = start_compress(c)
    lines = d.cmd(b"o", b"LOGOUT")
    assert lines[0].startswith(b"* BYE") and lines[-1].startswith(b"o OK")
