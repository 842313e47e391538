#!/bin/sh
# Installs the Debian packages Roost needs to build, run and test, when any is missing.
# Idempotent: a machine that has them all gets only a quick dpkg check.
set -eu

# Packages come without their recommendations (below), so what a test tool needs for a feature
# the tests use is listed here too: swaks does STARTTLS only with libnet-ssleay-perl. The
# integration suite checks every tool before its first test (tests/integration/preflight.py);
# keep the two lists in step.
PACKAGES="build-essential pkg-config clang libevent-dev libssl-dev libsqlite3-dev libinih-dev
libc-ares-dev libcrypt-dev zlib1g-dev libcmocka-dev python3 python3-pytest python3-pytest-xdist openssl curl swaks
libnet-ssleay-perl libclang-rt-14-dev fetchmail dnsmasq-base isync mount
dpkg-dev adduser systemd nodejs clamav-daemon libpsl-dev publicsuffix python3-dkim python3-authres
bogofilter prometheus"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Debian's npm is its own package; some nodejs builds bring npm along and conflict with it.
if ! command -v npm >/dev/null 2>&1; then
	missing="$missing npm"
fi

if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		SUDO="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $missing
fi

# The real-client CONDSTORE/QRESYNC test drives imapflow from the npm registry, at the version
# tests/node/package.json pins (one that runs on Debian's nodejs).
node_dir="$(dirname "$0")/../tests/node"
if [ ! -d "$node_dir/node_modules/imapflow" ]; then
	echo "deps: npm install in tests/node"
	npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error
fi
