#!/usr/bin/env bash
# The deployment files' checks (no root, no cluster): the Helm chart, the raw manifests
# rendered from it, the policy, the seccomp profile, the systemd unit and the install script.
# scripts/setup.sh installs the tools (helm under target/tools, kubernetes-validate in
# target/venv-deploy).
#
#   scripts/deploy-check.sh           run every check
#   scripts/deploy-check.sh --write   re-render deploy/k8s/kerno.yaml from the chart
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
HELM=${HELM:-$ROOT/target/tools/helm}
PY=$ROOT/target/venv-deploy/bin/python
KV=$ROOT/target/venv-deploy/bin/kubernetes-validate
CHART=deploy/helm/kerno
RENDERED=deploy/k8s/kerno.yaml
NS=kerno-system
KUBE_VERSIONS=(1.28.0 1.29.0 1.30.0 1.31.0 1.32.0 1.33.0)
# Every toggle of the chart on at once.
ALL_ON=(--set serviceMonitor.enabled=true --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true
        --set hostNetwork=true --set seccompProfile.type=RuntimeDefault --set clusterDoctor.enabled=true
        --set priorityClassName= --set hostPaths.podLogs=false
        --set 'hostPaths.runtimeBundles={/run/containerd/io.containerd.runtime.v2.task,/run/containers/storage/overlay-containers}'
        --set 'agent.extraArgs={--domains,syscalls,sched}'
        --set 'imagePullSecrets[0].name=registry' --set serviceAccount.annotations.a=b
        --set otlp.endpoint=http://otel-collector.observability:4318 --set otlp.headersSecret.name=otlp-auth)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
t0=$(date +%s%N)
say() { printf '[deploy] %s\n' "$*"; }
die() { printf '[deploy] FAIL: %s\n' "$*" >&2; exit 1; }
[ -x "$HELM" ] || die "$HELM is missing: run scripts/setup.sh"
[ -x "$KV" ] || die "$KV is missing: run scripts/setup.sh"

# The committed rendering: what `kubectl apply -k deploy/k8s` installs.
render_default() {
    local chart=$1
    printf '# Generated from deploy/helm/kerno with default values by scripts/deploy-check.sh --write\n'
    printf '# (helm template kerno deploy/helm/kerno --namespace %s). Do not edit: CI fails when stale.\n' "$NS"
    "$HELM" template kerno "$chart" --namespace "$NS"
}

# Fails (returns 1) when $RENDERED is not what the chart at $1 renders.
fresh() {
    render_default "$1" > "$TMP/fresh.yaml"
    cmp -s "$TMP/fresh.yaml" "$RENDERED"
}

if [ "${1:-}" = "--write" ]; then
    render_default "$CHART" > "$RENDERED"
    say "wrote $RENDERED"
    exit 0
fi

# 1. Helm: lint, render with defaults and with every toggle on; the schema refuses nonsense.
"$HELM" lint --strict "$CHART" > "$TMP/lint.txt" || { cat "$TMP/lint.txt"; die "helm lint"; }
"$HELM" lint --strict "$CHART" "${ALL_ON[@]}" > "$TMP/lint.txt" || { cat "$TMP/lint.txt"; die "helm lint (toggles on)"; }
"$HELM" template kerno "$CHART" --namespace "$NS" > "$TMP/default.yaml"
"$HELM" template kerno "$CHART" --namespace "$NS" "${ALL_ON[@]}" > "$TMP/all.yaml"
for bad in "agent.port=0" "seccompProfile.type=Unconfined" "resources.limits=null" "hostNetwork=yes" \
           "clusterDoctor.enabled=yes" "otlp.endpoint=otel-collector:4318" "otlp.interval=often"; do
    if "$HELM" template kerno "$CHART" --set "$bad" > /dev/null 2>&1; then
        die "values.schema.json accepted $bad"
    fi
done
grep -q 'kind: ServiceMonitor' "$TMP/all.yaml" && grep -q 'kind: PrometheusRule' "$TMP/all.yaml" \
    || die "the toggles did not render the ServiceMonitor and PrometheusRule"
# The dashboard ConfigMap: the sidecar's label, and the very dashboard deploy/grafana holds.
cmp -s "$CHART/dashboards/kerno-node.json" deploy/grafana/kerno-node.json \
    || die "$CHART/dashboards/kerno-node.json differs from deploy/grafana/kerno-node.json (copy it over)"
"$PY" - "$TMP/all.yaml" deploy/grafana/kerno-node.json <<'PY' || die "grafanaDashboard.enabled did not render the dashboard ConfigMap"
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "ConfigMap"
        and d["metadata"]["name"].endswith("-dashboard")]
