"""`roost import`: Roost's own Maildir layout (percent-encoded folder names, roost-keywords) as
well as Dovecot's, and a path that is neither a Maildir nor an mbox is an error."""
import base64
import imaplib
import os

from conftest import DEMO_PASSWORD, DEMO_USER
from imap_util import append, login, simple

OTHER = ("other@example.test", "other password")

# IMAP (modified UTF-7) name -> the name LIST shows with UTF-8 after ENABLE UTF8=ACCEPT.
FOLDERS = {'"Entw&APw-rfe"': "Entwürfe", '"Tom &- Jerry"': "Tom & Jerry",
           "Work/2024": "Work/2024", "v1.2": "v1.2", '"Caf&AOk-.Men&APw-/Sub"': "Café.Menü/Sub"}


def account_dir(r, address):
    local, domain = address.split("@")
    return os.path.join(r.data_dir, "mail", domain, local)


def list_names(c):
    typ, data = c.list('""', "*")
    assert typ == "OK"
    names = set()
    for line in data:
        name = line.split(b'"/" ', 1)[1]
        names.add(imap_utf7_decode(name.strip(b'"')))
    return names


def imap_utf7_decode(name):
    out, i = "", 0
    text = name.decode("ascii")
    while i < len(text):
        if text[i] != "&":
            out += text[i]
            i += 1
            continue
        j = text.index("-", i)
        if j == i + 1:
            out += "&"
        else:
            chunk = text[i + 1:j].replace(",", "/")
            chunk += "=" * (-len(chunk) % 4)
            out += base64.b64decode(chunk).decode("utf-16-be")
        i = j + 1
    return out


def test_import_roost_maildir_layout(make_roost):
    r = make_roost(users=((DEMO_USER, DEMO_PASSWORD), OTHER))
    c = login(r)
    for imap_name in FOLDERS:
        assert c.create(imap_name)[0] == "OK", imap_name
        append(c, simple("in " + imap_name.strip('"')), mailbox=imap_name,
               flags="(\\Seen Work)")
    append(c, simple("inbox one"), flags="(\\Flagged)")
    c.logout()
    source = account_dir(r, DEMO_USER)
    assert os.path.isdir(os.path.join(source, ".Entw%C3%BCrfe")), sorted(os.listdir(source))

    res = r.cli("import", OTHER[0], source, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "imported %d message(s)" % (len(FOLDERS) + 1) in res.stdout, res.stdout

    o = imaplib.IMAP4("127.0.0.1", r.ports["imap"])
    o.login(*OTHER)
    names = list_names(o)
    for utf8 in FOLDERS.values():
        assert utf8 in names, (utf8, names)
    assert not any("%" in n for n in names), names
    for imap_name in FOLDERS:
        typ, data = o.select(imap_name, readonly=True)
        assert typ == "OK" and data == [b"1"], (imap_name, data)
        typ, data = o.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0] and b"Work" in data[0], (imap_name, data)
    typ, data = o.select("INBOX", readonly=True)
    assert data == [b"1"]
    assert b"\\Flagged" in o.fetch("1", "(FLAGS)")[1][0]
    o.logout()


def test_import_dovecot_maildir_still_works(make_roost, tmp_path):
    r = make_roost()
    root = tmp_path / "dovecot"
    for folder in ("", ".Entw&APw-rfe", ".Lists.Roost"):
        for sub in ("cur", "new", "tmp"):
            (root / folder / sub).mkdir(parents=True)
    (root / "cur" / "1.M1.host:2,S").write_bytes(simple("inbox"))
    (root / ".Entw&APw-rfe" / "cur" / "2.M2.host:2,a").write_bytes(simple("draft"))
    (root / ".Entw&APw-rfe" / "dovecot-keywords").write_text("0 Todo\n")
    (root / ".Lists.Roost" / "new" / "3.M3.host").write_bytes(simple("list"))
    res = r.cli("import", DEMO_USER, str(root))
    assert "imported 3 message(s)" in res.stdout
    c = login(r)
    names = list_names(c)
    assert {"INBOX", "Entwürfe", "Lists/Roost"} <= names, names
    c.select('"Entw&APw-rfe"', readonly=True)
    assert b"Todo" in c.fetch("1", "(FLAGS)")[1][0]


def test_import_neither_maildir_nor_mbox_is_an_error(make_roost, tmp_path):
    r = make_roost()
    empty_dir = tmp_path / "nothing-here"
    (empty_dir / "some-dir").mkdir(parents=True)
    (empty_dir / "notes.txt").write_text("hello\n")
    text_file = tmp_path / "notes.txt"
    text_file.write_text("Dear diary,\nnothing to import here.\n")
    for path in (empty_dir, text_file):
        res = r.cli("import", DEMO_USER, str(path), check=False)
        assert res.returncode != 0, (path, res.stdout)
        assert "neither a Maildir" in res.stderr and "nor an mbox" in res.stderr, res.stderr
    res = r.cli("import", DEMO_USER, str(tmp_path / "absent"), check=False)
    assert res.returncode != 0
    c = login(r)
    c.select("INBOX", readonly=True)
    assert c.search(None, "ALL")[1] == [b""]


def test_import_mbox_and_empty_mbox(make_roost, tmp_path):
    r = make_roost()
    mbox = tmp_path / "mail.mbox"
    mbox.write_bytes(b"From a@example.test Mon Feb  7 21:52:25 1994\n" +
                     simple("from mbox").replace(b"\r\n", b"\n") + b"\n")
    assert "imported 1 message(s)" in r.cli("import", DEMO_USER, str(mbox)).stdout
    empty = tmp_path / "empty.mbox"
    empty.write_bytes(b"")
    assert "imported 0 message(s)" in r.cli("import", DEMO_USER, str(empty)).stdout
