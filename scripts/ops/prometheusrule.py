#!/usr/bin/env python3
"""Writes or checks grafana/generated/prometheusrule.yaml: the Prometheus rule file
grafana/alerts/waconnect.rules.yaml wrapped in a Prometheus Operator PrometheusRule.

    scripts/ops/prometheusrule.py --write   # after changing the rule file
    scripts/ops/prometheusrule.py --check   # scripts/check_ops.sh: fail if stale

The rule file stays the source (promtool checks and tests it, plain Prometheus loads it);
its text is embedded as it is, comments included, so the resource reads like the file.
"""
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "grafana/alerts/waconnect.rules.yaml"
TARGET = ROOT / "grafana/generated/prometheusrule.yaml"

HEADER = """\
# GENERATED from grafana/alerts/waconnect.rules.yaml by scripts/ops/prometheusrule.py
# --write: edit the rule file, not this one (scripts/check_ops.sh fails when they differ).
#
# kube-prometheus-stack loads PrometheusRules labelled release: <its Helm release name>
# (here: a release named kube-prometheus-stack), from any namespace.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: waconnect
  labels:
    app.kubernetes.io/name: waconnect
    release: kube-prometheus-stack
spec:
"""


def render() -> str:
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    # The file's leading comment block talks about loading the file itself: drop it.
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    body = "\n".join(("  " + line) if line.strip() else "" for line in lines)
    text = HEADER + body + "\n"
    # The embedding must mean exactly the rule file.
    wrapped = yaml.safe_load(text)["spec"]
    if wrapped != yaml.safe_load(SOURCE.read_text(encoding="utf-8")):
        sys.exit("prometheusrule.py: the embedded rules differ from the rule file")
    return text


def main() -> int:
    mode = sys.argv[1] if len(sys.argv) > 1 else "--check"
    text = render()
    if mode == "--write":
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        TARGET.write_text(text, encoding="utf-8")
        print(f"wrote {TARGET.relative_to(ROOT)}")
        return 0
    if mode == "--check":
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"FAIL: {TARGET.relative_to(ROOT)} is stale: run scripts/ops/prometheusrule.py --write",
                  file=sys.stderr)
            return 1
        print(f"ok: {TARGET.relative_to(ROOT)} matches {SOURCE.relative_to(ROOT)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
