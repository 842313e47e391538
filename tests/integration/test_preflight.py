"""The check that runs before the suite (preflight.py) names the Debian package for every
missing program or feature, against a PATH of stand-in programs."""
import os
import stat

import preflight

GOOD_OUTPUT = {
    "swaks": "=== TLS supported\n=== Basic AUTH supported\n",
    "curl": "curl 7.88.1\nProtocols: http https imap imaps pop3 pop3s smtp\n"
            "Features: IPv6 SSL\n",
}


def stand_ins(directory, output=None, leave_out=()):
    """One shell script per program preflight looks for, printing output[name]."""
    output = dict(GOOD_OUTPUT, **(output or {}))
    for program, _, _, _ in preflight.PROGRAMS:
        if program in leave_out:
            continue
        path = os.path.join(directory, program)
        with open(path, "w") as f:
            f.write("#!/bin/sh\ncat <<'END'\n%sEND\n" % output.get(program, program + " 1.0\n"))
        os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return directory


def test_complete_machine_has_no_problems(tmp_path):
    assert preflight.problems(path=stand_ins(str(tmp_path))) == []


def test_swaks_without_net_ssleay_names_the_package(tmp_path):
    path = stand_ins(str(tmp_path), {
        "swaks": "=== Basic AUTH supported\n*** TLS not available: requires Net::SSLeay\n"})
    found = preflight.problems(path=path)
    assert len(found) == 1, found
    assert "swaks cannot do TLS" in found[0] and "requires Net::SSLeay" in found[0]
    assert preflight.packages(found) == ["libnet-ssleay-perl"]


def test_missing_programs_name_their_packages(tmp_path):
    path = stand_ins(str(tmp_path), leave_out=("dnsmasq", "mbsync", "swaks"))
    found = preflight.problems(path=path)
    assert preflight.packages(found) == ["dnsmasq-base", "isync", "swaks"], found
    assert any(l.startswith("dnsmasq is not installed") for l in found)


def test_curl_without_pop3_is_reported(tmp_path):
    path = stand_ins(str(tmp_path), {"curl": "Protocols: http https imap\nFeatures: SSL\n"})
    found = preflight.problems(path=path)
    assert found == ["curl lacks pop3, needed for IMAP URL and POP3 client tests: "
                     "apt-get install curl"]
