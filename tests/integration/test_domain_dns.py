"""roost domain dns DOMAIN prints the records a domain needs as zone-file lines; roost domain
check DOMAIN looks each of them up through [dns] resolvers. The zone a dnsmasq on loopback
serves is made from the printed lines themselves, whole or with one record left out or
changed, and check must say which record is missing or wrong."""
import os
import re

import pytest

from test_mailauth_cli import dnsmasq  # also skips the file without dnsmasq

DOMAIN = "example.test"
HOST = "mail.example.test"
PUBLIC = "192.0.2.10"  # TEST-NET-1: stands for a public address; nothing binds it here


def zone_config(mode="none"):
    """A server whose [listen] smtp names a public address, offering submissions and imaps
    only (the other client services must get the "." target)."""
    return {"server": {"hostname": HOST},
            "listen": {"smtp": PUBLIC + ":25", "submissions": PUBLIC + ":465",
                       "imaps": PUBLIC + ":993", "submission": "", "imap": "", "pop3": "",
                       "pop3s": ""},
            "mtasts": {"mode": mode}}


@pytest.fixture
def server(make_roost):
    def make(mode="none"):
        r = make_roost(extra=zone_config(mode), users=(), start=False)
        r.cli("domain", "add", DOMAIN)
        return r
    return make


def records(text):
    """(name, type, data) of every record line, the commented-out PTR included."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^(?:; )?(\S+)\. IN (A|AAAA|MX|TXT|SRV|CNAME|PTR) (.*)$", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def txt_strings(data):
    strings = re.findall(r'"((?:[^"\\]|\\.)*)"', data)
    assert all(len(s) <= 255 for s in strings), strings
    return "".join(strings)


def txt_line(name, text):
    """A txt-record line of a dnsmasq config file, each string quoted: there (not on its
    command line) quotes keep a comma (rua=a,b) inside a string."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    assert not any('"' in c or "\\" in c for c in chunks)
    return "txt-record=%s,%s\n" % (name, ",".join('"%s"' % c for c in chunks))


def dnsmasq_options(recs, conf_path):
    """The dnsmasq options that publish the zone lines (the TXT records in conf_path)."""
    opts = ["--conf-file=" + conf_path]
    with open(conf_path, "w") as conf:
        conf.writelines(txt_line(n, txt_strings(d)) for n, t, d in recs if t == "TXT")
    for name, rtype, data in recs:
        if rtype == "TXT":
            pass
        elif rtype == "MX":
            prio, host = data.split()
            opts.append("--mx-host=%s,%s,%s" % (name, host.rstrip("."), prio))
        elif rtype in ("A", "AAAA"):
            opts.append("--host-record=%s,%s" % (name, data))
        elif rtype == "CNAME":
            opts.append("--cname=%s,%s" % (name, data.rstrip(".")))
        elif rtype == "SRV":
            prio, weight, port, target = data.split()
            if target == ".":
                opts.append("--srv-host=%s" % name)  # dnsmasq: "service not available"
            else:
                opts.append("--srv-host=%s,%s,%s,%s,%s" % (name, target.rstrip("."), port,
                                                             prio, weight))
        elif rtype == "PTR":
            pass  # --host-record above publishes the reverse name as well
    return opts


def check(r, recs, resolver_opts=()):
    # The reverse zone of PUBLIC is answered here too (NXDOMAIN when no PTR is published).
    local = ["--local=/2.0.192.in-addr.arpa/"]
    opts = dnsmasq_options(recs, os.path.join(r.dir, "zone.conf"))
    with dnsmasq(opts + local + list(resolver_opts)) as resolver:
        with open(r.conf, "a") as f:
            f.write("\n[dns]\nresolvers = %s\n" % resolver)
        res = r.cli("domain", "check", DOMAIN, check=False)
    assert "Sanitizer" not in res.stderr and "runtime error" not in res.stderr, res.stderr
    lines = {}
    for line in res.stdout.splitlines():
        word, rest = line.split(None, 1)
        lines[re.split(r"  \((?:found: |lookup failed)", rest)[0]] = (word, line)
    return res.returncode, lines, res


