"""Special-use folders keep their roles (RFC 6154): INBOX, Sent, Drafts, Trash, Junk and Archive
cannot be deleted or renamed away (NO [CANNOT]), and CREATE ... (USE (...)) is refused with
NO [USEATTR] for a role another folder already has: at most one folder per role."""
import re

from imap_util import login

ROLES = {"Sent": b"\\Sent", "Drafts": b"\\Drafts", "Trash": b"\\Trash", "Junk": b"\\Junk",
         "Archive": b"\\Archive"}


def special_use_listing(c):
    typ, _ = c._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    assert typ == "OK"
    out = {}
    for line in c.untagged_responses.pop("LIST"):
        m = re.match(rb'\((.*?)\) "/" (.*)$', line)
        out[m.group(2).strip(b'"')] = m.group(1)
    return out


def test_special_use_folders_cannot_be_deleted(roost_server):
    c = login(roost_server)
    for name in ["INBOX"] + list(ROLES):
        typ, data = c.delete(name)
        assert typ == "NO" and b"[CANNOT]" in data[0], (name, data)
    listing = special_use_listing(c)
    for name, role in ROLES.items():
        assert role in listing[name.encode()], (name, listing)


def test_special_use_folders_cannot_be_renamed_away(roost_server):
    c = login(roost_server)
    for name in ROLES:
        typ, data = c.rename(name, '"%s Old"' % name)
        assert typ == "NO" and b"[CANNOT]" in data[0], (name, data)
    listing = special_use_listing(c)
    assert sorted(listing) == sorted(n.encode() for n in ROLES)
    # RENAME INBOX is RFC 9051 §6.3.6's move of its messages, still allowed.
    assert c.rename("INBOX", "Old-Inbox")[0] == "OK"
    # Ordinary folders, and children of special-use folders, stay free to move.
    assert c.create("Trash/Sub")[0] == "OK"
    assert c.rename("Trash/Sub", "Elsewhere")[0] == "OK"
    assert c.delete("Elsewhere")[0] == "OK"


def test_second_folder_for_a_role_is_refused(roost_server):
    c = login(roost_server)
    typ, data = c._simple_command("CREATE", '"Sent Items"', "(USE (\\Sent))")
    assert typ == "NO" and b"[USEATTR]" in data[0], data
    typ, data = c._simple_command("CREATE", "Both", "(USE (\\Drafts \\Junk))")
    assert typ == "NO" and b"[USEATTR]" in data[0], data
    typ, data = c.list('""', '"Sent Items"')
    assert data == [None]
    listing = special_use_listing(c)
    assert [n for n, a in listing.items() if b"\\Sent" in a] == [b"Sent"]
