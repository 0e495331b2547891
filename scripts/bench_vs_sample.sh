#!/usr/bin/env bash
# waconnect against the reference sample's inbound text handling, side by side, in one run:
# same moto (SQS, SNS, DynamoDB), same simulator (Connect, Connect Participant, EUM), same
# load (`waconnect loadtest e2e --sim`: customers with a chat each writing texts at a
# fixed rate). Prints, for each, CPU per text of the handling process, AWS calls per
# text and latency (customer event -> the chat has the text), and writes the two JSON
# reports to target/bench/.
#
# The sample's Lambdas cannot be vendored (no network): scripts/bench/sample_handler.py
# makes the same calls, in the same order, with boto3 (see its docstring).
#
# Usage: ./scripts/bench_vs_sample.sh [RATE per second, default 10] [DURATION, default 30s]
# Needs: the release binary (built if missing), moto in .venv (./scripts/test.sh installs it).
# Everything listens on 127.0.0.1; nothing is fetched from the network.
# Burst aggregation is off (BENCH_AGGREGATE=true turns it on): the sample's handler sends
# each text at once, and a burst's quiet gap would be measured as latency.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

RATE="${1:-10}"
DURATION="${2:-30s}"
CUSTOMERS="${BENCH_CUSTOMERS:-20}"
BIN=target/release/waconnect
OUT=target/bench
mkdir -p "$OUT" .test-logs
[ -x "$BIN" ] || cargo build --release --bin waconnect
ensure_moto
start_moto
export AWS_ENDPOINT_URL="$MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN
INSTANCE_ID=00000000-0000-4000-8000-00000000c0de
FLOW_ID=00000000-0000-4000-8000-0000000f1000

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    stop_moto
}
trap cleanup EXIT

