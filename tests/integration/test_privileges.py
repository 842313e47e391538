"""Started as root with [server] run_as, the server binds and loads its key as root, hands the
data directory over, and serves as that user: login, SMTP delivery into the store and POP3
retrieval all work, and the process holds no root uid afterwards."""
import os
import poplib
import pwd
import shutil
import smtplib
import tempfile

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, child_pids, process_uids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test run_as")


def test_run_as_drops_root_and_keeps_working(make_roost):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    # The data directory must be reachable by 'nobody' (pytest's own folders are 0700).
    base = tempfile.mkdtemp(prefix="roost-priv-", dir="/tmp")
    os.chmod(base, 0o711)
    try:
        data_dir = os.path.join(base, "data")
        r = make_roost(extra={"server": {"run_as": "nobody", "data_dir": data_dir}},
                       start=False)
        # Accounts were created through the CLI, run by root, before the server starts: the
        # CLI writes as run_as. A file root left there (an older version, a hand copy) is
        # handed over at start.
        r.data_dir = data_dir
        r.add_user("second@example.test", "second password")
        assert os.stat(os.path.join(data_dir, "accounts.db")).st_uid == nobody.pw_uid
        leftover = os.path.join(data_dir, "left-by-root")
        open(leftover, "w").close()
        assert os.stat(leftover).st_uid == 0
        r.start()
        # The serving process is the child of a privileged parent that only reads
        # certificates (test_privsep.py); it holds no root uid.
        kids = child_pids(r.proc.pid)
        assert len(kids) == 1, kids
        assert all(u == nobody.pw_uid for u in process_uids(kids[0]))
        assert "switched user" in r.log_text()
        s = smtplib.SMTP("127.0.0.1", r.ports["smtp"])
        s.sendmail("someone@remote.test", [DEMO_USER], b"Subject: as nobody\r\n\r\nbody\r\n")
        s.quit()
        p = poplib.POP3("127.0.0.1", r.ports["pop3"])
        p.user(DEMO_USER)
        p.pass_(DEMO_PASSWORD)
        assert p.stat()[0] == 1
        assert b"Subject: as nobody" in b"\r\n".join(p.retr(1)[1])
        p.quit()
        for root, dirs, files in os.walk(data_dir):
            for name in dirs + files:
                assert os.lstat(os.path.join(root, name)).st_uid == nobody.pw_uid, name
        r.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
