"""Account administration with the roost command line: `user del` archiving or purging the mail
(also under a running server that has the account open), the password rules of `user add` and
`user passwd`, asking twice on a terminal, the add-time checks of `alias add`, and what
`user import-passwd` says about SCRAM-SHA-256."""
import base64
import hashlib
import hmac
import imaplib
import os
import pty
import re
import select
import smtplib
import sqlite3
import subprocess
import time

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN
from imap_util import append, login, simple

NEW_PASSWORD = "a fresh start 2026"


def mail_dir(r, address):
    local, domain = address.split("@")
    return os.path.join(r.data_dir, "mail", domain, local)


def archived_path(stdout):
    m = re.search(r"its mail is in (\S+)", stdout)
    assert m, stdout
    return m.group(1)


def inbox_files(maildir_root):
    return sorted(os.listdir(os.path.join(maildir_root, "cur")) +
                  os.listdir(os.path.join(maildir_root, "new")))


def archived_index_rows(archive):
    db = sqlite3.connect(os.path.join(archive, "roost-index.sqlite"))
    try:
        return db.execute("SELECT count(*) FROM messages").fetchone()[0]
    finally:
        db.close()


def inbox_count(r, user, password):
    c = imaplib.IMAP4("127.0.0.1", r.ports["imap"], timeout=10)
    try:
        c.login(user, password)
        typ, data = c.select("INBOX")
        assert typ == "OK", data
        return int(data[0])
    finally:
        c.logout()


def deliver(r, rcpt, subject):
    with smtplib.SMTP("127.0.0.1", r.ports["smtp"], timeout=10) as s:
        s.sendmail("someone@remote.test", [rcpt], simple(subject=subject))


# ---------------- user del: archive, purge, a clean start ----------------

def test_user_del_archives_the_mail_and_a_new_user_starts_empty(make_roost):
    r = make_roost()
    c = login(r)
    append(c, simple(subject="kept in the archive"))
    c.logout()
    res = r.cli("user", "del", DEMO_USER)
    assert res.returncode == 0
    archive = archived_path(res.stdout)
    assert archive.startswith(os.path.join(r.data_dir, "archive", "example.test", "demo-"))
    assert re.search(r"demo-\d{8}T\d{6}Z$", archive), archive
    assert len(inbox_files(archive)) == 1
    assert not os.path.exists(mail_dir(r, DEMO_USER))

    add = r.cli("user", "add", DEMO_USER, input=NEW_PASSWORD + "\n")
    assert "moved" not in add.stdout  # nothing was left to move aside
    assert inbox_count(r, DEMO_USER, NEW_PASSWORD) == 0
    assert len(inbox_files(archive)) == 1

    # Deleted again (maybe within the same second): a second archive, the first untouched.
    again = r.cli("user", "del", DEMO_USER)
    second = archived_path(again.stdout)
    assert second != archive and os.path.isdir(second) and len(inbox_files(archive)) == 1


def test_user_del_purge_removes_the_mail(make_roost):
    r = make_roost()
    c = login(r)
    append(c, simple(subject="to be purged"))
    c.logout()
    res = r.cli("user", "del", "--purge", DEMO_USER, check=False)
    assert res.returncode == 0, res.stderr
    assert "removed its mail" in res.stdout
    assert not os.path.exists(mail_dir(r, DEMO_USER))
    assert not os.path.exists(os.path.join(r.data_dir, "archive"))
    assert os.listdir(os.path.join(r.data_dir, "mail", "example.test")) == []
    assert r.cli("user", "list").stdout == ""
    # A user that never received mail has no directory: deleting it says so and succeeds.
    r.cli("user", "add", "quiet@example.test", input=NEW_PASSWORD + "\n")
    res = r.cli("user", "del", "quiet@example.test")
    assert "no mail" in res.stdout
    res = r.cli("user", "del", "--purge", "nobody@example.test", check=False)
    assert res.returncode == 1 and "does not exist" in res.stderr
    res = r.cli("user", "del", "--purge", check=False)
    assert res.returncode == 2 and "usage" in res.stderr


