"""NOTIFY (RFC 5465): one connection hears of new mail, expunges and flag changes in several
mailboxes (STATUS for the ones not selected), of mailbox-list and subscription changes (LIST),
between commands as well as during IDLE; BADEVENT, the limits and NOTIFICATIONOVERFLOW."""
import re
import smtplib

from conftest import DEMO_USER
from imap_util import append, login, raw_login, simple

WAIT = 10  # every wait for a notification is bounded by this many seconds


def status_items(line):
    """b'* STATUS name (MESSAGES 1 UIDNEXT 2 ...)' -> (name, {item: value})."""
    m = re.match(rb'\* STATUS ("?)(.*?)\1 \((.*)\)$', line)
    assert m, line
    words = m.group(3).split()
    return m.group(2).decode(), {words[i].decode(): int(words[i + 1])
                                 for i in range(0, len(words), 2)}


def statuses(r, count):
    """The next count lines, each a STATUS: {name: items}."""
    got = {}
    for _ in range(count):
        name, items = status_items(r.line(timeout=WAIT))
        got[name] = items
    return got


def deliver_smtp(server, subject):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=WAIT) as smtp:
        smtp.sendmail("alice@example.org", [DEMO_USER], simple(subject))


def notify(r, args, tag=b"n"):
    r.send(tag + b" NOTIFY " + args + b"\r\n")
    return r.until(tag + b" ", timeout=WAIT)


def test_capability_after_login_only(roost_server, line_client):
    c = line_client(roost_server.connect("imap"))
    assert b" NOTIFY" not in c.line()
    r = raw_login(roost_server, line_client)
    r.send(b"c CAPABILITY\r\n")
    assert b" NOTIFY" in r.until(b"c ")[0]


def test_three_folders_and_move_reach_one_connection(roost_server, line_client):
    other = login(roost_server)
    for box in ("Work", "Lists", "Lists/Rust"):
        assert other.create(box)[0] == "OK"
    append(other, simple("old"), mailbox="Work")
    a = raw_login(roost_server, line_client)
    a.send(b"s SELECT INBOX\r\n")
    a.until(b"s OK")
    lines = notify(a, b"SET STATUS (selected (MessageNew (UID) MessageExpunge FlagChange))"
                      b" (mailboxes Work (MessageNew MessageExpunge))"
                      b" (subtree Lists (MessageNew MessageExpunge FlagChange))")
    assert lines[-1] == b"n OK NOTIFY completed"
    # §3.1: the initial STATUS of every watched mailbox but the selected one.
    initial = dict(status_items(l) for l in lines[:-1])
    assert set(initial) == {"Work", "Lists", "Lists/Rust"}
    assert initial["Work"]["MESSAGES"] == 1 and initial["Lists"]["MESSAGES"] == 0
    assert {"UIDNEXT", "UIDVALIDITY", "UNSEEN"} <= set(initial["Lists/Rust"])

    # No command running, no IDLE: still told (§3). INBOX is selected: EXISTS + FETCH (UID).
    deliver_smtp(roost_server, "to inbox")
    assert a.line(timeout=WAIT) == b"* 1 EXISTS"
    assert a.line(timeout=WAIT) == b"* 1 RECENT"
    assert a.line(timeout=WAIT) == b"* 1 FETCH (UID 1)"

    append(other, simple("to work"), mailbox="Work")
    assert statuses(a, 1)["Work"] == {"MESSAGES": 2, "UIDNEXT": 3, "UNSEEN": 2,
                                      "UIDVALIDITY": initial["Work"]["UIDVALIDITY"]}
    append(other, simple("to rust"), mailbox="Lists/Rust")
    assert statuses(a, 1)["Lists/Rust"]["MESSAGES"] == 1

    # A MOVE from another session: one STATUS for each side.
    other.select("Work")
    typ, _ = other.uid("MOVE", "1", "Lists")
    assert typ == "OK"
    moved = statuses(a, 2)
    assert moved["Lists"]["MESSAGES"] == 1 and moved["Work"]["MESSAGES"] == 1

    # FlagChange in a watched mailbox: STATUS with the new UNSEEN.
    other.select("Lists")
    other.store("1", "+FLAGS", "(\\Seen)")
    assert statuses(a, 1)["Lists"]["UNSEEN"] == 0
    # Work asked for no FlagChange: nothing for it.
    other.select("Work")
    other.store("1", "+FLAGS", "(\\Seen)")
    assert a.silent(0.5)

    # The same during IDLE.
    a.send(b"i IDLE\r\n")
    assert a.line(timeout=WAIT) == b"+ idling"
    append(other, simple("idle"), mailbox="Lists/Rust")
    assert statuses(a, 1)["Lists/Rust"]["MESSAGES"] == 2
    other.select("INBOX")
    other.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    assert a.line(timeout=WAIT) == b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted))"
    assert a.line(timeout=WAIT) == b"* 1 EXPUNGE"
    a.send(b"DONE\r\n")
    assert a.until(b"i ", timeout=WAIT)[-1] == b"i OK IDLE terminated"
    other.logout()


