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

# Run the CI script
ci:
    bash .ci/run
