#!/usr/bin/env bash
# The package built here (Debian 12) on Debian 13 (trixie), as its users meet it (run by
# scripts/check-dist.sh, as root): a `debootstrap --variant=minbase trixie` root, no toolchain,
# in which apt installs the .deb and resolves its Depends and Recommends from trixie (libcurl4t64,
# libssl3t64, libsqlite3-0, libpq5: Debian 13 renamed the first two); then, chrooted, what
# check-dist runs on this machine (scripts/check-dist-run.sh: init, endpoint add, enqueue, a
# delivery with its signature checked, the units' and the cron file's command lines as their
# users, two runs on one PostgreSQL queue, served from here) and removal and purge.
# Usage: check-dist-trixie.sh DEB VERSION.
#
# The root is made once and kept outside the clone (CI clones afresh), with the .debs apt
# fetched: ${KEYSAT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/keysat-webhooks}/trixie-{minbase,archives}.
# Each run works on an overlay of it, so the cached root stays as debootstrap left it; its package
# lists are refreshed when a week old. DEBIAN_MIRROR chooses the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-dist: $*" >&2; exit 1; }
in_root_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root DEBIAN_FRONTEND=noninteractive)

# In a mount namespace of its own: the overlay, /dev, /proc and apt's archives are mounted for
# this run only, and vanish with it.
in_namespace() {
    local base=$1 archives=$2 run=$3 deb=$4 version=$5 pg_uri=$6 root=$3/root
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$root"
    mount --rbind /dev "$root/dev"
    mount -t proc proc "$root/proc"
    mount --bind "$archives" "$root/var/cache/apt/archives"
    in_root() { chroot "$root" "${in_root_env[@]}" "$@"; }
    cp "$deb" "$root/tmp/"
    # apt, as a user would: the package's Depends and Recommends resolved from trixie.
    in_root apt-get install -y -qq "/tmp/$(basename "$deb")" > "$run/apt.log" 2>&1 \
        || { cat "$run/apt.log"; fail "apt-get install of the package failed in the Debian 13 root"; }
    local libraries
    libraries=$(in_root dpkg-query -W -f '${Package} ${Version}, ' libcurl4t64 libssl3t64 libsqlite3-0 libpq5) \
        || fail "the Debian 13 root lacks one of libcurl4t64 libssl3t64 libsqlite3-0 libpq5: ${libraries}"
    echo "check-dist: Debian 13: apt installed the package with ${libraries%, }"
    scripts/check-depends.sh "$root"
    [ "$(in_root stat -c '%a %U %G' /var/lib/keysat)" = "2770 keysat keysat" ] || fail "Debian 13: /var/lib/keysat is wrong"
    # The two-host part's passfile, where the chrooted programs can read it.
    if [ -n "$pg_uri" ]; then
        local passfile=${pg_uri#*passfile=}; passfile=${passfile%%&*}
        cp "$passfile" "$root/tmp/pgpass"
        pg_uri=${pg_uri/$passfile//tmp/pgpass}
    fi
    cp scripts/check-dist-run.sh "$root/tmp/"
    mkdir -m 0755 "$root/tmp/check"
    local status=0
    in_root bash /tmp/check-dist-run.sh /tmp/check "$version" "$pg_uri" || status=$?
    [ -s "$root/tmp/check/receiver.pid" ] && kill "$(cat "$root/tmp/check/receiver.pid")" 2> /dev/null || true
    [ "$status" = 0 ] || fail "Debian 13: what ran chrooted failed (above)"
    in_root dpkg -r keysat-webhooks > /dev/null || fail "Debian 13: dpkg -r failed"
    [ -s "$root/var/lib/keysat/keysat.db" ] || fail "Debian 13: dpkg -r removed the database"
    in_root env KEYSAT_WEBHOOKS_PURGE_DATA=yes dpkg --purge keysat-webhooks > /dev/null 2>&1 \
        || fail "Debian 13: dpkg --purge failed"
    [ ! -e "$root/var/lib/keysat" ] || fail "Debian 13: a purge asked to left /var/lib/keysat"
    ! in_root getent passwd keysat > /dev/null || fail "Debian 13: a purge asked to left the keysat user"
    echo "check-dist: Debian 13: installed by apt, ran chrooted, removed and purged cleanly"
}
if [ "${1:-}" = --in-namespace ]; then
    shift
    in_namespace "$@"
    exit 0
fi

deb=$(readlink -f "$1") version=$2
cache=${KEYSAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keysat-webhooks}
base=$cache/trixie-minbase archives=$cache/trixie-archives
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
command -v debootstrap > /dev/null || fail "debootstrap is missing (scripts/setup.sh dist installs it)"
mkdir -p "$cache" "$archives/partial"
# One run at a time uses the cached root, its lists and its archives.
exec 9> "$cache/trixie.lock"
flock 9

chrooted() { unshare -m --propagation private bash -c 'mount -t proc proc "$1/proc" && chroot "$@"' _ "$@"; }
if [ ! -e "$base/.complete" ]; then
    echo "check-dist: making the Debian 13 root (once; cached in $base)"
    rm -rf "$base" "$base.new"
    debootstrap --variant=minbase trixie "$base.new" "$mirror" > "$cache/debootstrap.log" 2>&1 \
        || fail "debootstrap trixie failed; its log ($cache/debootstrap.log) ends: $(tail -5 "$cache/debootstrap.log")"
    # As a Debian 13 host has it: its updates and security updates too.
    cat > "$base.new/etc/apt/sources.list" <<LIST
deb $mirror trixie main
deb $mirror trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main
LIST
    rm -f "$base.new"/var/cache/apt/archives/*.deb
    mv "$base.new" "$base"
    touch -d '2000-01-01' "$base/.complete"
fi
if [ -z "$(find "$base/.complete" -mtime -7)" ]; then
    chrooted "$base" "${in_root_env[@]}" apt-get -qq update > "$cache/apt-update.log" 2>&1 \
        || fail "apt-get update in the Debian 13 root failed: $(tail -3 "$cache/apt-update.log")"
    touch "$base/.complete"
fi

run=$(mktemp -d /tmp/keysat-dist-trixie-XXXXXX)
pg_dir=/tmp/keysat-dist-pg-trixie-$$
cleanup() {
    scripts/pg-test-cluster.sh stop "$pg_dir" > /dev/null 2>&1 || true
    rm -rf "$run"
}
trap cleanup EXIT
# The two-host part's server runs here; the chrooted programs reach it on 127.0.0.1.
pg_uri=""
if scripts/pg-test-cluster.sh start "$pg_dir" > /dev/null 2>&1; then
    pg_uri=$(scripts/pg-test-cluster.sh uri "$pg_dir")
fi
mkdir -p "$run"/{upper,work,root}
unshare -m --propagation private "$PWD/scripts/check-dist-trixie.sh" --in-namespace "$base" "$archives" "$run" "$deb" "$version" "$pg_uri"