def test_while_a_command_runs_notifications_wait(roost_server, line_client):
    other = login(roost_server)
    other.create("Work")
    a = raw_login(roost_server, line_client)
    assert notify(a, b"SET (personal (MessageNew MessageExpunge))")[-1].startswith(b"n OK")
    # An APPEND whose literal is still coming is a command in progress.
    body = simple("mine")
    a.send(b"p APPEND INBOX {%d}\r\n" % len(body))
    assert a.line(timeout=WAIT).startswith(b"+ ")
    append(other, simple("theirs"), mailbox="Work")
    assert a.silent(0.5)
    a.send(body + b"\r\n")
    lines = a.until(b"p ", timeout=WAIT)
    assert lines[-1].startswith(b"p OK")
    # Right after the tagged reply (the INBOX one may come with it or after it).
    got = dict(status_items(l) for l in lines[:-1])
    while "Work" not in got:
        got.update(statuses(a, 1))
    assert got["Work"]["MESSAGES"] == 1


def test_mailbox_name_and_subscription_change(roost_server, line_client):
    other = login(roost_server)
    a = raw_login(roost_server, line_client)
    assert notify(a, b"SET (personal (MailboxName SubscriptionChange))")[-1].startswith(b"n OK")
    other.create("Foo")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasNoChildren) "/" Foo'
    other.create("Foo/Bar")
    # §5.4: the mailbox and its direct parent.
    assert {a.line(timeout=WAIT), a.line(timeout=WAIT)} == {
        b'* LIST (\\HasNoChildren) "/" Foo/Bar', b'* LIST (\\HasChildren) "/" Foo'}
    other.rename("Foo/Bar", "Foo/Baz")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasNoChildren) "/" Foo/Baz ("OLDNAME" (Foo/Bar))'
    # The inferiors of a renamed mailbox come without events of their own.
    other.create("Top/Child")  # Top is created with it: LIST lines for both
    assert a.line(timeout=WAIT).startswith(b"* LIST")
    while not a.silent(0.5):
        a.line(timeout=WAIT)
    other.rename("Top", "Moved")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasChildren) "/" Moved ("OLDNAME" (Top))'
    assert a.silent(0.5)
    other.delete("Foo/Baz")
    assert {a.line(timeout=WAIT), a.line(timeout=WAIT)} == {
        b'* LIST (\\NonExistent) "/" Foo/Baz', b'* LIST (\\HasNoChildren) "/" Foo'}
    other.subscribe("Foo")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasNoChildren \\Subscribed) "/" Foo'
    other.unsubscribe("Foo")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasNoChildren) "/" Foo'
    # A name without a mailbox may be subscribed; a subscription outlives its mailbox.
    other.subscribe("Ghost")
    assert a.line(timeout=WAIT) == b'* LIST (\\NonExistent \\Subscribed) "/" Ghost'
    other.subscribe("Foo")
    assert a.line(timeout=WAIT) == b'* LIST (\\HasNoChildren \\Subscribed) "/" Foo'
    other.delete("Foo")
    assert a.line(timeout=WAIT) == b'* LIST (\\NonExistent \\Subscribed) "/" Foo'


