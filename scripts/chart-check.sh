#!/usr/bin/env bash
# The Helm chart against a real API server:
#   eval "$(scripts/control-plane.sh up)"; scripts/chart-check.sh
#
# 1. `helm lint --strict` and `helm template` for the defaults and each
#    charts/otpilot/ci/*-values.yaml (one file per feature set);
# 2. values.schema.json rejects a misspelt value;
# 3. every rendered object validated by the API server (server-side dry-run
#    apply). The Prometheus Operator and cert-manager CRDs are not part of
#    this cluster: minimal copies are installed for the check (their schemas
#    check only the fields the chart must set, and are removed at the end);
# 4. `helm install`, `upgrade` (to every feature on) and `uninstall`: only
#    the CRDs (and the ClientCA the chart keeps on purpose) remain;
# 5. the operator's ServiceAccount, as a table of SubjectAccessReviews: what
#    it must be allowed, and what it must not (Secrets outside
#    rbac.secretNamespaces, Pods, RBAC, other webhooks...);
# 6. the PrometheusRule with promtool (scripts/build-promtool.sh): `check
#    rules` for every value set, `test rules` (charts/otpilot/tests/) on
#    series shaped as the operator and sidecars export them, the per-alert
#    switches, and the ServiceMonitor/PodMonitor's honorLabels.
# Fails on the first broken check; needs OTPILOT_TEST_KUBECONFIG.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$ROOT/charts/otpilot
RELEASE=chart-check
FULLNAME=chart-check-otpilot
NS=chart-check-system
TEAM_A=chart-check-team-a
TEAM_B=chart-check-team-b
KEPT_CLIENT_CA=chart-check-ca

