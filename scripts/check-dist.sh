#!/usr/bin/env bash
# Checks the package as a host without a toolchain meets it (run by `make check-dist`, as root,
# after `make dist`): lintian; the tarball holds the .deb's files; install it on this machine;
# then, with the Swift toolchain hidden in a mount namespace, run every binary, and each unit's
# ExecStart and the cron file's line as they would run (their User=, Environment=,
# EnvironmentFile= and UMask=, with the directories systemd would make) against a real database
# and a real receiver; finally remove it, then purge it, and check what each leaves.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-dist: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check-dist: needs root (it installs the package), skipped"; exit 0; }
arch=$(dpkg --print-architecture)
deb=$(ls -t dist/keysat-webhooks_*_"$arch".deb | head -1)
tarball=${deb%.deb}.tar.gz
version=$(dpkg-deb -f "$deb" Version)

lintian --fail-on error,warning --pedantic "$deb" 2>&1 | grep -v 'running with root privileges' || true
lintian --fail-on error,warning --pedantic "$deb" > /dev/null 2>&1 || fail "lintian found errors or warnings"
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
# Every shared library the binaries name comes from a package the Depends line names (a host
# installs only those; libcurl and libcrypto, loaded with dlopen, it names by hand).
depends=$(dpkg-query -W -f '${Depends}' keysat-webhooks)
cache=$(ldconfig -p)
for library in $(readelf -d /usr/bin/keysat-* | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | sort -u); do
    path=$(awk -v l="$library" '$1 == l && !found { print $NF; found = 1 }' <<< "$cache")
    real=$(readlink -f "$path")
    # dpkg knows a file by the path its package ships (/lib or /usr/lib on a merged /usr).
    owner=$( (dpkg -S "$path" || dpkg -S "$real" || dpkg -S "${real#/usr}" || true) 2>/dev/null)
    owner=${owner%%:*}
    case ", $depends," in *", $owner"[\ ,]*) ;; *) fail "$library (${owner:-no package}) is needed but not in Depends: $depends" ;; esac
done
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
cat > "$work/as-host.sh" <<'SCRIPT'
#!/usr/bin/env bash
# Runs inside a mount namespace in which the Swift toolchain is an empty folder.
set -euo pipefail
work=$1 version=$2
fail() { echo "check-dist: $*" >&2; exit 1; }
command -v swift > /dev/null && swift --version > /dev/null 2>&1 && fail "the toolchain is still reachable"
for p in keysat-enqueue keysat-deliver keysat-webhooks; do
    [ "$(/usr/bin/$p --version)" = "$version" ] || fail "$p --version is not $version"
    ! grep -q 'not found' <<<"$(ldd /usr/bin/$p)" || fail "$p misses a library: $(ldd /usr/bin/$p | grep 'not found')"
done
man -w keysat-deliver > /dev/null 2>&1 || [ -e /usr/share/man/man1/keysat-deliver.1.gz ] || fail "no man page"

# The operator's set-up, as the README says it.
sed -i 's/^KEYSAT_ALLOW_NETWORKS=.*/KEYSAT_ALLOW_NETWORKS=127.0.0.1/' /etc/default/keysat-webhooks
as_keysat() { setpriv --reuid keysat --regid keysat --init-groups "$@"; }
set -a; . /etc/default/keysat-webhooks; set +a
as_keysat keysat-webhooks init --group keysat > /dev/null
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
chmod 0644 "$work/secret"; chmod 0755 "$work"
/usr/bin/keysat-webhooks listen --port 0 --count 4 --secret-file "$work/secret" > "$work/received" 2> "$work/listen.err" &
echo $! > "$work/receiver.pid"
for _ in $(seq 100); do grep -q 'listening on' "$work/listen.err" && break; sleep 0.05; done
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/listen.err")
as_keysat keysat-webhooks endpoint add "${url}hooks" --secret-file "$work/secret" > /dev/null 2>&1

