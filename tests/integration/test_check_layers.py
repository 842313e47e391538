"""scripts/check-layers.sh on small made-up trees: the direction of the layers, the one public
header per folder with its explicit exceptions, and the libraries reserved to the layers that
wrap them (libevent, OpenSSL, SQLite). Starts no server."""
import os
import shutil
import subprocess

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "check-layers.sh")


def check(tmp_path, files):
    os.makedirs(tmp_path / "scripts", exist_ok=True)
    shutil.copy(SCRIPT, tmp_path / "scripts" / "check-layers.sh")
    for path, text in files.items():
        p = tmp_path / "src" / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    r = subprocess.run(["sh", str(tmp_path / "scripts" / "check-layers.sh")],
                       capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout


def test_public_headers_and_allowed_libraries_pass(tmp_path):
    code, out = check(tmp_path, {
        "smtp/session.c": '#include "../net/net.h"\n#include "../auth/auth.h"\n',
        "queue/smtpc.c": '#include "../net/client.h"\n',
        "queue/runner.c": '#include "../mailauth/mailauth.h"\n',
        "mailauth/dkim_keys.c": "#include <openssl/evp.h>\n#include <openssl/pem.h>\n",
        "auth/scram.c": "#include <openssl/evp.h>\n#include <openssl/hmac.h>\n",
        "net/conn.c": "#include <event2/event.h>\n#include <openssl/ssl.h>\n",
        "store/local/index.c": '#include "../store.h"\n#include "../../mime/mime.h"\n'
                               "#include <sqlite3.h>\n",
    })
    assert (code, out.strip()) == (0, "layers: ok")


def test_wrong_direction(tmp_path):
    code, out = check(tmp_path, {"store/x.c": '#include "../smtp/smtp.h"\n'})
    assert code == 1 and "src/store/x.c (store) includes smtp" in out, out


def test_private_header_of_another_folder(tmp_path):
    code, out = check(tmp_path, {
        "imap/x.c": '#include "../net/net_internal.h"\n',
        "smtp/y.c": '#include "../net/client.h"\n',  # public to queue/ only
    })
    assert code == 1, out
    assert "src/imap/x.c includes net/net_internal.h, not net's public header" in out, out
    assert "src/smtp/y.c includes net/client.h" in out, out


def test_openssl_beyond_the_layers_that_wrap_it(tmp_path):
    code, out = check(tmp_path, {
        "imap/x.c": "#include <openssl/evp.h>\n",
        "auth/y.c": "#include <openssl/ssl.h>\n",  # hashes yes, TLS no
        "pop3/z.c": "#include <event2/event.h>\n",
    })
    assert code == 1, out
    for name in ("src/imap/x.c (imap) includes <openssl/evp.h>",
                 "src/auth/y.c (auth) includes <openssl/ssl.h>",
                 "src/pop3/z.c (pop3) includes <event2/event.h>"):
        assert name in out, out