log() { printf '[chart-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

[ -n "${OTPILOT_TEST_KUBECONFIG:-}" ] \
  || die "OTPILOT_TEST_KUBECONFIG is not set: start the test control plane with eval \"\$(scripts/control-plane.sh up)\""
BIN=$("$ROOT/scripts/build-control-plane.sh")
PROMTOOL=$("$ROOT/scripts/build-promtool.sh")
kubectl() { "$BIN/kubectl" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" "$@"; }
helm() { "$BIN/helm" --kubeconfig "$OTPILOT_TEST_KUBECONFIG" "$@"; }
# The chart has no default images (none is published): every render names some, as users do
# after scripts/images.sh --push. Check 2c shows what happens without.
# A values file, so a later -f (ci/all-values.yaml's own images) still wins.
IMAGES_FILE=$(mktemp)
printf 'operator: {image: {repository: %s}}\nsidecar: {image: {repository: %s}}\n' \
  registry.example/otpilot/otpilot-operator registry.example/otpilot/otpilot-sidecar >"$IMAGES_FILE"
IMAGES=(-f "$IMAGES_FILE")

VERSION=$(kubectl version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
log "kube-apiserver $VERSION, helm $("$BIN/helm" version --short)"

# Minimal stand-ins for CRDs this cluster does not have.
test_crds() {
  local crd
  for crd in \
    "monitoring.coreos.com ServiceMonitor servicemonitors Namespaced selector,endpoints" \
    "monitoring.coreos.com PrometheusRule prometheusrules Namespaced groups" \
    "monitoring.coreos.com PodMonitor podmonitors Namespaced selector,podMetricsEndpoints" \
    "cert-manager.io Certificate certificates Namespaced secretName,issuerRef" \
    "cert-manager.io Issuer issuers Namespaced" \
    "cert-manager.io ClusterIssuer clusterissuers Cluster"; do
    set -- $crd
    local required=""
    [ -n "${5:-}" ] && required="required: [${5}]"
    cat <<YAML
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: $3.$1
  labels: {otpilot.dev/chart-check: "true"}
spec:
  group: $1
  names: {kind: $2, plural: $3, singular: $(echo "$2" | tr 'A-Z' 'a-z'), listKind: ${2}List}
  scope: $4
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              $required
YAML
  done
}

RULES_DIR=""
cleanup() {
  local status=$?
  [ -z "$RULES_DIR" ] || rm -rf "$RULES_DIR"
  helm uninstall "$RELEASE" --namespace "$NS" >/dev/null 2>&1 || true
  kubectl delete clientca "$KEPT_CLIENT_CA" --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete namespace "$NS" "$TEAM_A" "$TEAM_B" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  kubectl delete crd -l otpilot.dev/chart-check=true --ignore-not-found >/dev/null 2>&1 || true
  rm -f "$IMAGES_FILE"
  [ "$status" -eq 0 ] || log "FAILED (exit $status)"
  exit "$status"
}
trap cleanup EXIT

values_files=("$CHART"/ci/*-values.yaml)
[ "${#values_files[@]}" -ge 2 ] || die "no values files in $CHART/ci"

log "1. helm lint --strict and helm template, ${#values_files[@]} value sets"
for values in "${values_files[@]}"; do
  "$BIN/helm" lint --strict "$CHART" "${IMAGES[@]}" -f "$values" --kube-version "$VERSION" >/dev/null \
    || { "$BIN/helm" lint --strict "$CHART" "${IMAGES[@]}" -f "$values" --kube-version "$VERSION"; die "helm lint $(basename "$values")"; }
  "$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" -f "$values" --namespace "$NS" --kube-version "$VERSION" >/dev/null \
    || die "helm template $(basename "$values")"
  log "   lint + template ok: $(basename "$values")"
done

log "2. values.schema.json rejects misspelt values"
for typo in operator.replica=3 webhook.failurepolicy=Ignore webhook.certManager.enabeld=true \
            sidecar.resources.memoryLimits=1Gi metrics.serviceMonitor.intervall=1m rbac.secretNamespace=x \
            webhook.failurePolicy=Sometimes; do
  if out=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --set "$typo" --kube-version "$VERSION" 2>&1); then
    die "--set $typo was accepted"
  fi
  grep -q "schema" <<<"$out" || die "--set $typo failed, but not on the schema: $out"
  log "   rejected: $typo"
done

log "2b. settings that cannot work are refused with a message"
for bad in "operator.replicas=1" "podDisruptionBudget.minAvailable=3"; do
  if out=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --set "$bad" --kube-version "$VERSION" 2>&1); then
    die "--set $bad was accepted: a PodDisruptionBudget that blocks every drain"
  fi
  grep -q "node drains block" <<<"$out" || die "--set $bad failed without saying why: $out"
  log "   refused: $bad"
done
if out=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --set webhook.networkPolicy.enabled=true --kube-version "$VERSION" 2>&1); then
  die "a NetworkPolicy without the API server's sources was accepted: it would cut the webhook off"
fi
grep -q "apiServerCIDRs or apiServerPeers" <<<"$out" || die "the source-less NetworkPolicy failed without saying why: $out"
log "   refused: webhook.networkPolicy.enabled=true without apiServerCIDRs or apiServerPeers"

log "2c. without images the render fails, in one line saying how to build and push them"
# (and so does helm install: nothing is created that would end in ImagePullBackOff)
for missing in "sidecar.image.repository=registry.example/s" "operator.image.repository=registry.example/o" ""; do
  if out=$("$BIN/helm" template "$RELEASE" "$CHART" ${missing:+--set "$missing"} --kube-version "$VERSION" 2>&1); then
    die "rendered without an image (${missing:-no image set})"
  fi
  # Helm adds "Use --debug flag ..." below; the error itself is one line that says it all.
  line=$(grep '^Error: ' <<<"$out") || die "no error line: $out"
  grep -q "image.repository is not set: .*scripts/images.sh --push REGISTRY/PREFIX.*docs/images.md" <<<"$line" \
    || die "the missing-image error does not say how to build and push: $out"
done
log "   refused: $line"

log "2d. securityContexts: hardened by default; UIDs can be left to the platform (OpenShift)"
deployment=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --show-only templates/deployment.yaml --kube-version "$VERSION")
for want in "runAsNonRoot: true" "runAsUser: 65532" "fsGroup: 65532" "readOnlyRootFilesystem: true" \
            "allowPrivilegeEscalation: false" "type: RuntimeDefault" "- ALL"; do
  grep -qF -- "$want" <<<"$deployment" || die "the default Deployment lacks $want"
done
deployment=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --show-only templates/deployment.yaml \
  --set operator.podSecurityContext.runAsUser=null --set operator.podSecurityContext.runAsGroup=null \
  --set operator.podSecurityContext.fsGroup=null --set operator.securityContext.runAsUser=null \
  --set operator.securityContext.runAsGroup=null --kube-version "$VERSION")
! grep -qE "runAsUser|runAsGroup|fsGroup" <<<"$deployment" || die "null UIDs still rendered"
grep -q "runAsNonRoot: true" <<<"$deployment" || die "runAsNonRoot went with the UIDs"
log "   ok"

log "3. server-side dry-run of every rendered object"
# The chart's CRDs for real (a dry-run CRD would not serve its resources),
# then the stand-ins for the Prometheus Operator and cert-manager.
kubectl apply --server-side -f "$CHART/crds/" >/dev/null
test_crds | kubectl apply --server-side -f - >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd -l otpilot.dev/chart-check=true >/dev/null
kubectl wait --for=condition=Established --timeout=60s \
  crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev >/dev/null
kubectl create namespace "$NS" >/dev/null
kubectl create namespace "$TEAM_A" >/dev/null
kubectl create namespace "$TEAM_B" >/dev/null
for values in "${values_files[@]}"; do
  rendered=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" -f "$values" --namespace "$NS" \
    --kube-version "$VERSION" --include-crds)
  count=$(grep -c '^kind: ' <<<"$rendered")
  kubectl apply --dry-run=server --server-side --field-manager=chart-check -f - <<<"$rendered" >/dev/null \
    || die "the API server refused objects rendered with $(basename "$values")"
  log "   $count objects accepted: $(basename "$values")"
done

# Every object of the release, cluster-wide: "kind/name" lines.
release_objects() {
  local kinds
  kinds=$(kubectl api-resources --verbs=list -o name | grep -vE '^(events|events\.events\.k8s\.io|componentstatuses)$' | paste -sd, -)
  kubectl get "$kinds" --all-namespaces -l "app.kubernetes.io/instance=$RELEASE" \
    -o custom-columns='K:.kind,N:.metadata.name' --no-headers 2>/dev/null | awk '{print $1"/"$2}' | sort
}

log "4. helm install (defaults but the images)"
if out=$(helm install "$RELEASE" "$CHART" --namespace "$NS" 2>&1); then die "helm install without images succeeded"; fi
grep -q "scripts/images.sh --push" <<<"$out" || die "helm install without images failed without saying how: $out"
notes=$(helm install "$RELEASE" "$CHART" "${IMAGES[@]}" --namespace "$NS")
# NOTES.txt: the images in use and the next step.
for want in "operator: registry.example/otpilot/otpilot-operator:" "sidecar:  registry.example/otpilot/otpilot-sidecar:" \
            "Next: wait for the operator" "rollout status deployment/$FULLNAME" "Private registries"; do
  grep -qF "$want" <<<"$notes" || die "NOTES.txt lacks '$want': $notes"
done
for object in "deployment/$FULLNAME" "serviceaccount/$FULLNAME" "service/$FULLNAME-webhook" \
              "service/$FULLNAME-metrics" "poddisruptionbudget/$FULLNAME" "configmap/$FULLNAME-inject" \
              "role/$FULLNAME" "rolebinding/$FULLNAME"; do
  kubectl -n "$NS" get "$object" >/dev/null || die "$object missing after install"
done
for object in "clusterrole/$FULLNAME" "clusterrole/$FULLNAME-secrets" "clusterrolebinding/$FULLNAME" \
              "clusterrolebinding/$FULLNAME-secrets" "mutatingwebhookconfiguration/$FULLNAME" \
              crd/apicredentials.otpilot.dev crd/clientcas.otpilot.dev crd/clustermfaprofiles.otpilot.dev; do
  kubectl get "$object" >/dev/null || die "$object missing after install"
done
conditions=$(kubectl get mutatingwebhookconfiguration "$FULLNAME" -o jsonpath='{.webhooks[0].matchConditions[0].expression}')
grep -q "otpilot.dev/inject" <<<"$conditions" || die "the webhook's matchConditions do not select the annotation: $conditions"
log "   installed: $(release_objects | wc -l) objects"

# 5. RBAC, by SubjectAccessReview as the operator's ServiceAccount.
SA_USER="system:serviceaccount:$NS:$FULLNAME"
can() { # verb group resource namespace(-: cluster) [name] [subresource]
  local ns="" name="" sub=""
  [ "$4" != "-" ] && ns=$4
  [ -n "${5:-}" ] && name=$5
  [ -n "${6:-}" ] && sub=$6
  kubectl create -o jsonpath='{.status.allowed}' -f - <<JSON
{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{
 "user":"$SA_USER","groups":["system:serviceaccounts","system:serviceaccounts:$NS","system:authenticated"],
 "resourceAttributes":{"verb":"$1","group":"$2","resource":"$3","namespace":"$ns","name":"$name","subresource":"$sub"}}}
JSON
}
check_table() { # lines: expect verb group resource namespace [name] [subresource]
  local expect verb group resource ns name sub got failures=0 rows=0
  while read -r expect verb group resource ns name sub; do
    [ -z "$expect" ] || [ "${expect:0:1}" = "#" ] && continue
    [ "$group" = core ] && group=""
    [ "$name" = "-" ] && name=""
    got=$(can "$verb" "$group" "$resource" "$ns" "$name" "$sub")
    [ "$got" = true ] || got=false
    rows=$((rows + 1))
    if [ "$expect" = allow ] && [ "$got" != true ]; then
      log "   DENIED but needed: $verb ${group:-core}/$resource ns=$ns ${name:+name=$name} ${sub:+sub=$sub}"; failures=$((failures + 1))
    elif [ "$expect" = deny ] && [ "$got" = true ]; then
      log "   ALLOWED but must not be: $verb ${group:-core}/$resource ns=$ns ${name:+name=$name} ${sub:+sub=$sub}"; failures=$((failures + 1))
    fi
  done
  [ "$failures" -eq 0 ] || die "$failures of $rows access checks wrong"
  log "   $rows access checks as expected"
}

log "5a. RBAC with the defaults (Secrets in every namespace)"
check_table <<TABLE
# expect verb group resource namespace name subresource
allow watch  otpilot.dev apicredentials     -
allow patch  otpilot.dev apicredentials     $TEAM_A vendor
allow patch  otpilot.dev apicredentials     $TEAM_A vendor status
allow update otpilot.dev clientcas          -       ca
allow patch  otpilot.dev clientcas          -       ca status
allow list   otpilot.dev clustermfaprofiles -
allow patch  otpilot.dev clustermfaprofiles -       p status
allow list   core secrets $TEAM_A
allow watch  core secrets $TEAM_B
allow create core secrets $TEAM_A
allow delete core secrets $TEAM_A vendor-runtime
allow get    core secrets $NS     ca-key
allow get    core configmaps $TEAM_A vendor-ca
allow create core configmaps $NS
allow create core events $TEAM_A
allow create events.k8s.io events $TEAM_A
allow watch  core namespaces -
deny  update core namespaces - $TEAM_A
allow get    coordination.k8s.io leases $NS $FULLNAME
allow update coordination.k8s.io leases $NS $FULLNAME
allow create coordination.k8s.io leases $NS
allow get    admissionregistration.k8s.io mutatingwebhookconfigurations - $FULLNAME
allow patch  admissionregistration.k8s.io mutatingwebhookconfigurations - $FULLNAME
deny  patch  admissionregistration.k8s.io mutatingwebhookconfigurations - someone-elses-webhook
deny  create admissionregistration.k8s.io mutatingwebhookconfigurations -
deny  update admissionregistration.k8s.io validatingwebhookconfigurations - $FULLNAME
deny  create otpilot.dev apicredentials     $TEAM_A
deny  delete otpilot.dev apicredentials     $TEAM_A vendor
deny  update otpilot.dev clustermfaprofiles -       p
deny  delete otpilot.dev clientcas          -       ca
deny  create core configmaps $TEAM_A
deny  update core configmaps $TEAM_A vendor-ca
allow update coordination.k8s.io leases $TEAM_A vendor-session
allow create coordination.k8s.io leases $TEAM_A
allow patch  rbac.authorization.k8s.io roles $TEAM_A otpilot-session-vendor
allow create rbac.authorization.k8s.io rolebindings $TEAM_A
allow update rbac.authorization.k8s.io rolebindings $TEAM_A otpilot-session-vendor
deny  delete coordination.k8s.io leases $NS $FULLNAME
deny  delete rbac.authorization.k8s.io rolebindings $TEAM_A otpilot-session-vendor
deny  bind   rbac.authorization.k8s.io roles $TEAM_A otpilot-session-vendor
deny  escalate rbac.authorization.k8s.io roles $TEAM_A otpilot-session-vendor
# Leases in every bound namespace (the shared session's, issue 12): with the
# default cluster-wide binding that includes kube-system, as the Secrets do;
# rbac.secretNamespaces narrows both (5b).
allow create coordination.k8s.io leases kube-system
# Pods: list and watch only, for the session grants (which ServiceAccounts
# run injected Pods); no get, no writes, no exec.
allow list   core pods -
allow watch  core pods $TEAM_A
deny  get    core pods $TEAM_A
deny  create core pods $TEAM_A
deny  delete core pods $TEAM_A web
deny  create core pods $TEAM_A web exec
deny  create core serviceaccounts $TEAM_A default token
deny  list   core nodes -
deny  get    apiextensions.k8s.io customresourcedefinitions - apicredentials.otpilot.dev
deny  create rbac.authorization.k8s.io clusterrolebindings -
deny  bind   rbac.authorization.k8s.io clusterroles - cluster-admin
deny  escalate rbac.authorization.k8s.io clusterroles - $FULLNAME
deny  impersonate core serviceaccounts $TEAM_A default
TABLE

log "4b. helm upgrade to every feature on (ci/all-values.yaml)"
helm upgrade "$RELEASE" "$CHART" --namespace "$NS" "${IMAGES[@]}" -f "$CHART/ci/all-values.yaml" >/dev/null
for object in "certificate/$FULLNAME-webhook" "issuer/$FULLNAME-selfsigned" "servicemonitor/$FULLNAME" \
              "prometheusrule/$FULLNAME" "podmonitor/$FULLNAME-sidecars" "rolebinding/$FULLNAME-secrets" "networkpolicy/$FULLNAME"; do
  kubectl -n "$NS" get "$object" >/dev/null || die "$object missing after upgrade"
done
kubectl get clientca "$KEPT_CLIENT_CA" >/dev/null || die "the default ClientCA is missing after upgrade"
kubectl get clusterrolebinding "$FULLNAME-secrets" >/dev/null 2>&1 \
  && die "the cluster-wide Secret binding survived rbac.secretNamespaces"
injected_from=$(kubectl get mutatingwebhookconfiguration "$FULLNAME" -o jsonpath='{.metadata.annotations.cert-manager\.io/inject-ca-from}')
[ "$injected_from" = "$NS/$FULLNAME-webhook" ] || die "cainjector annotation is '$injected_from'"
log "   upgraded: $(release_objects | wc -l) objects"

log "5b. RBAC with rbac.secretNamespaces=[$TEAM_A]"
check_table <<TABLE
allow list   core secrets $TEAM_A
allow create core secrets $TEAM_A
allow get    core secrets $NS ca-key
allow watch  core secrets $NS
deny  get    core secrets $TEAM_B vendor-login
deny  list   core secrets $TEAM_B
deny  list   core secrets kube-system
deny  list   core secrets -
deny  create core secrets default
allow update coordination.k8s.io leases $TEAM_A vendor-session
allow create rbac.authorization.k8s.io rolebindings $TEAM_A
deny  update coordination.k8s.io leases $TEAM_B vendor-session
deny  create rbac.authorization.k8s.io rolebindings $TEAM_B
deny  create rbac.authorization.k8s.io roles kube-system
deny  create coordination.k8s.io leases kube-system
deny  update coordination.k8s.io leases kube-system kube-controller-manager
deny  get    admissionregistration.k8s.io mutatingwebhookconfigurations - $FULLNAME
allow watch  core pods $TEAM_B
deny  create core pods $TEAM_A
TABLE

log "4c. helm uninstall leaves only the CRDs (and the ClientCA kept by helm.sh/resource-policy)"
helm uninstall "$RELEASE" --namespace "$NS" --wait >/dev/null
# Pods and ReplicaSets go by garbage collection, after helm returns.
for _ in $(seq 1 60); do
  left=$(release_objects)
  [ "$left" = "ClientCA/$KEPT_CLIENT_CA" ] && break
  sleep 1
done
[ "$left" = "ClientCA/$KEPT_CLIENT_CA" ] || die "left behind after uninstall: ${left:-nothing}; expected only ClientCA/$KEPT_CLIENT_CA"
kubectl get crd apicredentials.otpilot.dev clientcas.otpilot.dev clustermfaprofiles.otpilot.dev >/dev/null \
  || die "the CRDs must survive uninstall"
left_cluster=$(kubectl get clusterroles,clusterrolebindings,mutatingwebhookconfigurations -o name | grep "$FULLNAME" || true)
[ -z "$left_cluster" ] || die "cluster-scoped objects left: $left_cluster"
log "   nothing else left"
log "6. the PrometheusRule with $("$PROMTOOL" --version 2>&1 | awk 'NR == 1')"
RULES_DIR=$(mktemp -d)
# The PrometheusRule's spec is a Prometheus rule file (`groups:`).
rule_file() { # helm args...: prints the rule file of the rendered PrometheusRule
  "$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --namespace "$NS" --kube-version "$VERSION" \
    --show-only templates/prometheusrule.yaml "$@" \
    | awk '/^spec:$/ {on=1; next} on {sub(/^  /, ""); print}'
}
for values in "${values_files[@]}"; do
  grep -q 'prometheusRule:' "$values" || continue
  rule_file -f "$values" >"$RULES_DIR/rules.yaml"
  "$PROMTOOL" check rules "$RULES_DIR/rules.yaml" >/dev/null \
    || { "$PROMTOOL" check rules "$RULES_DIR/rules.yaml"; die "promtool check rules: $(basename "$values")"; }
  log "   check rules ok: $(basename "$values")"
done
# The ServiceMonitor on: the alerts on the operator's own series need its job.
ON=(--set metrics.prometheusRule.enabled=true --set metrics.serviceMonitor.enabled=true)
rule_file "${ON[@]}" >"$RULES_DIR/rules.yaml"
"$PROMTOOL" check rules "$RULES_DIR/rules.yaml" >/dev/null || die "promtool check rules: defaults"
cp "$CHART"/tests/*.test.yaml "$RULES_DIR/"
( cd "$RULES_DIR" && "$PROMTOOL" test rules ./*.test.yaml ) >"$RULES_DIR/test.log" 2>&1 \
  || { cat "$RULES_DIR/test.log" >&2; die "promtool test rules"; }
log "   test rules ok: $(grep -c 'alertname:' "$CHART"/tests/*.test.yaml) alert evaluations"
# Every alert has its switch, and a runbook section.
alerts=$(grep -oE -- '- alert: [A-Za-z]+$' "$RULES_DIR/rules.yaml" | awk '{print $3}' || true)
[ "$(wc -w <<<"$alerts")" -ge 11 ] || die "expected at least 11 alerts, rendered: $alerts"
for alert in $alerts; do
  # Captured first: grep -q closing a pipe early would fail it under pipefail.
  switched_off=$(rule_file "${ON[@]}" --set "metrics.prometheusRule.alerts.$alert.enabled=false")
  grep -q "alert: $alert\$" <<<"$switched_off" && die "metrics.prometheusRule.alerts.$alert.enabled=false left the alert in"
  grep -qE -- "- alert: [A-Za-z]+\$" <<<"$switched_off" || die "switching $alert off rendered no other alert"
  grep -q "^### \`$alert\`$" "$ROOT/docs/troubleshooting.md" || die "docs/troubleshooting.md has no '### \`$alert\`' runbook section"
  grep -q "#$(tr 'A-Z' 'a-z' <<<"$alert")\"" "$RULES_DIR/rules.yaml" || die "$alert has no runbook_url to its section"
done
log "   $(wc -w <<<"$alerts") alerts: each switchable, each with its runbook section"
# Without the ServiceMonitor or operatorSelector the operator's job is
# unknown: the alerts on its own series are left out, not always firing.
unknown_job=$(rule_file --set metrics.prometheusRule.enabled=true)
grep -q "alert: OtpilotOperatorDown" <<<"$unknown_job" && die "OtpilotOperatorDown rendered without a known operator job"
grep -q "alert: OtpilotCredentialNotReady" <<<"$unknown_job" || die "the per-credential alerts need no operator job"
selected=$(rule_file --set metrics.prometheusRule.enabled=true --set 'metrics.prometheusRule.operatorSelector=job="otpilot"')
grep -q 'absent(up{job="otpilot"})' <<<"$selected" || die "operatorSelector is not used by OtpilotOperatorDown"
log "   the operator's own alerts follow its job (ServiceMonitor or operatorSelector)"
# The operator's and sidecars' own labels (the credential's namespace) must
# win over the target's, or the alerts name the operator's namespace.
for monitor in servicemonitor podmonitor; do
  monitor_yaml=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --namespace "$NS" --kube-version "$VERSION" \
    -f "$CHART/ci/all-values.yaml" --show-only "templates/$monitor.yaml")
  grep -q 'honorLabels: true' <<<"$monitor_yaml" || die "the $monitor does not set honorLabels: true"
done
services_yaml=$("$BIN/helm" template "$RELEASE" "$CHART" "${IMAGES[@]}" --namespace "$NS" --kube-version "$VERSION" \
  --show-only templates/services.yaml)
metrics_service=$(grep -A8 'otpilot.dev/service: metrics' <<<"$services_yaml")
grep -q 'publishNotReadyAddresses: true' <<<"$metrics_service" \
  || die "the metrics Service drops not-Ready replicas: their metrics (why not Ready) would not be scraped"
log "   ServiceMonitor and PodMonitor keep the scraped labels (honorLabels); not-Ready replicas are scraped"
log "all chart checks passed"
