#!/usr/bin/env bash
# Measures camera ingest against webhook ingest on one hubkitd: the JSON webhook POST of
# `just bench` is the baseline, measured in the same run, in turns with an HTTP alarm
# notification GET and an AI crowd JSON POST. Prints one markdown table row per target
# and round, with the ratio to the webhook of the same round.
#
# Usage: run.sh TARGET_DIR [ROUNDS] [SECONDS]
set -euo pipefail

target_dir=${1:?usage: run.sh TARGET_DIR [ROUNDS] [SECONDS]}
rounds=${2:-5}
seconds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
data=$(mktemp -d /tmp/hubkit-bench-ipro.XXXXXX)
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

load() {
    "$target_dir/release/hubkit-bench" load --duration-secs "$seconds" --warmup-secs 1 "$@"
}
webhook() { load --url "$base/webhook/urls/sensor-data"; }
alarm() { load --url "$base/ipro/aa-bb-cc-dd-ee-ff/general?src=AB" --method GET --body ""; }
crowd() {
    load --url "$base/ipro/aa-bb-cc-dd-ee-02/ai-crowd" \
        --body '{"area": 1, "count": 12, "threshold": 10, "state": "exceeded"}'
}
field() { awk -F': ' -v key="$1" '$1 == key { print $2 }' <<<"$2"; }

echo "hubkitd $base, $rounds round(s) of ${seconds} s per target, data under $data"
echo
echo "| target | round | req/s | ratio to webhook | p50 | p99 | non-2xx | errors |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for round in $(seq 1 "$rounds"); do
    # The order flips every round, so drift of the machine does not favour one target.
    if (( round % 2 )); then order="webhook alarm crowd"; else order="crowd alarm webhook"; fi
    declare -A results=()
    for target in $order; do
        results[$target]=$($target)
    done
    baseline=$(field "req/s" "${results[webhook]}")
    for target in webhook alarm crowd; do
        result=${results[$target]}
        rate=$(field "req/s" "$result")
        ratio=$(awk -v a="$rate" -v b="$baseline" 'BEGIN { printf "%.2f", a / b }')
        echo "| $target | $round | $rate | $ratio | $(field "latency p50" "$result") |" \
            "$(field "latency p99" "$result") | $(field "non-2xx" "$result") |" \
            "$(field "errors" "$result") |"
    done
done
echo
echo "peak RSS (VmHWM) of hubkitd: $(sed -n 's/^VmHWM:[[:space:]]*//p' "/proc/$pid/status")"
