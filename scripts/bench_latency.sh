#!/usr/bin/env bash
# "Customer event queued -> text in the chat" p50/p90/p99 (benches/inbound_latency.rs):
# starts moto on loopback (as scripts/test.sh does) and runs the bench, which spawns the
# simulator and the router. Environment knobs are listed in the bench's header; compare an
# older router with WACONNECT_HARNESS_ROUTER_BIN=/path/to/waconnect.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
if [ -z "${WACONNECT_TEST_AWS_ENDPOINT:-}" ]; then
    ensure_moto
    start_moto
    export WACONNECT_TEST_AWS_ENDPOINT="$MOTO_ENDPOINT"
fi
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
cargo bench --bench inbound_latency
