"""ARC (RFC 8617) end to end with an independent implementation, Debian's python3-dkim:
chains it seals (one and two hops; its arc_sign takes RSA keys only) against keys a dnsmasq on loopback
publishes are reported as arc=pass in our Authentication-Results, by `roost mailauth check` and
on mail received over SMTP; a changed body, a missing seal, a wrong instance or a chain marked
cv=fail give arc=fail, a message without ARC sets arc=none. A message an alias forwards to
another domain leaves with our ARC set, which python3-dkim's arc_verify accepts."""
import re
import smtplib
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN
from test_mailauth_cli import dnsmasq, keys, txt_args  # noqa: F401 (keys is a fixture)
from test_mailauth_smtp import header_fields, stored
from test_queue_federation import submit, wait_until
from test_queue_smarthost import FakeSmarthost

dkim = pytest.importorskip("dkim")
pytest.importorskip("authres")  # python3-dkim's ARC needs it

CLIENT = "192.0.2.10"
AUTHSERV = "mx.roost.test"


@pytest.fixture(scope="module")
def resolver(keys):  # noqa: F811
    args = [txt_args("origin.test", "v=spf1 ip4:192.0.2.10 ip4:127.0.0.0/8 -all"),
            txt_args("_dmarc.origin.test", "v=DMARC1; p=none"),
            txt_args("strict.test", "v=spf1 ip4:198.51.100.1 -all"),
            txt_args("_dmarc.strict.test", "v=DMARC1; p=reject")]
    for domain in ("origin.test", "list.test", "hop2.test"):
        args.append(txt_args("rsa._domainkey." + domain, keys["rsa_record"]))
        args.append(txt_args("ed._domainkey." + domain, keys["ed_record"]))
    with dnsmasq(args) as address:
        yield address


def write_conf(d, resolver, extra=""):
    path = str(d / "roost.conf")
    with open(path, "w") as f:
        f.write("[server]\nhostname = %s\ndata_dir = %s\n[dns]\nresolvers = %s\n%s"
                % (AUTHSERV, d / "data", resolver, extra))
    return path


@pytest.fixture(scope="module")
def conf(resolver, tmp_path_factory):
    return write_conf(tmp_path_factory.mktemp("arc"), resolver)


@pytest.fixture(scope="module")
def conf_trusted(resolver, tmp_path_factory):
    return write_conf(tmp_path_factory.mktemp("arc-trusted"), resolver,
                      "[mailauth]\narc_trusted = other.test, List.Test\n")


def message(body=b"Meeting moved to 3pm.\r\n", sender=b"alice@origin.test"):
    return (b"From: " + sender + b"\r\nTo: list@list.test\r\nSubject: agenda\r\n"
            b"Date: Fri, 1 Jan 2027 00:00:00 +0000\r\nMessage-ID: <a1@origin.test>\r\n"
            b"\r\n" + body)


def seal(keys, msg, domain, srv_id, results):  # noqa: F811
    """What an ARC-sealing intermediary does: its own Authentication-Results, then the next
    ARC set from python3-dkim, both put on top of the message."""
    ar = b"Authentication-Results: " + srv_id.encode() + b"; " + results + b"\r\n"
    msg = ar + msg
    fields = dkim.arc_sign(msg, b"rsa", domain.encode(), keys["rsa"], srv_id.encode(),
                           include_headers=[b"from", b"to", b"subject", b"date"])
    assert len(fields) == 3, fields
    return b"".join(fields) + msg


def one_hop(keys):  # noqa: F811
    return seal(keys, message(), "list.test", "mx.list.test",
                b"spf=pass smtp.mailfrom=alice@origin.test")


def two_hops(keys):  # noqa: F811
    return seal(keys, one_hop(keys), "hop2.test", "mx.hop2.test",
                b"spf=pass smtp.mailfrom=list@list.test; arc=pass")


