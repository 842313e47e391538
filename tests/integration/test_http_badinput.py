"""Hostile input on raw sockets to the HTTP listener: an oversized header, a garbage request
line, methods other than GET/HEAD/POST, and a client that sends one octet a second, which the
request deadline closes although every octet resets the idle timeout. The server answers
others throughout."""
import socket
import time

from conftest import wait_until
from http_util import make_http_roost, request


def raw(r, data, listener="http", timeout=10):
    """Sends data, returns everything the server sends until it closes or goes silent."""
    s = socket.create_connection((r.addr, r.ports[listener]), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def still_serving(r):
    status, _, _ = request(r, "GET", "/metrics")
    assert status == 200


def test_oversized_header_is_refused(make_roost):
    r = make_http_roost(make_roost)
    reply = raw(r, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert reply == b"" or reply.split(b" ")[1] in (b"400", b"413", b"431")
    reply = raw(r, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply == b"" or reply.split(b" ")[1] in (b"400", b"413", b"414")
    still_serving(r)


def test_garbage_request_line_and_methods(make_roost):
    r = make_http_roost(make_roost)
    reply = raw(r, b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n")
    assert reply == b"" or reply.startswith(b"HTTP/1.1 400")
    reply = raw(r, b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply == b"" or reply.split(b" ")[1] in (b"400", b"405", b"501")
    for method in (b"PUT", b"DELETE", b"OPTIONS", b"TRACE"):
        reply = raw(r, method + b" /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        assert reply.split(b" ")[1] in (b"405", b"501"), (method, reply[:80])
    # a TLS listener given clear text
    reply = raw(r, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", listener="https")
    assert b"roost_" not in reply
    still_serving(r)


def test_slow_client_is_closed_by_the_request_deadline(make_roost):
    r = make_http_roost(make_roost)
    request_bytes = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 100
    s = socket.create_connection((r.addr, r.ports["http"]), timeout=5)
    closed = False
    sent = 0
    try:
        # one octet a second: the idle timeout never fires; at most 40 octets (40 s)
        for i in range(40):
            try:
                s.sendall(request_bytes[i:i + 1])
                sent += 1
            except OSError:
                closed = True
                break
            s.settimeout(1.0)
            try:
                if s.recv(4096) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
            # meanwhile other clients are answered at once
            if i == 3:
                still_serving(r)
    finally:
        s.close()
    assert closed, "the server kept a connection that sent %d octets one a second" % sent
    assert sent < 40
    # the log is a file another process writes: give it a moment, not a race
    assert wait_until(lambda: "request deadline passed" in r.log_text(), 5), r.log_text()[-2000:]
    still_serving(r)
