"""Installation as a packaged daemon: `make install` (PREFIX, DESTDIR) lays out the binary,
the systemd unit and the config; `make deb` builds a package whose Depends name the libraries
the binary links; installed for real with dpkg (root only), it creates the user roost and
/var/lib/roost, `roost check` reads /etc/roost/roost.conf, and `roost serve` runs as roost and
answers `roost status`; `dpkg --purge` removes it again.

The dpkg part changes the machine, so it takes a lock (parallel runs wait for each other),
refuses to run where roost is installed or /etc/roost or /var/lib/roost exist, and puts back
what it changed: the package, /var/lib/roost, and the user roost if it made it.
`make packaging-test` passes the package it built in ROOST_DEB; without it one is built here.
"""
import configparser
import fcntl
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import free_port, make_certificate, wait_for_port, wait_until

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOCK_PATH = "/run/lock/roost-packaging-test.lock"
UNIT = "/lib/systemd/system/roost.service"


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(args, **kw)


# ---------------- make install ----------------

def make_install(destdir, prefix):
    r = run(["make", "--no-print-directory", "-C", REPO, "install", "DESTDIR=" + destdir,
             "PREFIX=" + prefix])
    assert r.returncode == 0, r.stdout + r.stderr


def test_make_install_lays_out_binary_unit_config_and_docs(tmp_path):
    dest = str(tmp_path / "stage")
    make_install(dest, "/usr")
    binary = dest + "/usr/sbin/roost"
    assert os.stat(binary).st_mode & 0o777 == 0o755
    version = run([binary, "version"])
    assert version.returncode == 0 and version.stdout.startswith("roost ")
    unit = open(dest + "/usr/lib/systemd/system/roost.service").read()
    assert "ExecStart=/usr/sbin/roost --config /etc/roost/roost.conf serve\n" in unit
    assert "@" not in re.sub(r"(?m)^#.*$", "", unit).replace("@system-service", "")
    conf = dest + "/etc/roost/roost.conf"
    assert os.stat(conf).st_mode & 0o777 == 0o640
    assert os.path.exists(dest + "/usr/share/doc/roost/README.md")
    # The shipped config is valid as it is, once the user roost exists (check looks it up).
    check = run([binary, "--config", conf, "check"])
    try:
        pwd.getpwnam("roost")
    except KeyError:
        assert check.returncode == 1 and "run_as" in check.stderr, check.stderr
    else:
        assert check.returncode == 0, check.stderr
        assert "run_as = roost" in check.stdout and "data_dir = /var/lib/roost" in check.stdout


def test_make_install_keeps_an_existing_config_and_follows_prefix(tmp_path):
    dest = str(tmp_path / "stage")
    conf = dest + "/etc/roost/roost.conf"
    os.makedirs(os.path.dirname(conf))
    with open(conf, "w") as f:
        f.write("[server]\nhostname = mine.example\n")
    make_install(dest, "/usr/local")
    assert open(conf).read() == "[server]\nhostname = mine.example\n"
    assert os.access(dest + "/usr/local/sbin/roost", os.X_OK)
    unit = open(dest + "/usr/local/lib/systemd/system/roost.service").read()
    assert "ExecStart=/usr/local/sbin/roost --config /etc/roost/roost.conf serve\n" in unit


def test_unit_file_is_hardened_and_reloads_with_hup(tmp_path):
    dest = str(tmp_path / "stage")
    make_install(dest, "/usr")
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(dest + "/usr/lib/systemd/system/roost.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["NotifyAccess"] == "all"  # READY=1 comes from the child under privsep
    assert service["ExecReload"].endswith("/roost --config /etc/roost/roost.conf reload")
    assert service["ExecReload"].startswith("/usr/")
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == "/var/lib/roost"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert set(service["CapabilityBoundingSet"].split()) == {
        "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE",
        "CAP_KILL"}
    assert unit["Install"]["WantedBy"] == "multi-user.target"


# ---------------- make deb ----------------

@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    given = os.environ.get("ROOST_DEB")
    if given:
        return given
    if shutil.which("dpkg-deb") is None or shutil.which("dpkg-shlibdeps") is None:
        pytest.skip("dpkg-deb and dpkg-shlibdeps (dpkg-dev) are needed to build the package")
    out = str(tmp_path_factory.mktemp("deb"))
    r = run(["make", "--no-print-directory", "-C", REPO, "deb", "DEB_DIR=" + out])
    assert r.returncode == 0, r.stdout + r.stderr
    built = [os.path.join(out, n) for n in os.listdir(out) if n.endswith(".deb")]
    assert len(built) == 1, built
    return built[0]


def deb_field(path, field):
    r = run(["dpkg-deb", "-f", path, field])
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def library_packages(binary):
    """The Debian package of every library the binary names in NEEDED."""
    needed = re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", binary]).stdout)
    cache = run(["ldconfig", "-p"]).stdout
    packages = {}
    for lib in needed:
        m = re.search(r"^\s*%s \(.*x86-64.*\) => (\S+)$" % re.escape(lib), cache, re.M) or \
            re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(lib), cache, re.M)
        assert m, "no path for %s" % lib
        owner = run(["dpkg", "-S", os.path.realpath(m.group(1))])
        if owner.returncode != 0:
            owner = run(["dpkg", "-S", m.group(1)])
        assert owner.returncode == 0, owner.stderr
        packages[lib] = owner.stdout.split(":")[0].strip()
    return packages


