#!/usr/bin/env bash
# Checks the shipped alert rules (etc/keysat-webhooks.rules.yml) and Grafana dashboard
# (etc/keysat-webhooks.grafana.json) against what keysat-deliver really writes: real runs on a
# real database write metrics files (healthy, a delivery dead-lettered, deliveries left due);
# scripts/metrics-series.py turns them into promtool's input series; `promtool check rules` and
# `promtool test rules` (Debian's prometheus package) then say whether each alert fires when it
# should and stays quiet when it should. Every metric the rules and the dashboard name must be
# in those files, so a renamed metric fails here.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "check-alerts: $*" >&2; exit 1; }
rules=$PWD/etc/keysat-webhooks.rules.yml
dashboard=etc/keysat-webhooks.grafana.json
python=.venv/bin/python3
bin=${1:-$(swift build --show-bin-path)}
# The build folder's keysat-enqueue and keysat-deliver are links to the one program (issue 24).
[ -n "${1:-}" ] || scripts/link-programs "$bin"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

promtool check rules "$rules" > "$work/check.out" 2>&1 || { cat "$work/check.out"; fail "promtool check rules failed"; }

# The runs. The receiver is a closed port on loopback (allowed for this check): every attempt
# fails at once.
db=$work/keysat.db
export KEYSAT_ALLOW_NETWORKS=127.0.0.1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
"$bin/keysat-webhooks" init --db "$db" > /dev/null
"$bin/keysat-webhooks" endpoint add http://127.0.0.1:9/hooks --secret-file "$work/secret" --db "$db" > /dev/null 2>&1
run() { "$bin/keysat-deliver" --db "$db" --metrics-file "$work/$1.prom" "${@:2}" 2> /dev/null || fail "the $1 run failed"; }
hour_ago=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%S.000000+00:00)
value() { sed -n "s/^$1 //p" "$work/$2.prom"; }

run healthy
# The last of its attempts fails: the delivery is dead-lettered.
"$bin/keysat-enqueue" --db "$db" license.issued '{"n":1}' > /dev/null
sqlite3 "$db" "UPDATE webhook_deliveries SET attempt_count = 9 WHERE delivered_at IS NULL"
run dead
# Two deliveries due for an hour, a run allowed one: the other is left due.
"$bin/keysat-enqueue" --db "$db" license.issued '{"n":2}' > /dev/null
"$bin/keysat-enqueue" --db "$db" license.issued '{"n":3}' > /dev/null
sqlite3 "$db" "UPDATE webhook_deliveries SET next_attempt_at = '$hour_ago', created_at = '$hour_ago' WHERE delivered_at IS NULL"
run due --limit 1

[ "$(value 'keysat_webhooks_queue_deliveries{state="dead"}' healthy)" = 0 ] || fail "healthy.prom counts dead deliveries"
[ "$(value 'keysat_webhooks_queue_deliveries{state="dead"}' dead)" = 1 ] || fail "dead.prom does not count the dead-lettered delivery"
awk -v age="$(value keysat_webhooks_oldest_due_age_seconds due)" 'BEGIN { exit !(age > 3000) }' \
    || fail "due.prom's oldest due age is $(value keysat_webhooks_oldest_due_age_seconds due)"

