"""What the integration and durability tests need from the machine, checked once before the
first test: every external program (and the features of it a test uses) and every Python
module, each with the Debian package that provides it.

A missing piece used to show up minutes into a run as one confusing test failure (swaks
without Net::SSLeay prints "TLS not available" and the STARTTLS test fails) or as a silent
skip. `conftest.pytest_sessionstart` stops the run at once instead, naming the packages;
`scripts/deps.sh` installs the same list.
"""
import importlib.util
import os
import shutil
import subprocess

# Where Debian puts daemons such as dnsmasq; not always on a user's PATH.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def _run(binary, args):
    try:
        r = subprocess.run([binary] + args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    return r.returncode, r.stdout + r.stderr


def _swaks_tls(binary):
    """swaks --support says "TLS supported", or "TLS not available: requires Net::SSLeay"."""
    _, out = _run(binary, ["--support"])
    for line in out.splitlines():
        if "TLS" in line and "supported" in line and "not" not in line:
            return None
    return "swaks cannot do TLS (`swaks --support`: %s)" % (
        next((l.strip() for l in out.splitlines() if "TLS" in l), "no TLS line"))


def _curl_protocols(binary):
    _, out = _run(binary, ["--version"])
    protocols, features = set(), set()
    for line in out.splitlines():
        if line.startswith("Protocols:"):
            protocols = set(line.split()[1:])
        elif line.startswith("Features:"):
            features = set(line.split()[1:])
    missing = sorted({"imap", "pop3"} - protocols)
    if missing or "SSL" not in features:
        return "curl lacks %s" % ", ".join(missing + ([] if "SSL" in features else ["SSL"]))
    return None


def _version_runs(*args):
    def check(binary):
        code, out = _run(binary, list(args))
        if code is None or code > 1:
            return "`%s %s` failed: %s" % (os.path.basename(binary), " ".join(args),
                                           out.strip()[:200])
        return None
    return check


def _imapflow_installed(binary):
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
    if os.path.isdir(os.path.join(here, "node_modules", "imapflow")):
        return None
    return "imapflow is not installed in tests/node (scripts/deps.sh runs npm install there)"


# program, Debian package, what uses it, extra check (None: being there is enough)
PROGRAMS = [
    ("openssl", "openssl", "test certificates, DKIM checks", _version_runs("version")),
    ("curl", "curl", "IMAP URL and POP3 client tests", _curl_protocols),
    ("swaks", "swaks", "SMTP submission over STARTTLS", None),
    ("swaks", "libnet-ssleay-perl", "SMTP submission over STARTTLS", _swaks_tls),
    ("mbsync", "isync", "IMAP synchronisation test", _version_runs("--version")),
    ("fetchmail", "fetchmail", "POP3 client test", _version_runs("--version")),
    ("dnsmasq", "dnsmasq-base", "DNS for the queue federation tests", _version_runs("--version")),
    ("mount", "mount", "low-disk tests on a small tmpfs", None),
    ("umount", "mount", "low-disk tests on a small tmpfs", None),
    ("dpkg-shlibdeps", "dpkg-dev", "make deb and the package test", None),
    ("adduser", "adduser", "the package's postinst (package test)", None),
    ("systemd-analyze", "systemd", "the package test's check of the unit", None),
    ("node", "nodejs", "the imapflow CONDSTORE/QRESYNC client test", _imapflow_installed),
    ("clamd", "clamav-daemon", "virus scanning tests", _version_runs("--version")),
    ("promtool", "prometheus", "the /metrics exposition format check", _version_runs("--version")),
]

# Python modules beyond pytest are the standard library, but Debian splits some of it out.
MODULES = [
    ("pytest", "python3-pytest"),
    ("xdist", "python3-pytest-xdist"),  # `make integration` runs the tests in parallel
    ("ssl", "libpython3-stdlib"),
    ("sqlite3", "libpython3-stdlib"),
    ("imaplib", "libpython3-stdlib"),
    ("poplib", "libpython3-stdlib"),
    ("smtplib", "libpython3-stdlib"),
    ("dkim", "python3-dkim"),  # an independent DKIM signer for the mailauth tests
    ("nacl", "python3-nacl"),  # its ed25519-sha256
    ("authres", "python3-authres"),  # what python3-dkim needs for ARC
]


def find_program(name, path=None):
    search = path if path is not None else os.pathsep.join(
        [os.environ.get("PATH", os.defpath)] + list(SBIN_DIRS))
    return shutil.which(name, path=search)


def problems(path=None):
    """One line per missing piece: what is wrong, what needs it, the package to install."""
    out = []
    for program, package, used_by, check in PROGRAMS:
        binary = find_program(program, path)
        if binary is None:
            if not any(p.startswith(program + " ") for p in out):
                out.append("%s is not installed, needed for %s: apt-get install %s"
                           % (program, used_by, package))
            continue
        reason = check(binary) if check else None
        if reason:
            out.append("%s, needed for %s: apt-get install %s" % (reason, used_by, package))
    for module, package in MODULES:
        if importlib.util.find_spec(module) is None:
            out.append("Python module %s is missing: apt-get install %s" % (module, package))
    return out


def packages(lines):
    """The package names of problems(), for one apt-get line."""
    return sorted({l.rsplit("apt-get install ", 1)[1] for l in lines})