assert len(docs) == 1, docs
cm = docs[0]
assert cm["metadata"]["labels"].get("grafana_dashboard") == "1", cm["metadata"]["labels"]
assert json.loads(cm["data"]["kerno-node.json"]) == json.load(open(sys.argv[2]))
PY
grep -q 'grafana_dashboard' "$TMP/default.yaml" && die "the dashboard ConfigMap is on by default"
# The cluster doctor: its Secret, the flags, the token mounted where the flag says; off by default.
grep -q -- '--serve-doctor' "$TMP/all.yaml" && grep -q 'name: kerno-doctor-token' "$TMP/all.yaml" \
    && grep -q 'publishNotReadyAddresses: true' "$TMP/all.yaml" \
    && grep -q 'value: "kerno.kerno-system.svc:9090"' "$TMP/all.yaml" \
    || die "clusterDoctor.enabled did not render the Secret, the flags and the Service setting"
grep -q -- '--serve-doctor' "$TMP/default.yaml" && die "the cluster doctor is on by default"
"$HELM" template kerno "$CHART" --namespace "$NS" --set clusterDoctor.enabled=true \
    --set clusterDoctor.existingSecret=mine > "$TMP/own-secret.yaml"
grep -q 'kind: Secret' "$TMP/own-secret.yaml" && die "clusterDoctor.existingSecret still rendered a Secret"
grep -q 'secretName: mine' "$TMP/own-secret.yaml" || die "clusterDoctor.existingSecret is not mounted"
grep -q -- '- --otlp-endpoint' "$TMP/all.yaml" && grep -q 'name: KERNO_OTLP_HEADERS' "$TMP/all.yaml" \
    || die "otlp.endpoint did not render --otlp-endpoint and the headers Secret"
if grep -q -- 'otlp' "$TMP/default.yaml"; then die "the default rendering exports over OTLP"; fi
say "helm lint clean; rendered default and all toggles on; schema refuses 7 bad values"

# 2. Core kinds against Kubernetes' own schemas, strict, six versions.
for v in "${KUBE_VERSIONS[@]}"; do
    for f in default all; do
        "$KV" --strict --quiet --no-warn -k "$v" "$TMP/$f.yaml" > "$TMP/kv.txt" 2>&1 \
            || { cat "$TMP/kv.txt"; die "kubernetes-validate --strict $v ($f)"; }
    done
done
# ...and the validator refuses a typo, so the passes above mean something.
sed 's/^\(\s*\)hostPID: true/\1hostPid: true/' "$TMP/default.yaml" > "$TMP/typo.yaml"
if "$KV" --strict --quiet --no-warn -k 1.33.0 "$TMP/typo.yaml" > /dev/null 2>&1; then
    die "kubernetes-validate --strict accepted an unknown field"
fi
say "kubernetes-validate --strict: ${KUBE_VERSIONS[*]} (default and all toggles); a typo is refused"

# 3. ServiceMonitor and PrometheusRule against the operator's CRD schemas; the rules through promtool.
"$PY" scripts/crd-check.py "$TMP/all.yaml" "$TMP/rules.yaml" | sed 's/^/[deploy] /'
# ...and it refuses a field the CRD does not declare.
sed 's/^\(\s*\)scrapeTimeout: /\1scrapeTimout: /' "$TMP/all.yaml" > "$TMP/crd-typo.yaml"
grep -q 'scrapeTimout' "$TMP/crd-typo.yaml" || die "no scrapeTimeout in the ServiceMonitor to misspell"
if "$PY" scripts/crd-check.py "$TMP/crd-typo.yaml" "$TMP/rules-typo.yaml" > /dev/null 2>&1; then
    die "crd-check accepted an undeclared ServiceMonitor field"
