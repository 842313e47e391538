#!/bin/sh
# `make run`: a working server on localhost with everything under ./var — a development
# config on high ports, a self-signed certificate, the domain localhost and the account
# demo@localhost — then runs it in the foreground. Safe to run again: what exists is kept.
set -eu
cd "$(dirname "$0")/.."

VAR=var
ROOST=build/roost
CONF=$VAR/roost.conf
mkdir -p "$VAR"
chmod 700 "$VAR"

if [ ! -f "$CONF" ]; then
	cat > "$CONF" <<CONF
# Development configuration written by 'make run'. Paths are relative to this file.
[server]
hostname = localhost
data_dir = data

[tls]
cert = cert.pem
key = key.pem

[listen]
smtp = 127.0.0.1:2525
submission = 127.0.0.1:2587
submissions = 127.0.0.1:2465
imap = 127.0.0.1:2143
imaps = 127.0.0.1:2993
pop3 = 127.0.0.1:2110
pop3s = 127.0.0.1:2995
CONF
fi

if [ ! -f "$VAR/cert.pem" ] || [ ! -f "$VAR/key.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
		-keyout "$VAR/key.pem" -out "$VAR/cert.pem" 2>/dev/null
	chmod 600 "$VAR/key.pem"
fi

if ! "$ROOST" --config "$CONF" domain list | grep -qx localhost; then
	"$ROOST" --config "$CONF" domain add localhost
fi
if [ ! -f "$VAR/demo-password" ]; then
	umask 077
	head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$VAR/demo-password"
fi
PASSWORD=$(cat "$VAR/demo-password")
if "$ROOST" --config "$CONF" user list localhost | grep -qx demo@localhost; then
	printf '%s\n' "$PASSWORD" | "$ROOST" --config "$CONF" user passwd demo@localhost
else
	printf '%s\n' "$PASSWORD" | "$ROOST" --config "$CONF" user add demo@localhost
fi

cat <<INFO

  Roost is starting with the development setup in ./var

  account   demo@localhost
  password  $PASSWORD

  IMAPS        127.0.0.1:2993   (IMAP with STARTTLS on 2143)
  POP3S        127.0.0.1:2995   (POP3 with STLS on 2110)
  Submission   127.0.0.1:2465   (implicit TLS; STARTTLS on 2587)
  SMTP (MX)    127.0.0.1:2525

  The certificate is self-signed (var/cert.pem): accept it in your client, or try
    openssl s_client -connect 127.0.0.1:2993
  Stop with Ctrl-C.

INFO
exec "$ROOST" --config "$CONF" serve
