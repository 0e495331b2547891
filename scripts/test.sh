#!/usr/bin/env bash
# THE test command: ./scripts/test.sh [cargo test args...]
# Installs what is missing (apt packages, moto in .venv, playwright-core in
# tests/browser/node_modules), starts moto server on loopback,
# then runs cargo fmt --check, clippy -D warnings and cargo test (unit + e2e).
# Without arguments it runs the operations checks (scripts/check_ops.sh: alert rules,
# dashboards, Kubernetes manifests, CloudFormation, a real Prometheus scrape) and
# `cargo test --lib --bins --tests --no-fail-fast` (every test binary runs even when one
# fails; benchmarks are left to `cargo bench`); with arguments, `cargo test --no-fail-fast ARGS`
# (e.g. ./scripts/test.sh --test e2e_inbound new_chat). WACONNECT_SKIP_LINT=1 skips fmt+clippy.
# If WACONNECT_TEST_AWS_ENDPOINT is already set, that emulator is used and none is started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

section "1/6 system packages, browser test tools"
# ffmpeg: voice-note transcoding; espeak-ng: synthesises test voice notes; prometheus: promtool;
# chromium (+ an emoji font for legible screenshots): the console's browser test;
# node + npm: playwright-core, which drives that chromium.
# shellcheck disable=SC2207
pkgs=($(missing_packages ffmpeg:ffmpeg espeak-ng:espeak-ng promtool:prometheus chromium:chromium \
    node:nodejs npm:npm) $(missing_debs fonts-noto-color-emoji) $(missing_python_venv))
if [ ${#pkgs[@]} -gt 0 ]; then
    apt_install "${pkgs[@]}"
else
    info "ffmpeg, espeak-ng, promtool, chromium, node, npm and python3-venv present"
fi
ensure_rust_components
failed=()
if [ "${CI:-}" = true ]; then
    # CI builds once from a clean clone: incremental caches would only take disk.
    export CARGO_INCREMENTAL=0
fi
info "disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free where the build goes"
# A failure here is reported at the end; the browser test then fails saying what is missing.
ensure_playwright || failed+=("playwright-core install (npm ci in tests/browser)")

section "2/6 moto server (AWS emulator)"
if [ -n "${WACONNECT_TEST_AWS_ENDPOINT:-}" ]; then
    info "using the emulator already at WACONNECT_TEST_AWS_ENDPOINT=$WACONNECT_TEST_AWS_ENDPOINT"
else
    ensure_moto
    start_moto
    export WACONNECT_TEST_AWS_ENDPOINT="$MOTO_ENDPOINT"
fi
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN

if [ "${WACONNECT_SKIP_LINT:-0}" != 1 ]; then
    section "3/6 cargo fmt --all -- --check"
    cargo fmt --all -- --check || failed+=("cargo fmt")

    section "4/6 cargo clippy --all-targets -- -D warnings"
    cargo clippy --all-targets -- -D warnings || failed+=("cargo clippy")
else
    section "3-4/6 fmt + clippy skipped (WACONNECT_SKIP_LINT=1)"
fi

if [ $# -gt 0 ]; then
    section "6/6 cargo test $*"
    cargo test --no-fail-fast "$@" || failed+=("cargo test")
else
    section "5/6 operations checks (scripts/check_ops.sh)"
    # The binary the tests use, built once: `cargo build --bins` would resolve features
    # without the dev-dependencies (proptest, tempfile change getrandom's features, and
    # every AWS crate above it), so the tests would compile the whole tree a second time:
    # twice the time and several GB of disk more (CI once ran out of disk there).
    if cargo test --lib --bins --tests --no-run; then
        WACONNECT_BIN="${CARGO_TARGET_DIR:-target}/debug/waconnect" scripts/check_ops.sh ||
            failed+=("check_ops")
    else
        failed+=("cargo test --no-run")
    fi
    section "6/6 cargo test --lib --bins --tests --no-fail-fast"
    cargo test --lib --bins --tests --no-fail-fast || failed+=("cargo test")
fi

info "disk: target/ holds $(du -sh "${CARGO_TARGET_DIR:-target}" 2>/dev/null | cut -f1)"
if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh FAILED: ${failed[*]} (logs: .test-logs/)" >&2
    exit 1
fi
