"""Helpers of the tests of the HTTP listeners: a server with http, https and metrics
listeners, plain and TLS GETs and POSTs, and the samples of a Prometheus scrape."""
import http.client
import re
import ssl

from conftest import LISTENERS, free_port

HTTP_LISTENERS = ("http", "https", "metrics")


def make_http_roost(make_roost, extra=None):
    ports = {name: free_port() for name in LISTENERS + HTTP_LISTENERS}
    return make_roost(extra=extra, ports=ports)


def request(r, method, path, body=None, listener="http", headers=None, timeout=10):
    """(status, headers dict with lower-case names, body bytes)."""
    if listener == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(r.addr, r.ports[listener], timeout=timeout,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection(r.addr, r.ports[listener], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$')


def samples(text):
    """{'name{labels}': float} of every sample line of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        out[m.group(1)] = float(m.group(2))
    return out


def scrape(r, listener="http"):
    status, headers, body = request(r, "GET", "/metrics", listener=listener)
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return body.decode()
