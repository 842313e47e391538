"""DKIM from the command line: `roost domain add` makes the keys, `roost domain dkim` prints the
TXT records, `roost domain dkim-sign` signs a message. The signatures are checked without Roost:
the canonical forms are rebuilt here (RFC 6376 §3.4.2, §3.4.4, §3.7) with the stdlib only, and
the openssl command line verifies the RSA and Ed25519 signatures over them."""
import base64
import datetime
import hashlib
import os
import re
import stat
import subprocess
import textwrap

import pytest

from conftest import ROOST_BIN

ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")  # RFC 8410 SubjectPublicKeyInfo

MESSAGE = (
    b"Received: from x by y; Fri, 1 Jan 2027 00:00:00 +0000\n"
    b"From: Alice <alice@example.test>\n"
    b"To: bob@example.net,\n"
    b"\tcarol@example.net\n"
    b"Subject:   Lunch   plans \n"
    b"Date: Fri, 1 Jan 2027 00:00:00 +0000\n"
    b"Message-ID: <1@example.test>\n"
    b"X-Other: not signed\n"
    b"\n"
    b"Hello  Bob,\n"
    b"\n"
    b"see you at noon.  \n"
    b"\n\n")


def records(r, domain):
    out = r.cli("domain", "dkim", domain).stdout
    recs = {}
    for line in out.splitlines():
        m = re.fullmatch(r'([a-z0-9]+)\._domainkey\.([a-z0-9.-]+)\. IN TXT((?: "[^"]*")+)', line)
        assert m, line
        strings = re.findall(r'"([^"]*)"', m.group(3))
        assert all(len(s) <= 255 for s in strings)
        assert m.group(2) == domain
        recs[m.group(1)] = "".join(strings)
    return out, recs


def tags(text):
    out = {}
    for spec in text.split(";"):
        if spec.strip():
            k, v = spec.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def pem(der):
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n" % body


# ---- an independent relaxed canonicaliser (RFC 6376 §3.4.2 / §3.4.4) ----

def canon_header(field):
    name, value = field.split(b":", 1)
    value = re.sub(rb"\r\n(?=[ \t])", b"", value)
    value = re.sub(rb"[ \t]+", b" ", value).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


def canon_body(body):
    lines = body.split(b"\r\n")
    if lines and lines[-1] == b"":
        lines.pop()
    lines = [re.sub(rb"[ \t]+", b" ", ln).rstrip(b" ") for ln in lines]
    while lines and lines[-1] == b"":
        lines.pop()
    return b"".join(ln + b"\r\n" for ln in lines)


def split_message(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            fields[-1] += b"\r\n" + line
        else:
            fields.append(line)
    return fields, body


def header_data(fields, sig_field):
    """§3.7: the h= fields bottom-up, then the signature field with b= emptied, no CRLF."""
    t = tags(re.sub(rb"\r\n", b"", sig_field.split(b":", 1)[1]).decode())
    used = set()
    data = b""
    for name in [n.strip() for n in t["h"].split(":")]:
        for i in range(len(fields) - 1, -1, -1):
            if i not in used and fields[i].split(b":", 1)[0].strip().lower() == name.encode():
                used.add(i)
                data += canon_header(fields[i])
                break
    emptied = re.sub(rb"b=[^;]*$", b"b=", sig_field)
    return data + canon_header(emptied)[:-2], t


def openssl_verify(tmp, pub_pem, data, sig, ed25519):
    pub = tmp / "pub.pem"
    pub.write_text(pub_pem)
    (tmp / "sig.bin").write_bytes(sig)
    if ed25519:  # RFC 8463 §3: Ed25519 over SHA-256(data)
        (tmp / "data.bin").write_bytes(hashlib.sha256(data).digest())
        cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
               "-in", str(tmp / "data.bin"), "-sigfile", str(tmp / "sig.bin")]
    else:
        (tmp / "data.bin").write_bytes(data)
        cmd = ["openssl", "dgst", "-sha256", "-verify", str(pub), "-signature",
               str(tmp / "sig.bin"), str(tmp / "data.bin")]
    res = subprocess.run(cmd, capture_output=True, text=True)
    said = res.stdout + res.stderr
    return res.returncode == 0 and ("Verified OK" in said or "Verified Successfully" in said)


