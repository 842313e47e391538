"""Inbound mail authentication through `roost mailauth check`: SPF (RFC 7208), DKIM (RFC 6376,
RFC 8463) and DMARC (RFC 7489) against test zones that a dnsmasq on a loopback port serves.
Messages are signed by an independent implementation (Debian's python3-dkim), never by Roost.
No server runs: the command runs the same check code a delivery runs."""
import base64
import contextlib
import os
import shutil
import subprocess

import pytest

from conftest import ROOST_BIN
from test_queue_federation import dns_answers, free_udp_port, wait_until

dkim = pytest.importorskip("dkim")
nacl_signing = pytest.importorskip("nacl.signing")

pytestmark = pytest.mark.skipif(shutil.which("dnsmasq") is None and
                                not os.path.exists("/usr/sbin/dnsmasq"),
                                reason="dnsmasq is not installed")

CLIENT = "192.0.2.10"        # the address the mail claims to come from
STRANGER = "203.0.113.5"     # an address no record allows
AUTHSERV = "mx.roost.test"

# include chains for the lookup limit: l1 -> ... each include costs one lookup
LIMIT_INCLUDES = ["inc%d.spf-limit.test" % i for i in range(11)]


def spf_records():
    recs = {
        "spf-pass.test": "v=spf1 a:mail.spf-pass.test -all",
        "spf-fail.test": "v=spf1 ip4:198.51.100.0/24 -all",
        "spf-soft.test": "v=spf1 ip4:198.51.100.7 ~all",
        "spf-neutral.test": "v=spf1 ?all",
        "spf-perm.test": "v=spf1 ip4:192.0.2.0/24 frobnicate -all",
        "spf-two.test": "v=spf1 -all",
        "spf-mx.test": "v=spf1 mx/24 -all",
        "spf-ip6.test": "v=spf1 ip6:2001:db8::/32 -all",
        "spf-include.test": "v=spf1 include:spf-pass.test -all",
        "spf-redirect.test": "v=spf1 redirect=spf-fail.test",
        "spf-macro.test": "v=spf1 exists:%{ir}.%{l}._spf.spf-macro.test -all",
        "spf-limit.test": "v=spf1 " + " ".join("include:" + d for d in LIMIT_INCLUDES) +
                          " ip4:192.0.2.10 -all",
        "spf-ten.test": "v=spf1 " + " ".join("include:" + d for d in LIMIT_INCLUDES[:10]) +
                        " ip4:192.0.2.10 -all",
        "spf-void.test": "v=spf1 a:n1.spf-void.test a:n2.spf-void.test a:n3.spf-void.test"
                         " ip4:192.0.2.10 -all",
        "spf-exp.test": "v=spf1 -all exp=why.spf-exp.test",
        "why.spf-exp.test": "%{i} may not send for %{d}",
        "helo.spf-helo.test": "v=spf1 ip4:192.0.2.10 -all",
        # DMARC domains: SPF allows CLIENT only
        "dm-reject.test": "v=spf1 ip4:192.0.2.10 -all",
        "dm-quar.test": "v=spf1 ip4:192.0.2.10 -all",
        "dm-org.test": "v=spf1 ip4:192.0.2.10 -all",
        "bounce.dm-org.test": "v=spf1 ip4:192.0.2.10 -all",
        "_dmarc.dm-reject.test": "v=DMARC1; p=reject",
        "_dmarc.dm-quar.test": "v=DMARC1; p=quarantine; adkim=r",
        "_dmarc.dm-org.test": "v=DMARC1; p=reject; sp=quarantine",
        "_dmarc.dm-strict.test": "v=DMARC1; p=reject; aspf=s",
        "dm-strict.test": "v=spf1 ip4:192.0.2.10 -all",
        "sub.dm-strict.test": "v=spf1 ip4:192.0.2.10 -all",
        "_dmarc.dm-pct.test": "v=DMARC1; p=reject; pct=0",
        "dm-pct.test": "v=spf1 -all",
    }
    for d in LIMIT_INCLUDES:
        recs[d] = "v=spf1 ip4:198.51.100.99 -all"  # never matches: the next include runs
    return recs