# Every metric named by the rules and the dashboard is one a run writes.
written=$(cat "$work"/*.prom | sed -n 's/^\(keysat_webhooks_[a-z_]*\).*/\1/p' | sort -u)
for name in $(cat "$rules" "$dashboard" | grep -o 'keysat_webhooks_[a-z_]*' | sort -u); do
    grep -qx "$name" <<< "$written" || fail "$name is named in the rules or the dashboard but no run writes it"
done
"$python" -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["panels"] and d["uid"]' "$dashboard" \
    || fail "$dashboard is not a dashboard"

series() { "$python" scripts/metrics-series.py "$@" | sed 's/^/    /'; }
# Prometheus' humanizeDuration of a number of seconds (whole seconds, as it truncates): the age the
# due run measured depends on when it ran, so the expected summary is made from its own value.
humanized() {
    local s=${1%.*}
    if [ $((s / 86400)) != 0 ]; then printf '%dd %dh %dm %ds' $((s / 86400)) $((s / 3600 % 24)) $((s / 60 % 60)) $((s % 60))
    elif [ $((s / 3600)) != 0 ]; then printf '%dh %dm %ds' $((s / 3600)) $((s / 60 % 60)) $((s % 60))
    else printf '%dm %ds' $((s / 60)) $((s % 60)); fi
}
due_age=$(humanized "$(value keysat_webhooks_oldest_due_age_seconds due)")
no_alerts() {  # eval_time, then the alerts that must not be firing then
    local at=$1; shift
    for name in "$@"; do printf '      - eval_time: %s\n        alertname: %s\n        exp_alerts: []\n' "$at" "$name"; done
}
{
    echo "rule_files: [\"$rules\"]"
    echo "evaluation_interval: 1m"
    echo "tests:"
    echo "  - name: runs every minute, then none after minute 30"
    echo "    interval: 1m"
    series --minutes 70 0-30:"$work/healthy.prom"
    echo "    alert_rule_test:"
    no_alerts 29m KeysatWebhooksNoSuccessfulRun KeysatWebhooksOldestDueTooOld KeysatWebhooksDeadLettersGrowing
    # 15 minutes after the last success the condition holds; 5 more and it fires.
    no_alerts 48m KeysatWebhooksNoSuccessfulRun
    cat <<'YAML'
      - eval_time: 55m
        alertname: KeysatWebhooksNoSuccessfulRun
        exp_alerts:
          - exp_labels: {severity: critical}
            exp_annotations:
              summary: "keysat-deliver has not finished a run without error for 25m 0s"
              description: "No webhook has been sent since. Check the timer (systemctl status keysat-deliver.timer keysat-deliver.service) or the cron mail, and keysat_webhooks_last_run_success."
YAML
    echo "  - name: a delivery is dead-lettered at minute 31"
    echo "    interval: 1m"
    series --minutes 60 0-30:"$work/healthy.prom" 31-60:"$work/dead.prom"
    echo "    alert_rule_test:"
    no_alerts 30m KeysatWebhooksDeadLettersGrowing
    no_alerts 60m KeysatWebhooksNoSuccessfulRun KeysatWebhooksOldestDueTooOld
    cat <<'YAML'
      - eval_time: 40m
        alertname: KeysatWebhooksDeadLettersGrowing
        exp_alerts:
          - exp_labels: {severity: warning, state: dead}
            exp_annotations:
              summary: "dead-lettered webhook deliveries: 1 more than the lowest count of the last hour"
              description: "List them with 'keysat-webhooks deliveries list --status dead'; once the receiver is fixed, send them again with 'keysat-webhooks deliveries retry --status dead'."
YAML
    echo "  - name: every run leaves a delivery due for an hour"
    echo "    interval: 1m"
    series --minutes 30 0-30:"$work/due.prom"
    echo "    alert_rule_test:"
    no_alerts 4m KeysatWebhooksOldestDueTooOld
    no_alerts 30m KeysatWebhooksNoSuccessfulRun KeysatWebhooksDeadLettersGrowing
    cat <<YAML
      - eval_time: 10m
        alertname: KeysatWebhooksOldestDueTooOld
        exp_alerts:
          - exp_labels: {severity: warning}
            exp_annotations:
              summary: "the oldest due webhook delivery has waited $due_age"
              description: "See 'keysat-webhooks stats' for the endpoints with a backlog, and 'keysat-deliver --dry-run' for what is due."
YAML
} > "$work/tests.yml"
promtool test rules "$work/tests.yml" > "$work/test.out" 2>&1 || { cat "$work/test.out"; fail "promtool test rules failed"; }
echo "check-alerts: 3 rules checked and tested against the metrics of real runs; the dashboard names only written metrics"