def test_dns_prints_every_record(server):
    r = server()
    out = r.cli("domain", "dns", DOMAIN).stdout
    recs = records(out)
    types = {(n, t) for n, t, _ in recs}
    for want in [(DOMAIN, "MX"), (HOST, "A"), (DOMAIN, "TXT"), ("_dmarc." + DOMAIN, "TXT"),
                 ("_smtp._tls." + DOMAIN, "TXT"), ("autoconfig." + DOMAIN, "CNAME"),
                 ("autodiscover." + DOMAIN, "CNAME"), ("10.2.0.192.in-addr.arpa", "PTR")]:
        assert want in types, (want, out)
    assert "; 10.2.0.192.in-addr.arpa. IN PTR %s." % HOST in out  # published elsewhere
    assert "%s. IN TXT \"v=spf1 mx -all\"" % DOMAIN in out
    assert "rua=mailto:postmaster@%s" % DOMAIN in out
    # The DKIM records are the ones `domain dkim` prints, line for line.
    dkim = r.cli("domain", "dkim", DOMAIN).stdout.splitlines()
    assert len(dkim) == 2 and all(line in out.splitlines() for line in dkim)
    # The RSA key is longer than one string: split into strings of at most 255 octets.
    rsa = [d for n, t, d in recs if t == "TXT" and "k=rsa" in d][0]
    assert rsa.count('"') >= 4
    txt_strings(rsa)
    srv = {n.split(".")[0]: d for n, t, d in recs if t == "SRV"}
    assert srv == {"_submissions": "0 1 465 %s." % HOST, "_submission": "0 0 0 .",
                   "_imaps": "0 1 993 %s." % HOST, "_imap": "0 0 0 .", "_pop3s": "0 0 0 .",
                   "_pop3": "0 0 0 ."}, srv
    # [mtasts] mode = none: the policy is not served, nothing of MTA-STS is printed.
    assert "_mta-sts" not in out and "mta-sts." not in out
    assert all(line == "" or line.startswith(";") or re.match(r"^\S+\. IN ", line)
               for line in out.splitlines()), out


def test_dns_without_public_address_asks_for_one(make_roost):
    r = make_roost(users=(), start=False)  # every listener on 127.0.0.1
    r.cli("domain", "add", DOMAIN)
    out = r.cli("domain", "dns", DOMAIN).stdout
    assert not any(t in ("A", "AAAA", "PTR") for _, t, _ in records(out)), out
    assert "no public address" in out


def mtasts_id(out):
    return re.search(r'_mta-sts\.%s\. IN TXT "v=STSv1; id=([A-Za-z0-9]+)"' % DOMAIN,
                     out).group(1)


def test_mtasts_records_and_id_follow_the_mode(server):
    testing = server("testing").cli("domain", "dns", DOMAIN).stdout
    enforce = server("enforce").cli("domain", "dns", DOMAIN).stdout
    for out, mode in ((testing, "testing"), (enforce, "enforce")):
        assert "mta-sts.%s. IN CNAME %s." % (DOMAIN, HOST) in out
        assert "https://mta-sts.%s/.well-known/mta-sts.txt" % DOMAIN in out
        for line in ("version: STSv1", "mode: " + mode, "mx: " + HOST, "max_age: 604800"):
            assert ";   " + line in out.splitlines(), (line, out)
    assert mtasts_id(testing) != mtasts_id(enforce)
    assert mtasts_id(enforce) == mtasts_id(server("enforce").cli("domain", "dns",
                                                                   DOMAIN).stdout)


def test_check_all_present(server):
    r = server("enforce")
    recs = records(r.cli("domain", "dns", DOMAIN).stdout)
    status, lines, res = check(r, recs)
    assert status == 0, res.stdout + res.stderr
    assert len(lines) == len(recs), res.stdout
    assert all(word == "OK" for word, _ in lines.values()), res.stdout


def record_key(rec):
    name, rtype, data = rec
    return "%s. IN %s %s" % (name, rtype, data)


