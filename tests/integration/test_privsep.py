"""Certificate reload with keys only root may read (Let's Encrypt's default): serve started as
root with run_as keeps a privileged parent that reads the files when the unprivileged server
reloads (SIGHUP to either process, or `roost reload`), so the new certificate is served without
a restart; the serving process holds no root uid, and the parent only passes signals on."""
import hashlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

from conftest import child_pids, process_uids

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test run_as")


def make_pair(directory, cn):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=%s" % cn, "-keyout", key + ".new", "-out", cert + ".new"],
                   check=True, capture_output=True)
    os.chmod(key + ".new", 0o600)
    os.rename(key + ".new", key)
    os.rename(cert + ".new", cert)
    return cert, key


def served_fingerprint(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def file_fingerprint(cert):
    der = ssl.PEM_cert_to_DER_cert(open(cert).read())
    return hashlib.sha256(der).hexdigest()


def wait_log(r, text, count, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if r.log_text().count(text) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("%r not logged %d times:\n%s" % (text, count, r.log_text()[-3000:]))


@pytest.fixture
def keydir():
    # Root only, as /etc/letsencrypt/live is.
    d = tempfile.mkdtemp(prefix="roost-keys-")
    os.chmod(d, 0o700)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def base(traversable_tmp):
    return traversable_tmp


def test_reload_with_root_only_keys(make_roost, keydir, base):
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    cert, key = make_pair(keydir, "first.example.test")
    data_dir = os.path.join(base, "data")
    r = make_roost(extra={"server": {"run_as": "nobody", "data_dir": data_dir},
                          "tls": {"cert": cert, "key": key}}, start=False)
    r.data_dir = data_dir
    r.start()
    kids = child_pids(r.proc.pid)
    assert len(kids) == 1, kids
    server = kids[0]
    assert all(u == nobody.pw_uid for u in process_uids(server))
    first = served_fingerprint(r.ports["imaps"])
    assert first == file_fingerprint(cert)

    # SIGHUP to the parent (systemd's ExecReload goes to the main PID).
    make_pair(keydir, "second.example.test")
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_log(r, 'msg="certificate reloaded"', 1)
    second = served_fingerprint(r.ports["imaps"])
    assert second == file_fingerprint(cert) and second != first

    # SIGHUP to the server itself asks the parent too.
    make_pair(keydir, "third.example.test")
    os.kill(server, signal.SIGHUP)
    wait_log(r, 'msg="certificate reloaded"', 2)
    third = served_fingerprint(r.ports["imaps"])
    assert third == file_fingerprint(cert) and third not in (first, second)

    # `roost reload` (the pidfile names the server) goes the same way.
    make_pair(keydir, "fourth.example.test")
    res = r.cli("reload")
    assert "reload requested" in res.stdout, res.stdout
    wait_log(r, 'msg="certificate reloaded"', 3)
    fourth = served_fingerprint(r.ports["imaps"])
    assert fourth == file_fingerprint(cert) and fourth != third
    third = fourth

    # A broken file keeps the old certificate.
    with open(key, "w") as f:
        f.write("garbage\n")
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_log(r, "certificate reload failed", 1)
    assert served_fingerprint(r.ports["imaps"]) == third
    assert "certificate reload failed" in r.log_text()

    # SIGTERM to the parent stops both, with the server's status.
    assert r.stop() == 0
    assert r.cli("reload", check=False).returncode == 3
    assert not os.path.exists("/proc/%d" % server) or \
        open("/proc/%d/stat" % server).read().split()[2] == "Z"
