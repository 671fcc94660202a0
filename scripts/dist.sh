#!/usr/bin/env bash
# make dist: the installable package, built from this tree: dist/keysat-webhooks_VERSION_ARCH.deb
# and dist/keysat-webhooks_VERSION_ARCH.tar.gz with the same files (the tarball unpacks at /).
# One program under three names (issue 24): /usr/bin/keysat-webhooks, and keysat-enqueue and
# keysat-deliver as relative symbolic links to it (make install-files makes them).
# The program carries the Swift runtime (--static-swift-stdlib): a target host needs no toolchain,
# only libsqlite3-0, libcurl4 and libssl3 (libcurl and libcrypto are loaded with dlopen, so no
# ELF dependency names them: the Depends line does, with Debian 13's names, libcurl4t64 and
# libssl3t64, as alternatives). libpq5, loaded with dlopen only for a PostgreSQL database, is
# recommended (packaging/control). The one package serves Debian 12 and 13 (make check-dist).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
swift=${SWIFT:-swift}
$swift build $(scripts/release-flags) >&2
bin=$($swift build $(scripts/release-flags) --show-bin-path)
scripts/link-programs "$bin"
version=$("$bin/keysat-webhooks" --version)
arch=$(dpkg --print-architecture)
name="keysat-webhooks_${version}_${arch}"
# Who answers for this build of the package (Debian policy 5.6.2); set it for your own builds.
maintainer=${MAINTAINER:-keysat-webhooks maintainers <webhooks@keysat.example>}
out=dist
stage="$out/$name"
rm -rf "$stage" "$out/$name.deb" "$out/$name.tar.gz"
mkdir -p "$out"

# The same layout `make install` makes, with PREFIX=/usr, units under /lib/systemd/system
# (Debian 12's place; on Debian 13's merged /usr the same files are in /usr/lib/systemd/system),
# and the configuration file under /etc.
make --no-print-directory install-files DESTDIR="$PWD/$stage" PREFIX=/usr UNITDIR="$PWD/$stage/lib/systemd/system" \
    BIN_SOURCE="$bin" >&2
install -d "$stage/etc/default"
install -m 0644 etc/keysat-webhooks.default "$stage/etc/default/keysat-webhooks"
doc="$stage/usr/share/doc/keysat-webhooks"
# Debian policy 12.3: documentation over 4 kB is compressed; man pages always are.
gzip -9n "$doc/README.md"
gzip -9n "$stage"/usr/share/man/man*/*
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: keysat-webhooks"
    echo
    echo "Files: *"
    echo "Copyright: $(date -u +%Y) The keysat-webhooks authors"
    echo "License: MIT"
    sed -n '3,$p' LICENSE | sed 's/^$/./; s/^/ /'
} > "$doc/copyright"
rm -f "$doc/LICENSE"
{
    echo "keysat-webhooks ($version) unstable; urgency=medium"
    echo
    echo "  * Release $version; see README.md.gz for what it does."
    echo
    echo " -- $maintainer  $(git log -1 --format=%aD 2>/dev/null || date -R)"
} | gzip -9n > "$doc/changelog.gz"

# A completion file is sourced, not run (lintian: bash-completion-with-hashbang).
sed -i '1{/^#!/d}' "$stage/usr/share/bash-completion/completions/keysat-webhooks"

# The tarball: the same files, without the package's own metadata.
tar --owner=0 --group=0 --numeric-owner --sort=name -C "$stage" -czf "$out/$name.tar.gz" .

install -d "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
# Issue 24: the whole package installs at most 12 MiB (Installed-Size, KiB, as dpkg counts it).
# The stage is left in place to look at.
limit=12288
if [ "$size" -gt "$limit" ]; then
    echo "dist: error: the package would install $size KiB, over the limit of $limit KiB (12 MiB, issue 24);" \
        "see what grew with: du -ak $stage | sort -n | tail" >&2
    rm -f "$out/$name.tar.gz"
    exit 1
fi
# libstdc++ is linked statically when the build found its archive (scripts/release-flags): the
# package then does not ask for the shared library. Decided from what the binaries need.
static_libstdcxx=
needed=$(readelf -d "$stage"/usr/bin/keysat-*)
case $needed in *'libstdc++'*) ;; *) static_libstdcxx=1 ;; esac
sed -e "s/@VERSION@/$version/" -e "s/@MAINTAINER@/$maintainer/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    ${static_libstdcxx:+-e 's/, *libstdc++6//'} packaging/control > "$stage/DEBIAN/control"
install -m 0755 packaging/postinst packaging/prerm packaging/postrm "$stage/DEBIAN/"
echo /etc/default/keysat-webhooks > "$stage/DEBIAN/conffiles"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
dpkg-deb --root-owner-group --build "$stage" "$out/$name.deb" >&2
rm -rf "$stage"
echo "$out/$name.deb"
echo "$out/$name.tar.gz"
