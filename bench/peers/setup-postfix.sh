#!/bin/bash
# Peer for Roost's benchmarks (bench/compare.sh): sets up a private Postfix on loopback only.
#   setup-postfix.sh [DIR]        DIR defaults to /tmp/roost-bench/postfix
# SMTP on 127.0.0.1:$SMTP_PORT (10025) accepts mail for user1..user100@peer.test and hands it to
# the private Dovecot over LMTP (127.0.0.1:$LMTP_PORT, 10024), which writes it into the Maildirs
# made by setup-dovecot.sh. Any other destination is refused: this instance never sends mail out.
# Durability is at Postfix's defaults (queue files are fsync'd before the 250 reply).
# Idempotent: installs the Debian package when missing and rewrites DIR/conf/{main,master}.cf
# (the config directory: postfix -c DIR/conf); the queue is DIR/spool, the log DIR/postfix.log.
# Start/stop with start-postfix.sh / stop-postfix.sh (Postfix's own pidfile, DIR/spool/pid/master.pid).
set -euo pipefail
umask 022   # the dovecot, vmail and postfix users must be able to walk the folders
DIR=$(realpath -m "${1:-/tmp/roost-bench/postfix}")
SMTP_PORT=${SMTP_PORT:-10025} LMTP_PORT=${LMTP_PORT:-10024} DOMAIN=${DOMAIN:-peer.test}
NUSERS=100

if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'ok installed'; then
  export DEBIAN_FRONTEND=noninteractive
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -q >/dev/null && apt-get install -y -q postfix >/dev/null
fi

mkdir -p "$DIR/conf" "$DIR/spool" "$DIR/data"
chmod 755 "$DIR"
chown postfix "$DIR/data"

for i in $(seq 1 $NUSERS); do echo "user$i@$DOMAIN OK"; done > "$DIR/conf/vmailbox"

cat > "$DIR/conf/main.cf" <<EOF
# Private benchmark instance; run with: postfix -c $DIR/conf start
compatibility_level = 3.6
queue_directory = $DIR/spool
data_directory = $DIR/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $DIR/postfix.log
maillog_file_prefixes = $DIR

myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = $DOMAIN
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
biff = no

virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = texthash:$DIR/conf/vmailbox
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
# Nothing leaves this machine: relaying and every non-local destination fail at once.
default_transport = error:this test instance sends no mail out
relay_transport = error:this test instance sends no mail out
EOF

# Debian's services with chroot off (the chroot would need copies of /etc files) and smtpd
# listening only on loopback:SMTP_PORT.
cat > "$DIR/conf/master.cf" <<EOF
127.0.0.1:$SMTP_PORT inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n -  0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n -  - trivial-rewrite
bounce     unix  - - n -  0 bounce
defer      unix  - - n -  0 bounce
trace      unix  - - n -  0 bounce
verify     unix  - - n -  1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n -  - proxymap
proxywrite unix  - - n -  1 proxymap
smtp       unix  - - n -  - smtp
relay      unix  - - n -  - smtp
showq      unix  n - n -  - showq
error      unix  - - n -  - error
retry      unix  - - n -  - error
discard    unix  - - n -  - discard
local      unix  - n n -  - local
virtual    unix  - n n -  - virtual
lmtp       unix  - - n -  - lmtp
anvil      unix  - - n -  1 anvil
scache     unix  - - n -  1 scache
postlog    unix-dgram n - n - 1 postlogd
EOF

postfix -c "$DIR/conf" check
echo "postfix config written to $DIR (smtp 127.0.0.1:$SMTP_PORT -> lmtp 127.0.0.1:$LMTP_PORT)"
