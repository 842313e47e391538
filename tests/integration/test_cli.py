"""The roost command line: `check` on good and broken configs, `version`, the domain/user/alias
maintenance commands, `user passwd` and `user import-passwd` seen from a running server."""
import imaplib
import os
import re
import shutil
import subprocess
import warnings

import pytest

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN

SECTIONS = ("server", "tls", "listen", "limits", "auth", "smtp", "greylist", "srs", "imap", "pop3",
            "relay", "dns",
            "mailauth", "dmarc", "mtasts", "spam",
            "queue", "log", "virus", "quota")


def roost(*args, input=None, cwd=None):
    return subprocess.run([ROOST_BIN] + list(args), input=input, capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def imap_login(server, user, password):
    """True when LOGIN over plaintext loopback IMAP succeeds, False on NO."""
    m = imaplib.IMAP4("127.0.0.1", server.ports["imap"], timeout=10)
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except (imaplib.IMAP4.error, OSError):
            pass


# ---------------- check and version ----------------

def test_check_prints_every_section_and_exits_0(make_roost):
    r = make_roost(users=(), start=False)
    res = r.cli("check")
    assert res.returncode == 0
    printed = re.findall(r"^\[([a-z0-9_]+)\]$", res.stdout, re.M)
    assert printed == list(SECTIONS), printed
    out = res.stdout
    assert "hostname = mail.example.test" in out
    assert "imap = 127.0.0.1:%d" % r.ports["imap"] in out
    assert "failure_delay = 50" in out
    assert "configuration OK" in out
    # Secrets are never printed.
    with open(r.conf, "a") as f:
        f.write("[relay]\npassword = hunter2-secret\n")
    res = r.cli("check")
    assert "hunter2-secret" not in res.stdout and "password = (set)" in res.stdout


def broken_config(make_roost, tmp_path, edit):
    """Writes the harness config through edit(lines) -> lines; returns (path, lines)."""
    r = make_roost(users=(), start=False)
    with open(r.conf) as f:
        lines = f.read().splitlines()
    lines = edit(lines)
    path = str(tmp_path / "broken.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, lines


def insert_after(lines, section, new):
    i = lines.index("[%s]" % section)
    return lines[:i + 1] + new + lines[i + 1:]


def replace_key(lines, section, key, value):
    out, current = [], None
    for line in lines:
        if line.startswith("["):
            current = line.strip("[]")
        if current == section and line.split("=")[0].strip() == key:
            line = "%s = %s" % (key, value)
        out.append(line)
    return out


def line_of(lines, text):
    return lines.index(text) + 1


def check_fails(path):
    res = roost("--config", path, "check")
    assert res.returncode != 0, res.stdout
    assert "configuration OK" not in res.stdout
    return res.stderr


def test_check_unknown_key(make_roost, tmp_path):
    path, lines = broken_config(make_roost, tmp_path,
                                lambda l: insert_after(l, "server", ["bogus_key = 1"]))
    err = check_fails(path)
    assert "%s:%d:" % (path, line_of(lines, "bogus_key = 1")) in err, err
    assert "unknown key 'bogus_key'" in err and "[server]" in err, err


def test_check_unknown_section(make_roost, tmp_path):
    path, lines = broken_config(make_roost, tmp_path,
                                lambda l: l + ["[nosuchsection]", "x = 1"])
    err = check_fails(path)
    m = re.search(re.escape(path) + r":(\d+): ", err)
    assert m, err
    assert int(m.group(1)) in (line_of(lines, "[nosuchsection]"), line_of(lines, "x = 1")), err
    assert "unknown section [nosuchsection]" in err, err


@pytest.mark.parametrize("value,reason", (
    ("999.1.1.1:143", "numeric"),
    ("localhost:143", "numeric"),
    ("127.0.0.1", "ADDRESS:PORT"),
    ("127.0.0.1:0", "port"),
    ("127.0.0.1:65536", "port"),
    ("127.0.0.1:14x", "port"),
))
def test_check_bad_listen_address(make_roost, tmp_path, value, reason):
    path, lines = broken_config(make_roost, tmp_path,
                                lambda l: replace_key(l, "listen", "imap", value))
    err = check_fails(path)
    assert "%s:%d:" % (path, line_of(lines, "imap = " + value)) in err, err
    assert "[listen] imap" in err and reason in err, err


def test_check_missing_cert_file(make_roost, tmp_path):
    missing = str(tmp_path / "no-such-cert.pem")
    path, lines = broken_config(make_roost, tmp_path,
                                lambda l: replace_key(l, "tls", "cert", missing))
    err = check_fails(path)
    assert "%s:%d:" % (path, line_of(lines, "cert = " + missing)) in err, err
    assert "[tls] cert" in err and missing in err and "No such file" in err, err


def without_tls(lines):
    return [l for l in lines if not l.startswith("cert =") and not l.startswith("key =")]


def test_check_implicit_tls_listener_without_cert(make_roost, tmp_path):
    path, lines = broken_config(make_roost, tmp_path, without_tls)
    err = check_fails(path)
    assert path in err, err
    assert "cert and key are required" in err and "imaps" in err, err


def test_check_implicit_tls_listener_without_cert_names_the_line(make_roost, tmp_path):
    path, lines = broken_config(make_roost, tmp_path, without_tls)
    err = check_fails(path)
    # The message names one implicit-TLS listener and the line where it is configured.
    m = re.search(re.escape(path) + r":(\d+): \[listen\] (submissions|imaps|pop3s):", err)
    assert m, err
    listener_line = [i + 1 for i, l in enumerate(lines) if l.startswith(m.group(2) + " =")][0]
    assert int(m.group(1)) == listener_line, err


def test_check_bad_values(make_roost, tmp_path):
    cases = (("limits", "bad_commands", "0", "out of range"),
             ("limits", "imap_line", "10Q", "size"),
             ("auth", "plaintext", "sometimes", "expected one of"),
             ("smtp", "vrfy", "perhaps", "yes or no"))
    for section, key, value, reason in cases:
        path, lines = broken_config(
            make_roost, tmp_path, lambda l: insert_after(l, section, ["%s = %s" % (key, value)])
            if "[%s]" % section in l else l + ["[%s]" % section, "%s = %s" % (key, value)])
        err = check_fails(path)
        assert "%s:%d:" % (path, line_of(lines, "%s = %s" % (key, value))) in err, err
        assert reason in err, (key, err)


def test_version(tmp_path):
    res = roost("version", cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert re.match(r"^roost \d+\.\d+\.\d+\S*\n$", res.stdout), res.stdout
    # No config is needed to ask for the version, even with a broken one given.
    broken = tmp_path / "broken.conf"
    broken.write_text("[nonsense]\n")
    assert roost("--config", str(broken), "version").stdout == res.stdout


def test_dash_dash_version(tmp_path):
    res = roost("--version", cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout == roost("version", cwd=str(tmp_path)).stdout


def test_unknown_command_and_usage(tmp_path):
    res = roost("frobnicate", cwd=str(tmp_path))
    assert res.returncode != 0 and "unknown command" in res.stderr
    res = roost(cwd=str(tmp_path))
    assert res.returncode != 0 and "usage" in res.stderr


# ---------------- domain / user / alias ----------------

def test_domain_round_trip(make_roost):
    r = make_roost(users=(), start=False)
    assert r.cli("domain", "list").stdout == ""
    r.cli("domain", "add", "Example.TEST")
    r.cli("domain", "add", "second.test")
    assert r.cli("domain", "list").stdout.split() == ["example.test", "second.test"]
    dup = r.cli("domain", "add", "example.test", check=False)
    assert dup.returncode != 0 and "exists" in dup.stderr
    r.cli("domain", "del", "second.test")
    assert r.cli("domain", "list").stdout.split() == ["example.test"]
    gone = r.cli("domain", "del", "second.test", check=False)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    for bad in ("a b.test", "-x.test", "x..test", "../etc", "%d"):
        res = r.cli("domain", "add", bad, check=False)
        assert res.returncode != 0 and "invalid" in res.stderr, (bad, res.stderr)
    assert r.cli("domain", "list").stdout.split() == ["example.test"]


def test_user_round_trip(make_roost):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "example.test")
    r.cli("user", "add", "Alice@Example.test", input="alice pw\n")
    r.cli("user", "add", "bob@example.test", input="bob password\n")
    assert r.cli("user", "list").stdout.split() == ["alice@example.test", "bob@example.test"]
    assert r.cli("user", "list", "example.test").stdout.split() == [
        "alice@example.test", "bob@example.test"]
    dup = r.cli("user", "add", "alice@example.test", input="x\n", check=False)
    assert dup.returncode != 0
    r.cli("user", "del", "alice@example.test")
    assert r.cli("user", "list").stdout.split() == ["bob@example.test"]
    gone = r.cli("user", "del", "alice@example.test", check=False)
    assert gone.returncode != 0 and "does not exist" in gone.stderr
    nopw = r.cli("user", "add", "carol@example.test", input="", check=False)
    assert nopw.returncode != 0 and "password" in nopw.stderr
    assert "carol@example.test" not in r.cli("user", "list").stdout


def test_user_add_for_missing_domain_fails_clearly(make_roost):
    r = make_roost(users=(), start=False)
    res = r.cli("user", "add", "someone@missing.test", input="pw\n", check=False)
    assert res.returncode != 0
    assert "missing.test" in res.stderr and "does not exist" in res.stderr, res.stderr
    assert r.cli("user", "list").stdout == ""


@pytest.mark.parametrize("address", ("a b@x", "%u@x", "../x@y", "a b@example.test",
                                     "%u@example.test", "../x@example.test", "x/y@example.test",
                                     "noatsign", "a@b@example.test", "@example.test",
                                     "a\n@example.test", ".a@example.test",
                                     "a..b@example.test", "x" * 65 + "@example.test"))
def test_bad_addresses_rejected(make_roost, address):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "example.test")
    forms = [("user", "add", address)]
    if not address.startswith("@"):  # "@domain" is a valid catch-all alias
        forms.append(("alias", "add", address, "t@example.test"))
    for args in forms:
        res = r.cli(*args, input="pw\n", check=False)
        assert res.returncode != 0, (args, res.stdout)
        assert "invalid" in res.stderr, (args, res.stderr)
    assert r.cli("user", "list").stdout == ""
    assert r.cli("alias", "list").stdout == ""


def test_alias_round_trip(make_roost):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "example.test")
    r.cli("user", "add", "alice@example.test", input="alice password\n")
    r.cli("alias", "add", "info@example.test", "alice@example.test", "ext@elsewhere.test")
    r.cli("alias", "add", "@example.test", "alice@example.test")
    listed = sorted(r.cli("alias", "list").stdout.splitlines())
    assert listed == ["@example.test alice@example.test", "info@example.test alice@example.test",
                      "info@example.test ext@elsewhere.test"], listed
    r.cli("alias", "del", "info@example.test", "ext@elsewhere.test")
    listed = sorted(r.cli("alias", "list").stdout.splitlines())
    assert listed == ["@example.test alice@example.test",
                      "info@example.test alice@example.test"], listed
    res = r.cli("alias", "add", "x@nowhere.test", "alice@example.test", check=False)
    assert res.returncode != 0 and "does not exist" in res.stderr, res.stderr
    r.cli("alias", "del", "@example.test", "alice@example.test")
    r.cli("alias", "del", "info@example.test", "alice@example.test")
    assert r.cli("alias", "list").stdout == ""


def test_usage_errors(make_roost):
    r = make_roost(users=(), start=False)
    for args in (("domain",), ("domain", "add"), ("user", "add"), ("user", "frob", "x"),
                 ("alias", "add", "a@b.test"), ("user", "import-passwd", "f")):
        res = r.cli(*args, check=False)
        assert res.returncode != 0 and "usage" in res.stderr, (args, res.stderr)


# ---------------- against a running server ----------------

def test_user_passwd_changes_the_imap_password(make_roost):
    r = make_roost()
    assert imap_login(r, DEMO_USER, DEMO_PASSWORD)
    r.cli("user", "passwd", DEMO_USER, input="a brand new password\n")
    assert not imap_login(r, DEMO_USER, DEMO_PASSWORD)
    assert imap_login(r, DEMO_USER, "a brand new password")
    res = r.cli("user", "passwd", "nobody@example.test", input="x\n", check=False)
    assert res.returncode != 0 and "does not exist" in res.stderr


def sha512_crypt(password):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            crypt = None
    if crypt is not None and hasattr(crypt, "METHOD_SHA512"):
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    if shutil.which("openssl") is None:
        pytest.skip("neither crypt nor openssl available")
    return subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, text=True,
                          capture_output=True, check=True).stdout.strip()