def txt_args(name, text):
    """dnsmasq --txt-record: strings of at most 255 octets, separated by commas."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    assert not any("," in c for c in chunks)
    return "--txt-record=%s,%s" % (name, ",".join(chunks))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkeys")
    rsa_path = str(d / "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", rsa_path, "2048"],
                   check=True, capture_output=True, timeout=60)
    rsa_pem = open(rsa_path, "rb").read()
    pub = subprocess.run(["openssl", "rsa", "-in", rsa_path, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True, timeout=60).stdout
    seed = os.urandom(32)
    ed_pub = bytes(nacl_signing.SigningKey(seed).verify_key)
    return {
        "rsa": rsa_pem,
        "rsa_record": "v=DKIM1; k=rsa; p=" + base64.b64encode(pub).decode(),
        "ed": base64.b64encode(seed),
        "ed_record": "v=DKIM1; k=ed25519; p=" + base64.b64encode(ed_pub).decode(),
    }


@pytest.fixture(scope="module")
def resolver(keys):
    args = []
    for name, text in spf_records().items():
        args.append(txt_args(name, text))
    for domain in ("sig.test", "dm-quar.test", "dm-org.test"):
        args.append(txt_args("rsa._domainkey." + domain, keys["rsa_record"]))
        args.append(txt_args("ed._domainkey." + domain, keys["ed_record"]))
    args.append(txt_args("gone._domainkey.sig.test", "v=DKIM1; k=rsa; p="))
    args += ["--host-record=mail.spf-pass.test,192.0.2.10",
             "--mx-host=spf-mx.test,mx1.spf-mx.test,10",
             "--host-record=mx1.spf-mx.test,192.0.2.200",
             "--host-record=10.2.0.192.alice._spf.spf-macro.test,127.0.0.2",
             "--txt-record=spf-two.test,v=spf1 +all"]
    with dnsmasq(args) as address:
        yield address


@contextlib.contextmanager
def dnsmasq(records):
    """A dnsmasq on a free loopback port answering for .test from records (its options) and
    refusing every other name; yields ADDR:PORT for [dns] resolvers."""
    binary = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
    for _ in range(5):
        port = free_udp_port()
        proc = subprocess.Popen(
            [binary, "--no-daemon", "--port=%d" % port, "--listen-address=127.0.0.1",
             "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
             "--user=root", "--pid-file", "--local=/test/"] + list(records),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if wait_until(lambda: proc.poll() is not None or dns_answers(port), 5) and \
                proc.poll() is None:
            break
        proc.kill()
        proc.wait(5)
    else:
        pytest.fail("dnsmasq did not start")
    try:
        yield "127.0.0.1:%d" % port
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture(scope="module")
def conf(resolver, tmp_path_factory):
    d = tmp_path_factory.mktemp("mailauth")

    def write(name, extra=""):
        path = str(d / name)
        with open(path, "w") as f:
            f.write("[server]\nhostname = %s\ndata_dir = %s\n[dns]\nresolvers = %s\n%s"
                    % (AUTHSERV, d / "data", resolver, extra))
        return path
    return {"default": write("roost.conf"),
            "quarantine": write("quarantine.conf", "[dmarc]\nreject = quarantine\n")}


def message(from_addr="alice@example.test", extra=b"", body=b"Hello,\r\n\r\nsee you.\r\n"):
    return (b"From: " + from_addr.encode() + b"\r\n"
            b"To: bob@roost.test\r\n"
            b"Subject: lunch\r\n"
            b"Date: Fri, 1 Jan 2027 00:00:00 +0000\r\n"
            b"Message-ID: <1@example.test>\r\n" + extra + b"\r\n" + body)


def check(conf, msg, ip=CLIENT, helo="mail.example.test", mail_from="alice@example.test",
          which="default"):
    r = subprocess.run([ROOST_BIN, "--config", conf[which], "mailauth", "check", "--ip", ip,
                        "--helo", helo, "--mail-from", mail_from],
                       input=msg, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    lines = out.splitlines()
    assert lines[0] == "Authentication-Results: %s;" % AUTHSERV, out
    results = {}
    for line in lines[1:]:
        if line.startswith("\t"):
            method, rest = line.strip().rstrip(";").split("=", 1)
            results.setdefault(method, []).append(rest)
    info = dict(line.split(": ", 1) for line in lines if not line.startswith(("\t", "Auth")))
    return results, info, out


def spf(conf, domain, ip=CLIENT, local="alice"):
    results, _, out = check(conf, message(), ip=ip, mail_from="%s@%s" % (local, domain))
    return results["spf"][0].split(" ")[0], out


# ---- SPF ----

def test_spf_pass_fail_softfail_neutral_none(conf):
    assert spf(conf, "spf-pass.test")[0] == "pass"
    assert spf(conf, "spf-pass.test", ip=STRANGER)[0] == "fail"
    assert spf(conf, "spf-fail.test")[0] == "fail"
    assert spf(conf, "spf-soft.test")[0] == "softfail"
    assert spf(conf, "spf-neutral.test")[0] == "neutral"
    assert spf(conf, "nothing-here.test")[0] == "none"  # NXDOMAIN


def test_spf_mechanisms_mx_ip6_include_redirect(conf):
    assert spf(conf, "spf-mx.test", ip="192.0.2.77")[0] == "pass"  # mx/24
    assert spf(conf, "spf-mx.test", ip="192.0.3.77")[0] == "fail"
    assert spf(conf, "spf-ip6.test", ip="2001:db8::5")[0] == "pass"
    assert spf(conf, "spf-ip6.test", ip="2001:db9::5")[0] == "fail"
    assert spf(conf, "spf-ip6.test", ip=CLIENT)[0] == "fail"  # an IPv4 client never matches ip6
    assert spf(conf, "spf-include.test")[0] == "pass"
    assert spf(conf, "spf-include.test", ip=STRANGER)[0] == "fail"
    assert spf(conf, "spf-redirect.test")[0] == "fail"


def test_spf_macro_names_the_sender_and_the_address(conf):
    # exists:%{ir}.%{l}._spf.spf-macro.test: only alice from 192.0.2.10 has an A record
    assert spf(conf, "spf-macro.test", local="alice")[0] == "pass"
    assert spf(conf, "spf-macro.test", local="bob")[0] == "fail"
    assert spf(conf, "spf-macro.test", ip="192.0.2.11", local="alice")[0] == "fail"


def test_spf_permerror_syntax_two_records_lookup_and_void_limits(conf):
    result, out = spf(conf, "spf-perm.test")
    assert result == "permerror" and "frobnicate" in out
    assert spf(conf, "spf-two.test")[0] == "permerror"
    # ten includes are allowed; the eleventh DNS-querying term is a permerror (§4.6.4)
    assert spf(conf, "spf-ten.test")[0] == "pass"
    result, out = spf(conf, "spf-limit.test")
    assert result == "permerror" and "more than 10" in out
    result, out = spf(conf, "spf-void.test")
    assert result == "permerror" and "void" in out


def test_spf_temperror_when_dns_fails(conf):
    # dnsmasq answers only for .test; anything else is refused: a server failure (§5)
    assert spf(conf, "example.com")[0] == "temperror"


def test_spf_checks_the_helo_for_the_null_sender(conf):
    results, _, _ = check(conf, message(), helo="helo.spf-helo.test", mail_from="<>")
    assert results["spf"][0].startswith("pass") and "smtp.helo=helo.spf-helo.test" in \
        results["spf"][0]
    results, _, _ = check(conf, message(), ip=STRANGER, helo="helo.spf-helo.test",
                          mail_from="<>")
    assert results["spf"][0].startswith("fail")


def test_spf_fail_explanation_expands_macros(conf):
    results, info, out = check(conf, message(), mail_from="alice@spf-exp.test")
    assert results["spf"][0].startswith("fail"), out
    assert info["spf-explanation"] == "192.0.2.10 may not send for spf-exp.test"


# ---- DKIM ----

def signed(keys, msg, selector="rsa", domain="sig.test", canon=(b"relaxed", b"relaxed"),
           length=False):
    if selector in ("ed",):
        key, alg = keys["ed"], b"ed25519-sha256"
    else:
        key, alg = keys["rsa"], b"rsa-sha256"
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key, canonicalize=canon,
                    signature_algorithm=alg, include_headers=[b"from", b"to", b"subject"],
                    length=length)
    return sig + msg


def dkim_results(conf, msg):
    results, _, out = check(conf, msg, mail_from="alice@sig.test")
    return results["dkim"], out


def test_dkim_relaxed_and_simple_rsa(conf, keys):
    for canon in ((b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")):
        res, out = dkim_results(conf, signed(keys, message(), canon=canon))
        assert len(res) == 1 and res[0].startswith("pass"), (canon, out)
        assert "header.d=sig.test" in res[0] and "header.s=rsa" in res[0]
        assert "header.a=rsa-sha256" in res[0]


def test_dkim_ed25519(conf, keys):
    res, out = dkim_results(conf, signed(keys, message(), selector="ed"))
    assert res[0].startswith("pass") and "header.a=ed25519-sha256" in res[0], out


def test_dkim_every_signature_is_reported(conf, keys):
    msg = signed(keys, signed(keys, message(), selector="ed"), selector="rsa")
    res, out = dkim_results(conf, msg)
    assert len(res) == 2 and all(r.startswith("pass") for r in res), out


def test_dkim_broken_body_hash(conf, keys):
    msg = signed(keys, message()).replace(b"see you.", b"see you never.")
    res, out = dkim_results(conf, msg)
    assert res[0].startswith("fail") and "body hash mismatch" in res[0], out


def test_dkim_changed_header_fails_signature(conf, keys):
    msg = signed(keys, message()).replace(b"Subject: lunch", b"Subject: dinner")
    res, out = dkim_results(conf, msg)
    assert res[0].startswith("fail") and "signature mismatch" in res[0], out


def test_dkim_revoked_key(conf, keys):
    res, out = dkim_results(conf, signed(keys, message(), selector="gone"))
    assert res[0].startswith("permerror") and "revoked" in res[0], out


def test_dkim_unsigned_is_none(conf):
    res, _ = dkim_results(conf, message())
    assert res == ["none"]


def test_dkim_length_tag_says_the_body_is_only_partly_signed(conf, keys):
    msg = signed(keys, message(), length=True) + b"P.S. added after signing\r\n"
    res, out = dkim_results(conf, msg)
    assert res[0].startswith("pass") and "partly signed" in res[0], out
    # the same signature with nothing appended covers the whole body
    res, out = dkim_results(conf, signed(keys, message(), length=True))
    assert res[0] == "pass (ok) header.d=sig.test header.s=rsa header.a=rsa-sha256", out


def test_dkim_length_tag_does_not_make_appended_content_pass_dmarc(conf, keys):
    msg = signed(keys, message("ceo@dm-quar.test"), domain="dm-quar.test", length=True)
    results, info, out = check(conf, msg, ip=STRANGER, mail_from="x@elsewhere.test")
    assert results["dmarc"][0].startswith("pass"), out
    results, info, out = check(conf, msg + b"Click here\r\n", ip=STRANGER,
                               mail_from="x@elsewhere.test")
    assert results["dkim"][0].startswith("pass") and "partly signed" in results["dkim"][0]
    assert results["dmarc"][0].startswith("fail") and info["action"] == "junk", out


# ---- DMARC ----

def test_dmarc_pass_by_spf_alignment(conf):
    results, info, out = check(conf, message("ceo@dm-reject.test"),
                               mail_from="ceo@dm-reject.test")
    assert results["dmarc"][0].startswith("pass"), out
    assert "header.from=dm-reject.test" in results["dmarc"][0]
    assert info["action"] == "inbox"


def test_dmarc_reject_is_refused_with_550(conf):
    results, info, out = check(conf, message("ceo@dm-reject.test"), ip=STRANGER,
                               mail_from="ceo@dm-reject.test")
    assert results["dmarc"][0].startswith("fail (p=reject dis=reject)"), out
    assert info["dmarc"] == "fail policy=reject disposition=reject"
    assert info["action"].startswith("reject 550 5.7.1 "), out


def test_dmarc_reject_as_quarantine_when_configured(conf):
    _, info, out = check(conf, message("ceo@dm-reject.test"), ip=STRANGER,
                         mail_from="ceo@dm-reject.test", which="quarantine")
    assert info["action"] == "junk", out


def test_dmarc_quarantine_goes_to_junk(conf):
    results, info, out = check(conf, message("ceo@dm-quar.test"), ip=STRANGER,
                               mail_from="ceo@dm-quar.test")
    assert info["dmarc"] == "fail policy=quarantine disposition=quarantine", out
    assert info["action"] == "junk"


def test_dmarc_pass_by_dkim_alignment_despite_spf_fail(conf, keys):
    msg = signed(keys, message("ceo@dm-quar.test"), domain="dm-quar.test", selector="ed")
    results, info, out = check(conf, msg, ip=STRANGER, mail_from="bounces@elsewhere.test")
    assert results["dmarc"][0].startswith("pass"), out
    assert info["action"] == "inbox"


def test_dmarc_organisational_domain(conf, keys):
    # From a subdomain: the policy comes from _dmarc.dm-org.test, and sp= applies
    results, info, out = check(conf, message("news@mail.dm-org.test"), ip=STRANGER,
                               mail_from="news@mail.dm-org.test")
    assert info["dmarc"] == "fail policy=quarantine disposition=quarantine", out
    # relaxed alignment: a DKIM signature of the organisational domain covers a subdomain
    msg = signed(keys, message("news@mail.dm-org.test"), domain="dm-org.test")
    results, info, out = check(conf, msg, ip=STRANGER, mail_from="x@elsewhere.test")
    assert results["dmarc"][0].startswith("pass"), out
    # and so does SPF for a MAIL FROM in another subdomain of it
    results, info, out = check(conf, message("news@mail.dm-org.test"),
                               mail_from="x@bounce.dm-org.test")
    assert results["dmarc"][0].startswith("pass"), out


def test_dmarc_strict_spf_alignment(conf):
    results, info, out = check(conf, message("ceo@dm-strict.test"),
                               mail_from="x@sub.dm-strict.test")
    assert results["spf"][0].startswith("pass"), out
    assert results["dmarc"][0].startswith("fail") and info["action"].startswith("reject")


def test_dmarc_pct_zero_applies_the_next_policy_down(conf):
    _, info, out = check(conf, message("ceo@dm-pct.test"), mail_from="ceo@dm-pct.test")
    assert info["dmarc"] == "fail policy=reject disposition=quarantine", out
    assert info["action"] == "junk"


def test_dmarc_none_without_a_policy(conf):
    results, info, _ = check(conf, message("a@spf-pass.test"), ip=STRANGER,
                             mail_from="a@spf-pass.test")
    assert results["dmarc"][0].startswith("none")
    assert info["action"] == "inbox"


# ---- Authentication-Results ----

def test_forged_authentication_results_are_removed(conf):
    forged = (b"Authentication-Results: " + AUTHSERV.upper().encode() +
              b"; dmarc=pass header.from=dm-reject.test\r\n"
              b"Authentication-Results: other.example; spf=pass\r\n"
              b"Authentication-Results: (comment) " + AUTHSERV.encode() + b";\r\n"
              b"\tdkim=pass\r\n")
    _, info, out = check(conf, message(extra=forged))
    assert info["removed"] == "2 forged Authentication-Results field(s)", out


def test_a_resolver_that_never_answers_gives_temperror_within_the_budget(tmp_path):
    # a UDP socket nobody reads: every query times out; the one-second budget is shared by
    # every lookup of the message, so the check ends with temperror instead of waiting
    import socket
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    path = tmp_path / "silent.conf"
    path.write_text("[server]\nhostname = %s\ndata_dir = %s\n[dns]\nresolvers = 127.0.0.1:%d\n"
                    "[mailauth]\ntime_budget = 1\n"
                    % (AUTHSERV, tmp_path / "data", silent.getsockname()[1]))
    try:
        results, info, out = check({"default": str(path)}, message("ceo@dm-reject.test"),
                                   mail_from="ceo@dm-reject.test")
    finally:
        silent.close()
    assert results["spf"][0].startswith("temperror"), out
    assert results["dmarc"][0].startswith("temperror"), out
    assert info["action"] == "inbox"
