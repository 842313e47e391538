"""Per-account POP3 settings (`roost user set ADDRESS NAME VALUE`): delete_action and
include_junk for one account on top of the server's [pop3] values, checked when stored,
applied from the next login without a restart, gone with the user."""
import glob
import imaplib
import os

from conftest import DEMO_PASSWORD, DEMO_USER
from test_pop3_commands import crlf, import_messages, message, pop_connect
from test_pop3_maildrop import maildir_with_junk, subjects, user_dir

OTHER = ("other@example.test", "other password")


def two_users(make_roost, **extra):
    return make_roost(users=((DEMO_USER, DEMO_PASSWORD), OTHER), extra=extra or None)


def imap_subjects(user, password, port, mailbox="INBOX"):
    imap = imaplib.IMAP4("127.0.0.1", port)
    imap.login(user, password)
    imap.select(mailbox)
    typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    imap.logout()
    if data == [None]:
        return []
    return sorted(part[1].decode().strip()[len("Subject: "):] for part in data
                  if isinstance(part, tuple))


def dele_first_and_quit(r, **login):
    p = pop_connect(r, **login)
    assert p.cmd("DELE 1").startswith(b"+OK")
    assert p.cmd("QUIT").startswith(b"+OK")
    p.close()


def test_cli_checks_shows_and_forgets_settings(make_roost):
    r = two_users(make_roost)
    out = r.cli("user", "settings", DEMO_USER).stdout
    assert "pop3.delete_action = expunge (server)" in out
    assert "pop3.include_junk = no (server)" in out
    r.cli("user", "set", DEMO_USER, "pop3.delete_action", "keep")
    r.cli("user", "set", DEMO_USER, "pop3.include_junk", "yes")
    out = r.cli("user", "settings", DEMO_USER).stdout
    assert "pop3.delete_action = keep (account)" in out
    assert "pop3.include_junk = yes (account)" in out
    # Another account is untouched.
    assert "pop3.delete_action = expunge (server)" in r.cli("user", "settings",
                                                           OTHER[0]).stdout
    # Bad values, unknown names and unknown users are refused and change nothing.
    bad = r.cli("user", "set", DEMO_USER, "pop3.delete_action", "shred", check=False)
    assert bad.returncode != 0 and "expunge trash keep" in bad.stderr
    bad = r.cli("user", "set", DEMO_USER, "pop3.timeout", "5m", check=False)
    assert bad.returncode != 0 and "not a per-account setting" in bad.stderr
    bad = r.cli("user", "set", "nobody@example.test", "pop3.include_junk", "yes", check=False)
    assert bad.returncode != 0 and "does not exist" in bad.stderr
    assert "pop3.delete_action = keep (account)" in r.cli("user", "settings", DEMO_USER).stdout
    r.cli("user", "unset", DEMO_USER, "pop3.delete_action")
    assert "pop3.delete_action = expunge (server)" in r.cli("user", "settings",
                                                           DEMO_USER).stdout
    # Deleting the user deletes its settings: a new user of that name starts from the server's.
    r.cli("user", "del", DEMO_USER)
    r.cli("user", "add", DEMO_USER, input=DEMO_PASSWORD + "\n")
    assert "pop3.include_junk = no (server)" in r.cli("user", "settings", DEMO_USER).stdout


def test_delete_action_per_account_over_the_server_default(make_roost):
    r = two_users(make_roost)  # server: expunge
    import_messages(r, [message(1), message(2)])
    import_messages(r, [message(1), message(2)], user=OTHER[0])
    # Set while the server runs: the next login uses it.
    r.cli("user", "set", DEMO_USER, "pop3.delete_action", "keep")
    dele_first_and_quit(r)
    dele_first_and_quit(r, user=OTHER[0], password=OTHER[1])
    # demo: hidden from POP3, still in INBOX for IMAP.
    p = pop_connect(r)
    assert subjects(p) == ["message 2"]
    p.close()
    assert imap_subjects(DEMO_USER, DEMO_PASSWORD, r.ports["imap"]) == ["message 1", "message 2"]
    # other: the server's expunge.
    assert imap_subjects(*OTHER, r.ports["imap"]) == ["message 2"]


def test_trash_per_account_and_back_to_the_server_default(make_roost):
    r = two_users(make_roost, pop3={"delete_action": "keep"})
    import_messages(r, [message(1), message(2), message(3)])
    r.cli("user", "set", DEMO_USER, "pop3.delete_action", "trash")
    dele_first_and_quit(r)
    trash = glob.glob(os.path.join(user_dir(r), ".Trash", "cur", "*"))
    assert len(trash) == 1
    with open(trash[0], "rb") as f:
        assert f.read() == crlf(message(1))
    r.cli("user", "unset", DEMO_USER, "pop3.delete_action")
    dele_first_and_quit(r)  # message 2, now under the server's keep
    assert len(glob.glob(os.path.join(user_dir(r), ".Trash", "cur", "*"))) == 1
    p = pop_connect(r)
    assert subjects(p) == ["message 3"]
    p.close()
    assert imap_subjects(DEMO_USER, DEMO_PASSWORD, r.ports["imap"]) == ["message 2", "message 3"]


def test_include_junk_per_account_and_expire_in_capa(make_roost, tmp_path):
    r = two_users(make_roost, imap={"autoexpunge_days": "30"})
    md = maildir_with_junk(tmp_path, [message(1)], [message(9)])
    r.cli("import", DEMO_USER, md)
    r.cli("import", OTHER[0], md)
    r.cli("user", "set", DEMO_USER, "pop3.include_junk", "yes")
    p = pop_connect(r, login=False)
    assert p.cmd("CAPA").startswith(b"+OK")
    # Before login: the smallest retention any account may have, and a hint that it varies.
    assert "EXPIRE 30 USER" in p.multi().decode().splitlines()
    p.login()
    assert subjects(p) == ["message 1", "message 9"]
    assert p.cmd("CAPA").startswith(b"+OK")
    assert "EXPIRE 30" in p.multi().decode().splitlines()
    p.close()
    o = pop_connect(r, user=OTHER[0], password=OTHER[1])
    assert subjects(o) == ["message 1"]
    assert o.cmd("CAPA").startswith(b"+OK")
    assert "EXPIRE NEVER" in o.multi().decode().splitlines()
    o.close()
