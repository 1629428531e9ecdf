#!/usr/bin/env bash
# Lints and validates the deploy kit; .ci/run calls it, and it runs the same by hand:
#   bash deploy/check.sh
# - Dockerfile: hadolint;
# - deploy/compose/docker-compose.yml: the Compose specification's JSON schema (vendored in
#   deploy/compose/schema/), with check-jsonschema;
# - deploy/compose/haproxy.cfg: `haproxy -c` (HAProxy's own parser);
# - deploy/kubernetes/*.yaml: kubernetes-validate --strict against Kubernetes $K8S_VERSION
#   (kinds it has no schema for, the Kustomization and the ServiceMonitor, are only warned
#   about: the ServiceMonitor is then checked against the Prometheus Operator's schema, and
#   the Kustomization to list exactly the manifests beside it);
# - deploy/prometheus/alerts.yml: `promtool check rules`, `promtool test rules` on
#   alerts_test.yml, and a runbook section for every alert;
# - deploy/prometheus/ and deploy/grafana/: parse, and the shape Prometheus/Grafana read.
# The tools are pinned in tests/deploy/ (requirements.txt; servicemonitor/package-lock.json,
# which needs node). Without them, or without haproxy, a
# check is skipped with a note, except under CI=true, where that fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

K8S_VERSION=1.37.0
deps="${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/deploy"
python="${HATA_PYTHON:-python3}"
failed=0

missing() {
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL: $1 (required under CI=true)" >&2
        failed=1
    else
        echo "SKIPPED: $1" >&2
    fi
}

run() {
    echo "--- $*"
    if ! "$@"; then
        failed=1
    fi
}

tools=1
if ! bash tests/deploy/install.sh; then
    tools=0
    missing "the deploy tools (tests/deploy/requirements.txt) could not be installed"
fi
export PYTHONPATH="$deps${PYTHONPATH:+:$PYTHONPATH}"

if [ "$tools" = 1 ]; then
    run "$deps/bin/hadolint" Dockerfile
    run "$python" -m check_jsonschema --schemafile deploy/compose/schema/compose-spec.json \
        deploy/compose/docker-compose.yml
    run "$python" -m kubernetes_validate --strict --kubernetes-version "$K8S_VERSION" \
        deploy/kubernetes/*.yaml
fi

if [ "$tools" = 1 ] && ! command -v node >/dev/null 2>&1; then
    missing "node is not installed: deploy/kubernetes/servicemonitor.yaml not checked"
elif [ "$tools" = 1 ]; then
    # The ServiceMonitor against the Prometheus Operator's schema (tests/deploy/servicemonitor/).
    echo "--- deploy/kubernetes/servicemonitor.yaml: the ServiceMonitor schema"
    if ! "$python" -c 'import json, sys, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)' \
        deploy/kubernetes/servicemonitor.yaml | node "${deps}-servicemonitor/check.mjs"; then
        failed=1
    fi
fi

if command -v haproxy >/dev/null 2>&1; then
    # The Compose services' names: they do not resolve here, which HAProxy warns about and
    # starts with anyway (init-addr none), as it must while a replica is not created yet.
    run env HATA1_ADDR=hata1:7070 HATA2_ADDR=hata2:7070 HATA3_ADDR=hata3:7070 \
        haproxy -c -f deploy/compose/haproxy.cfg
else
    missing "haproxy is not installed: deploy/compose/haproxy.cfg not checked"
fi

if [ "$tools" = 1 ]; then
    echo "--- kustomization, Prometheus and Grafana files"
    if ! "$python" - <<'PY'; then failed=1; fi
import pathlib, sys
import yaml

problems = []

k8s = pathlib.Path("deploy/kubernetes")
kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
listed = set(kustomization["resources"])
present = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml"}
for name in sorted(listed - present):
    problems.append(f"kustomization.yaml lists {name}, which does not exist")
for name in sorted(present - listed):
    problems.append(f"deploy/kubernetes/{name} is not in kustomization.yaml")

monitor = yaml.safe_load((k8s / "servicemonitor.yaml").read_text())
endpoints = monitor.get("spec", {}).get("endpoints") or []
if monitor.get("apiVersion") != "monitoring.coreos.com/v1" or not endpoints:
    problems.append("servicemonitor.yaml: not a monitoring.coreos.com/v1 ServiceMonitor with endpoints")
service = yaml.safe_load((k8s / "service.yaml").read_text())
ports = {p.get("name") for p in service["spec"]["ports"]}
for endpoint in endpoints:
    if endpoint.get("port") not in ports:
        problems.append(f"servicemonitor.yaml: port {endpoint.get('port')!r} is not a Service port")

prom = pathlib.Path("deploy/prometheus")
config = yaml.safe_load((prom / "prometheus.yml").read_text())
for rule_file in config.get("rule_files", []):
    if not (prom / pathlib.PurePosixPath(rule_file).name).is_file():
        problems.append(f"prometheus.yml: rule file {rule_file} is not in deploy/prometheus/")
if not any(job.get("job_name") == "hata" for job in config.get("scrape_configs", [])):
    problems.append("prometheus.yml: no scrape job named hata")
# Every alert links a runbook section of docs/operations.md that exists (GitHub's anchors:
# the heading lower-cased). promtool checks and unit-tests the rules themselves (below).
alerts = yaml.safe_load((prom / "alerts.yml").read_text())
runbook = pathlib.Path("docs/operations.md").read_text()
anchors = {line.lstrip("#").strip().lower().replace(" ", "-") for line in runbook.splitlines() if line.startswith("#")}
for group in alerts.get("groups", []):
    for rule in group.get("rules", []):
        if "alert" not in rule:
            continue
        url = rule.get("annotations", {}).get("runbook_url", "")
        page, _, anchor = url.partition("#")
        if page != "docs/operations.md" or anchor not in anchors:
            problems.append(f"alerts.yml: {rule['alert']}: runbook_url {url!r} names no section of docs/operations.md")

for path in pathlib.Path("deploy/grafana/provisioning").rglob("*.yml"):
    doc = yaml.safe_load(path.read_text())
    if doc.get("apiVersion") != 1:
        problems.append(f"{path}: apiVersion must be 1")

for problem in problems:
    print("ERROR", problem)
sys.exit(1 if problems else 0)
PY
fi

# The alert rules: promtool's own check, and each alert's unit tests.
if command -v promtool >/dev/null 2>&1; then
    run promtool check rules deploy/prometheus/alerts.yml
    run promtool test rules deploy/prometheus/alerts_test.yml
else
    missing "promtool (Debian package prometheus)"
fi

if [ "$failed" != 0 ]; then
    echo "deploy/check.sh: FAILED" >&2
    exit 1
fi
echo "deploy/check.sh: all deploy checks passed"