def test_deb_depends_on_every_linked_library_and_marks_the_config(deb, tmp_path):
    assert deb_field(deb, "Package") == "roost"
    depends = {d.strip().split()[0] for d in deb_field(deb, "Depends").split(",")}
    extract = str(tmp_path / "x")
    assert run(["dpkg-deb", "-x", deb, extract]).returncode == 0
    packages = library_packages(extract + "/usr/sbin/roost")
    assert "libssl.so.3" in packages and "libsqlite3.so.0" in packages
    missing = {lib: pkg for lib, pkg in packages.items() if pkg not in depends}
    assert not missing, "Depends lacks %s" % missing
    assert "adduser" in depends
    control = str(tmp_path / "c")
    assert run(["dpkg-deb", "-e", deb, control]).returncode == 0
    assert open(control + "/conffiles").read().split() == ["/etc/roost/roost.conf"]
    for script in ("postinst", "prerm", "postrm"):
        assert os.stat(os.path.join(control, script)).st_mode & 0o111
        assert run(["sh", "-n", os.path.join(control, script)]).returncode == 0
    listing = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/sbin/roost", "./lib/systemd/system/roost.service",
                 "./etc/roost/roost.conf", "./usr/share/doc/roost/copyright"):
        assert re.search(r" %s$" % re.escape(path), listing, re.M), path


# ---------------- the package installed with dpkg (root) ----------------

