#!/bin/bash
# Peer for Roost's benchmarks (bench/compare.sh): sets up a private Dovecot on loopback only.
#   setup-dovecot.sh [DIR]        DIR defaults to /tmp/roost-bench/dovecot
# Idempotent: installs the Debian packages when missing and (re)writes DIR/dovecot.conf and
# DIR/users; existing mail under DIR/mail is kept (delete it by hand for a fresh store).
# Ports can be changed with IMAP_PORT, POP3_PORT, LMTP_PORT (defaults 10143, 10110, 10024);
# MAX_CONNS (2000) is how many IMAP or POP3 sessions may be open at once.
# Start/stop with start-dovecot.sh / stop-dovecot.sh (pidfile DIR/dovecot.pid).
set -euo pipefail
umask 022   # the dovecot, vmail and postfix users must be able to walk the folders
DIR=$(realpath -m "${1:-/tmp/roost-bench/dovecot}")
IMAP_PORT=${IMAP_PORT:-10143} POP3_PORT=${POP3_PORT:-10110} LMTP_PORT=${LMTP_PORT:-10024}
VMAIL=vmail   # the one system user that owns every mailbox
NUSERS=100
MAX_CONNS=${MAX_CONNS:-2000}
# auth and anvil take one client per login process of every protocol.
CLIENT_LIMIT=$(( MAX_CONNS * 5 > 10000 ? MAX_CONNS * 5 : 10000 ))

need=()
for p in dovecot-imapd dovecot-pop3d dovecot-lmtpd; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null
fi

id -u "$VMAIL" >/dev/null 2>&1 ||
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$VMAIL"
uid=$(id -u "$VMAIL") gid=$(id -g "$VMAIL")

mkdir -p "$DIR"/{run,state,mail}
chmod 755 "$DIR"
chown "$uid:$gid" "$DIR/mail"

# passwd-file: user:{PLAIN}password:uid:gid::home
: > "$DIR/users.tmp"
for i in $(seq 1 $NUSERS); do
  echo "user$i:{PLAIN}pass:$uid:$gid::$DIR/mail/user$i::" >> "$DIR/users.tmp"
done
chown root:dovecot "$DIR/users.tmp"; chmod 640 "$DIR/users.tmp"
mv "$DIR/users.tmp" "$DIR/users"

cat > "$DIR/dovecot.conf" <<EOF
# Private benchmark instance; run with: dovecot -F -c $DIR/dovecot.conf
# Everything not set here (fsync, caching, login process mode) is at Dovecot's defaults.
instance_name = roost-bench-dovecot
base_dir = $DIR/run
state_dir = $DIR/state
log_path = $DIR/dovecot.log
listen = 127.0.0.1
protocols = imap pop3 lmtp

ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# "user1@peer.test" (LMTP recipients) and "user1" (IMAP/POP3 logins) are the same user.
auth_username_format = %Ln
passdb {
  driver = passwd-file
  args = $DIR/users
}
userdb {
  driver = passwd-file
  args = $DIR/users
}
first_valid_uid = $uid
last_valid_uid = $uid
mail_location = maildir:~/Maildir

namespace inbox {
  inbox = yes
  mailbox Drafts {
    special_use = \Drafts
  }
  mailbox Junk {
    special_use = \Junk
  }
  mailbox Trash {
    special_use = \Trash
  }
  mailbox Sent {
    special_use = \Sent
  }
}

# Limits raised so that 1000+ clients can stay connected at once (defaults: process limit
# 1024 for imap and 100 for the rest, 1000 clients per process, 10 connections per user+IP).
default_process_limit = $MAX_CONNS
default_client_limit = $CLIENT_LIMIT
service imap {
  process_limit = $MAX_CONNS
}
protocol imap {
  mail_max_userip_connections = $MAX_CONNS
}
protocol pop3 {
  mail_max_userip_connections = $MAX_CONNS
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $POP3_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $LMTP_PORT
  }
}
EOF

doveconf -c "$DIR/dovecot.conf" -n >/dev/null   # fails loudly on a config error
echo "dovecot config written to $DIR/dovecot.conf (imap $IMAP_PORT, pop3 $POP3_PORT, lmtp $LMTP_PORT)"