def test_domain_add_makes_keys_and_records(make_roost):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "Example.TEST")
    kdir = os.path.join(r.data_dir, "dkim", "example.test")
    for name in ("rsa.key", "ed25519.key", "selectors"):
        assert stat.S_IMODE(os.stat(os.path.join(kdir, name)).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(kdir).st_mode) == 0o700

    out, recs = records(r, "example.test")
    month = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m")
    assert sorted(recs) == ["e" + month, "r" + month]
    ed = tags(recs["e" + month])
    assert ed["v"] == "DKIM1" and ed["k"] == "ed25519"
    assert len(base64.b64decode(ed["p"], validate=True)) == 32
    rsa = tags(recs["r" + month])
    assert rsa["v"] == "DKIM1" and rsa["k"] == "rsa"
    der = base64.b64decode(rsa["p"], validate=True)
    info = subprocess.run(["openssl", "pkey", "-pubin", "-noout", "-text"], input=pem(der),
                          capture_output=True, text=True, check=True).stdout
    assert "2048 bit" in info
    # the public key printed is the one of the private key file
    pub = subprocess.run(["openssl", "pkey", "-in", os.path.join(kdir, "rsa.key"), "-pubout",
                          "-outform", "DER"], capture_output=True, check=True).stdout
    assert pub == der

    # idempotent: a second add fails as a duplicate and the keys stay
    assert r.cli("domain", "add", "example.test", check=False).returncode != 0
    assert records(r, "example.test")[0] == out
    bad = r.cli("domain", "dkim", "unknown.test", check=False)
    assert bad.returncode == 1 and "no DKIM keys" in bad.stderr


def test_signature_verified_by_openssl(make_roost, tmp_path):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "example.test")
    _, recs = records(r, "example.test")
    res = subprocess.run([ROOST_BIN, "--config", r.conf, "domain", "dkim-sign", "example.test"],
                         input=MESSAGE, capture_output=True, timeout=60, check=True)
    signed = res.stdout
    assert signed.endswith(MESSAGE.replace(b"\n", b"\r\n"))
    for line in signed.split(b"\r\n"):
        assert len(line) <= 998
    fields, body = split_message(signed)
    sigs = [f for f in fields if f.lower().startswith(b"dkim-signature:")]
    assert len(sigs) == 2
    for f in sigs:
        for line in f.split(b"\r\n"):
            assert len(line) <= 78

    bh = base64.b64encode(hashlib.sha256(canon_body(body)).digest()).decode()
    assert canon_body(body) == b"Hello Bob,\r\n\r\nsee you at noon.\r\n"
    checked = set()
    for f in sigs:
        data, t = header_data(fields, f)
        assert t["v"] == "1" and t["c"] == "relaxed/relaxed" and t["d"] == "example.test"
        assert re.sub(r"\s", "", t["bh"]) == bh
        assert re.sub(r"\s", "", t["h"]) == "from:to:subject:date:message-id:from"
        assert b"x-other" not in data and b"received" not in data
        sig = base64.b64decode(re.sub(r"\s", "", t["b"]))
        key = tags(recs[t["s"]])
        ed = t["a"] == "ed25519-sha256"
        assert t["a"] in ("ed25519-sha256", "rsa-sha256")
        der = ED25519_SPKI_PREFIX + base64.b64decode(key["p"]) if ed else \
            base64.b64decode(key["p"])
        assert openssl_verify(tmp_path, pem(der), data, sig, ed), t["a"]
        # the check is not vacuous: one changed octet of the header data fails it
        assert not openssl_verify(tmp_path, pem(der), data.replace(b"alice", b"alicf"), sig, ed)
        checked.add(t["a"])
    assert checked == {"ed25519-sha256", "rsa-sha256"}


def test_dkim_sign_without_keys_fails(make_roost):
    r = make_roost(users=(), start=False)
    res = subprocess.run([ROOST_BIN, "--config", r.conf, "domain", "dkim-sign", "none.test"],
                         input=MESSAGE, capture_output=True, timeout=60)
    assert res.returncode == 1 and res.stdout == b""
