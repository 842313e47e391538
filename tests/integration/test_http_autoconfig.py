"""Mail client autoconfiguration generated from the config: Thunderbird's config-v1.1.xml
(fetched with curl), the Outlook Autodiscover POST and the Apple profile, each naming the
hostname and the ports of the listeners that are on; only for our domains; everything taken
from the request escaped."""
import plistlib
import subprocess
import urllib.parse
import xml.etree.ElementTree as ET

from conftest import DEMO_USER
from http_util import make_http_roost, request

HOST = "mail.example.test"


def curl(r, path, listener="http"):
    scheme = "https" if listener == "https" else "http"
    res = subprocess.run(["curl", "-sk", "-o", "-", "-w", "\n%{http_code}",
                          "%s://%s:%d%s" % (scheme, r.addr, r.ports[listener], path)],
                         capture_output=True, timeout=30)
    body, _, code = res.stdout.rpartition(b"\n")
    return int(code), body


def servers(root):
    out = {}
    for tag in ("incomingServer", "outgoingServer"):
        for s in root.iter(tag):
            out.setdefault(s.get("type"), []).append(
                (s.findtext("hostname"), int(s.findtext("port")), s.findtext("socketType")))
    return out


def test_thunderbird_autoconfig_names_every_listener(make_roost):
    r = make_http_roost(make_roost)
    for path in ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml"):
        for listener in ("http", "https"):
            code, body = curl(r, path + "?emailaddress=" + urllib.parse.quote(DEMO_USER),
                              listener)
            assert code == 200, body
            root = ET.fromstring(body)
            assert root.tag == "clientConfig"
            provider = root.find("emailProvider")
            assert provider.get("id") == "example.test"
            assert provider.findtext("domain") == "example.test"
            got = servers(provider)
            assert got["imap"] == [(HOST, r.ports["imaps"], "SSL"),
                                   (HOST, r.ports["imap"], "STARTTLS")]
            assert got["pop3"] == [(HOST, r.ports["pop3s"], "SSL"),
                                   (HOST, r.ports["pop3"], "STARTTLS")]
            assert got["smtp"] == [(HOST, r.ports["submissions"], "SSL"),
                                   (HOST, r.ports["submission"], "STARTTLS")]


def test_unknown_domain_and_bad_address(make_roost):
    r = make_http_roost(make_roost)
    code, _ = curl(r, "/mail/config-v1.1.xml?emailaddress=someone%40elsewhere.example")
    assert code == 404
    code, _ = curl(r, "/apple/mobileconfig?emailaddress=someone%40elsewhere.example")
    assert code == 404
    for bad in ("", "?emailaddress=", "?emailaddress=no-at-sign", "?emailaddress=a%00b%40example.test",
                "?emailaddress=%3Cx%3E%40example.test", "?emailaddress=%zz"):
        code, _ = curl(r, "/mail/config-v1.1.xml" + bad)
        assert code == 400, bad
    for path in ("/", "/etc/passwd", "/../../etc/passwd", "/mail/", "/metrics/x",
                 "/autodiscover/autodiscover.xml"):  # GET of a POST-only path
        code, _ = curl(r, path)
        assert code == 404, path


AUTODISCOVER_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""
NS = {"a": "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006",
      "o": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"}


def test_autodiscover_post(make_roost):
    r = make_http_roost(make_roost)
    address = "o'brien&co@Example.Test"
    body = AUTODISCOVER_REQUEST % address.replace("&", "&amp;").replace("'", "&apos;")
    # the address is taken as written: an entity is not decoded, so it is not a valid address
    status, _, _ = request(r, "POST", "/autodiscover/autodiscover.xml", body=body)
    assert status == 400
    status, headers, reply = request(r, "POST", "/Autodiscover/Autodiscover.xml",
                                     body=AUTODISCOVER_REQUEST % address,
                                     headers={"Content-Type": "text/xml"})
    assert status == 200, reply
    assert headers["content-type"].startswith("application/xml")
    root = ET.fromstring(reply)  # the ' and & of the address came back escaped
    protocols = {p.findtext("o:Type", namespaces=NS): p
                 for p in root.iterfind("o:Response/o:Account/o:Protocol", NS)}
    assert set(protocols) == {"IMAP", "POP3", "SMTP"}
    for kind, port, enc in (("IMAP", r.ports["imaps"], "SSL"), ("POP3", r.ports["pop3s"], "SSL"),
                            ("SMTP", r.ports["submissions"], "SSL")):
        p = protocols[kind]
        assert p.findtext("o:Server", namespaces=NS) == HOST
        assert int(p.findtext("o:Port", namespaces=NS)) == port
        assert p.findtext("o:Encryption", namespaces=NS) == enc
        assert p.findtext("o:LoginName", namespaces=NS) == address.lower()  # its domain
    status, _, _ = request(r, "POST", "/autodiscover/autodiscover.xml",
                           body=AUTODISCOVER_REQUEST % "x@elsewhere.example")
    assert status == 404
    status, _, _ = request(r, "POST", "/autodiscover/autodiscover.xml", body="<nothing/>")
    assert status == 400


def test_autodiscover_body_over_the_limit_is_refused(make_roost):
    r = make_http_roost(make_roost)
    body = AUTODISCOVER_REQUEST % DEMO_USER + " " * 20000
    status, _, _ = request(r, "POST", "/autodiscover/autodiscover.xml", body=body)
    assert status == 413
    status, _, _ = request(r, "POST", "/autodiscover/autodiscover.xml",
                           body=AUTODISCOVER_REQUEST % DEMO_USER)
    assert status == 200


def test_apple_mobileconfig(make_roost):
    r = make_http_roost(make_roost)
    address = "first.last+tag@example.test"
    status, headers, body = request(r, "GET", "/apple/mobileconfig?emailaddress=" +
                                    urllib.parse.quote(address), listener="https")
    assert status == 200
    assert headers["content-type"] == "application/x-apple-aspen-config"
    assert "example.test.mobileconfig" in headers["content-disposition"]
    profile = plistlib.loads(body)
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadVersion"] == 1
    (account,) = profile["PayloadContent"]
    assert account["PayloadType"] == "com.apple.mail.managed"
    assert account["EmailAddress"] == address
    assert account["EmailAccountType"] == "EmailTypeIMAP"
    assert account["IncomingMailServerHostName"] == HOST
    assert account["IncomingMailServerPortNumber"] == r.ports["imaps"]
    assert account["OutgoingMailServerHostName"] == HOST
    assert account["OutgoingMailServerPortNumber"] == r.ports["submissions"]
    assert account["IncomingMailServerUsername"] == address
    # the same address gives the same identifiers, so installing it again replaces it
    _, _, again = request(r, "GET", "/apple/mobileconfig?emailaddress=" +
                          urllib.parse.quote(address))
    assert plistlib.loads(again)["PayloadUUID"] == profile["PayloadUUID"]
