"""Administrative commands run by root while the server runs as [server] run_as write as
run_as: `import` into a new account of a new domain, `domain add` (DKIM keys) and `user add`
leave nothing the server cannot read, and the running server serves what they made. A caller
that is neither root nor run_as is refused with a clear message."""
import imaplib
import os
import pwd
import smtplib
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test run_as")

MBOX = ("From x@remote.test Thu Jan  1 00:00:00 2026\nFrom: x@remote.test\nSubject: old %d\n\n"
        "body %d\n\n")


@pytest.fixture
def base(traversable_tmp):
    return traversable_tmp


@pytest.fixture
def nobody():
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")


def not_owned_by(path, uid):
    bad = []
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            p = os.path.join(root, name)
            if os.lstat(p).st_uid != uid:
                bad.append(p)
    return bad


def test_commands_as_root_write_as_run_as_and_the_server_serves_it(make_roost, base, nobody):
    data_dir = os.path.join(base, "data")
    r = make_roost(extra={"server": {"run_as": "nobody", "data_dir": data_dir}}, start=False)
    r.data_dir = data_dir
    r.start()
    # While the server runs: a new domain, a user in it, an import into that new account.
    r.cli("domain", "add", "fresh.test")
    r.cli("user", "add", "ann@fresh.test", input="ann's long password\n")
    r.cli("user", "add", "bob@fresh.test", input="bob's long password\n")
    mbox = os.path.join(base, "old.mbox")
    with open(mbox, "w") as f:
        for i in range(3):
            f.write(MBOX % (i, i))
    res = r.cli("import", "ann@fresh.test", mbox)
    assert "imported 3" in res.stdout, res.stdout
    assert not_owned_by(data_dir, nobody.pw_uid) == []
    # Every user of the new domain can log in, and the imported mail is readable.
    for user, pw, count in (("ann@fresh.test", "ann's long password", b"3"),
                            ("bob@fresh.test", "bob's long password", b"0")):
        m = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
        m.login(user, pw)
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [count], (user, data)
        if count != b"0":
            typ, data = m.fetch("1:*", "(BODY.PEEK[])")
            bodies = [d[1] for d in data if isinstance(d, tuple)]
            assert len(bodies) == 3 and b"Subject: old 2" in bodies[2], data
        m.logout()
    # Mail from the new domain is accepted and stored.
    s = smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=10)
    s.sendmail("x@remote.test", ["bob@fresh.test"], b"Subject: to bob\r\n\r\nhi\r\n")
    s.quit()
    assert not_owned_by(data_dir, nobody.pw_uid) == []
    r.stop()


def test_caller_other_than_root_or_run_as_is_refused(base, nobody):
    conf = os.path.join(base, "roost.conf")
    with open(conf, "w") as f:
        f.write("[server]\nhostname = mail.example.test\nrun_as = root\ndata_dir = %s\n"
                % os.path.join(base, "data"))
    os.chmod(conf, 0o644)

    def as_nobody():
        os.setgid(nobody.pw_gid)
        os.setuid(nobody.pw_uid)
    res = subprocess.run([ROOST_BIN, "--config", conf, "user", "list"], capture_output=True,
                         text=True, timeout=30, preexec_fn=as_nobody)
    assert res.returncode != 0
    assert "run this command as root or as root" in res.stderr, res.stderr
    assert not os.path.exists(os.path.join(base, "data"))
