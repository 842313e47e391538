"""/metrics: the exposition passes `promtool check metrics`, and after real traffic (SMTP
deliveries, IMAP logins that work and that fail) the counters moved by exactly that much. The
same scrape is served on [listen] http, https and metrics; the metrics listener serves nothing
else."""
import imaplib
import smtplib
import subprocess
import time

from conftest import DEMO_PASSWORD, DEMO_USER
from http_util import make_http_roost, request, samples, scrape


def promtool_check(text):
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr


def deliver(r, count):
    with smtplib.SMTP(r.addr, r.ports["smtp"], timeout=10) as s:
        s.ehlo("client.example.net")
        for i in range(count):
            s.sendmail("sender@example.net", [DEMO_USER],
                       "From: sender@example.net\r\nTo: %s\r\nSubject: metrics %d\r\n\r\n"
                       "body %d\r\n" % (DEMO_USER, i, i))


def imap_login(r, password):
    imap = imaplib.IMAP4(r.addr, r.ports["imap"], timeout=10)
    try:
        imap.login(DEMO_USER, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            imap.logout()
        except (imaplib.IMAP4.abort, OSError):
            pass


def delta(before, after, name):
    return after.get(name, 0) - before.get(name, 0)


def wait_for_sample(r, name, value, deadline_s=10):
    """Gauges move when the server has finished closing: wait for it, bounded."""
    end = time.monotonic() + deadline_s
    while True:
        now = samples(scrape(r))
        if now.get(name) == value or time.monotonic() > end:
            return now
        time.sleep(0.1)


def settled(r, deadline_s=10):
    """The samples once the harness's readiness probes (one connection to each port) have
    been accepted and closed: under load the server may count them after the first scrape."""
    probes = {"smtp": 1, "imap": 2, "pop3": 2}  # smtp; imap and imaps; pop3 and pop3s
    end = time.monotonic() + deadline_s
    while True:
        now = samples(scrape(r))
        if all(now['roost_connections_total{protocol="%s"}' % p] >= n
               and now['roost_sessions{protocol="%s"}' % p] == 0 for p, n in probes.items()):
            return now
        assert time.monotonic() < end, now
        time.sleep(0.1)


def test_scrape_after_traffic_counts_exactly_and_passes_promtool(make_roost):
    r = make_http_roost(make_roost)
    promtool_check(scrape(r))
    before = settled(r)

    deliver(r, 3)
    assert imap_login(r, DEMO_PASSWORD)
    assert not imap_login(r, "wrong password")
    assert not imap_login(r, "wrong again")

    text = scrape(r)
    promtool_check(text)
    after = wait_for_sample(r, 'roost_sessions{protocol="imap"}', 0)
    assert delta(before, after, "roost_messages_accepted_total") == 3
    assert delta(before, after, "roost_messages_delivered_total") == 3
    assert delta(before, after, 'roost_logins_total{protocol="imap",result="ok"}') == 1
    assert delta(before, after, 'roost_logins_total{protocol="imap",result="failed"}') == 2
    assert delta(before, after, 'roost_connections_total{protocol="smtp"}') == 1
    assert delta(before, after, 'roost_connections_total{protocol="imap"}') == 3
    assert delta(before, after, 'roost_logins_total{protocol="pop3",result="ok"}') == 0
    # one fsync per stored message; the group commit may take several in one go
    assert delta(before, after, "roost_fsync_duration_seconds_count") == 3
    commits = delta(before, after, "roost_store_commit_duration_seconds_count")
    assert 1 <= commits <= 3
    assert after['roost_fsync_duration_seconds_bucket{le="+Inf"}'] == \
        after["roost_fsync_duration_seconds_count"]
    assert after['roost_sessions{protocol="imap"}'] == 0


def test_rejections_are_counted_by_reason(make_roost):
    r = make_http_roost(make_roost)
    before = samples(scrape(r))
    with smtplib.SMTP(r.addr, r.ports["smtp"], timeout=10) as s:
        s.ehlo("client.example.net")
        s.mail("sender@example.net")
        code, _ = s.rcpt("nobody@example.test")
        assert code == 550
        code, _ = s.rcpt("someone@elsewhere.example")
        assert code == 554
    after = samples(scrape(r))
    assert delta(before, after, 'roost_messages_rejected_total{reason="recipient"}') == 1
    assert delta(before, after, 'roost_messages_rejected_total{reason="relay"}') == 1
    assert delta(before, after, "roost_messages_accepted_total") == 0


def test_queue_gauges_follow_the_queue(make_roost):
    r = make_http_roost(make_roost)
    with smtplib.SMTP(r.addr, r.ports["submission"], timeout=10) as s:
        s.ehlo("client.example.net")
        s.starttls()
        s.ehlo("client.example.net")
        s.login(DEMO_USER, DEMO_PASSWORD)
        s.sendmail(DEMO_USER, ["friend@remote.example"],
                   "From: %s\r\nTo: friend@remote.example\r\nSubject: out\r\n\r\nhi\r\n"
                   % DEMO_USER)
    after = samples(scrape(r))
    assert after["roost_queue_messages"] == 1
    assert after["roost_queue_oldest_age_seconds"] >= 0
    assert after['roost_logins_total{protocol="smtp",result="ok"}'] == 1


def test_same_scrape_on_every_listener_and_metrics_listener_serves_only_metrics(make_roost):
    r = make_http_roost(make_roost)
    for listener in ("http", "https", "metrics"):
        promtool_check(scrape(r, listener))
    status, _, _ = request(r, "GET", "/mail/config-v1.1.xml?emailaddress=" + DEMO_USER,
                           listener="metrics")
    assert status == 404
    status, _, _ = request(r, "GET", "/mail/config-v1.1.xml?emailaddress=" + DEMO_USER)
    assert status == 200
    status, headers, body = request(r, "HEAD", "/metrics")
    assert status == 200 and body == b""
