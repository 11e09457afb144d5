# Recipes for working on hubkit. Install just with `pip install rust-just` (the package
# ships the binary) or `cargo install just`, then run `just` to list the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Format every crate with rustfmt
fmt:
    cargo fmt --all

# Run clippy on the workspace, failing on any warning
lint:
    cargo clippy --workspace --all-targets -- -D warnings

# Run the workspace tests
test:
    cargo test --workspace

# Benchmark hubkitd against the bare baselines; args go to `hubkit-bench run`, e.g. --rounds 3
bench *args:
    cargo build --release -p hubkitd -p hubkit-bench
    "${CARGO_TARGET_DIR:-target}/release/hubkit-bench" run --hubkitd "${CARGO_TARGET_DIR:-target}/release/hubkitd" --config docs/examples/hubkit.toml {{args}}

# `just bench` does not measure file uploads, bench-upload does. With its default counts it
# keeps at most 100 MiB of uploaded and baseline files in /tmp at a time. With --concurrency N
# it keeps at most N × 100 MiB, capped at 1600 MiB because the 100 MiB phase runs at most 16
# at a time.

# Benchmark hubkitd's 1 MiB and 100 MiB uploads against file writes and a bare HTTPS server, with args for `hubkit-bench upload` such as --rounds 5
bench-upload *args:
    cargo build --release -p hubkitd -p hubkit-bench
    "${CARGO_TARGET_DIR:-target}/release/hubkit-bench" upload --hubkitd "${CARGO_TARGET_DIR:-target}/release/hubkitd" --config docs/examples/hubkit.toml {{args}}

# `just bench-mqtt` starts its own Mosquitto (found in the PATH, /usr/sbin or /usr/local/sbin)
# on a free port of 127.0.0.1 for each broker window, and never uses a broker already running.
# With its defaults it took about 2 minutes on the 2-core VM of docs/benchmarks.md.

# Benchmark the MQTT messages per second hubkitd stores against a counting subscriber, with args for `hubkit-bench mqtt` such as --rounds 5
bench-mqtt *args:
    cargo build --release -p hubkitd -p hubkit-bench
    "${CARGO_TARGET_DIR:-target}/release/hubkit-bench" mqtt --hubkitd "${CARGO_TARGET_DIR:-target}/release/hubkitd" {{args}}

# Run the CI script
ci:
    bash .ci/run

# Benchmark camera ingest (an alarm GET and a crowd JSON POST) against the JSON webhook on
# one hubkitd, in turns; args: rounds and seconds per target, e.g. `just bench-ipro 5 5`
bench-ipro rounds="5" seconds="5":
    cargo build --release -p hubkitd -p hubkit-bench
    bins/hubkit-bench/ipro/run.sh "${CARGO_TARGET_DIR:-target}" {{rounds}} {{seconds}}

# Benchmark webhook ingest with 0, 1 and 10 matching triggers on one hubkitd, in turns, and
# the time from an action run's creation to its start; args: rounds and seconds per target,
# e.g. `just bench-triggers 3 5`. Needs curl to read /metrics.
bench-triggers rounds="3" seconds="5":
    cargo build --release -p hubkitd -p hubkit-bench
    bins/hubkit-bench/triggers/run.sh "${CARGO_TARGET_DIR:-target}" {{rounds}} {{seconds}}
