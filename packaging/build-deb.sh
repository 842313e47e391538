#!/bin/sh
# `make deb`: builds build/deb/roost_VERSION-1_ARCH.deb from a staged `make install` tree with
# dpkg-deb (no debhelper). Depends comes from dpkg-shlibdeps on the staged binary, so it names
# the library packages (and versions) the binary was really linked against.
# Usage: packaging/build-deb.sh BINARY OUTDIR
set -eu
cd "$(dirname "$0")/.."

BINARY=$1
OUTDIR=$2
VERSION=$(sed -n 's/^#define ROOST_VERSION "\(.*\)"$/\1/p' src/core/core.h)-1
ARCH=$(dpkg --print-architecture)
STAGE=$OUTDIR/stage
WORK=$OUTDIR/shlibs

rm -rf "$STAGE" "$WORK"
mkdir -p "$STAGE/DEBIAN" "$WORK/debian"
make --no-print-directory install-files ROOST_BINARY="$BINARY" DESTDIR="$STAGE" PREFIX=/usr \
	SYSCONFDIR=/etc UNITDIR=/lib/systemd/system >/dev/null
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
	"$STAGE/usr/sbin/roost"

# dpkg-shlibdeps wants a source package's debian/control to look at; give it a minimal one.
printf 'Source: roost\n\nPackage: roost\nArchitecture: any\n' > "$WORK/debian/control"
STAGE_ABS=$(cd "$STAGE" && pwd)
SHLIBS=$(cd "$WORK" && dpkg-shlibdeps -O "$STAGE_ABS/usr/sbin/roost" | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "build-deb: dpkg-shlibdeps found no libraries" >&2; exit 1; }

gzip -9n < packaging/debian/changelog > "$STAGE/usr/share/doc/roost/changelog.Debian.gz"
install -m 0644 packaging/debian/copyright "$STAGE/usr/share/doc/roost/copyright"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@DEPENDS@/$SHLIBS, adduser/" \
	-e "s/@SIZE@/$SIZE/" packaging/debian/control.in > "$STAGE/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$STAGE/DEBIAN/conffiles"
for script in postinst prerm postrm; do
	install -m 0755 "packaging/debian/$script" "$STAGE/DEBIAN/$script"
done
(cd "$STAGE" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z |
	xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums"

DEB=$OUTDIR/roost_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
rm -rf "$WORK"
echo "$DEB"
