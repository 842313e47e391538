#!/bin/sh
# Reads the #include lines of src/ and fails on
# - a forbidden direction: a folder that includes a layer it may not depend on (the table of
#   docs/ARCHITECTURE.md);
# - a private header: another folder's header other than its public one, X/X.h;
# - a reserved library: libevent, OpenSSL or SQLite outside the layers that wrap them.
set -eu
cd "$(dirname "$0")/.."

allowed() {
	case "$1" in
	core) echo "core" ;;
	config) echo "core config" ;;
	tls) echo "core config tls" ;;
	net) echo "core config tls net" ;;
	mime) echo "core config mime" ;;
	auth) echo "core config auth" ;;
	store) echo "core config mime store" ;;
	dns) echo "core config dns" ;;
	queue) echo "core config net mime dns mailauth queue" ;;
	delivery) echo "core config mime auth store queue delivery" ;;
	virus) echo "core config delivery virus" ;;
	mailauth) echo "core config mime dns delivery mailauth" ;;
	spam) echo "core config mime dns store delivery spam" ;;
	smtp) echo "core config net mime auth delivery smtp" ;;
	imap) echo "core config net mime auth store imap" ;;
	pop3) echo "core config net auth store pop3" ;;
	http) echo "core config tls http" ;;
	cli) echo "*" ;;
	*) echo "" ;;
	esac
}

# Headers of a folder that another folder may include besides X/X.h, each for a reason:
# - net/client.h, from queue/ only: the blocking client of the queue's delivery threads. It is
#   kept out of net.h on purpose, so that no protocol session can block its event loop.
# - delivery/check.h, from the layers whose checks look at a message before it is stored
#   (virus/, mailauth/, spam/): the check interface, kept apart so that a check does not see
#   the transaction.
private_header_allowed() {
	case "$1:$2" in
	queue:net/client.h) return 0 ;;
	virus:delivery/check.h | mailauth:delivery/check.h | spam:delivery/check.h) return 0 ;;
	cli:delivery/check.h) return 0 ;;
	*) return 1 ;;
	esac
}

# Reserved libraries a layer may include: an entry ending in / allows the whole family.
# http runs libevent's own HTTP server (evhttp) and wraps its TLS connections in
# bufferevent_openssl with an SSL object from tls/, as net does.
# auth computes SCRAM-SHA-256 (RFC 7677) and the login cache's keyed hashes with OpenSSL's
# digests, HMAC and random bytes, never its TLS.
libraries_allowed() {
	case "$1" in
	tls) echo "openssl/" ;;
	net) echo "event2/ openssl/ssl.h openssl/err.h" ;;
	http) echo "event2/ openssl/ssl.h" ;;
	auth) echo "sqlite3.h openssl/evp.h openssl/hmac.h openssl/rand.h openssl/sha.h" ;;
	store) echo "sqlite3.h" ;;
	mailauth) echo "openssl/evp.h openssl/pem.h openssl/bio.h openssl/x509.h" ;;
	cli) echo "*" ;;
	*) echo "" ;;
	esac
}

# Files with a reserved library beyond their layer's: none today.
library_file_allowed() {
	return 1
}

library_ok() { # layer library
	for entry in $(libraries_allowed "$1"); do
		case "$entry" in
		"*") return 0 ;;
		*/) case "$2" in "$entry"*) return 0 ;; esac ;;
		*) [ "$2" = "$entry" ] && return 0 ;;
		esac
	done
	return 1
}

status=0
for f in $(find src -name '*.c' -o -name '*.h' | sort); do
	layer=$(echo "$f" | cut -d/ -f2)
	ok=$(allowed "$layer")
	# Relative includes of another folder: "../X/h.h" (from src/L/) or "../../X/h.h" (deeper).
	for header in $(grep -oE '^#include "(\.\./)+[a-z_]+/[a-z_0-9]+\.h"' "$f" |
			sed -E 's/^#include "(\.\.\/)+//; s/"$//' | sort -u); do
		dep=${header%%/*}
		[ "$dep" = "$layer" ] && continue
		case " $ok " in
		" * " | *" $dep "*) ;;
		*)
			echo "layer violation: $f ($layer) includes $dep"
			status=1
			;;
		esac
		if [ "$header" != "$dep/$dep.h" ] && ! private_header_allowed "$layer" "$header"; then
			echo "layer violation: $f includes $header, not $dep's public header $dep/$dep.h"
			status=1
		fi
	done
	for lib in $(grep -oE '^#include <(event2/|openssl/|sqlite3)[^>]*>' "$f" |
		     sed -E 's/^#include <//; s/>$//' | sort -u); do
		if ! library_ok "$layer" "$lib" && ! library_file_allowed "$f"; then
			echo "layer violation: $f ($layer) includes <$lib>, reserved to another layer"
			status=1
		fi
	done
done
[ $status -eq 0 ] && echo "layers: ok"
exit $status
