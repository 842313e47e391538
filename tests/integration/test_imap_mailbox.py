"""Mailbox commands: CREATE (CREATE-SPECIAL-USE), DELETE, RENAME, SUBSCRIBE, LIST-EXTENDED,
LIST-STATUS, LSUB, NAMESPACE, STATUS, ENABLE; INBOX rules and modified UTF-7 names."""
import re

from imap_util import append, login, raw_login, simple


def names(listing):
    out = []
    for line in listing:
        m = re.match(rb'\((.*?)\) "/" (.*)$', line)
        out.append((m.group(2).strip(b'"'), m.group(1)))
    return out


def test_create_list_delete(roost_server):
    c = login(roost_server)
    assert c.create("Projects/Roost")[0] == "OK"
    typ, data = c.list('""', "*")
    got = dict(names(data))
    assert b"Projects/Roost" in got and b"Projects" in got
    assert b"\\HasChildren" in got[b"Projects"]
    assert b"\\HasNoChildren" in got[b"Projects/Roost"]
    assert b"\\Sent" in got[b"Sent"] and b"\\Trash" in got[b"Trash"]
    # % stops at the separator
    typ, data = c.list('""', "%")
    assert b"Projects/Roost" not in dict(names(data))
    typ, data = c.list("Projects", "%")
    assert [n for n, _ in names(data)] == [b"Projects/Roost"]
    typ, data = c.create("Projects")
    assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
    typ, data = c.delete("Projects")
    assert typ == "NO" and b"HASCHILDREN" in data[0]
    assert c.delete("Projects/Roost")[0] == "OK"
    typ, data = c.delete("Nope")
    assert typ == "NO" and b"[NONEXISTENT]" in data[0]
    # trailing separator is dropped (RFC 9051 §6.3.4)
    assert c.create("Trailing/")[0] == "OK"
    assert b"Trailing" in dict(names(c.list('""', "Trailing")[1]))


def test_list_delimiter_and_namespace(roost_server):
    c = login(roost_server)
    typ, data = c.list('""', '""')
    assert data == [b'(\\Noselect) "/" ""']
    typ, data = c.namespace()
    assert data == [b'(("" "/")) NIL NIL']


def test_inbox_case_variants(roost_server):
    c = login(roost_server)
    append(c, simple("x"))
    typ, data = c.select("iNbOx")
    assert typ == "OK" and data == [b"1"]
    typ, data = c.create("Inbox")
    assert typ == "NO"
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    typ, data = c.list('""', "inbox")
    assert data == [b'(\\HasNoChildren) "/" INBOX']
    assert c.create("inbox/Sub")[0] == "OK"
    assert b"INBOX/Sub" in dict(names(c.list('""', "INBOX/*")[1]))


def test_rename_inbox_moves_messages(roost_server):
    c = login(roost_server)
    append(c, simple("a"))
    append(c, simple("b"))
    assert c.rename("INBOX", "Old")[0] == "OK"
    assert c.select("Old")[1] == [b"2"]
    assert c.select("INBOX")[1] == [b"0"]


def test_rename_with_children_and_special_use(roost_server):
    c = login(roost_server)
    c.create("A/B/C")
    assert c.rename("A", "Z")[0] == "OK"
    got = dict(names(c.list('""', "*")[1]))
    assert b"Z/B/C" in got and b"A" not in got and b"A/B" not in got
    typ, data = c.rename("Z", "Sent")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    # A special-use folder keeps its name and role (test_imap_special_use.py).
    typ, data = c.rename("Sent", '"Sent Items"')
    assert typ == "NO" and b"CANNOT" in data[0]
    got = dict(names(c.list('""', "*")[1]))
    assert b"\\Sent" in got[b"Sent"] and b"Sent Items" not in got


def test_uidvalidity_grows_when_name_reused(roost_server):
    c = login(roost_server)
    c.create("Reused")
    typ, a = c.status("Reused", "(UIDVALIDITY)")
    c.delete("Reused")
    c.create("Reused")
    typ, b = c.status("Reused", "(UIDVALIDITY)")
    va = int(re.search(rb"UIDVALIDITY (\d+)", a[0]).group(1))
    vb = int(re.search(rb"UIDVALIDITY (\d+)", b[0]).group(1))
    assert 0 < va < vb < 2 ** 32


def test_status_items(roost_server):
    c = login(roost_server)
    m = simple("s")
    append(c, m)
    append(c, m, flags="(\\Seen \\Deleted)")
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UNSEEN DELETED SIZE RECENT)")
    assert typ == "OK"
    assert data[0] == b'INBOX (MESSAGES 2 UIDNEXT 3 UNSEEN 1 DELETED 1 SIZE %d RECENT 2)' % (
        2 * len(m))
    typ, data = c.status("Nope", "(MESSAGES)")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    try:
        c.status("INBOX", "(BOGUS)")
        assert False, "STATUS BOGUS accepted"
    except c.error as e:
        assert "Unknown STATUS item" in str(e)


