#!/usr/bin/env bash
# Checks that the installed package asks for every library its programs load (run by
# scripts/check-dist.sh on this machine, and by scripts/check-dist-trixie.sh for a Debian 13
# root), as root, with the package installed. Usage: check-depends.sh [ROOT] (default /).
#   - each library an ELF dependency names comes from a package the Depends line names;
#   - libcurl.so.4 and libcrypto.so.3, loaded with dlopen (no ELF dependency names them), come
#     from a package Depends names, as one of an alternative (Debian 13's are libcurl4t64 and
#     libssl3t64); libpq.so.5, loaded only for a PostgreSQL database, from one Recommends names.
# dpkg and the loader's cache are asked inside ROOT; readelf, which a host without a toolchain
# lacks, runs here on ROOT's files.
set -euo pipefail
root=${1:-/}
fail() { echo "check-dist: $*" >&2; exit 1; }
inside() { if [ "$root" = / ]; then "$@"; else chroot "$root" "$@"; fi; }

# A field's package names, one a line, alternatives included, versions dropped.
names() { inside dpkg-query -W -f "\${$1}" keysat-webhooks | tr ',|' '\n\n' | sed 's/(.*)//; s/:any//' | awk 'NF { print $1 }'; }
depends=$(names Depends)
recommends=$(names Recommends)
cache=$(inside ldconfig -p)
owner_of() {  # the package that ships the library the loader finds for a soname
    local path real owner
    path=$(awk -v l="$1" '$1 == l && !found { print $NF; found = 1 }' <<< "$cache")
    [ -n "$path" ] || { echo ""; return; }
    real=$(inside readlink -f "$path")
    # dpkg knows a file by the path its package ships (/lib or /usr/lib on a merged /usr).
    owner=$( (inside dpkg -S "$path" || inside dpkg -S "$real" || inside dpkg -S "${real#/usr}" || true) 2>/dev/null)
    owner=${owner%%:*}
    echo "$owner"
}
needs() {  # soname, field name, that field's names
    local owner; owner=$(owner_of "$1")
    grep -qx -- "$owner" <<< "$3" || fail "$1 (${owner:-no package}) is needed but not in $2: $(tr '\n' ' ' <<< "$3")"
}
programs=("$root"/usr/bin/keysat-enqueue "$root"/usr/bin/keysat-deliver "$root"/usr/bin/keysat-webhooks)
for library in $(readelf -d "${programs[@]}" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | sort -u); do
    needs "$library" Depends "$depends"
done
# The names the programs pass to dlopen: checked to be in them, so this list cannot go stale unseen.
for soname in libcurl.so.4 libcrypto.so.3 libpq.so.5; do
    grep -qa -- "$soname" "$root/usr/bin/keysat-deliver" || fail "keysat-deliver no longer names $soname; update $0"
done
needs libcurl.so.4 Depends "$depends"
needs libcrypto.so.3 Depends "$depends"
needs libpq.so.5 Recommends "$recommends"
