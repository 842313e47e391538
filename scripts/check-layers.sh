#!/bin/sh
# Fails when a source file includes a header from a layer it may not depend on (the direction
# of docs/ARCHITECTURE.md), or when a protocol reaches past net/ and the store API to libevent,
# OpenSSL or SQLite.
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
	queue) echo "core config net mime dns queue" ;;
	delivery) echo "core config mime auth store queue delivery" ;;
	smtp) echo "core config net mime auth delivery smtp" ;;
	imap) echo "core config net mime auth store imap" ;;
	pop3) echo "core config net auth store pop3" ;;
	cli) echo "*" ;;
	*) echo "" ;;
	esac
}

status=0
for f in $(find src -name '*.c' -o -name '*.h' | sort); do
	layer=$(echo "$f" | cut -d/ -f2)
	ok=$(allowed "$layer")
	[ "$ok" = "*" ] && continue
	# Relative includes of another folder: "../X/..." (from src/L/) or "../../X/..." (deeper).
	for dep in $(grep -oE '^#include "(\.\./)+[a-z_]+/' "$f" | sed -E 's/^#include "(\.\.\/)+//; s/\/$//' | sort -u); do
		case " $ok " in
		*" $dep "*) ;;
		*)
			echo "layer violation: $f ($layer) includes $dep"
			status=1
			;;
		esac
	done
	case "$layer" in
	smtp | imap | pop3 | delivery | mime | auth | store | core | config)
		if grep -qE '^#include <(event2/|openssl/ssl|sqlite3)' "$f"; then
			case "$layer:$(grep -oE '^#include <(event2/|openssl/ssl|sqlite3)[^>]*>' "$f" | head -1)" in
			store:*sqlite3* | auth:*sqlite3*) ;;
			*)
				echo "layer violation: $f ($layer) includes a library reserved to another layer"
				status=1
				;;
			esac
		fi
		;;
	esac
done
[ $status -eq 0 ] && echo "layers: ok"
exit $status