def test_user_add_moves_mail_left_at_the_address_aside(make_roost):
    """Mail at a new user's address (a delivery that was under way when the user was deleted,
    or an older roost's `user del`) goes to the archive, never to the new user."""
    r = make_roost()
    c = login(r)
    append(c, simple(subject="left behind"))
    c.logout()
    r.stop()
    # What `user del` of earlier versions did: the user goes, the mail stays.
    leftover = mail_dir(r, DEMO_USER)
    saved = leftover + ".saved"
    os.rename(leftover, saved)
    r.cli("user", "del", DEMO_USER)
    os.rename(saved, leftover)
    res = r.cli("user", "add", DEMO_USER, input=NEW_PASSWORD + "\n")
    m = re.search(r"was moved to (\S+); the new account starts empty", res.stdout)
    assert m, res.stdout
    assert len(inbox_files(m.group(1))) == 1
    r.start()
    assert inbox_count(r, DEMO_USER, NEW_PASSWORD) == 0


def test_deleted_user_under_a_running_server(make_roost):
    """The server has the account open (an IMAP session selected INBOX) while it is deleted
    and re-added: the old session's writes fail and land neither in the archive nor in the new
    account, which starts empty and gets its own mail."""
    r = make_roost()
    old = login(r, select="INBOX")
    append(old, simple(subject="before the delete"))
    archive = archived_path(r.cli("user", "del", DEMO_USER).stdout)
    assert len(inbox_files(archive)) == 1

    typ, _ = old.append("INBOX", None, None, simple(subject="after the delete"))
    assert typ == "NO"
    typ, _ = old.create("Projects")
    assert typ == "NO"
    # Changes that touch only the index would reach the archive's index through the open
    # database: they are refused too, and the archived message stays listed there.
    typ, _ = old.subscribe("Trash")
    assert typ == "NO"
    typ, _ = old.store("1", "+FLAGS", "\\Deleted")
    assert typ == "NO"
    old.expunge()
    assert archived_index_rows(archive) == 1
    assert not os.path.exists(mail_dir(r, DEMO_USER))

    r.cli("user", "add", DEMO_USER, input=NEW_PASSWORD + "\n")
    deliver(r, DEMO_USER, "for the new account")
    typ, _ = old.append("INBOX", None, None, simple(subject="old session, new account"))
    assert typ == "NO"
    assert inbox_count(r, DEMO_USER, NEW_PASSWORD) == 1
    assert len(inbox_files(mail_dir(r, DEMO_USER))) == 1
    assert len(inbox_files(archive)) == 1
    assert not os.path.exists(os.path.join(archive, ".Projects"))
    try:
        old.logout()
    except (imaplib.IMAP4.error, OSError):
        pass
    assert "op=account-gone account=demo@example.test" in r.log_text()


# ---------------- password rules ----------------

def test_password_rules_for_add_and_passwd(make_roost):
    r = make_roost()
    cases = (("short12", "too short"),           # 7 characters, default minimum 8
             ("NEW@example.TEST", "address"))   # the address, any case
    for pw, why in cases:
        res = r.cli("user", "add", "new@example.test", input=pw + "\n", check=False)
        assert res.returncode == 1 and why in res.stderr, (pw, res.stderr)
    r.cli("user", "add", "longname@example.test", input="longname\n", check=False)
    assert "longname@example.test" not in r.cli("user", "list").stdout
    res = r.cli("user", "add", "longname@example.test", input="LongName\n", check=False)
    assert res.returncode == 1 and "local part" in res.stderr, res.stderr
    r.cli("user", "add", "new@example.test", input="eight ch\n")

    res = r.cli("user", "passwd", DEMO_USER, input="1234567\n", check=False)
    assert res.returncode == 1 and "too short" in res.stderr
    res = r.cli("user", "passwd", DEMO_USER, input=DEMO_USER.upper() + "\n", check=False)
    assert res.returncode == 1 and "address" in res.stderr
    r.cli("user", "passwd", DEMO_USER, input=NEW_PASSWORD + "\n")
    assert inbox_count(r, DEMO_USER, NEW_PASSWORD) == 0


