"""A real client that uses CONDSTORE, QRESYNC and COMPRESS=DEFLATE (imapflow, installed into tests/node by
scripts/deps.sh) keeps a cache of INBOX: it reads the mailbox, goes away while another client
expunges, flags and appends, reconnects with SELECT (QRESYNC ...) and must end up with exactly
the server's state, having been told only of the changes."""
import json
import os
import re
import subprocess

from conftest import DEMO_PASSWORD, DEMO_USER
from imap_util import append, login, simple

NODE_DIR = os.path.join(os.path.dirname(__file__), "..", "node")


def run_client(server, phase, state):
    res = subprocess.run(["node", os.path.join(NODE_DIR, "qresync-sync.js"), "127.0.0.1",
                          str(server.ports["imap"]), DEMO_USER, DEMO_PASSWORD, phase, str(state)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    with open(state) as f:
        return json.load(f)


def server_state(server):
    c = login(server, "INBOX")
    typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
    c.logout()
    out = {}
    for item in data:
        m = re.search(rb"UID (\d+) FLAGS \(([^)]*)\)", item)
        out[m.group(1).decode()] = sorted(f.decode() for f in m.group(2).split())
    return out


def test_imapflow_resyncs_with_qresync(roost_server, tmp_path):
    c = login(roost_server)
    for i in range(12):
        append(c, simple("cached %d" % i))
    c.logout()
    state = tmp_path / "cache.json"
    cache = run_client(roost_server, "cache", state)
    assert len(cache["messages"]) == 12

    b = login(roost_server, "INBOX")
    b.uid("STORE", "3,4,9", "+FLAGS", "(\\Deleted)")
    b.expunge()
    b.uid("STORE", "5", "+FLAGS", "(\\Flagged)")
    b.uid("STORE", "6", "+FLAGS", "(\\Seen $Work)")
    append(b, simple("while away"))
    b.logout()

    cache = run_client(roost_server, "resync", state)
    assert "QRESYNC" in cache["enabled"] and "CONDSTORE" in cache["enabled"]
    assert cache["compressed"] is True  # the whole session ran over COMPRESS=DEFLATE
    # Told exactly what changed: three UIDs vanished (as EARLIER), two flag changes and the
    # new message (imapflow sends no known UIDs, which means 1:UIDNEXT-1, RFC 7162 §3.2.5.1).
    assert sorted(v["uid"] for v in cache["seen"]["vanished"]) == [3, 4, 9]
    assert all(v["earlier"] for v in cache["seen"]["vanished"])
    assert sorted(cache["seen"]["flags"]) == [5, 6, 13]
    assert cache["changedSince"] == [1]
    truth = server_state(roost_server)
    assert "$Synced" in truth["1"]
    # \Recent belongs to the session that saw a message first (RFC 3501 §2.3.2), so the
    # client's first session has it and a later one does not: compare the stored flags.
    stored = {uid: [f for f in flags if f != "\\Recent"]
              for uid, flags in cache["messages"].items()}
    assert stored == truth
