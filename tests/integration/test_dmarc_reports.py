"""DMARC aggregate reports (RFC 7489 §7.2) end to end: a server with [dmarc] reports = on and a
dnsmasq serving the senders' policies receives mail over SMTP; `roost dmarc report --print`
shows the day's counts as Appendix C XML, `--send` queues one report per domain to its rua=
address (an SMTP sink on loopback that the zone names as its MX) as a gzip attachment holding the same XML, skipping a
destination outside the domain without its _report._dmarc authorisation (§7.1) and one whose
!size limit the report exceeds. With reports off nothing is recorded."""
import email
import gzip
import smtplib
import socket
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import DEMO_USER, free_port
from imap_util import login
from test_mailauth_cli import dnsmasq, txt_args

HOSTNAME = "mail.example.test"
REPORTS = "dmarc@reports.test"
RUA = "mailto:" + REPORTS

ZONE = {
    "rep.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "_dmarc.rep.test": "v=DMARC1; p=none; rua=" + RUA,
    # reports.test accepts reports about rep.test and big.test, not about fail.test
    "rep.test._report._dmarc.reports.test": "v=DMARC1",
    "big.test._report._dmarc.reports.test": "v=DMARC1",
    "fail.test": "v=spf1 ip4:192.0.2.10 -all",
    "_dmarc.fail.test": "v=DMARC1; p=quarantine; rua=" + RUA,
    "big.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "_dmarc.big.test": "v=DMARC1; p=reject; rua=" + RUA + "!1k",
    "quiet.test": "v=spf1 ip4:127.0.0.0/8 -all",
    "_dmarc.quiet.test": "v=DMARC1; p=none",
}


@pytest.fixture
def resolver():
    records = [txt_args(name, text) for name, text in ZONE.items()]
    records += ["--mx-host=reports.test,mx.reports.test,10",
                "--host-record=mx.reports.test,127.0.0.1"]
    with dnsmasq(records) as addr:
        yield addr


class SmtpSink:
    """Accepts every message on a loopback port; keeps (recipients, data) of each."""

    def __init__(self):
        self.port = free_port()
        self.messages = []
        self.sock = socket.create_server(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(10)
                self.session(conn.makefile("rwb"))

    def session(self, f):
        def reply(line):
            f.write(line.encode() + b"\r\n")
            f.flush()
        reply("220 sink")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250 sink")
            elif verb == b"RCPT":
                rcpts.append(line.split(b"<", 1)[1].split(b">", 1)[0].decode())
                reply("250 ok")
            elif verb == b"DATA":
                reply("354 go")
                data = b""
                while True:
                    chunk = f.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.messages.append((rcpts, data))
                rcpts = []
                reply("250 kept")
            elif verb == b"QUIT":
                reply("221 bye")
                return
            else:
                reply("250 ok")

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def sink():
    s = SmtpSink()
    yield s
    s.close()


def start(make_roost, resolver, reports, sink_port=9):
    return make_roost(extra={"dns": {"resolvers": resolver},
                             "dmarc": {"reports": reports},
                             "queue": {"time_scale": "100", "smtp_port": str(sink_port)}})


def send(server, sender, n=1):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=30) as s:
        s.ehlo("client.rep.test")
        for i in range(n):
            msg = ("From: %s\r\nTo: %s\r\nSubject: figures %d\r\nMessage-ID: <%d.%s>\r\n\r\n"
                   "See the attached.\r\n" % (sender, DEMO_USER, i, i, sender)).encode()
            s.sendmail(sender, [DEMO_USER], msg)


def records(root):
    out = {}
    for rec in root.findall("record"):
        row = rec.find("row")
        key = (rec.findtext("identifiers/header_from"), row.findtext("source_ip"))
        out[key] = {
            "count": int(row.findtext("count")),
            "disposition": row.findtext("policy_evaluated/disposition"),
            "dkim": row.findtext("policy_evaluated/dkim"),
            "spf": row.findtext("policy_evaluated/spf"),
            "spf_domain": rec.findtext("auth_results/spf/domain"),
            "spf_result": rec.findtext("auth_results/spf/result"),
        }
    return out