def test_check_missing_and_wrong_records(server):
    r = server("enforce")
    recs = records(r.cli("domain", "dns", DOMAIN).stdout)
    dmarc = [x for x in recs if x[0] == "_dmarc." + DOMAIN][0]
    spf = [x for x in recs if x[0] == DOMAIN and x[1] == "TXT"][0]
    ed = [x for x in recs if x[1] == "TXT" and "k=ed25519" in x[2]][0]
    imaps = [x for x in recs if x[0].startswith("_imaps.")][0]
    cname = [x for x in recs if x[0] == "autoconfig." + DOMAIN][0]
    sts = [x for x in recs if x[0] == "_mta-sts." + DOMAIN][0]
    changed = []
    for x in recs:
        if x in (dmarc, cname):
            continue  # left out
        if x == spf:
            x = (x[0], "TXT", '"v=spf1 a ~all"')
        elif x == ed:
            x = (x[0], "TXT", '"v=DKIM1; k=ed25519; p=%s"' % ("A" * 43 + "="))
        elif x == imaps:
            x = (x[0], "SRV", "0 1 143 %s." % HOST)
        elif x == sts:
            x = (x[0], "TXT", '"v=STSv1; id=0123456789abcdef"')
        changed.append(x)
    status, lines, res = check(r, changed)
    assert status == 1, res.stdout
    assert lines[record_key(dmarc)][0] == "MISSING", res.stdout
    assert lines[record_key(cname)][0] == "MISSING", res.stdout
    for rec, found in ((spf, "v=spf1 a ~all"), (ed, "A" * 20), (imaps, "143"),
                       (sts, "0123456789abcdef")):
        word, line = lines[record_key(rec)]
        assert word == "WRONG" and found in line, line
    wrong = {k for k, (w, _) in lines.items() if w != "OK"}
    assert wrong == {record_key(x) for x in (dmarc, cname, spf, ed, imaps, sts)}, res.stdout


def test_check_txt_compares_meaning_not_text(server):
    """Another tag order, spacing, an extra SPF mechanism and another rua address next to
    ours are still right; a second SPF record is not (RFC 7208 §4.5)."""
    r = server()
    recs = records(r.cli("domain", "dns", DOMAIN).stdout)
    rewritten = []
    for name, rtype, data in recs:
        if name == DOMAIN and rtype == "TXT":
            data = '"v=spf1 ip4:198.51.100.7 +mx -all"'
        elif name == "_dmarc." + DOMAIN:
            data = ('"v=DMARC1;p=reject; rua=mailto:agg@elsewhere.test,'
                    'mailto:postmaster@%s!10m; adkim=s"' % DOMAIN)
        elif rtype == "TXT" and "k=rsa" in data:
            key = re.search(r"p=(.*)", txt_strings(data)).group(1)
            text = "v=DKIM1; p=%s ; k=rsa" % key  # tag order changed, key unchanged
            data = " ".join('"%s"' % c for c in re.findall(".{1,200}", text))
        rewritten.append((name, rtype, data))
    status, lines, res = check(r, rewritten)
    assert status == 0, res.stdout
    status, lines, res = check(r, recs, ["--txt-record=%s,v=spf1 -all" % DOMAIN])
    spf = [x for x in recs if x[0] == DOMAIN and x[1] == "TXT"][0]
    assert status == 1 and lines[record_key(spf)][0] == "WRONG", res.stdout


def test_check_ptr_must_be_forward_confirmed(server):
    r = server()
    recs = records(r.cli("domain", "dns", DOMAIN).stdout)
    ptr = [x for x in recs if x[1] == "PTR"][0]
    # The host's A record names another address: its PTR is not forward-confirmed, and
    # the reverse of our address names nobody.
    moved = [(n, t, "192.0.2.99" if t == "A" else d) for n, t, d in recs]
    status, lines, res = check(r, moved)
    assert status == 1
    assert lines[record_key(ptr)][0] == "MISSING", res.stdout
    status, lines, res = check(r, moved, ["--ptr-record=%s,%s" % (ptr[0], HOST)])
    word, line = lines[record_key(ptr)]
    assert word == "WRONG" and "does not resolve to %s" % PUBLIC in line, line


def test_check_without_an_answering_resolver_is_an_error(server):
    """A lookup that fails is ERROR, never MISSING: nothing says the record is absent."""
    r = server()  # [dns] resolvers of the harness: 127.0.0.1:9, where nothing answers
    n = len(records(r.cli("domain", "dns", DOMAIN).stdout))
    res = r.cli("domain", "check", DOMAIN, check=False)
    assert res.returncode == 1
    lines = res.stdout.splitlines()
    assert len(lines) == n, res.stdout  # one line per record, the PTR included
    assert all(line.startswith("ERROR ") and "(lookup failed: " in line for line in lines), \
        res.stdout
