#!/usr/bin/env bash
# THE run command: ./scripts/local.sh [LISTEN_ADDR] [extra `waconnect local` args...]
# Runs waconnect with its embedded simulator and local adapters (no AWS needed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_system_packages ffmpeg:ffmpeg

listen="${1:-127.0.0.1:8080}"
if [ $# -gt 0 ]; then
    shift
fi
exec cargo run -- local --listen "$listen" "$@"