def test_min_password_length_setting(make_roost):
    r = make_roost(users=(), start=False, extra={"auth": {"min_password_length": "12"}})
    r.cli("domain", "add", "example.test")
    res = r.cli("user", "add", "a@example.test", input="elevenchars\n", check=False)
    assert res.returncode == 1 and "at least 12" in res.stderr, res.stderr
    r.cli("user", "add", "a@example.test", input="twelve chars\n")
    assert "min_password_length" in r.cli("check").stdout
    for bad in ("0", "1025"):
        broken = make_roost(users=(), start=False, extra={"auth": {"min_password_length": bad}})
        res = broken.cli("check", check=False)
        assert res.returncode != 0 and "min_password_length" in res.stderr, res.stderr


def run_on_terminal(args, answers, timeout=20):
    """Runs roost with stdin and stderr on a pseudo-terminal, answering each prompt that ends
    in ': ' with the next of answers. Returns (exit code, everything the terminal showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([ROOST_BIN] + list(args), stdin=slave, stdout=subprocess.PIPE,
                            stderr=slave, close_fds=True)
    os.close(slave)
    shown, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and shown.endswith(b": "):
                    os.write(master, pending.pop(0).encode() + b"\n")
            elif proc.poll() is not None:
                break
        proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        proc.stdout.close()
    return proc.returncode, shown.decode(errors="replace")


def test_user_add_on_a_terminal_asks_twice_without_echo(make_roost):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "example.test")
    conf = ["--config", r.conf]
    code, shown = run_on_terminal(conf + ["user", "add", "tty@example.test"],
                                  ["first try 123", "first try 124"])
    assert code == 1, shown
    assert shown.count("Password") == 2 and "differ" in shown, shown
    assert "first try" not in shown  # typed without echo
    assert "tty@example.test" not in r.cli("user", "list").stdout

    code, shown = run_on_terminal(conf + ["user", "add", "tty@example.test"],
                                  ["same twice 123", "same twice 123"])
    assert code == 0, shown
    assert "same twice" not in shown
    code, shown = run_on_terminal(conf + ["user", "passwd", "tty@example.test"],
                                  ["changed 12345", "changed 12346"])
    assert code == 1 and "differ" in shown, shown
    code, shown = run_on_terminal(conf + ["user", "passwd", "tty@example.test"],
                                  ["changed 12345", "changed 12345"])
    assert code == 0, shown
    r.start()
    assert inbox_count(r, "tty@example.test", "changed 12345") == 0


# ---------------- alias add ----------------

def test_alias_add_refuses_shadowing_a_mailbox_unless_forced(make_roost):
    r = make_roost(start=False)
    res = r.cli("alias", "add", "Demo@example.test", "elsewhere@remote.test", check=False)
    assert res.returncode == 1
    assert "user" in res.stderr and "--force" in res.stderr, res.stderr
    assert r.cli("alias", "list").stdout == ""
    # --force: the alias takes the address, and the user keeps a copy by being a target.
    r.cli("alias", "add", "--force", DEMO_USER, DEMO_USER, "elsewhere@remote.test")
    assert sorted(r.cli("alias", "list").stdout.splitlines()) == [
        "%s %s" % (DEMO_USER, DEMO_USER), "%s elsewhere@remote.test" % DEMO_USER]
    res = r.cli("alias", "add", "--force", check=False)
    assert res.returncode == 2 and "usage" in res.stderr


def test_alias_add_refuses_loops_and_itself(make_roost):
    r = make_roost(start=False)
    res = r.cli("alias", "add", "me@example.test", "me@example.test", check=False)
    assert res.returncode == 1 and "itself" in res.stderr, res.stderr
    # a -> b -> c -> d; d -> a closes a ring four long; d -> demo is fine
    for a, t in (("a", "b"), ("b", "c"), ("c", "d")):
        r.cli("alias", "add", a + "@example.test", t + "@example.test")
    res = r.cli("alias", "add", "d@example.test", "a@example.test", check=False)
    assert res.returncode == 1 and "loop" in res.stderr, res.stderr
    res = r.cli("alias", "add", "d@example.test", DEMO_USER, "a+tag@example.test", check=False)
    assert res.returncode == 1 and "loop" in res.stderr, res.stderr
    # a catch-all whose target would fall back into it
    res = r.cli("alias", "add", "@example.test", "nobody@example.test", check=False)
    assert res.returncode == 1 and "loop" in res.stderr, res.stderr
    listed = sorted(r.cli("alias", "list").stdout.splitlines())
    assert listed == ["a@example.test b@example.test", "b@example.test c@example.test",
                      "c@example.test d@example.test", "d@example.test %s" % DEMO_USER], listed
    # mail to the head of the chain reaches the user
    r.start()
    deliver(r, "a@example.test", "through the chain")
    assert inbox_count(r, DEMO_USER, DEMO_PASSWORD) == 1


# ---------------- import-passwd and SCRAM ----------------

def scram_login(r, user, password):
    """True when SCRAM-SHA-256 over submission succeeds."""
    s = smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=10)
    try:
        s.ehlo("client.test")
        nonce = base64.b64encode(os.urandom(18)).decode()
        bare = "n=%s,r=%s" % (user, nonce)
        code, msg = s.docmd("AUTH", "SCRAM-SHA-256 " +
                            base64.b64encode(("n,," + bare).encode()).decode())
        assert code == 334, msg
        server_first = base64.b64decode(msg).decode()
        fields = dict(kv.split("=", 1) for kv in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without_proof = "c=biws,r=" + fields["r"]
        auth_msg = ",".join((bare, server_first, without_proof)).encode()
        sig = hmac.new(hashlib.sha256(client_key).digest(), auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        code, msg = s.docmd(base64.b64encode(
            (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()).decode())
        if code != 334:
            return False
        return s.docmd("")[0] == 235
    finally:
        s.close()


def plain_login(r, user, password):
    s = smtplib.SMTP("127.0.0.1", r.ports["submission"], timeout=10)
    try:
        s.ehlo("client.test")
        s.login(user, password)
        return True
    except smtplib.SMTPAuthenticationError:
        return False
    finally:
        s.close()


def test_import_passwd_explains_scram(make_roost, tmp_path):
    r = make_roost()
    r.cli("domain", "add", "import.test")
    crypted = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input="pw", text=True,
                             capture_output=True, check=True).stdout.strip()
    passwd = tmp_path / "passwd"
    passwd.write_text("old:{SHA512-CRYPT}%s\nplain:{PLAIN}plain password\n" % crypted)
    res = r.cli("user", "import-passwd", str(passwd), "import.test")
    assert "imported 2 user(s)" in res.stdout
    note = res.stdout.split("\n", 1)[1]
    assert "1 of them" in note and "SCRAM-SHA-256" in note and "user passwd" in note, note
    help_text = r.cli("user", check=False).stderr
    assert "import-passwd" in help_text and "SCRAM-SHA-256" in help_text, help_text

    # What the note says, as the server does it: a hash imported short of the minimum
    # length still works (the rule is for passwords set here), SCRAM only after a
    # plaintext login.
    assert not scram_login(r, "old@import.test", "pw")
    assert scram_login(r, "plain@import.test", "plain password")
    assert plain_login(r, "old@import.test", "pw")
    assert scram_login(r, "old@import.test", "pw")
