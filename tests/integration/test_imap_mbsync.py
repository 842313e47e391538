"""A real IMAP client syncs a mailbox: mbsync (isync) pulls INBOX and a folder over IMAPS into a
local Maildir, then pushes a flag change and a new local message back."""
import glob
import imaplib
import os
import shutil
import smtplib
import subprocess

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER

pytestmark = pytest.mark.skipif(shutil.which("mbsync") is None, reason="mbsync not installed")


def write_config(tmp_path, r):
    local = tmp_path / "maildir"
    local.mkdir()
    conf = tmp_path / "mbsyncrc"
    conf.write_text("""IMAPAccount roost
Host localhost
Port {port}
User {user}
Pass "{password}"
SSLType IMAPS
CertificateFile {cert}
SystemCertificates no

IMAPStore remote
Account roost

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Both
SyncState *
Sync All
""".format(port=r.ports["imaps"], user=DEMO_USER, password=DEMO_PASSWORD, cert=r.cert,
           local=local))
    return conf, local


def run_mbsync(conf):
    res = subprocess.run(["mbsync", "-c", str(conf), "-a"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res


def test_mbsync_pulls_and_pushes(roost_server, tmp_path):
    s = smtplib.SMTP("127.0.0.1", roost_server.ports["smtp"])
    for n in range(3):
        s.sendmail("someone@remote.test", [DEMO_USER], b"Subject: sync %d\r\n\r\nbody %d\r\n" %
                   (n, n))
    s.quit()
    m = imaplib.IMAP4("127.0.0.1", roost_server.ports["imap"])
    m.login(DEMO_USER, DEMO_PASSWORD)
    m.create("Projects")
    m.append("Projects", "(\\Flagged)", None, b"Subject: in a folder\r\n\r\nfolder body\r\n")
    m.logout()

    conf, local = write_config(tmp_path, roost_server)
    run_mbsync(conf)
    inbox = glob.glob(str(local / "INBOX" / "cur" / "*")) + \
        glob.glob(str(local / "INBOX" / "new" / "*"))
    assert len(inbox) == 3
    bodies = sorted(open(p, "rb").read() for p in inbox)
    assert all(b"Subject: sync" in b for b in bodies)
    projects = glob.glob(str(local / "Projects" / "cur" / "*")) + \
        glob.glob(str(local / "Projects" / "new" / "*"))
    assert len(projects) == 1 and projects[0].endswith("F")  # \\Flagged came across
    # The special-use folders of a new account came across too.
    for name in ("Sent", "Drafts", "Trash", "Junk", "Archive"):
        assert os.path.isdir(str(local / name)), name

    # Push: mark one message seen locally, add a draft locally, sync again.
    target = sorted(inbox)[0]
    name = os.path.basename(target).split(":2,")[0]
    os.rename(target, str(local / "INBOX" / "cur" / (name + ":2,S")))
    draft = local / "Drafts" / "cur" / "1700000000.local.test:2,D"
    draft.write_bytes(b"Subject: draft from mbsync\r\n\r\nunfinished\r\n")
    run_mbsync(conf)
    m = imaplib.IMAP4("127.0.0.1", roost_server.ports["imap"])
    m.login(DEMO_USER, DEMO_PASSWORD)
    m.select("INBOX", readonly=True)
    typ, data = m.search(None, "SEEN")
    assert len(data[0].split()) == 1
    m.select("Drafts", readonly=True)
    typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert b"draft from mbsync" in data[0][1]
    assert b"\\Draft" in data[0][0]
    m.logout()