def test_subscribe_lsub_list_extended(roost_server):
    c = login(roost_server)
    c.create("Lists/Roost")
    assert c.subscribe("Lists/Roost")[0] == "OK"
    typ, data = c.lsub('""', "*")
    assert b'"/" Lists/Roost' in b"\n".join(data)
    typ, data = c._simple_command("LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Lists")
    assert typ == "OK"
    lines = c.untagged_responses.pop("LIST")
    assert lines == [b'(\\HasChildren) "/" Lists ("CHILDINFO" ("SUBSCRIBED"))']
    typ, _ = c._simple_command("LIST", '""', "Lists/*", "RETURN", "(SUBSCRIBED CHILDREN)")
    lines = c.untagged_responses.pop("LIST")
    assert lines == [b'(\\HasNoChildren \\Subscribed) "/" Lists/Roost']
    typ, _ = c._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
    lines = c.untagged_responses.pop("LIST")
    assert len(lines) == 5 and all(b"\\HasNoChildren \\" in l for l in lines)
    try:
        c._simple_command("LIST", "(RECURSIVEMATCH)", '""', "*")
        assert False
    except c.error as e:
        assert "RECURSIVEMATCH" in str(e)
    assert c.unsubscribe("Lists/Roost")[0] == "OK"
    typ, data = c.lsub('""', "*")
    assert b"Lists/Roost" not in b"".join(d or b"" for d in data)


def test_list_status(roost_server):
    c = login(roost_server)
    append(c, simple("m"))
    typ, _ = c._simple_command("LIST", '""', "INBOX", "RETURN", "(STATUS (MESSAGES UNSEEN))")
    assert typ == "OK"
    assert c.untagged_responses.pop("STATUS") == [b"INBOX (MESSAGES 1 UNSEEN 1)"]


def test_create_special_use(roost_server):
    c = login(roost_server)
    # Archive has \\Archive already: one folder per role (test_imap_special_use.py).
    typ, data = c._simple_command("CREATE", '"Old Stuff"', "(USE (\\Archive))")
    assert typ == "NO" and b"USEATTR" in data[0]
    assert c.list('""', '"Old Stuff"')[1] == [None]
    typ, data = c._simple_command("CREATE", "Everything", "(USE (\\All))")
    assert typ == "NO" and b"USEATTR" in data[0]


def test_modified_utf7_round_trip(roost_server):
    c = login(roost_server)
    assert c.create("Entw&APw-rfe")[0] == "OK"
    typ, data = c.list('""', "Entw*")
    assert data == [b'(\\HasNoChildren) "/" Entw&APw-rfe']
    assert c.select("Entw&APw-rfe")[0] == "OK"
    c.close()
    # stored as UTF-8: after ENABLE UTF8=ACCEPT the name comes back raw
    typ, data = c._simple_command("ENABLE", "UTF8=ACCEPT")
    assert typ == "OK"
    typ, _ = c._simple_command("LIST", '""', "Entw*")
    assert c.untagged_responses.pop("LIST") == ['(\\HasNoChildren) "/" "Entwürfe"'.encode()]


def test_invalid_mailbox_names(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    bad = [b"&Jjo!", b"&AGE-", b"&U,BTF", b"&-&-", b"&AOQ-&AOQ-", b"..", b"../x", b"/",
           b"/lead", b"a//b", b"x*y", b"x%y", b"A" * 10240]
    for i, name in enumerate(bad):
        tag = b"c%d" % i
        c.send(tag + b' CREATE "' + name + b'"\r\n')
        reply = c.until(tag + b" ")[-1]
        assert reply.startswith(tag + b" NO") or reply.startswith(tag + b" BAD"), (name, reply)
    # 8-bit names are refused until UTF8=ACCEPT, invalid UTF-8 always
    c.send('u1 CREATE "Grüße"\r\n'.encode())
    assert c.until(b"u1 ")[-1].startswith(b"u1 NO")
    c.send(b"u2 ENABLE UTF8=ACCEPT\r\n")
    assert c.until(b"u2 ")[-1].startswith(b"u2 OK")
    c.send(b'u3 CREATE "bad\xff\xfe"\r\n')
    assert c.until(b"u3 ")[-1].startswith(b"u3 NO")
    c.send('u4 CREATE "Grüße"\r\n'.encode())
    assert c.until(b"u4 ")[-1].startswith(b"u4 OK")


def test_enable_rev2_select_responses(roost_server, line_client):
    c = raw_login(roost_server, line_client)
    c.send(b"e ENABLE IMAP4rev2\r\n")
    lines = c.until(b"e ")
    assert lines[0] == b"* ENABLED IMAP4rev2" and lines[-1].startswith(b"e OK")
    c.send(b"s SELECT INBOX\r\n")
    lines = c.until(b"s ")
    assert b'* LIST () "/" INBOX' in lines
    assert not any(b"RECENT" in l for l in lines)
    assert lines[-1] == b"s OK [READ-WRITE] SELECT completed"
    c.send(b"x EXAMINE INBOX\r\n")
    lines = c.until(b"x ")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
    assert lines[-1].startswith(b"x OK [READ-ONLY]")