# The licensing service: a user of its own, in the keysat group.
gid=$(getent group keysat | cut -d: -f3)
enqueue() { setpriv --reuid 64201 --regid 64201 --groups "$gid" keysat-enqueue --kick "$@" license.issued '{"n":1}'; }

# A unit's ExecStart as systemd runs it: its User=/Group=, a clean environment with its
# Environment= then EnvironmentFile= assignments, its UMask=, the folders it names made first.
unit=/lib/systemd/system/keysat-deliver.service
value() { sed -n "s/^$1=//p" "$unit"; }
run_service() {
    local env=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/keysat
        USER="$(value User)" LOGNAME="$(value User)" SHELL=/usr/sbin/nologin)
    while IFS= read -r line; do env+=("$line"); done < <(value Environment)
    local file; file=$(value EnvironmentFile); file=${file#-}
    if [ -f "$file" ]; then
        while IFS= read -r line; do
            case $line in ''|'#'*) continue ;; esac
            env+=("$line")
        done < "$file"
    fi
    install -d -o "$(value User)" -g "$(value Group)" -m "$(value StateDirectoryMode)" "/var/lib/$(value StateDirectory)"
    install -d -o "$(value User)" -g "$(value Group)" -m "$(value CacheDirectoryMode)" "/var/cache/$(value CacheDirectory)"
    env -i "${env[@]}" setpriv --reuid "$(value User)" --regid "$(value Group)" --init-groups \
        /bin/sh -c "umask $(value UMask); exec $(value ExecStart)"
}
# The cron file's line, as cron runs it: its user, SHELL and PATH, a login's HOME and LOGNAME.
run_cron() {
    local cron=/usr/share/doc/keysat-webhooks/examples/keysat-deliver.cron
    local line; line=$(grep -E '^\* \* \* \* \* ' "$cron")
    local user; user=$(echo "$line" | awk '{print $6}')
    local command; command=$(echo "$line" | cut -d' ' -f7-)
    env -i SHELL="$(sed -n 's/^SHELL=//p' "$cron")" PATH="$(sed -n 's/^PATH=//p' "$cron")" HOME=/var/lib/keysat \
        LOGNAME="$user" setpriv --reuid "$user" --regid "$user" --init-groups /bin/sh -c "$command"
}
check_metrics() {
    local metrics; metrics=$(sed -n 's/^KEYSAT_METRICS_FILE=//p' /etc/default/keysat-webhooks)
    [ "$(stat -c '%a %U' "$metrics")" = "644 keysat" ] || fail "$1: metrics file is $(stat -c '%a %U' "$metrics")"
    grep -q '^keysat_webhooks_last_run_success 1$' <<<"$(setpriv --reuid 65534 --regid 65534 --clear-groups cat "$metrics")" \
        || fail "$1: the metrics file is not readable by another user, or the run failed"
}
expect_quiet() {  # name, then the command; it must exit 0 and print nothing
    local name=$1; shift
    local out; out=$("$@" 2>&1) || fail "$name exited $?: $out"
    [ -z "$out" ] || fail "$name printed: $out"
    check_metrics "$name"
}
received() { cat "$work/received" | grep -c "license.issued" || true; }

enqueue > /dev/null
expect_quiet "the service (started by the timer)" run_service
[ "$(received)" = 1 ] || fail "the service delivered $(received) of 1"

# The path unit: enqueue --kick must write the very file its PathChanged= names.
kick=$(sed -n 's/^PathChanged=//p' /lib/systemd/system/keysat-deliver.path)
before=$(stat -c %s "$kick" 2>/dev/null || echo 0)
enqueue > /dev/null
[ "$(stat -c %s "$kick")" -gt "$before" ] || fail "enqueue --kick did not write $kick, which the path unit watches"
expect_quiet "the service (started by the path unit)" run_service
[ "$(received)" = 2 ] || fail "the path-started service delivered $(( $(received) - 1 )) of 1"