def test_print_shows_the_days_counts(make_roost, resolver):
    server = start(make_roost, resolver, "on")
    send(server, "news@rep.test", 3)
    send(server, "ceo@fail.test")
    send(server, "a@quiet.test")  # no rua=: nothing to record
    listed = server.cli("dmarc", "report", "--day", "today", "--list").stdout.split()
    assert listed == ["fail.test", "rep.test"]

    root = ET.fromstring(server.cli("dmarc", "report", "--day", "today", "--print",
                                    "rep.test").stdout)
    assert root.tag == "feedback"
    meta = root.find("report_metadata")
    assert meta.findtext("org_name") == HOSTNAME
    assert meta.findtext("email") == "postmaster@" + HOSTNAME
    begin, end = int(meta.findtext("date_range/begin")), int(meta.findtext("date_range/end"))
    assert begin % 86400 == 0 and end == begin + 86399 and begin <= time.time() <= end + 1
    policy = root.find("policy_published")
    assert policy.findtext("domain") == "rep.test"
    assert policy.findtext("p") == "none" and policy.findtext("pct") == "100"
    assert records(root) == {("rep.test", "127.0.0.1"): {
        "count": 3, "disposition": "none", "dkim": "fail", "spf": "pass",
        "spf_domain": "rep.test", "spf_result": "pass"}}

    root = ET.fromstring(server.cli("dmarc", "report", "--day", "today", "--print",
                                    "fail.test").stdout)
    assert root.findtext("policy_published/p") == "quarantine"
    assert records(root) == {("fail.test", "127.0.0.1"): {
        "count": 1, "disposition": "quarantine", "dkim": "fail", "spf": "fail",
        "spf_domain": "fail.test", "spf_result": "fail"}}
    assert server.cli("dmarc", "report", "--day", "today", "--print", "quiet.test",
                      check=False).returncode == 1


def test_send_queues_a_gzip_report_to_the_rua_address(make_roost, resolver, sink):
    server = start(make_roost, resolver, "on", sink.port)
    send(server, "news@rep.test", 2)
    send(server, "ceo@fail.test")
    send(server, "boss@big.test")
    printed = server.cli("dmarc", "report", "--day", "today", "--print", "rep.test").stdout

    out = server.cli("dmarc", "report", "--day", "today", "--send").stdout
    assert "queued rep.test to " + REPORTS in out
    assert "skipped fail.test to " + REPORTS in out  # no _report._dmarc authorisation
    assert "skipped big.test to " + REPORTS in out   # larger than !1k
    assert "1 report queued" in out
    # the running server queued it (the command did not open the spool beside it)
    assert 'msg="DMARC report queued" domain=rep.test' in server.log_text()

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not sink.messages:
        time.sleep(0.1)
    assert len(sink.messages) == 1
    rcpts, data = sink.messages[0]
    assert rcpts == [REPORTS]
    msg = email.message_from_bytes(data)
    assert msg["From"] == "postmaster@" + HOSTNAME
    subject = " ".join(msg["Subject"].split())
    assert subject.startswith("Report Domain: rep.test Submitter: %s Report-ID: <" % HOSTNAME)
    parts = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    assert len(parts) == 1
    name = parts[0].get_filename()
    begin = ET.fromstring(printed).findtext("report_metadata/date_range/begin")
    assert name == "%s!rep.test!%s!%d.xml.gz" % (HOSTNAME, begin, int(begin) + 86399)
    assert gzip.decompress(parts[0].get_payload(decode=True)).decode() == printed

    # each domain's day is reported once
    again = server.cli("dmarc", "report", "--day", "today", "--send").stdout
    assert "0 reports queued" in again


def test_reports_off_records_nothing(make_roost, resolver):
    server = start(make_roost, resolver, "no")
    send(server, "news@rep.test", 2)
    assert server.cli("dmarc", "report", "--day", "today", "--list").stdout == ""
    assert server.cli("dmarc", "report", "--day", "today", "--print", "rep.test",
                      check=False).returncode == 1
    # the server does not count reports: the command sends on the files itself
    assert server.cli("dmarc", "report", "--day", "today", "--send").stdout.strip() == \
        "0 reports queued"


def test_server_sends_yesterdays_reports_when_it_starts(make_roost, resolver, sink):
    """The nightly run also covers a day missed while the server was down: counts left for
    yesterday in the store are reported as soon as the server starts, once."""
    import sqlite3
    server = start(make_roost, resolver, "on", sink.port)
    server.stop()
    yesterday = int(time.time()) // 86400 - 1
    db = sqlite3.connect(server.data_dir + "/dmarc-reports.db")
    db.execute("INSERT INTO rows VALUES (?, 'rep.test', 'rep.test', '192.0.2.44', 'none',"
               " 'fail', 'pass', '', 'none', 'rep.test', 'mfrom', 'pass', 5)", (yesterday,))
    db.execute("INSERT INTO policies VALUES (?, 'rep.test', 0, 0, 100, 0, 0, ?)",
               (yesterday, RUA))
    db.commit()
    db.close()
    server.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not sink.messages:
        time.sleep(0.1)
    assert len(sink.messages) == 1
    msg = email.message_from_bytes(sink.messages[0][1])
    [part] = [p for p in msg.walk() if p.get_content_type() == "application/gzip"]
    root = ET.fromstring(gzip.decompress(part.get_payload(decode=True)))
    assert int(root.findtext("report_metadata/date_range/begin")) == yesterday * 86400
    assert records(root) == {("rep.test", "192.0.2.44"): {
        "count": 5, "disposition": "none", "dkim": "fail", "spf": "pass",
        "spf_domain": "rep.test", "spf_result": "pass"}}
    # a restart does not send it again
    server.stop()
    server.start()
    assert server.cli("dmarc", "report", "--day", "yesterday", "--send").stdout.strip() == \
        "0 reports queued"
