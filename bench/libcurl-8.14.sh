#!/usr/bin/env bash
# Prints a folder holding Debian 13's libcurl (8.14, as bookworm-backports carries it) and its
# curl program, for the benchmark's second throughput row: the run users of Debian 13 see, on
# this Debian 12 machine. Downloaded once with apt-get (a private sources list and lists: the
# machine's apt configuration is not touched) and unpacked with dpkg-deb -x into a cache outside
# the clone (CI clones afresh): ${KEYSAT_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/keysat-webhooks}.
# The 8.14 backport depends only on libraries Debian 12 has at the versions it needs (apt-cache
# show libcurl4), so the two packages are enough. Exits 69 when they cannot be had.
set -euo pipefail
cache=${KEYSAT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/keysat-webhooks}
dir=$cache/libcurl-8.14
if [ -x "$dir/root/usr/bin/curl" ] && [ -e "$dir/root/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/libcurl.so.4" ]; then
    echo "$dir/root"
    exit 0
fi
fail() { echo "libcurl-8.14: error: $*" >&2; exit 69; }
work=$(mktemp -d "$cache/.libcurl-XXXXXX" 2>/dev/null || { mkdir -p "$cache" && mktemp -d "$cache/.libcurl-XXXXXX"; })
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/root"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" \
    > "$work/sources.list"
apt=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1)
apt-get "${apt[@]}" -qq update > "$work/update.log" 2>&1 || fail "apt-get update of bookworm-backports failed: $(tail -3 "$work/update.log")"
version=$(apt-cache "${apt[@]}" madison libcurl4 | awk -F'|' '$2 ~ /^ *8\.14\./ { gsub(/ /, "", $2); print $2; exit }')
[ -n "$version" ] || fail "bookworm-backports has no libcurl4 8.14 now ($(apt-cache "${apt[@]}" madison libcurl4 | head -1))"
(cd "$work" && apt-get "${apt[@]}" -qq download "libcurl4=$version" "curl=$version") > "$work/download.log" 2>&1 \
    || fail "apt-get download libcurl4=$version curl=$version failed: $(tail -3 "$work/download.log")"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
echo "$version" > "$work/root/VERSION"
rm -rf "$dir"
mkdir -p "$dir"
mv "$work/root" "$dir/root"
echo "$dir/root"
