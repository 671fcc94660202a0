#!/usr/bin/env bash
# The README's two commands as a newcomer meets them (run by `make check-fresh`, as root): a
# clean clone of HEAD on a machine without the -dev packages, the test tools and the Python
# packages. The packages are removed inside a mount namespace whose /usr, /var and /etc are
# overlays, so the machine itself is left as it was. Checks that:
#   - a user who is not root gets one line naming the `sudo apt-get install` command (exit 69);
#   - as root, `make quickstart` and then `make test` install what is missing and pass;
#   - the Python packages went into the clone's .venv, not into the system interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-fresh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "check-fresh: needs root (mount namespaces), skipped"; exit 0; }
unshare -m true 2>/dev/null || { echo "check-fresh: no mount namespaces here, skipped"; exit 0; }
if python3 -c 'import svix' 2>/dev/null || python3 -c 'import standardwebhooks' 2>/dev/null; then
    fail "the system python3 has svix or standardwebhooks installed; this check cannot tell where make test puts them"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet "$PWD" "$work/clone"
mkdir -p "$work"/{usr,var,etc}/{upper,work}
removed="libsqlite3-dev libssl-dev libcurl4-openssl-dev libpq-dev sqlite3 mandoc"
cat > "$work/fresh.sh" <<'SCRIPT'
set -euo pipefail
work=$1 removed=$2
fail() { echo "check-fresh: $*" >&2; exit 1; }
for dir in usr var etc; do
    mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$work/$dir/upper,workdir=$work/$dir/work" "/$dir"
done
# apt-get, not dpkg --force-depends: what depends on them goes too, so apt's state stays sound.
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq $removed > /dev/null 2>&1
for pkg in $removed; do ! grep -q 'ok installed' <<<"$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" || fail "$pkg is still installed"; done
cd "$work/clone"

# Not root: told what to install, nothing built.
chown -R 64301:64301 "$work/clone"
status=0
out=$(setpriv --reuid 64301 --regid 64301 --clear-groups env HOME="$work" make --no-print-directory quickstart 2>&1) || status=$?
chown -R 0:0 "$work/clone"
[ "$status" != 0 ] || fail "make quickstart as a user succeeded without the -dev packages"
# Text is searched as a here-string, never `echo | grep -q` (here and in the other scripts): under
# pipefail, grep's early exit can fail the writer's last write and so the pipeline (2 in 3,000).
grep -qx 'setup: error: missing Debian packages; install them with: sudo apt-get install libsqlite3-dev libssl-dev libcurl4-openssl-dev libpq-dev' <<<"$out" \
    || fail "make quickstart as a user did not name the install command: $out"
grep -q 'Error 69' <<<"$out" || fail "setup did not exit 69: $out"
[ ! -d .build ] || fail "make quickstart as a user started a build"

# Root: the two README commands, nothing installed by hand.
make --no-print-directory quickstart > "$work/quickstart.log" 2>&1 || { tail -30 "$work/quickstart.log"; fail "make quickstart failed"; }
grep -q '^Done\.' "$work/quickstart.log" || fail "make quickstart did not finish"
make --no-print-directory test > "$work/test.log" 2>&1 || { grep -E 'error|failed' "$work/test.log" | tail -30; fail "make test failed"; }
summary=$(grep -E 'Executed [0-9]+ tests' "$work/test.log" | tail -1)
echo "check-fresh: make test on the fresh clone:$summary"
[ -x .venv/bin/python3 ] && .venv/bin/python3 -c 'import svix, standardwebhooks, prometheus_client' \
    || fail "the Python test packages are not in the clone's .venv"
python3 -c 'import svix' 2>/dev/null && fail "make test installed svix into the system interpreter"
exit 0
SCRIPT
unshare -m --propagation private bash "$work/fresh.sh" "$work" "$removed"
grep -q 'ok installed' <<<"$(dpkg-query -W -f='${Status}' libcurl4-openssl-dev)" || fail "the machine's own packages were touched"
echo "check-fresh: make quickstart and make test passed on a clean clone with $removed removed"