fi
promtool check rules "$TMP/rules.yaml" > "$TMP/promtool.txt" 2>&1 || { cat "$TMP/promtool.txt"; die "promtool check rules"; }
say "promtool check rules: $(grep -o '[0-9]* rules found' "$TMP/promtool.txt")"
# ...and the plain Prometheus rules (deploy/prometheus): valid, and their unit tests fire
# each alert on a recorded series and keep it silent on a healthy one.
promtool check rules deploy/prometheus/kerno-rules.yaml > "$TMP/promtool.txt" 2>&1 || { cat "$TMP/promtool.txt"; die "promtool check rules deploy/prometheus/kerno-rules.yaml"; }
(cd deploy/prometheus && promtool test rules kerno-rules.test.yaml) > "$TMP/promtool-test.txt" 2>&1 || { cat "$TMP/promtool-test.txt"; die "promtool test rules deploy/prometheus/kerno-rules.test.yaml"; }
say "deploy/prometheus: $(grep -o '[0-9]* rules found' "$TMP/promtool.txt"), promtool test rules: $(grep -c '^  SUCCESS' "$TMP/promtool-test.txt") file passes"

# 4. The raw manifests: fresh, and kustomize renders them.
fresh "$CHART" || { diff -u "$RENDERED" "$TMP/fresh.yaml" | head -20; die "$RENDERED is STALE: run scripts/deploy-check.sh --write and commit it"; }
cp -r "$CHART" "$TMP/chart"
sed -i 's/periodSeconds: 10/periodSeconds: 11/' "$TMP/chart/templates/daemonset.yaml"
if fresh "$TMP/chart"; then die "the staleness check did not notice a changed template"; fi
kubectl kustomize deploy/k8s > "$TMP/kustomized.yaml"
grep -q '^kind: Namespace' "$TMP/kustomized.yaml" || die "kubectl kustomize deploy/k8s has no Namespace"
"$KV" --strict --quiet --no-warn -k 1.33.0 "$TMP/kustomized.yaml" > /dev/null || die "kustomize output invalid"
say "$RENDERED is fresh (a changed template makes it stale); kubectl kustomize deploy/k8s renders"

# 5. The policy, on what the chart renders, and on its own failing fixtures.
"$PY" scripts/policy.py "$TMP/default.yaml" "$TMP/kustomized.yaml" > /dev/null || die "policy (default)"
"$PY" scripts/policy.py --allow-host-network "$TMP/all.yaml" > /dev/null || die "policy (toggles on)"
if "$PY" scripts/policy.py "$TMP/all.yaml" 2> "$TMP/policy.txt"; then die "policy allowed an unconfigured hostNetwork"; fi
"$PY" scripts/policy.py --fixtures deploy/policy-fixtures > "$TMP/fixtures.txt" || { cat "$TMP/fixtures.txt"; die "policy fixtures"; }
say "policy: chart renders pass; $(tail -1 "$TMP/fixtures.txt")"
# Kerno's own containers (agent and preflight) add exactly the capability set of
# docs/reliability.md ("Least privilege"): the policy above only bounds it.
"$PY" - "$TMP/default.yaml" <<'PYEOF' || die "capability set"
import sys, yaml
want = {"BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH"}
seen = 0
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if not doc or doc.get("kind") != "DaemonSet":
        continue
    spec = doc["spec"]["template"]["spec"]
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        caps = c["securityContext"]["capabilities"]
        got = {a.upper().removeprefix("CAP_") for a in caps.get("add", [])}
        if got != want or [d.upper() for d in caps.get("drop", [])] != ["ALL"]:
            sys.exit(f"container {c['name']}: drop {caps.get('drop')} add {sorted(got)}, want drop [ALL] add {sorted(want)}")
        seen += 1
if seen < 2:
    sys.exit(f"{seen} kerno containers found, want the agent and the preflight")
PYEOF
say "capabilities: the agent and the preflight drop ALL and add exactly BPF PERFMON SYS_PTRACE DAC_READ_SEARCH"
grep -rn 'privileged: true' deploy/ scripts/ Dockerfile --include='*.yaml' --include='*.yml' --include='*.tpl' \
    | grep -v '^deploy/policy-fixtures/' && die "privileged: true outside the policy fixtures"

# 6. The seccomp profile is the runtime default plus bpf and perf_event_open.
python3 scripts/gen-seccomp.py --check | sed 's/^/[deploy] /'

# 7. The systemd unit and the install script (into a scratch root).
scripts/install-check.sh

say "all deployment checks passed ($(( ($(date +%s%N) - t0) / 1000000 )) ms)"