def package_installed():
    r = run(["dpkg-query", "-W", "-f=${Status}", "roost"])
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def installed(deb):
    if os.geteuid() != 0:
        pytest.skip("installing the .deb with dpkg -i needs root")
    os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
    lock = open(LOCK_PATH, "w")
    deadline = time.monotonic() + 600
    while True:  # another run of this file installs the same package: wait for it
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail("%s stayed locked for 10 minutes" % LOCK_PATH)
            time.sleep(0.5)
    try:
        if package_installed() or os.path.exists("/etc/roost") or \
                os.path.exists("/var/lib/roost"):
            pytest.skip("roost is installed or /etc/roost or /var/lib/roost exist on this "
                        "machine; the package test leaves them alone")
        user_was_there = user_exists("roost")
        r = run(["dpkg", "-i", deb], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        try:
            assert r.returncode == 0, r.stdout + r.stderr
            yield
        finally:
            purge = run(["dpkg", "--purge", "roost"])
            assert purge.returncode == 0, purge.stdout + purge.stderr
            assert not package_installed()
            assert not os.path.exists("/etc/roost")
            shutil.rmtree("/var/lib/roost", ignore_errors=True)  # purge keeps mail
            if not user_was_there and user_exists("roost"):
                run(["deluser", "--system", "--quiet", "roost"])
    finally:
        lock.close()


def test_installed_files_user_and_ownership(installed):
    assert package_installed()
    st = os.stat("/usr/sbin/roost")
    assert stat.S_ISREG(st.st_mode) and st.st_mode & 0o777 == 0o755
    user = pwd.getpwnam("roost")
    assert user.pw_uid < 1000, "roost must be a system user"
    assert user.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert grp.getgrgid(user.pw_gid).gr_name == "roost"
    data = os.stat("/var/lib/roost")
    assert (data.st_uid, data.st_gid, data.st_mode & 0o777) == (user.pw_uid, user.pw_gid, 0o700)
    conf = os.stat("/etc/roost/roost.conf")
    assert (conf.st_uid, conf.st_gid, conf.st_mode & 0o777) == (0, user.pw_gid, 0o640)
    assert os.path.exists(UNIT)


def test_installed_unit_passes_systemd_analyze(installed):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze (package systemd) is not installed")
    r = run(["systemd-analyze", "verify", UNIT])
    complaints = [l for l in (r.stdout + r.stderr).splitlines() if "roost.service" in l]
    assert r.returncode == 0 and not complaints, r.stdout + r.stderr


def test_installed_check_reads_the_packaged_config(installed, tmp_path):
    # From a folder without ./roost.conf, roost falls back to /etc/roost/roost.conf.
    r = run(["/usr/sbin/roost", "check"], cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "from /etc/roost/roost.conf" in r.stdout
    assert "run_as = roost" in r.stdout


def loopback_override(path, cert, key):
    """The packaged config with its listeners moved to free loopback ports, and a certificate
    (root's alone, as Let's Encrypt leaves them) as step 3 of the README sets one."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str
    conf.read("/etc/roost/roost.conf")
    conf["tls"] = {"cert": cert, "key": key}
    ports = {name: free_port() for name in ("smtp", "submission", "imap", "pop3")}
    conf["listen"] = {name: "127.0.0.1:%d" % port for name, port in ports.items()}
    conf["dns"] = {"resolvers": "127.0.0.1:9"}  # never the machine's resolver
    with open(path, "w") as f:
        conf.write(f)
    return ports


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid"):
                ids[key] = {int(v) for v in value.split()}
    return ids


def test_installed_serve_runs_as_roost_and_answers_status(installed, tmp_path):
    conf = str(tmp_path / "roost.conf")
    cert, key = make_certificate(str(tmp_path))
    os.chmod(key, 0o600)
    ports = loopback_override(conf, cert, key)
    user = pwd.getpwnam("roost")
    roost = ["/usr/sbin/roost", "--config", conf]
    # The README's step: accounts added by root with the packaged config (the commands
    # become roost themselves; the walk at the end checks they left nothing of root's).
    added = run(["/usr/sbin/roost", "domain", "add", "example.test"], cwd="/")
    assert added.returncode == 0, added.stderr
    made = run(["/usr/sbin/roost", "user", "add", "alice@example.test"], cwd="/",
               input="packaged password\n")
    assert made.returncode == 0, made.stderr
    log = open(str(tmp_path / "serve.log"), "w")
    proc = subprocess.Popen(roost + ["serve"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for port in ports.values():
            wait_for_port(port, proc=proc)
        assert wait_until(lambda: run(roost + ["status"]).returncode == 0), \
            open(str(tmp_path / "serve.log")).read()
        # With TLS and run_as the started process stays root only to re-read the key at a
        # reload; the child serves, and every real, effective, saved and filesystem id of it
        # is roost's: no way back to root.
        with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
            children = [int(p) for p in f.read().split()]
        assert len(children) == 1, children
        server = children[0]
        assert proc_ids(server) == {"Uid": {user.pw_uid}, "Gid": {user.pw_gid}}
        with socket.create_connection(("127.0.0.1", ports["imap"]), timeout=10) as s:
            lines = s.makefile("rb")
            assert lines.readline().startswith(b"* OK")
            out = run(roost + ["status"])
            assert out.returncode == 0
            assert "pid: %d\n" % server in out.stdout
            assert "listener: smtp 127.0.0.1:%d\n" % ports["smtp"] in out.stdout
            assert re.search(r"^sessions: .*imap=1", out.stdout, re.M), out.stdout
            assert "queue: 0\n" in out.stdout
            s.sendall(b"a LOGIN alice@example.test \"packaged password\"\r\n")
            reply = lines.readline()
            while reply.startswith(b"* "):
                reply = lines.readline()
            assert reply.startswith(b"a OK"), reply
        pidfile = os.stat("/var/lib/roost/roost.pid")
        assert pidfile.st_uid == user.pw_uid
        assert open("/var/lib/roost/roost.pid").read().strip() == str(server)
        # What `systemctl reload` sends to the main pid: the key, readable by root alone, is
        # reloaded, and the server stays up.
        proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "certificate reloaded" in
                          open(str(tmp_path / "serve.log")).read())
        assert run(roost + ["status"]).returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert not os.path.exists("/var/lib/roost/roost.pid")
    assert run(roost + ["status"]).returncode == 3
    # Everything the server made in its data directory belongs to roost.
    for top, dirs, files in os.walk("/var/lib/roost"):
        for name in dirs + files:
            assert os.lstat(os.path.join(top, name)).st_uid == user.pw_uid, name