def test_subscribed_set_follows_subscriptions(roost_server, line_client):
    other = login(roost_server)
    other.create("Feed")
    a = raw_login(roost_server, line_client)
    assert notify(a, b"SET (subscribed (MessageNew MessageExpunge))")[-1].startswith(b"n OK")
    append(other, simple("unwatched"), mailbox="Feed")
    assert a.silent(0.5)
    other.subscribe("Feed")  # §6.4: the set is evaluated again
    append(other, simple("watched"), mailbox="Feed")
    assert statuses(a, 1)["Feed"]["MESSAGES"] == 2
    other.unsubscribe("Feed")
    append(other, simple("unwatched again"), mailbox="Feed")
    assert a.silent(0.5)


def test_subtree_takes_in_created_mailboxes(roost_server, line_client):
    other = login(roost_server)
    other.create("Proj")
    a = raw_login(roost_server, line_client)
    assert notify(a, b"SET (subtree Proj (MessageNew MessageExpunge))")[-1].startswith(b"n OK")
    other.create("Proj/New")
    append(other, simple("x"), mailbox="Proj/New")
    assert statuses(a, 1)["Proj/New"]["MESSAGES"] == 1
    other.rename("Proj/New", "Elsewhere")
    append(other, simple("y"), mailbox="Elsewhere")
    assert a.silent(0.5)


def test_notify_none_stops_everything(roost_server, line_client):
    other = login(roost_server)
    other.create("Work")
    a = raw_login(roost_server, line_client)
    a.send(b"s SELECT INBOX\r\n")
    a.until(b"s OK")
    assert notify(a, b"SET (selected (MessageNew MessageExpunge))"
                     b" (personal (MessageNew MessageExpunge MailboxName))")[-1].startswith(b"n OK")
    append(other, simple("one"), mailbox="Work")
    assert statuses(a, 1)["Work"]["MESSAGES"] == 1
    assert notify(a, b"NONE", tag=b"z") == [b"z OK NOTIFY completed"]
    append(other, simple("two"), mailbox="Work")
    append(other, simple("three"))
    other.create("Other")
    assert a.silent(0.7)
    # The selected mailbox is back to RFC 3501: told at the next command.
    a.send(b"q NOOP\r\n")
    assert a.until(b"q ", timeout=WAIT) == [b"* 1 EXISTS", b"* 1 RECENT", b"q OK NOOP completed"]


def test_without_selected_filter_idle_stays_quiet_about_it(roost_server, line_client):
    other = login(roost_server)
    other.create("Work")
    a = raw_login(roost_server, line_client)
    a.send(b"s SELECT INBOX\r\n")
    a.until(b"s OK")
    assert notify(a, b"SET (mailboxes Work (MessageNew MessageExpunge))")[-1].startswith(b"n OK")
    a.send(b"i IDLE\r\n")
    assert a.line(timeout=WAIT) == b"+ idling"
    append(other, simple("inbox"))
    append(other, simple("work"), mailbox="Work")
    # §3.1/§4: no SELECTED filter, so IDLE reports only what NOTIFY asked for.
    assert statuses(a, 1)["Work"]["MESSAGES"] == 1
    a.send(b"DONE\r\n")
    assert a.until(b"i ", timeout=WAIT) == [b"* 1 EXISTS", b"* 1 RECENT",
                                            b"i OK IDLE terminated"]


def test_selected_delayed_holds_expunge(roost_server, line_client):
    other = login(roost_server)
    append(other, simple("one"))
    a = raw_login(roost_server, line_client)
    a.send(b"s SELECT INBOX\r\n")
    a.until(b"s OK")
    assert notify(a, b"SET (selected-delayed (MessageNew MessageExpunge))")[-1].startswith(b"n OK")
    append(other, simple("two"))
    assert a.line(timeout=WAIT) == b"* 2 EXISTS"
    assert a.line(timeout=WAIT) == b"* 2 RECENT"
    other.select("INBOX")
    other.store("1", "+FLAGS.SILENT", "(\\Deleted)")
    other.expunge()
    # §6.1.2: the EXPUNGE waits for a command allowing it; FlagChange was not asked for, so
    # the flag change waits too (RFC 3501 has it reported with the next command).
    assert a.silent(0.5)
    a.send(b"q NOOP\r\n")
    assert a.until(b"q ", timeout=WAIT) == [b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Deleted))",
                                            b"* 1 EXPUNGE", b"q OK NOOP completed"]