free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_url() {
    for _ in $(seq 1 300); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    die "$1 did not answer"
}
field() { python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# One simulator per side, each publishing customer events to its own inbound topic.
start_sim() { # NAME RESOURCES.json -> sets SIM_URL
    local port; port=$(free)
    "$BIN" sim --listen "127.0.0.1:$port" --inbound-queue-url "$(field "$2" inbound_queue_url)" \
        --inbound-topic-arn "$(field "$2" inbound_topic_arn)" >".test-logs/bench-$1-sim.log" 2>&1 &
    PIDS+=($!)
    SIM_URL="http://127.0.0.1:$port"
    wait_url "$SIM_URL/sim/healthz"
}

run_load() { # NAME PID [extra loadtest args...]
    local name=$1 pid=$2; shift 2
    "$BIN" loadtest e2e --sim "$SIM_URL" --router-pid "$pid" --customers "$CUSTOMERS" \
        --rate "$RATE" --duration "$DURATION" --mix text=100 --json "$@" \
        2>".test-logs/bench-$name-loadtest.log" | tail -n 1 >"$OUT/$name.json"
}

section "waconnect (release) against moto + simulator"
.venv/bin/python scripts/bench/provision.py "$MOTO_ENDPOINT" bench-wc >"$OUT/resources-wc.json"
R="$OUT/resources-wc.json"
start_sim waconnect "$R"
ADMIN=$(free)
WACONNECT_INBOUND_QUEUE_URL=$(field "$R" inbound_queue_url) \
WACONNECT_INBOUND_DLQ_URL=$(field "$R" inbound_dlq_url) \
WACONNECT_CONNECT_QUEUE_URL=$(field "$R" connect_queue_url) \
WACONNECT_CONNECT_DLQ_URL=$(field "$R" connect_dlq_url) \
WACONNECT_SESSIONS_TABLE=$(field "$R" sessions_table) \
WACONNECT_DEDUPE_TABLE=$(field "$R" dedupe_table) \
WACONNECT_CONNECT_INSTANCE_ID=$INSTANCE_ID WACONNECT_CONTACT_FLOW_ID=$FLOW_ID \
WACONNECT_STREAMING_TOPIC_ARN=$(field "$R" connect_topic_arn) \
AWS_ENDPOINT_URL_CONNECT=$SIM_URL AWS_ENDPOINT_URL_CONNECTPARTICIPANT=$SIM_URL \
AWS_ENDPOINT_URL_SOCIALMESSAGING=$SIM_URL RUST_LOG="${BENCH_RUST_LOG:-info}" \
WACONNECT_AGGREGATE="${BENCH_AGGREGATE:-false}" \
    "$BIN" run --admin-listen "127.0.0.1:$ADMIN" >.test-logs/bench-waconnect-router.log 2>&1 &
ROUTER=$!
PIDS+=($ROUTER)
wait_url "http://127.0.0.1:$ADMIN/readyz"
# Connection reuse: count the router's connections to moto and the simulator while the
# load runs (a handful if they are kept alive; hundreds in TIME_WAIT if not).
MOTO_PORT=${MOTO_ENDPOINT##*:}
SIM_PORT=${SIM_URL##*:}
( sleep 5; {
    echo "router connections to moto :$MOTO_PORT established: $(ss -tnp state established "( dport = :$MOTO_PORT )" | grep -c "pid=$ROUTER,")"
    echo "router connections to the simulator :$SIM_PORT established: $(ss -tnp state established "( dport = :$SIM_PORT )" | grep -c "pid=$ROUTER,")"
    echo "closed connections to moto in TIME_WAIT: $(ss -tn state time-wait "( dport = :$MOTO_PORT )" | tail -n +2 | wc -l)"
    echo "closed connections to the simulator in TIME_WAIT: $(ss -tn state time-wait "( dport = :$SIM_PORT )" | tail -n +2 | wc -l)"
  } >"$OUT/waconnect-connections.txt" ) &
run_load waconnect "$ROUTER" --router-metrics "http://127.0.0.1:$ADMIN/metrics"
cat "$OUT/waconnect-connections.txt"
curl -fsS "$SIM_URL/sim/calls" >"$OUT/waconnect-sim-calls.json"
kill "$ROUTER"

section "reference sample's call sequence (boto3) against moto + simulator"
.venv/bin/python scripts/bench/provision.py "$MOTO_ENDPOINT" bench-sample >"$OUT/resources-sample.json"
R="$OUT/resources-sample.json"
start_sim sample "$R"
SAMPLE_QUEUE_URL=$(field "$R" inbound_queue_url) SAMPLE_SESSIONS_TABLE=$(field "$R" sessions_table) \
SAMPLE_BUFFER_TABLE=$(field "$R" buffer_table) SAMPLE_INSTANCE_ID=$INSTANCE_ID \
SAMPLE_FLOW_ID=$FLOW_ID SAMPLE_STREAMING_TOPIC_ARN=$(field "$R" connect_topic_arn) \
SAMPLE_CALLS_OUT="$OUT/sample-calls.json" \
AWS_ENDPOINT_URL_CONNECT=$SIM_URL AWS_ENDPOINT_URL_CONNECTPARTICIPANT=$SIM_URL \
AWS_ENDPOINT_URL_SOCIALMESSAGING=$SIM_URL \
    .venv/bin/python scripts/bench/sample_handler.py >.test-logs/bench-sample.log 2>&1 &
SAMPLE=$!
PIDS+=($SAMPLE)
sleep 2
# The sample's calls are counted by the script itself: before the run (warm-up) and after.
run_load sample "$SAMPLE"
kill -TERM "$SAMPLE"; wait "$SAMPLE" 2>/dev/null || true

section "side by side ($RATE texts/s for $DURATION, $CUSTOMERS customers with a chat; $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
wc = json.load(open(f"{out}/waconnect.json"))
sa = json.load(open(f"{out}/sample.json"))
try:
    sample_calls = json.load(open(f"{out}/sample-calls.json"))
except Exception:
    sample_calls = {}
# The sample's counts include its warm-up (one text per customer, opening the chats):
# per text they are taken over everything it handled.
handled = sa["messages"] + int(sa["extra"]["customers"])
sample_per = sum(sample_calls.values()) / handled if handled else 0
rows = [
    ("CPU ms per text (handling process)", wc["cpu_seconds_per_1000"], sa["cpu_seconds_per_1000"]),
    ("AWS calls per text", wc["extra"]["aws_calls_per_message_total"], round(sample_per, 2)),
    ("latency p50 ms (event -> chat)", wc["latency_ms"]["p50"], sa["latency_ms"]["p50"]),
    ("latency p99 ms", wc["latency_ms"]["p99"], sa["latency_ms"]["p99"]),
    ("texts delivered", wc["messages"], sa["messages"]),
    ("peak RSS MiB", round(wc["peak_rss_bytes"] / 2**20, 1), round(sa["peak_rss_bytes"] / 2**20, 1)),
]
print(f"| {'':38} | {'waconnect':>10} | {'sample (boto3)':>14} |")
print(f"|{'-'*40}|{'-'*12}|{'-'*16}|")
for name, a, b in rows:
    print(f"| {name:38} | {a:>10} | {b:>14} |")
print("\nwaconnect AWS calls per text:", json.dumps(wc["extra"]["aws_calls_per_message"]))
print("sample calls (all, warm-up included):", json.dumps(sample_calls))
PY