enqueue > /dev/null
expect_quiet "the cron line" run_cron
[ "$(received)" = 3 ] || fail "the cron line delivered $(( $(received) - 2 )) of 1"

# A user outside the group is refused, with one line.
out=$(setpriv --reuid 64202 --regid 64202 --clear-groups keysat-enqueue license.issued '{}' 2>&1) && fail "an outsider could enqueue"
status=$(setpriv --reuid 64202 --regid 64202 --clear-groups keysat-enqueue license.issued '{}' > /dev/null 2>&1; echo $?)
[ "$status" = 77 ] || fail "an outsider's enqueue exited $status, not 77: $out"
echo "check-dist: installed binaries, the service (timer and path) and the cron line ran with the toolchain hidden"

# Two hosts, one PostgreSQL queue (issue 21): the installed programs load libpq5 (Recommends)
# on first use; two runs at once, as two hosts' timers, share the work and send each once.
pg_uri=$3
[ -n "$pg_uri" ] || exit 0
passfile=${pg_uri#*passfile=}; passfile=${passfile%%&*}
for who in keysat:keysat 64201:64201; do
    install -o "${who%%:*}" -g "${who##*:}" -m 0600 "$passfile" "$work/pgpass-${who%%:*}"
done
db_for() { echo "${pg_uri%%\?*}?passfile=$work/pgpass-$1&sslmode=disable"; }
KEYSAT_DB=$(db_for keysat) as_keysat keysat-webhooks init > /dev/null || fail "init on PostgreSQL failed"
/usr/bin/keysat-webhooks listen --port 0 --count 3 --secret-file "$work/secret" > "$work/received-pg" 2> "$work/listen-pg.err" &
for _ in $(seq 100); do grep -q 'listening on' "$work/listen-pg.err" && break; sleep 0.05; done
pg_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$work/listen-pg.err")
KEYSAT_DB=$(db_for keysat) as_keysat keysat-webhooks endpoint add "${pg_url}hooks" --secret-file "$work/secret" > /dev/null 2>&1 \
    || fail "endpoint add on PostgreSQL failed"
for n in 1 2 3; do
    KEYSAT_DB=$(db_for 64201) setpriv --reuid 64201 --regid 64201 --clear-groups keysat-enqueue license.issued "{\"n\":$n}" \
        > /dev/null || fail "enqueue on PostgreSQL failed"
done
runs=()
for host in a b; do
    env KEYSAT_DB="$(db_for keysat)" KEYSAT_ALLOW_NETWORKS=127.0.0.1 setpriv --reuid keysat --regid keysat --init-groups \
        keysat-deliver > "$work/deliver-$host.out" 2>&1 &
    runs+=($!)
done
for run in "${runs[@]}"; do wait "$run" || fail "a run on PostgreSQL exited $?: $(cat "$work"/deliver-*.out)"; done
for host in a b; do [ ! -s "$work/deliver-$host.out" ] || fail "a run on PostgreSQL printed: $(cat "$work/deliver-$host.out")"; done
count=$(grep -c "license.issued" "$work/received-pg" || true)
[ "$count" = 3 ] || fail "two runs on one PostgreSQL queue delivered $count of 3"
echo "check-dist: two runs on one PostgreSQL queue delivered every event once, with libpq loaded by the installed programs"
SCRIPT
# A PostgreSQL server for the two-host check, when its binaries are here (scripts/setup.sh test).
pg_dir=/tmp/keysat-dist-pg-$$
pg_uri=""
if scripts/pg-test-cluster.sh start "$pg_dir" > /dev/null 2>&1; then
    pg_uri=$(scripts/pg-test-cluster.sh uri "$pg_dir")
    trap 'scripts/pg-test-cluster.sh stop "$pg_dir" > /dev/null 2>&1 || true; cleanup' EXIT
fi
unshare -m --propagation private bash -c "mount -t tmpfs none '$toolchain' && bash '$work/as-host.sh' '$work' '$version' '$pg_uri'"
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
