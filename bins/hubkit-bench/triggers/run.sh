#!/usr/bin/env bash
# Measures webhook ingest with 0, 1 and 10 triggers on the record's layer, on one hubkitd,
# in turns, and the time from an action run's creation to its start. Prints one markdown
# table row per target and round, with the ratio to the webhook without triggers of the
# same round. Before each turn it waits until the runner has executed every queued run,
# so a backlog of one turn does not slow the next, and it reports how long that took.
#
# Usage: run.sh TARGET_DIR [ROUNDS] [SECONDS]
set -euo pipefail

target_dir=${1:?usage: run.sh TARGET_DIR [ROUNDS] [SECONDS]}
rounds=${2:-3}
seconds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
data=$(mktemp -d /tmp/hubkit-bench-triggers.XXXXXX)
out="$data/stdout"
"$target_dir/release/hubkitd" --config "$here/hubkit.toml" --listen 127.0.0.1:0 \
    --data-dir "$data/data" >"$out" 2>"$data/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
base=""
for _ in $(seq 1 100); do
    base=$(sed -n 's/^hubkitd listening on \(https:[^ ]*\).*/\1/p' "$out")
    [[ -n $base ]] && break
    sleep 0.1
done
[[ -n $base ]] || { cat "$data/stderr" >&2; echo "hubkitd did not start" >&2; exit 1; }

bench() { "$target_dir/release/hubkit-bench" "$@"; }
load() {
    local target=$1
    shift
    bench load --duration-secs "$seconds" --warmup-secs 1 --url "$base/webhook/urls/bench-$target" "$@"
}
field() { awk -F': ' -v key="$1" '$1 == key { print $2 }' <<<"$2"; }
metric() { curl -sk "$base/metrics" | awk -v name="$1" '$1 == name { print $2 }'; }

# Waits until no run is queued or in progress and prints the seconds it took.
drain() {
    local start=$SECONDS
    for _ in $(seq 1 6000); do
        if [[ $(metric hubkit_action_queue_depth) == 0 && $(metric hubkit_actions_in_progress) == 0 ]]; then
            echo $((SECONDS - start))
            return
        fi
        sleep 0.1
    done
    echo "the action queue did not drain within 10 minutes" >&2
    exit 1
}

echo "hubkitd $base, $rounds round(s) of ${seconds} s per target, data under $data"
echo
echo "| target | round | req/s | ratio to none | p50 | p99 | non-2xx | errors | drain s |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for round in $(seq 1 "$rounds"); do
    # The order flips every round, so drift of the machine does not favour one target.
    if (( round % 2 )); then order="none gated10 fire1 fire10"; else order="fire10 fire1 gated10 none"; fi
    declare -A results=() drained=()
    for target in $order; do
        results[$target]=$(load "$target")
        drained[$target]=$(drain)
    done
    baseline=$(field "req/s" "${results[none]}")
    for target in none gated10 fire1 fire10; do
        result=${results[$target]}
        rate=$(field "req/s" "$result")
        ratio=$(awk -v a="$rate" -v b="$baseline" 'BEGIN { printf "%.2f", a / b }')
        echo "| $target | $round | $rate | $ratio | $(field "latency p50" "$result") |" \
            "$(field "latency p99" "$result") | $(field "non-2xx" "$result") |" \
            "$(field "errors" "$result") | ${drained[$target]} |"
    done
done

echo
echo "Start delay of the runs of one trigger firing for every record, one connection for ${seconds} s:"
result=$(load latency --connections 1)
drain >/dev/null
echo "ingest: $(field "req/s" "$result") req/s"
bench action-latency --db "$data/data/hubkit.db" --trigger latency
echo
echo "action runs: $(curl -sk "$base/metrics" | grep '^hubkit_action_runs_total' | tr '\n' ' ')"
echo "peak RSS (VmHWM) of hubkitd: $(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$pid/status")"
echo "database size: $(du -sh "$data/data" | cut -f1)"