def check(conf, msg):
    r = subprocess.run([ROOST_BIN, "--config", conf, "mailauth", "check", "--ip", CLIENT,
                        "--helo", "mx.list.test", "--mail-from", "list@origin.test"],
                       input=msg, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    arc = [line.strip().rstrip(";") for line in out.splitlines()
           if line.startswith("\tarc=")]
    assert len(arc) == 1, out
    return arc[0], out


def test_no_chain_is_none(conf):
    arc, out = check(conf, message())
    assert arc == "arc=none", out
    assert "arc: none sets=0" in out


def test_one_hop_rsa_passes(conf, keys):  # noqa: F811
    arc, out = check(conf, one_hop(keys))
    assert arc.startswith("arc=pass "), out
    assert "smtp.remote-ip=" + CLIENT in arc and "header.oldest-pass=0" in arc, out
    assert "arc: pass sets=1" in out


def test_two_hops_pass(conf, keys):  # noqa: F811
    arc, out = check(conf, two_hops(keys))
    assert arc.startswith("arc=pass "), out
    assert "arc: pass sets=2" in out


def test_changed_body_fails(conf, keys):  # noqa: F811
    msg = one_hop(keys).replace(b"3pm", b"4pm")
    arc, out = check(conf, msg)
    assert arc.startswith("arc=fail ") and "body hash" in arc, out


def test_changed_header_in_an_arc_set_fails_the_seal(conf, keys):  # noqa: F811
    msg = two_hops(keys).replace(b"spf=pass smtp.mailfrom=alice@origin.test",
                                 b"spf=pass smtp.mailfrom=alice@origin.tesT", 1)
    arc, out = check(conf, msg)
    assert arc.startswith("arc=fail ") and "ARC-Seal does not verify" in arc, out


def drop_field(msg, name, instance):
    """msg without the header field name whose value starts with i=instance (folded lines
    included)."""
    head, body = msg.split(b"\r\n\r\n", 1)
    fields = re.split(rb"\r\n(?![ \t])", head)
    kept = [f for f in fields if not (f.lower().startswith(name.lower() + b":") and
                                      re.search(rb"(^|[;\s])i=%d;" % instance,
                                                f.split(b":", 1)[1]))]
    assert len(kept) == len(fields) - 1
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


def test_missing_seal_fails(conf, keys):  # noqa: F811
    arc, out = check(conf, drop_field(two_hops(keys), b"ARC-Seal", 1))
    assert arc.startswith("arc=fail ") and "incomplete" in arc, out


def test_wrong_instance_fails(conf, keys):  # noqa: F811
    msg = two_hops(keys)
    # the second set's seal claims i=3: a gap and a set without its seal
    msg = re.sub(rb"ARC-Seal: i=2;", b"ARC-Seal: i=3;", msg, count=1)
    assert b"ARC-Seal: i=3;" in msg
    arc, out = check(conf, msg)
    assert arc.startswith("arc=fail "), out


def test_chain_marked_failed_stays_failed(conf, keys):  # noqa: F811
    msg = seal(keys, one_hop(keys), "hop2.test", "mx.hop2.test",
               b"spf=pass smtp.mailfrom=list@list.test; arc=fail")
    assert b"cv=fail" in msg
    arc, out = check(conf, msg)
    assert arc.startswith("arc=fail ") and "cv=fail" in arc, out


def test_smtp_delivery_reports_the_chain(make_roost, resolver, keys):  # noqa: F811
    r = make_roost(extra={"dns": {"resolvers": resolver}})
    msg = one_hop(keys)
    with smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=30) as s:
        s.ehlo("mx.list.test")
        s.sendmail("list@origin.test", ["demo@example.test"], msg)
    msgs = stored(r)
    assert len(msgs) == 1
    ours = [v for v in header_fields(msgs[0], "Authentication-Results")
            if v.startswith("mail.example.test;")]
    assert len(ours) == 1 and re.search(r"; arc=pass ", ours[0]), ours


# ---- trusted sealers (RFC 7489 §6.7 local policy) ----

def test_trusted_sealer_overrides_a_dmarc_fail(conf, conf_trusted, keys):  # noqa: F811
    msg = seal(keys, message(sender=b"alice@strict.test"), "list.test", "mx.list.test",
               b"spf=pass smtp.mailfrom=alice@strict.test; dmarc=pass header.from=strict.test")
    arc, out = check(conf, msg)
    assert arc.startswith("arc=pass "), out
    assert "dmarc: fail policy=reject disposition=reject" in out and "action: reject" in out
    arc, out = check(conf_trusted, msg)
    assert arc.startswith("arc=pass "), out
    assert "dmarc: fail policy=reject disposition=none" in out, out
    assert "action: inbox" in out, out
    assert "policy.override=arc" in out and "trusted ARC sealer list.test" in out, out


def test_override_needs_the_sealers_dmarc_pass_and_trust(conf_trusted, keys):  # noqa: F811
    # the trusted sealer saw DMARC fail too: nothing to vouch for
    msg = seal(keys, message(sender=b"alice@strict.test"), "list.test", "mx.list.test",
               b"spf=fail smtp.mailfrom=alice@strict.test; dmarc=fail header.from=strict.test")
    _, out = check(conf_trusted, msg)
    assert "action: reject" in out and "policy.override" not in out, out
    # a sealer not on the list
    msg = seal(keys, message(sender=b"alice@strict.test"), "hop2.test", "mx.hop2.test",
               b"dmarc=pass header.from=strict.test")
    _, out = check(conf_trusted, msg)
    assert "action: reject" in out and "policy.override" not in out, out
    # a broken chain vouches for nothing
    msg = seal(keys, message(sender=b"alice@strict.test"), "list.test", "mx.list.test",
               b"dmarc=pass header.from=strict.test").replace(b"3pm", b"4pm")
    arc, out = check(conf_trusted, msg)
    assert arc.startswith("arc=fail ") and "action: reject" in out, out


