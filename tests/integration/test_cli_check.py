"""`roost check` refuses everything `serve` would refuse before binding (a missing run_as user,
a key that does not match its certificate or cannot be read), and no command runs on built-in
defaults when it finds no configuration file."""
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOST_BIN


def roost(*args, cwd=None, user=None):
    def drop():
        os.setgid(65534)
        os.setuid(65534)
    return subprocess.run([ROOST_BIN] + list(args), capture_output=True, text=True, timeout=60,
                          cwd=cwd, preexec_fn=drop if user == "nobody" else None)


def with_lines(r, section, new):
    """The server's config with new lines added to section, written beside it."""
    with open(r.conf) as f:
        lines = f.read().splitlines()
    i = lines.index("[%s]" % section)
    path = os.path.join(r.dir, "variant.conf")
    with open(path, "w") as f:
        f.write("\n".join(lines[:i + 1] + new + lines[i + 1:]) + "\n")
    return path


def both_refuse(path, *needles):
    check = roost("--config", path, "check")
    serve = roost("--config", path, "serve")
    for res in (check, serve):
        assert res.returncode != 0, (res.stdout, res.stderr)
        for n in needles:
            assert n in res.stderr, res.stderr
    assert "configuration OK" not in check.stdout


def test_metrics_listener_accepted_by_check(make_roost):
    r = make_roost(users=(), start=False)
    res = roost("--config", with_lines(r, "listen", ["metrics = 127.0.0.1:9"]), "check")
    assert res.returncode == 0, res.stderr
    assert "configuration OK" in res.stdout


def test_missing_run_as_user_refused(make_roost):
    r = make_roost(users=(), start=False)
    both_refuse(with_lines(r, "server", ["run_as = no-such-user-here"]), "no-such-user-here")


def test_key_that_does_not_match_the_certificate(make_roost, tmp_path):
    r = make_roost(users=(), start=False)
    other = str(tmp_path / "other-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", other], check=True, capture_output=True)
    with open(r.conf) as f:
        text = f.read().replace("key = %s" % r.key, "key = %s" % other)
    path = os.path.join(r.dir, "mismatch.conf")
    with open(path, "w") as f:
        f.write(text)
    both_refuse(path, "private key", "mismatch")


def test_garbage_key_refused(make_roost, tmp_path):
    r = make_roost(users=(), start=False)
    bad = tmp_path / "garbage-key.pem"
    bad.write_text("not a key\n")
    with open(r.conf) as f:
        text = f.read().replace("key = %s" % r.key, "key = %s" % bad)
    path = os.path.join(r.dir, "garbage.conf")
    with open(path, "w") as f:
        f.write(text)
    both_refuse(path, "private key")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a key only root can read")
def test_key_the_user_cannot_read(make_roost):
    """The key is readable by root only (Let's Encrypt's default): check run as another user
    says so instead of printing OK."""
    r = make_roost(users=(), start=False)
    d = tempfile.mkdtemp(prefix="roost-check-")
    try:
        os.chmod(d, 0o755)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        shutil.copy(r.cert, cert)
        shutil.copy(r.key, key)
        os.chmod(cert, 0o644)
        os.chmod(key, 0o600)
        with open(r.conf) as f:
            text = f.read().replace(r.key, key).replace(r.cert, cert)
            text = text.replace(r.data_dir, os.path.join(d, "data"))
        conf = os.path.join(d, "roost.conf")
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        assert roost("--config", conf, "check").returncode == 0
        res = roost("--config", conf, "check", user="nobody")
        assert res.returncode != 0, res
        assert "[tls] key" in res.stderr and "Permission denied" in res.stderr, res.stderr
        assert "configuration OK" not in res.stdout
    finally:
        shutil.rmtree(d)


@pytest.mark.skipif(os.path.exists("/etc/roost/roost.conf"),
                    reason="this machine has /etc/roost/roost.conf")
@pytest.mark.parametrize("args", [("check",), ("user", "list"), ("queue", "list"), ("serve",)])
def test_no_config_file_stops_every_command(tmp_path, args):
    res = roost(*args, cwd=str(tmp_path))
    assert res.returncode != 0
    assert "no configuration file" in res.stderr, res.stderr
    assert not os.path.exists("/var/lib/roost/accounts.db")