def test_import_dovecot_passwd_file(make_roost, tmp_path):
    r = make_roost()
    r.cli("domain", "add", "import.test")
    hashed = sha512_crypt("alice's crypt password")
    assert hashed.startswith("$6$")
    passwd = tmp_path / "passwd"
    passwd.write_text(
        "# Dovecot passwd-file\n"
        "alice:{SHA512-CRYPT}%s:1000:1000::/home/alice::\n"
        "bob:{PLAIN}bob plain password::::::\n"
        "carol@import.test:{PLAIN}carol-pw\n" % hashed)
    res = r.cli("user", "import-passwd", str(passwd), "import.test")
    assert "imported 3 user(s)" in res.stdout, res.stdout
    assert r.cli("user", "list", "import.test").stdout.split() == [
        "alice@import.test", "bob@import.test", "carol@import.test"]
    assert imap_login(r, "alice@import.test", "alice's crypt password")
    assert imap_login(r, "bob@import.test", "bob plain password")
    assert imap_login(r, "carol@import.test", "carol-pw")
    assert not imap_login(r, "alice@import.test", "wrong")
    assert not imap_login(r, "bob@import.test", "bob")


def test_import_with_a_bad_line_imports_nothing(make_roost, tmp_path):
    r = make_roost(users=(), start=False)
    r.cli("domain", "add", "import.test")
    passwd = tmp_path / "passwd"
    passwd.write_text("dave:{PLAIN}pw\n"
                      "erin:{MD5-CRYPT}$1$abc$def\n")
    res = r.cli("user", "import-passwd", str(passwd), "import.test", check=False)
    assert res.returncode != 0
    assert "%s:2:" % passwd in res.stderr and "unsupported" in res.stderr, res.stderr
    assert r.cli("user", "list").stdout == ""
    res = r.cli("user", "import-passwd", str(tmp_path / "absent"), "import.test", check=False)
    assert res.returncode != 0 and "cannot open" in res.stderr
