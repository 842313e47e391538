"""Fixtures that run a real `roost serve` on free loopback ports with a temporary data dir.

`roost_server` starts a server with the default test settings; tests that need other settings
use the `make_roost` factory: make_roost(extra={"auth": {"plaintext": "never"}}). Every server
is stopped with SIGTERM after the test, and the test fails if it did not exit cleanly or if a
sanitizer reported anything in its log.
"""
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

ROOST_BIN = os.environ.get(
    "ROOST_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "roost"))
ROOST_BIN = os.path.abspath(ROOST_BIN)

def pytest_sessionstart(session):
    """Stops the run before the first test when the machine lacks a program, a feature of one
    (swaks without TLS) or a Python module some test uses, naming the Debian packages
    (preflight.py; `make deps` installs them)."""
    import preflight
    missing = preflight.problems()
    if missing:
        pytest.exit("this machine lacks what the tests need (`make deps` installs it):\n  " +
                    "\n  ".join(missing) + "\nin one go: apt-get install " +
                    " ".join(preflight.packages(missing)), returncode=pytest.ExitCode.USAGE_ERROR)


LISTENERS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")
DEMO_USER = "demo@example.test"
DEMO_PASSWORD = "correct horse battery staple"


# Ports free_port() has handed out in this test run. A port is only bound for a moment to
# see that it is free, so without this two listeners of one server (chosen before it starts)
# could be given the same port: with 7 listeners per server and ~12,000 candidate ports
# that happened about once per full run.
_ports_given = set()


def free_port(addr="127.0.0.1"):
    """A port nobody listens on and that no earlier call returned, chosen below the kernel's
    ephemeral range: a port the kernel hands out can be taken as the source port of any client
    socket before our server binds it."""
    low = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            high = min(int(f.read().split()[0]) - 1, 32767)
    except OSError:
        high = 32767
    # Parallel runs (pytest -n): each worker takes its own slice of the range, so two
    # workers never hand out the same port between the check and the server's bind.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and workers > 1:
        span = (high - low) // workers
        low += int(worker[2:]) * span
        high = low + span - 1
    if len(_ports_given) > (high - low) // 2:
        _ports_given.clear()  # long runs: servers of early tests are long gone
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((addr, port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port")


def wait_for_port(port, timeout=10.0, proc=None, addr="127.0.0.1"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("roost exited early with status %s" % proc.returncode)
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("port %d did not open" % port)


def client_tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_certificate(directory, cn="localhost"):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
         "-subj", "/CN=" + cn, "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    return make_certificate(str(tmp_path_factory.mktemp("cert")))


class Roost:
    """One server instance: its ports, files, and helpers to run the CLI against it."""

    def __init__(self, workdir, cert, key, extra=None, addr="127.0.0.1", ports=None):
        self.addr = addr
        self.dir = workdir
        self.conf = os.path.join(workdir, "roost.conf")
        self.data_dir = os.path.join(workdir, "data")
        self.ports = dict(ports) if ports else {name: free_port(addr) for name in LISTENERS}
        self._ports_chosen_here = not ports
        self.cert, self.key = cert, key
        self.proc = None
        self.log = None
        self.log_path = os.path.join(workdir, "roost.log")
        sections = {
            "server": {"hostname": "mail.example.test", "data_dir": self.data_dir,
                       "workers": "2", "log_level": "info"},
            "tls": {"cert": cert, "key": key},
            "listen": {name: "%s:%d" % (addr, port) for name, port in self.ports.items()},
            # Short, constant penalties keep the suite fast; tests of the penalty
            # schedule set their own values.
            "auth": {"failure_delay": "50", "failure_delay_max": "50"},
            # No test may ask the machine's resolver: mail for remote domains waits in the
            # queue (nothing answers on the discard port). Federation tests bring a DNS.
            "dns": {"resolvers": "127.0.0.1:9"},
        }
        for section, values in (extra or {}).items():
            sections.setdefault(section, {}).update(values)
        with open(self.conf, "w") as f:
            for section, values in sections.items():
                f.write("[%s]\n" % section)
                for k, v in values.items():
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def cli(self, *args, input=None, check=True):
        r = subprocess.run([ROOST_BIN, "--config", self.conf] + list(args), input=input,
                           capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("roost %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                               r.stderr))
        return r

    def add_user(self, address, password):
        domain = address.split("@", 1)[1]
        if domain not in self.cli("domain", "list").stdout.split():
            self.cli("domain", "add", domain)
        self.cli("user", "add", address, input=password + "\n")

    def start(self, attempts=3):
        for attempt in range(attempts):
            self.log = open(self.log_path, "a")
            log_start = self.log.tell()
            self.proc = subprocess.Popen([ROOST_BIN, "--config", self.conf, "serve"],
                                         stdout=self.log, stderr=subprocess.STDOUT)
            try:
                for port in self.ports.values():
                    wait_for_port(port, proc=self.proc, addr=self.addr)
                self._wait_until_ready(log_start)
                return self
            except RuntimeError:
                if attempt + 1 == attempts or not self._lost_port_race(log_start):
                    raise
                self.proc.wait()
                self.log.close()
                self._choose_new_ports()
        return self

    def _lost_port_race(self, log_start):
        """free_port checks a port and the server binds it later; another process on the
        machine (a second test run) can take it in between. Only ports chosen here are
        retried: a test that passed its own ports means them."""
        if not self._ports_chosen_here:
            return False
        with open(self.log_path, errors="replace") as f:
            f.seek(log_start)
            return "Address already in use" in f.read()

    def _choose_new_ports(self):
        with open(self.conf) as f:
            text = f.read()
        for name, old in list(self.ports.items()):
            new = free_port(self.addr)
            text = text.replace("%s = %s:%d\n" % (name, self.addr, old),
                                "%s = %s:%d\n" % (name, self.addr, new))
            self.ports[name] = new
        with open(self.conf, "w") as f:
            f.write(text)

    def _wait_until_ready(self, log_start, timeout=30.0):
        """Ports answer as soon as they are bound, before the server handles SIGTERM; a test
        that stopped it then would see it killed by the signal. "server ready" comes after."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as f:
                f.seek(log_start)
                text = f.read()
                if 'msg="server ready"' in text or '"msg":"server ready"' in text:  # logfmt, json
                    return
            if self.proc.poll() is not None:
                raise RuntimeError("roost exited early with status %s" % self.proc.returncode)
            time.sleep(0.02)
        raise TimeoutError("roost did not log \"server ready\" within %d s" % timeout)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("roost did not stop within 15 s of SIGTERM")
        self.log.close()
        status = self.proc.returncode
        self.proc = None
        return status

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def connect(self, listener, tls=False, timeout=10):
        s = socket.create_connection((self.addr, self.ports[listener]), timeout=timeout)
        if tls:
            s = client_tls_context().wrap_socket(s)
        return s


@pytest.fixture
def make_roost(tmp_path, certificate):
    servers = []

    def factory(extra=None, users=((DEMO_USER, DEMO_PASSWORD),), start=True, addr="127.0.0.1",
                ports=None):
        workdir = tempfile.mkdtemp(dir=str(tmp_path))
        r = Roost(workdir, certificate[0], certificate[1], extra, addr=addr, ports=ports)
        for address, password in users:
            r.add_user(address, password)
        servers.append(r)
        return r.start() if start else r

    yield factory
    problems = []
    for r in servers:
        status = r.stop()
        if not os.path.exists(r.log_path):
            continue
        log = r.log_text()
        if status not in (None, 0):
            problems.append("roost exited with status %s\n%s" % (status, log[-3000:]))
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer"):
            if marker in log:
                problems.append("sanitizer report in roost's log:\n%s" % log[-6000:])
                break
    if problems:
        pytest.fail("\n".join(problems))


@pytest.fixture
def roost_server(make_roost):
    return make_roost()


class LineClient:
    """A raw socket client for line protocols: exact bytes out, lines in."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self, timeout=10):
        self.sock.settimeout(timeout)
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until(self, prefix, timeout=10):
        """Lines up to and including the first that starts with prefix."""
        lines = []
        while True:
            l = self.line(timeout)
            lines.append(l)
            if l.startswith(prefix):
                return lines

    def silent(self, wait=0.5):
        """True when nothing arrives within wait seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError, ssl.SSLWantReadError):
            return True
        self.buf += data
        return False

    def closed(self, wait=5):
        """True when the server closes the connection within wait seconds."""
        self.sock.settimeout(wait)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True

    def starttls(self):
        self.sock = client_tls_context().wrap_socket(self.sock)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class SmtpClient(LineClient):
    """LineClient plus whole SMTP replies (multi-line "250-" continuations)."""

    def reply(self, timeout=10):
        lines = []
        while True:
            l = self.line(timeout)
            lines.append(l)
            if len(l) < 4 or l[3:4] != b"-":
                return int(l[:3]), lines

    def cmd(self, line, timeout=10):
        self.send(line + b"\r\n")
        return self.reply(timeout)


@pytest.fixture
def line_client():
    clients = []

    def factory(sock):
        c = LineClient(sock)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.close()


def process_uids(pid):
    """The real, effective, saved and filesystem uids of a process."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def child_pids(pid):
    """The processes whose parent is pid, read from /proc (no ps on a minimal system)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent pid follows it.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


@pytest.fixture
def traversable_tmp():
    """A directory under /tmp that other users (run_as) may pass through; pytest's own
    folders are 0700."""
    d = tempfile.mkdtemp(prefix="roost-", dir="/tmp")
    os.chmod(d, 0o711)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wait_until(predicate, timeout=10.0):
    """Polls predicate until it holds or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