def test_new_message_fetch_flags(roost_server, line_client):
    other = login(roost_server)
    a = raw_login(roost_server, line_client)
    a.send(b"s SELECT INBOX\r\n")
    a.until(b"s OK")
    assert notify(a, b"SET (selected (MessageNew (UID FLAGS) MessageExpunge))"
                  )[-1].startswith(b"n OK")
    append(other, simple("flagged"), flags="(\\Flagged)")
    assert a.line(timeout=WAIT) == b"* 1 EXISTS"
    assert a.line(timeout=WAIT) == b"* 1 RECENT"
    assert a.line(timeout=WAIT) == b"* 1 FETCH (UID 1 FLAGS (\\Recent \\Flagged))"


def test_badevent_and_syntax(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    supported = b"[BADEVENT (MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange)]"
    r = notify(a, b"SET (personal (MessageNew MessageExpunge AnnotationChange))")
    assert r[-1].startswith(b"n NO " + supported)
    r = notify(a, b"SET (inboxes (MailboxMetadataChange))")
    assert r[-1].startswith(b"n NO [BADEVENT")
    # §5: MessageNew and MessageExpunge together; FlagChange needs both; SELECTED takes
    # message events only.
    assert notify(a, b"SET (personal (MessageNew))")[-1].startswith(b"n BAD")
    assert notify(a, b"SET (personal (FlagChange))")[-1].startswith(b"n BAD")
    assert notify(a, b"SET (selected (MailboxName))")[-1].startswith(b"n BAD")
    assert notify(a, b"SET (selected (MessageNew (BODY[]) MessageExpunge))")[-1].startswith(
        b"n BAD")
    assert notify(a, b"SET (nowhere (MailboxName))")[-1].startswith(b"n BAD")
    # Names that do not exist are ignored (§3.1), and NONE is an event list.
    assert notify(a, b"SET (mailboxes (Nope \"Not here\") NONE) (inboxes NONE)") == [
        b"n OK NOTIFY completed"]


def test_watched_mailbox_limit(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    names = b" ".join(b"box%d" % i for i in range(1001))
    r = notify(a, b"SET (mailboxes (" + names + b") (MessageNew MessageExpunge))")
    assert r == [b"n NO [LIMIT] NOTIFY watches at most 1000 mailboxes"]
    names = b" ".join(b"box%d" % i for i in range(1000))
    r = notify(a, b"SET (mailboxes (" + names + b") (MessageNew MessageExpunge))")
    assert r == [b"n OK NOTIFY completed"]


def test_overflow_turns_notify_off(roost_server, line_client):
    a = raw_login(roost_server, line_client)
    assert notify(a, b"SET (personal (MailboxName))")[-1].startswith(b"n OK")
    body = simple("slow")
    a.send(b"p APPEND INBOX {%d}\r\n" % len(body))
    assert a.line(timeout=WAIT).startswith(b"+ ")
    # 257 distinct mailbox-list changes pile up while the APPEND runs: past the bound of 256.
    c = raw_login(roost_server, line_client)
    c.send(b"".join(b"c%d CREATE Pile%d\r\n" % (i, i) for i in range(257)))
    c.until(b"c256 ", timeout=60)
    a.send(body + b"\r\n")
    lines = a.until(b"p ", timeout=WAIT)
    assert lines[-1].startswith(b"p OK")
    assert a.line(timeout=WAIT).startswith(b"* OK [NOTIFICATIONOVERFLOW]")
    # As after NOTIFY NONE (§5.8).
    c.send(b"d CREATE After\r\n")
    c.until(b"d ", timeout=WAIT)
    assert a.silent(0.7)
    a.send(b"q NOOP\r\n")
    assert a.until(b"q ", timeout=WAIT) == [b"q OK NOOP completed"]
