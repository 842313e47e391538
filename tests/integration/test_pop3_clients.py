"""Real POP3 clients against Roost: Debian's curl (list and retrieve) and fetchmail (download
with UIDL tracking and with deletion)."""
import os
import shutil
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER
from test_pop3_commands import crlf, import_messages, message, pop_connect

CURL = shutil.which("curl")
FETCHMAIL = shutil.which("fetchmail")


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_lists_and_retrieves(make_roost):
    r = make_roost()
    import_messages(r, [message(1), message(2, body=".dot\nend\n")])
    url = "pop3://127.0.0.1:%d/" % r.ports["pop3"]
    user = "%s:%s" % (DEMO_USER, DEMO_PASSWORD)
    listing = subprocess.run([CURL, "-s", "--max-time", "20", url, "-u", user],
                             capture_output=True, check=True).stdout
    p = pop_connect(r)
    sizes = [int(p.cmd("LIST %d" % n).split()[2]) for n in (1, 2)]
    p.close()
    assert listing.splitlines() == [b"1 %d" % sizes[0], b"2 %d" % sizes[1]]
    for n in (1, 2):
        got = subprocess.run([CURL, "-s", "--max-time", "20", url + str(n), "-u", user],
                             capture_output=True, check=True).stdout
        assert got == crlf(message(n, body=".dot\nend\n" if n == 2 else None))
    # over STLS too (curl's --ssl-reqd upgrades with STLS)
    got = subprocess.run([CURL, "-s", "--max-time", "20", "--ssl-reqd", "-k", url + "1", "-u",
                          user], capture_output=True, check=True).stdout
    assert got == crlf(message(1))


def run_fetchmail(r, rc_body, home):
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write(rc_body)
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    return subprocess.run([FETCHMAIL, "-f", rc, "--nodetach", "--nosyslog", "-v"],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(FETCHMAIL is None, reason="fetchmail is not installed")
def test_fetchmail_keep_with_uidl_then_delete(make_roost, tmp_path):
    r = make_roost()
    import_messages(r, [message(1), message(2), message(3)])
    out = tmp_path / "out.mbox"
    base = ('poll 127.0.0.1 service %d protocol pop3 uidl\n'
            '  user "%s" password "%s" sslproto \'\'\n'
            '  mda "cat >> %s" %s\n')
    keep = base % (r.ports["pop3"], DEMO_USER, DEMO_PASSWORD, out, "keep")
    res = run_fetchmail(r, keep, str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    data = out.read_bytes()
    for n in (1, 2, 3):
        assert b"Subject: message %d" % n in data
    # Second run with UIDL: nothing new to fetch (exit code 1 = no mail).
    res = run_fetchmail(r, keep, str(tmp_path))
    assert res.returncode == 1, res.stdout + res.stderr
    assert out.read_bytes() == data
    import_messages(r, [message(4)])
    res = run_fetchmail(r, keep, str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    new = out.read_bytes()[len(data):]
    assert b"Subject: message 4" in new and b"Subject: message 1" not in new
    # Fetch and delete everything.
    res = run_fetchmail(r, base % (r.ports["pop3"], DEMO_USER, DEMO_PASSWORD, out,
                                   "fetchall nokeep"), str(tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    p = pop_connect(r)
    assert p.cmd("STAT") == b"+OK 0 0"
    p.close()
