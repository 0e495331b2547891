# shellcheck shell=bash
# Shared helpers for scripts/test.sh and scripts/local.sh. Source it, don't run it.
# Everything here is idempotent: a second run installs nothing.

WACONNECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

info() { printf '[waconnect] %s\n' "$*" >&2; }
die() {
    printf '[waconnect] ERROR: %s\n' "$*" >&2
    exit 1
}
section() { printf '\n========== %s ==========\n' "$*"; }

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

_WACONNECT_APT_UPDATED=0
# apt_install PKG... : noninteractive install; 'apt-get update' runs at most once per script.
apt_install() {
    [ $# -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; please install: $*"
    if [ "$_WACONNECT_APT_UPDATED" = 0 ]; then
        info "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
        _WACONNECT_APT_UPDATED=1
    fi
    info "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

# missing_packages CMD:PKG... : prints (space separated) the packages whose command is missing.
missing_packages() {
    local spec out=()
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || out+=("${spec#*:}")
    done
    printf '%s\n' "${out[*]:-}"
}

# missing_debs PKG... : prints the Debian packages that are not installed (for packages
# without a command to look for, such as fonts).
missing_debs() {
    local pkg out=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || out+=("$pkg")
    done
    printf '%s\n' "${out[*]:-}"
}

# ensure_playwright: playwright-core, as tests/browser/package-lock.json pins it, in
# tests/browser/node_modules (npm ci, only when missing or another version). It drives
# Debian's chromium; it never downloads a browser of its own.
ensure_playwright() {
    local dir="$WACONNECT_ROOT/tests/browser" want have
    command -v node >/dev/null 2>&1 || { info "node is missing: cannot install playwright-core"; return 1; }
    command -v npm >/dev/null 2>&1 || { info "npm is missing: cannot install playwright-core"; return 1; }
    want="$(cd "$dir" && node -p "require('./package-lock.json').packages['node_modules/playwright-core'].version")"
    have="$(cd "$dir" && node -p "try { require('./node_modules/playwright-core/package.json').version } catch { '' }")"
    if [ -n "$want" ] && [ "$want" = "$have" ]; then
        info "playwright-core $have present in tests/browser/node_modules"
        return 0
    fi
    info "npm ci in tests/browser (playwright-core $want)"
    (cd "$dir" && CI=true PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund </dev/null) ||
        { info "npm ci failed in tests/browser"; return 1; }
}

# python3 -m venv needs ensurepip, which Debian ships in python3-venv.
missing_python_venv() {
    command -v python3 >/dev/null 2>&1 || die "python3 is required"
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || echo python3-venv
}

# ensure_system_packages CMD:PKG... [python3-venv]: one apt round for everything missing.
ensure_system_packages() {
    local missing
    # shellcheck disable=SC2207
    missing=($(missing_packages "$@"))
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}"
    else
        info "system packages present: $*"
    fi
}

ensure_rust_components() {
    command -v cargo >/dev/null 2>&1 || die "cargo is required (install Rust with rustup)"
    local spec
    for spec in fmt:rustfmt clippy:clippy; do
        if ! cargo "${spec%%:*}" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null 2>&1 || die "cargo ${spec%%:*} missing and no rustup to add it"
            info "rustup component add ${spec#*:}"
            rustup component add "${spec#*:}"
        fi
    done
}

MOTO_SPEC='moto[server]>=5,<6'
# ensure_moto: .venv in the repo with moto server (installed only if missing).
ensure_moto() {
    local venv="$WACONNECT_ROOT/.venv"
    if [ -x "$venv/bin/moto_server" ]; then
        info "moto present: $venv/bin/moto_server"
        return 0
    fi
    if [ ! -x "$venv/bin/python" ]; then
        rm -rf "$venv"
        info "python3 -m venv $venv"
        python3 -m venv "$venv"
    fi
    info "pip install '$MOTO_SPEC'"
    "$venv/bin/python" -m pip install --disable-pip-version-check -q "$MOTO_SPEC" </dev/null
    [ -x "$venv/bin/moto_server" ] || die "moto_server not installed in $venv"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# http_answers URL: true when anything answers HTTP at URL (any status code).
http_answers() {
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1]), timeout=2)
except urllib.error.HTTPError:
    pass
PY
}

MOTO_PID=""
stop_moto() {
    if [ -n "$MOTO_PID" ] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    MOTO_PID=""
}

# start_moto: moto server on a free loopback port, logs in .test-logs/moto.log, stopped on exit.
# Sets MOTO_ENDPOINT.
start_moto() {
    local logs="$WACONNECT_ROOT/.test-logs" port deadline
    mkdir -p "$logs"
    port="$(free_port)"
    # scripts/moto_server.py: moto with its SQS backend serialised (see the file).
    "$WACONNECT_ROOT/.venv/bin/python" "$WACONNECT_ROOT/scripts/moto_server.py" 127.0.0.1 "$port" \
        >"$logs/moto.log" 2>&1 </dev/null &
    MOTO_PID=$!
    trap stop_moto EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    MOTO_ENDPOINT="http://127.0.0.1:$port"
    deadline=$((SECONDS + 60))
    until http_answers "$MOTO_ENDPOINT/moto-api/"; do
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            tail -n 30 "$logs/moto.log" >&2 || true
            die "moto server exited during start-up (log: .test-logs/moto.log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$logs/moto.log" >&2 || true
            die "moto server did not answer on $MOTO_ENDPOINT within 60 s"
        fi
        sleep 0.2
    done
    info "moto server up at $MOTO_ENDPOINT (pid $MOTO_PID, log .test-logs/moto.log)"
}
