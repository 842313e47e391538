"""`roost status`, the pidfile and the readiness notification of a running `roost serve`.

status asks the server over DATA_DIR/roost.sock and exits like the LSB status action (0
running, 1 dead with a pidfile left, 3 not running); serve holds its pidfile locked, so a
second server refuses to start and a file left by a killed one is taken over.
"""
import os
import signal
import smtplib
import socket
import subprocess
import time

from conftest import DEMO_PASSWORD, DEMO_USER, ROOST_BIN, client_tls_context, wait_until


def status(r):
    return r.cli("status", check=False)


def started(r):
    """The ports open before the server has opened its data; status answers once it has."""
    assert wait_until(lambda: status(r).returncode == 0), status(r).stdout
    return r


def fields(text):
    """The reply's "key: value" lines; repeated keys (listener) collect in a list."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        out.setdefault(key, []).append(value)
    return out


def test_status_names_version_pid_listeners_and_sessions(make_roost):
    r = started(make_roost())
    first = status(r)
    assert first.returncode == 0, first.stdout + first.stderr
    f = fields(first.stdout)
    version = subprocess.run([ROOST_BIN, "version"], capture_output=True, text=True).stdout
    assert version.split()[1] == f["version"][0]
    assert f["pid"] == [str(r.proc.pid)]
    for name, port in r.ports.items():
        assert "%s %s:%d" % (name, r.addr, port) in f["listener"]
    assert "imap=0" in f["sessions"][0].split()

    held = [r.connect("imap"), r.connect("imap"), r.connect("pop3")]
    try:
        for s in held:
            s.recv(100)  # the greeting: the session is open
        def counted():
            words = fields(status(r).stdout)["sessions"][0].split()
            return "imap=2" in words and "pop3=1" in words and "total=3" in words
        assert wait_until(counted), status(r).stdout
    finally:
        for s in held:
            s.close()
    assert wait_until(lambda: "total=0" in fields(status(r).stdout)["sessions"][0].split())


def test_status_counts_the_queue_and_its_oldest_entry(make_roost):
    r = started(make_roost())
    assert fields(status(r).stdout)["queue"] == ["0"]
    with smtplib.SMTP(r.addr, r.ports["submission"], timeout=10) as smtp:
        smtp.starttls(context=client_tls_context())
        smtp.login(DEMO_USER, DEMO_PASSWORD)
        # The test resolver answers nothing, so mail for elsewhere stays queued.
        smtp.sendmail(DEMO_USER, ["someone@elsewhere.test"],
                      "From: %s\r\nTo: someone@elsewhere.test\r\nSubject: q\r\n\r\nhi\r\n"
                      % DEMO_USER)
    f = fields(status(r).stdout)
    assert f["queue"] == ["1"]
    assert f["queue_oldest"][0].endswith("s") and int(f["queue_oldest"][0][:-1]) >= 0


def test_status_without_a_server_says_so_and_exits_3(make_roost):
    r = make_roost(start=False)
    out = status(r)
    assert out.returncode == 3
    assert "not running" in out.stdout
    started(r.start())
    assert r.stop() == 0
    out = status(r)
    assert out.returncode == 3, out.stdout
    assert not os.path.exists(os.path.join(r.data_dir, "roost.pid"))
    assert not os.path.exists(os.path.join(r.data_dir, "roost.sock"))


def test_pidfile_holds_the_pid_and_a_second_server_refuses(make_roost):
    r = started(make_roost())
    pidfile = os.path.join(r.data_dir, "roost.pid")
    with open(pidfile) as f:
        assert f.read().strip() == str(r.proc.pid)
    second = subprocess.run([ROOST_BIN, "--config", r.conf, "serve"], capture_output=True,
                            text=True, timeout=30)
    assert second.returncode == 1
    assert "already running (pid %d" % r.proc.pid in second.stderr
    # The refused server changed nothing: the first still answers and owns its pidfile.
    assert status(r).returncode == 0
    with open(pidfile) as f:
        assert f.read().strip() == str(r.proc.pid)


def test_pidfile_setting_moves_it(make_roost, tmp_path):
    where = str(tmp_path / "run" / "custom.pid")
    os.makedirs(os.path.dirname(where))
    r = started(make_roost(extra={"server": {"pidfile": where}}))
    with open(where) as f:
        assert f.read().strip() == str(r.proc.pid)
    assert not os.path.exists(os.path.join(r.data_dir, "roost.pid"))
    assert r.stop() == 0
    assert not os.path.exists(where)


def test_killed_server_leaves_a_stale_pidfile_that_the_next_one_takes_over(make_roost):
    r = started(make_roost())
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait()
    out = status(r)
    assert out.returncode == 1, out.stdout
    assert "left behind" in out.stdout
    r.log.close()
    r.proc = None
    started(r.start())
    assert fields(status(r).stdout)["pid"] == [str(r.proc.pid)]


def test_sighup_keeps_the_server_answering(make_roost):
    r = started(make_roost())
    r.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "certificate reloaded" in r.log_text())
    assert status(r).returncode == 0


def test_ready_is_sent_to_the_notify_socket(make_roost, tmp_path):
    r = make_roost(start=False)
    name = "roost-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)  # abstract: reachable after serve changes user
        listener.settimeout(15)
        env = dict(os.environ, NOTIFY_SOCKET="@" + name)
        r.log = open(r.log_path, "a")
        r.proc = subprocess.Popen([ROOST_BIN, "--config", r.conf, "serve"], env=env,
                                  stdout=r.log, stderr=subprocess.STDOUT)
        assert listener.recv(256) == b"READY=1"
        # READY comes when every listener is bound and the status socket is up.
        assert status(r).returncode == 0
        r.proc.send_signal(signal.SIGTERM)
        assert listener.recv(256) == b"STOPPING=1"
        assert r.proc.wait(timeout=15) == 0
