"""The per-account spam classifier: `roost spam train` from a Maildir, a folder of files and an
mbox, `roost spam classify` printing one line `spam SCORE` / `ham SCORE`, GTUBE, the
per-account threshold, and learning from IMAP MOVE into and out of Junk (the store's copy
observer), checked by the verdict of the next `roost spam classify`."""
import os
import random
import re

from conftest import DEMO_USER
from imap_util import login

HAM_WORDS = ("meeting agenda project review quarterly budget schedule minutes colleague "
             "deadline report draft team lunch thursday conference slides feedback").split()
SPAM_WORDS = ("viagra casino jackpot winner lottery pharmacy discount bitcoin prize "
              "unclaimed inheritance investment guaranteed refinance pills bonus").split()
VERDICT = re.compile(r"^(spam|ham) -?\d+\.\d\n$")
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"


def make_message(words, n, rng, subject_words=3):
    subject = " ".join(rng.choice(words) for _ in range(subject_words))
    body = " ".join(rng.choice(words) for _ in range(40))
    return ("From: sender%d@example.org\r\nTo: demo@example.test\r\nSubject: %s\r\n"
            "Message-ID: <%d.%d@example.org>\r\n\r\n%s\r\n" % (n, subject, n, rng.random() * 1e9,
                                                               body)).encode()


def write_maildir(path, messages):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub))
    for i, m in enumerate(messages):
        with open(os.path.join(path, "cur", "%d.msg:2," % i), "wb") as f:
            f.write(m)


def write_mbox(path, messages):
    with open(path, "wb") as f:
        for m in messages:
            f.write(b"From sender@example.org Mon Jan  1 00:00:00 2024\n")
            f.write(m.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From "))
            f.write(b"\n")


def classify(server, message, address=DEMO_USER):
    r = server.cli("spam", "classify", address, input=message.decode())
    assert r.returncode == 0
    assert VERDICT.match(r.stdout), r.stdout
    verdict, score = r.stdout.split()
    return verdict, float(score)


def seed(server, tmp_path, count=12):
    rng = random.Random(7)
    ham = [make_message(HAM_WORDS, i, rng) for i in range(count)]
    spam = [make_message(SPAM_WORDS, 100 + i, rng) for i in range(count)]
    write_maildir(str(tmp_path / "ham"), ham)
    write_mbox(str(tmp_path / "spam.mbox"), spam)
    r = server.cli("spam", "train", DEMO_USER, "--ham", str(tmp_path / "ham"),
                   "--spam", str(tmp_path / "spam.mbox"))
    assert "trained %d spam and %d ham" % (count, count) in r.stdout, r.stdout


def test_untrained_account_does_not_junk_normal_mail(make_roost):
    server = make_roost(start=False)
    rng = random.Random(1)
    assert classify(server, make_message(SPAM_WORDS, 1, rng)) == ("ham", 0.0)


def test_gtube_is_spam_even_untrained(make_roost):
    server = make_roost(start=False)
    msg = ("From: a@example.org\r\nSubject: test\r\n\r\n%s\r\n" % GTUBE).encode()
    verdict, score = classify(server, msg)
    assert verdict == "spam" and score >= 1000


def test_train_classify_round_trip(make_roost, tmp_path):
    server = make_roost(start=False)
    seed(server, tmp_path)
    rng = random.Random(99)
    assert classify(server, make_message(SPAM_WORDS, 500, rng))[0] == "spam"
    assert classify(server, make_message(HAM_WORDS, 501, rng))[0] == "ham"


def test_training_twice_counts_each_message_once(make_roost, tmp_path):
    server = make_roost(start=False)
    seed(server, tmp_path)
    r = server.cli("spam", "train", DEMO_USER, "--ham", str(tmp_path / "ham"))
    assert "trained 0 spam and 0 ham" in r.stdout and "12 already known" in r.stdout


def test_folder_of_files_and_bad_usage(make_roost, tmp_path):
    server = make_roost(start=False)
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "one.eml").write_bytes(make_message(HAM_WORDS, 1, random.Random(3)))
    r = server.cli("spam", "train", DEMO_USER, "--ham", str(folder))
    assert "trained 0 spam and 1 ham" in r.stdout
    # The batch form: one line per file, the file's name last.
    r = server.cli("spam", "classify", "--digits", "3", DEMO_USER, str(folder / "one.eml"))
    assert r.stdout == "ham 0.000 %s\n" % (folder / "one.eml")
    assert server.cli("spam", "train", DEMO_USER, "--junk", "x", check=False).returncode == 2
    assert server.cli("spam", "classify", "nobody@example.test", input="x",
                      check=False).returncode == 1


def test_threshold_per_account(make_roost, tmp_path):
    server = make_roost(start=False)
    seed(server, tmp_path)
    spammy = make_message(SPAM_WORDS, 600, random.Random(5))
    verdict, score = classify(server, spammy)
    assert verdict == "spam"
    assert server.cli("user", "set", DEMO_USER, "spam.threshold", "x",
                      check=False).returncode != 0
    server.cli("user", "set", DEMO_USER, "spam.threshold", "20")
    assert classify(server, spammy) == ("ham", score)
    assert "spam.threshold = 20 (account)" in server.cli("user", "settings", DEMO_USER).stdout


def uid_of(client, mailbox, subject):
    client.select(mailbox)
    typ, data = client.uid("SEARCH", None, "SUBJECT", '"%s"' % subject)
    assert typ == "OK"
    uids = data[0].split()
    assert len(uids) == 1, (mailbox, data)
    return uids[0].decode()


def test_imap_move_into_and_out_of_junk_trains(make_roost, tmp_path):
    server = make_roost(start=False)
    seed(server, tmp_path)
    server.start()
    # Words neither corpus has: the trained classifier has no opinion on them yet.
    words = "zephyr quokka marmalade obelisk tundra saffron gondola".split()
    msg = make_message(words, 900, random.Random(11), subject_words=5)
    subject = msg.split(b"Subject: ")[1].split(b"\r\n")[0].decode()
    assert classify(server, msg)[0] == "ham"

    c = login(server)
    typ, _ = c.append("INBOX", None, None, msg)
    assert typ == "OK"
    uid = uid_of(c, "INBOX", subject)
    assert c.uid("MOVE", uid, "Junk")[0] == "OK"
    assert classify(server, msg)[0] == "spam"

    uid = uid_of(c, "Junk", subject)
    assert c.uid("MOVE", uid, "INBOX")[0] == "OK"
    assert classify(server, msg)[0] == "ham"

    # Into Junk again, then to Trash: deleting junk teaches nothing, it stays spam.
    uid = uid_of(c, "INBOX", subject)
    assert c.uid("MOVE", uid, "Junk")[0] == "OK"
    uid = uid_of(c, "Junk", subject)
    assert c.uid("MOVE", uid, "Trash")[0] == "OK"
    assert classify(server, msg)[0] == "spam"
    c.logout()
    assert "spam=learn account=%s" % DEMO_USER in server.log_text()
