#!/usr/bin/env bash
# The one place that says what this project needs, and installs what is missing.
#
#   scripts/setup.sh build    Debian packages needed to build (headers of SQLite, OpenSSL, libcurl,
#                             libpq, and libpq itself, which the PostgreSQL tests load)
#   scripts/setup.sh test     those, the tools the tests run (sqlite3, mandoc, the PostgreSQL
#                             server for scripts/pg-test-cluster.sh), and the Python packages
#                             the tests check against, in the project's .venv
#   scripts/setup.sh dist     those needed to build the .deb and check it (dpkg-dev, lintian, and
#                             debootstrap, which makes the Debian 13 root check-dist installs it in)
#   scripts/setup.sh bench    those the benchmark runs (nginx, hyperfine, GNU time)
#   scripts/setup.sh alerts   those the alert rules' check needs (promtool, from prometheus;
#                             nothing is started: its postinst starts the service only under
#                             a running systemd), and the test set for the metrics parser
#
# As root, missing Debian packages are installed with apt-get (one `apt-get update` first, and
# only when something is missing). Otherwise it prints the one command that would install them
# and exits 69 (EX_UNAVAILABLE). Python packages never go into the system interpreter: they go
# into ./.venv (ignored by git), created on first use. Silent when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

build_debs=(libsqlite3-dev libssl-dev libcurl4-openssl-dev libpq-dev libpq5 pkg-config)
# systemd: systemd-analyze, which verifies the units `keysat-webhooks units` writes (installing
# it boots nothing). postgresql: the server whose initdb and pg_ctl the PostgreSQL tests run in
# a throw-away cluster of their own (scripts/pg-test-cluster.sh); Debian's package also creates
# a cluster `main` on port 5432, which the tests do not use.
test_debs=(sqlite3 mandoc python3 strace iproute2 util-linux systemd postgresql zsh fish)
dist_debs=(dpkg-dev lintian fakeroot debootstrap)
bench_debs=(nginx-light hyperfine time sqlite3 python3)
alerts_debs=(prometheus)
# Independent implementations the tests check against: Prometheus' parser, Standard Webhooks', Svix's,
# and pyca/cryptography's Ed25519 (v1a signatures).
python_packages=(prometheus_client standardwebhooks svix cryptography)

want=()
case "${1:-build}" in
    build) want=("${build_debs[@]}") ;;
    test) want=("${build_debs[@]}" "${test_debs[@]}") ;;
    dist) want=("${build_debs[@]}" "${dist_debs[@]}") ;;
    bench) want=("${build_debs[@]}" "${bench_debs[@]}") ;;
    alerts) want=("${build_debs[@]}" "${test_debs[@]}" "${alerts_debs[@]}") ;;
    *) echo "setup: error: unknown set '$1' (build, test, dist, bench or alerts)" >&2; exit 64 ;;
esac

missing=()
for pkg in "${want[@]}"; do
    grep -q 'install ok installed' <<<"$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" || missing+=("$pkg")
done
# Debian's python3 has no venv module without python3-venv; another python3 (pyenv) may have it.
if { [ "${1:-build}" = test ] || [ "${1:-build}" = alerts ]; } && command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: error: missing Debian packages; install them with: sudo apt-get install ${missing[*]}" >&2
        exit 69
    fi
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-build}" = test ] || [ "${1:-build}" = alerts ]; then
    venv=.venv
    if ! "$venv/bin/python3" -c 'import prometheus_client, standardwebhooks, svix, cryptography' 2>/dev/null; then
        echo "setup: installing ${python_packages[*]} into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check "${python_packages[@]}" || {
            echo "setup: error: could not install ${python_packages[*]} into $venv (is PyPI reachable?)" >&2
            exit 69
        }
    fi
fi
