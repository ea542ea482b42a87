# Everyday recipes. The README's two commands work without just.

# Run the quickstart sweep.
run:
    cargo run --release -- run experiments/quickstart.toml

# The test suite, as CI runs it.
test:
    cargo test --release

# Formatting and lints, warnings as errors.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --all-targets -- -D warnings

# Benchmarks (not timed tests): worker scaling, throughput against PyTorch, journal replay, checkpoint cost.
bench:
    cargo bench --bench sweep

# Lines written twice.
duplicates:
    duplicates --change
