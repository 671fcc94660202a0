#!/usr/bin/env bash
# Checks the package as a host without a toolchain meets it (run by `make check-dist`, as root,
# after `make dist`): lintian; the tarball holds the .deb's files; install it on this machine;
# then, with the Swift toolchain hidden in a mount namespace, run every binary, and each unit's
# ExecStart and the cron file's line as they would run (their User=, Environment=,
# EnvironmentFile= and UMask=, with the directories systemd would make) against a real database
# and a real receiver (scripts/check-dist-run.sh); finally remove it, then purge it, and check
# what each leaves. Then the same package on Debian 13, in a trixie root
# (scripts/check-dist-trixie.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-dist: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check-dist: needs root (it installs the package), skipped"; exit 0; }
started=$SECONDS
arch=$(dpkg --print-architecture)
deb=$(ls -t dist/keysat-webhooks_*_"$arch".deb | head -1)
tarball=${deb%.deb}.tar.gz
version=$(dpkg-deb -f "$deb" Version)

# Run once (about 40 s on a loaded machine): its findings shown, its status kept.
lintian_status=0
findings=$(lintian --fail-on error,warning --pedantic "$deb" 2>&1) || lintian_status=$?
grep -v 'running with root privileges' <<<"$findings" || true
[ "$lintian_status" = 0 ] || fail "lintian found errors or warnings"
diff <(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./##; s#/$##' | grep . | sort) \
    <(tar -tzf "$tarball" | sed 's#^\./##; s#/$##' | grep . | sort) > /dev/null \
    || fail "the tarball and the .deb do not hold the same files"

if grep -q 'ok installed' <<<"$(dpkg-query -W -f='${Status}' keysat-webhooks 2>/dev/null)"; then
    fail "keysat-webhooks is already installed here; this check installs and purges it, so it will not run"
fi
existing_user=no
getent passwd keysat > /dev/null && existing_user=yes
work=$(mktemp -d)
cleanup() {
    [ -s "$work/receiver.pid" ] && kill "$(cat "$work/receiver.pid")" 2>/dev/null || true
    if grep -q installed <<<"$(dpkg-query -W -f='${Status}' keysat-webhooks 2>/dev/null)"; then
        KEYSAT_WEBHOOKS_PURGE_DATA=yes dpkg --purge keysat-webhooks > /dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

dpkg -i "$deb" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "dpkg -i failed"; }
getent passwd keysat > /dev/null || fail "postinst made no keysat user"
# One program, three names (issue 24): one file, and the other names links to it.
for p in keysat-enqueue keysat-deliver; do
    [ "$(readlink /usr/bin/$p)" = keysat-webhooks ] || fail "/usr/bin/$p is not a link to keysat-webhooks"
    dpkg -S /usr/bin/$p > /dev/null 2>&1 || fail "/usr/bin/$p belongs to no package"
done
# Every library the programs load comes from a package the Depends (or, libpq, Recommends)
# line names: a host installs only those.
scripts/check-depends.sh
[ "$(stat -c '%a %U %G' /var/lib/keysat)" = "2770 keysat keysat" ] || fail "/var/lib/keysat is $(stat -c '%a %U %G' /var/lib/keysat)"
# Idempotent: configuring again changes nothing and fails in nothing.
dpkg-reconfigure keysat-webhooks > /dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive dpkg --configure -a
DPKG_MAINTSCRIPT_PACKAGE=keysat-webhooks DPKG_MAINTSCRIPT_NAME=postinst \
    /var/lib/dpkg/info/keysat-webhooks.postinst configure "$version" || fail "postinst is not idempotent"
if ls /etc/systemd/system/*.wants/keysat-deliver.* > /dev/null 2>&1; then fail "the package enabled a unit"; fi
if command -v systemd-analyze > /dev/null; then
    out=$(systemd-analyze verify /lib/systemd/system/keysat-deliver.{service,timer,path} 2>&1) || true
    [ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify complained about the installed units"; }
fi

toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
# A PostgreSQL server for the two-host check, when its binaries are here (scripts/setup.sh test).
pg_dir=/tmp/keysat-dist-pg-$$
pg_uri=""
if scripts/pg-test-cluster.sh start "$pg_dir" > /dev/null 2>&1; then
    pg_uri=$(scripts/pg-test-cluster.sh uri "$pg_dir")
    trap 'scripts/pg-test-cluster.sh stop "$pg_dir" > /dev/null 2>&1 || true; cleanup' EXIT
fi
unshare -m --propagation private bash -c "mount -t tmpfs none '$toolchain' && bash scripts/check-dist-run.sh '$work' '$version' '$pg_uri'"
kill "$(cat "$work/receiver.pid")" 2>/dev/null || true

# Removal stops and masks the units (an operator enabled the timer), keeps the data and the
# user; purge keeps them too unless asked, and says how to remove them with commands that work
# once the package is gone; asked, it removes what the package created and nothing else.
if command -v systemctl > /dev/null; then
    systemctl enable keysat-deliver.timer > /dev/null 2>&1 || fail "systemctl enable keysat-deliver.timer failed"
    [ "$(systemctl is-enabled keysat-deliver.timer 2>&1)" = enabled ] || fail "the timer could not be enabled"
fi
dpkg -r keysat-webhooks > /dev/null
[ ! -e /usr/bin/keysat-deliver ] && [ ! -L /usr/bin/keysat-deliver ] || fail "dpkg -r left /usr/bin/keysat-deliver"
[ -s /var/lib/keysat/keysat.db ] || fail "dpkg -r removed the database"
if command -v systemctl > /dev/null; then
    # Its unit file is gone, but a running systemd still has it loaded: stopped by prerm, and
    # masked (as dh_installsystemd does) so that its enabling link starts nothing.
    state=$(systemctl is-enabled keysat-deliver.timer 2>&1 || true)
    if [ -e /etc/systemd/system/timers.target.wants/keysat-deliver.timer ] || [ -L /etc/systemd/system/timers.target.wants/keysat-deliver.timer ]; then
        [ "$state" = masked ] || fail "after dpkg -r the timer is still enabled, and not masked: $state"
    fi
fi
dpkg --purge keysat-webhooks > /dev/null 2> "$work/purge.err"
[ -s /var/lib/keysat/keysat.db ] || fail "a purge not asked to removed the database"
getent passwd keysat > /dev/null || fail "a purge not asked to removed the keysat user"
[ ! -e /etc/default/keysat-webhooks ] || fail "purge left the configuration file"
[ ! -e /etc/systemd/system/timers.target.wants/keysat-deliver.timer ] || fail "purge left the timer's enabling link"
[ ! -e /etc/systemd/system/keysat-deliver.timer ] || fail "purge left the timer masked"
advice=$(sed -n 's/.*remove them with: //p' "$work/purge.err")
[ -n "$advice" ] || fail "the purge did not say how to remove the data: $(cat "$work/purge.err")"
if [ "$existing_user" = no ]; then
    # The advice works with the package gone.
    sh -c "$advice" > /dev/null 2>&1 || fail "the purge's advice failed: $advice"
    [ ! -e /var/lib/keysat ] || fail "the purge's advice left /var/lib/keysat: $advice"
    ! getent passwd keysat > /dev/null || fail "the purge's advice left the keysat user: $advice"
fi
dpkg -i "$deb" > /dev/null 2>&1
KEYSAT_WEBHOOKS_PURGE_DATA=yes dpkg --purge keysat-webhooks > /dev/null 2>&1
[ ! -e /var/lib/keysat ] || fail "a purge asked to left /var/lib/keysat"
if [ "$existing_user" = no ] && getent passwd keysat > /dev/null; then fail "a purge asked to left the keysat user"; fi

# A keysat user, group and /var/lib/keysat that were there before the package survive a purge
# asked to remove the data.
if [ "$existing_user" = no ]; then
    addgroup --system --quiet keysat
    adduser --system --quiet --ingroup keysat --no-create-home keysat
    install -d -m 0750 /var/lib/keysat
    echo theirs > /var/lib/keysat/theirs
    dpkg -i "$deb" > /dev/null 2>&1
    KEYSAT_WEBHOOKS_PURGE_DATA=yes dpkg --purge keysat-webhooks > /dev/null 2>&1
    kept=yes
    getent passwd keysat > /dev/null && getent group keysat > /dev/null && [ -s /var/lib/keysat/theirs ] || kept=no
    deluser --system --quiet keysat > /dev/null 2>&1 || true
    delgroup --system --quiet keysat > /dev/null 2>&1 || true
    rm -rf /var/lib/keysat
    [ "$kept" = yes ] || fail "a purge asked to remove the data removed a keysat user, group or folder it had not created"
fi
echo "check-dist: $(basename "$deb") is lintian clean, installed, ran, was removed and purged cleanly"
echo "check-dist: Debian $(cut -d. -f1 /etc/debian_version) (this machine) took $((SECONDS - started)) s"

# Debian 13 as well: the same package, installed by apt in a trixie root, and the same run there.
started=$SECONDS
scripts/check-dist-trixie.sh "$deb" "$version"
echo "check-dist: Debian 13 (a trixie root) took $((SECONDS - started)) s"