# ---- sealing what an alias forwards ----

def dns_for(records):
    def lookup(name, timeout=5):
        return records.get(name.decode().rstrip("."))
    return lookup


def dkim_records(r, domain):
    out = {}
    for line in r.cli("domain", "dkim", domain).stdout.splitlines():
        m = re.fullmatch(r'(\S+)\. IN TXT((?: "[^"]*")+)', line)
        if m:
            out[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2))).encode()
    assert out
    return out


def forward(make_roost, resolver, msg, mailauth=None):
    """A server whose alias fwd@example.test points to a remote address, with its queue
    relaying to a recording smarthost; returns (server, the message the smarthost got)."""
    smarthost = FakeSmarthost()
    r = make_roost(extra={"dns": {"resolvers": resolver},
                          "mailauth": mailauth or {},
                          "relay": {"smarthost": "127.0.0.1:%d" % smarthost.port,
                                    "user": "relay", "password": "relay secret",
                                    "tls": "none"}})
    try:
        r.cli("alias", "add", "fwd@example.test", "someone@elsewhere.test")
        with smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=30) as s:
            s.ehlo("mx.origin.test")
            s.sendmail("alice@origin.test", ["fwd@example.test"], msg)
        assert wait_until(lambda: smarthost.messages, 20), r.log_text()[-2000:]
    finally:
        smarthost.stop()
    return r, smarthost.messages[0][2]


def test_forwarded_mail_is_sealed_and_verifies(make_roost, resolver):
    r, out = forward(make_roost, resolver, message())
    assert out.startswith(b"ARC-Seal: i=1;"), out[:600]
    assert b"cv=none" in out.split(b"\r\n\r\n")[0]
    cv, results, reason = dkim.arc_verify(out, dnsfunc=dns_for(dkim_records(r, "example.test")))
    assert cv == dkim.CV_Pass, (reason, results, out[:1500])
    aar = header_fields(out, "ARC-Authentication-Results")
    assert len(aar) == 1 and aar[0].startswith("i=1; mail.example.test;"), aar
    assert "; spf=pass " in aar[0] and re.search(r"; arc=none(;|$)", aar[0]), aar


def test_forwarded_chain_is_continued_with_cv_pass(make_roost, resolver, keys):  # noqa: F811
    r, out = forward(make_roost, resolver, one_hop(keys))
    assert out.startswith(b"ARC-Seal: i=2;"), out[:600]
    records = dkim_records(r, "example.test")
    records.update({"rsa._domainkey.list.test": keys["rsa_record"].encode()})
    cv, results, reason = dkim.arc_verify(out, dnsfunc=dns_for(records))
    assert cv == dkim.CV_Pass, (reason, results, out[:2500])
    seal_i2 = header_fields(out, "ARC-Seal")[0]
    assert "cv=pass" in seal_i2, seal_i2


def test_nothing_is_sealed_when_our_check_does_not_run(make_roost, resolver):
    """With [mailauth] verify = no nobody removes a field that claims our name, so a sender
    could have us seal results it wrote itself."""
    forged = b"Authentication-Results: mail.example.test; spf=pass; dmarc=pass\r\n"
    _, out = forward(make_roost, resolver, forged + message(), {"verify": "no"})
    head = out.split(b"\r\n\r\n")[0]
    assert not head.startswith(b"ARC-") and b"\r\nARC-" not in head, head


def test_submitted_mail_is_not_sealed(make_roost):
    smarthost = FakeSmarthost()
    r = make_roost(extra={"relay": {"smarthost": "127.0.0.1:%d" % smarthost.port,
                                    "user": "relay", "password": "relay secret",
                                    "tls": "none"}})
    try:
        submit(r, DEMO_USER, DEMO_PASSWORD, ["someone@elsewhere.test"], "plain")
        assert wait_until(lambda: smarthost.messages, 20), r.log_text()[-2000:]
    finally:
        smarthost.stop()
    out = smarthost.messages[0][2]
    assert out.startswith(b"DKIM-Signature:"), out[:300]
    assert b"\r\nARC-" not in out.split(b"\r\n\r\n")[0] and not out.startswith(b"ARC-")
