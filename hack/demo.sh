#!/usr/bin/env bash
# The README's walkthrough, verbatim, on a real single-node Kubernetes on this
# machine (hack/cluster.sh: containerd, kubelet, kube-proxy, ...): fledge's own
# image, `kubectl apply -k deploy/`, error-page v1 and v2 as real Deployments,
# the three `kubectl annotate` steps, and 100 curl requests per step through
# `kubectl port-forward` to the gateway Service. It exits non-zero if a count is
# not the expected one (100/0, 90/10, 100/0, 0/100). Needs root.
#
#   sudo bash hack/demo.sh           # real node; brought up, and down at the end
#   sudo bash hack/demo.sh --keep    # leave the node and fledge running afterwards
#   sudo bash hack/demo.sh --local   # the faster local demo: a real API server, but
#                                    # "pods" as processes in network namespaces,
#                                    # plus automated releases under load
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh

if [[ "${1:-}" == --local ]]; then
  shift
  prepare_controlplane
  mkdir -p bin
  # The demo is its own binary (cmd/fledge-demo): the fledge binary links no test
  # harness. Its pods run bin/fledge.
  go build -o bin/ ./cmd/fledge ./cmd/fledge-demo
  exec bin/fledge-demo --fledge bin/fledge "$@"
fi
keep=false
[[ "${1:-}" == --keep ]] && keep=true

start=$SECONDS
pf=
cleanup() {
  [[ -z "$pf" ]] || kill "$pf" 2>/dev/null || true
  $keep || { echo; echo "== cleaning up: hack/cluster.sh down"; bash hack/cluster.sh down; }
}
trap cleanup EXIT
bash hack/cluster.sh up
eval "$(bash hack/cluster.sh env)"

say() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail=()

# count STEP V1 V2: 100 requests, as the README sends them, counted by version.
count() {
  local step=$1 want1=$2 want2=$3 v1=0 v2=0 other=0 i out
  for i in $(seq 100); do
    out=$(curl -sf --max-time 5 "$GATEWAY/api/error_page" -H 'Host: error-page' || true)
    case "$out" in
      *'"version": "v1"'*) v1=$((v1 + 1)) ;;
      *'"version": "v2"'*) v2=$((v2 + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
  done
  echo "  100 requests: v1 $v1, v2 $v2, other $other   (expected v1 $want1, v2 $want2)"
  [[ $v1 == "$want1" && $v2 == "$want2" && $other == 0 ]] || fail+=("$step: v1 $v1 v2 $v2 other $other")
}

# served STABLE CANARY WEIGHT: waits until every gateway replica serves that
# routing (its /routes on the metrics port), so the counts are the new step's.
served() {
  local want="$1 $2 $3" ip got i
  for ((i = 0; i < 120; i++)); do
    got=ok
    for ip in $(kubectl get pods -n fledge-system -l app.kubernetes.io/name=fledge-gateway -o jsonpath='{.items[*].status.podIP}'); do
      [[ "$(curl -s --max-time 2 "http://$ip:9090/routes" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["routes"]:
    if r["host"] == "error-page" and r["stable"]["targets"] and (not r.get("canary") or r["canary"]["targets"]):
        print(r["stable"]["service"], (r.get("canary") or {}).get("service", "-"), r["canaryWeight"])
' 2>/dev/null)" == "$want" ]] || got=no
    done
    [[ $got == ok ]] && return 0
    sleep 0.25
  done
  echo "  the gateways did not serve '$want' within 30 s" >&2
  return 1
}

say "install fledge from its own image (imported on the node as ghcr.io/fledge-dev/fledge:latest)"
run kubectl apply -k deploy/
run kubectl rollout status -n fledge-system deployment/fledge-controller --timeout=180s
run kubectl rollout status -n fledge-system deployment/fledge-gateway --timeout=180s
run kubectl create namespace canary-release-demo
run kubectl apply -n canary-release-demo -f deploy/examples/error-page/manifest-v1.yaml
run kubectl apply -n canary-release-demo -f deploy/examples/error-page/manifest-v2.yaml
run kubectl rollout status -n canary-release-demo deployment/error-page-v1 --timeout=120s
run kubectl rollout status -n canary-release-demo deployment/error-page-v2 --timeout=120s
echo '$ kubectl port-forward -n fledge-system service/fledge-gateway 10080:80 &'
kubectl port-forward -n fledge-system service/fledge-gateway 10080:80 >/dev/null &
pf=$!
GATEWAY=http://127.0.0.1:10080
for ((i = 0; i < 100; i++)); do curl -s -o /dev/null "$GATEWAY/" && break; sleep 0.1; done

say "step 1: publish error-page-v1 as application error-page"
run kubectl annotate service -n canary-release-demo error-page-v1 "api7.cloud/published-service=error-page"
served error-page-v1 - 0
curl -s "$GATEWAY/api/error_page" -H 'Host: error-page'; echo
count "step 1" 100 0

say "step 2: canary error-page-v2 at 10%"
run kubectl annotate service -n canary-release-demo error-page-v2 "api7.cloud/published-canary-service=true" "api7.cloud/published-service-canary-percentage=10"
run kubectl annotate service -n canary-release-demo error-page-v2 "api7.cloud/published-service=error-page"
served error-page-v1 error-page-v2 10
count "step 2" 90 10

say "step 3: roll back (0%)"
run kubectl annotate service -n canary-release-demo error-page-v2 "api7.cloud/published-service-canary-percentage=0" --overwrite
served error-page-v1 error-page-v2 0
count "step 3" 100 0

say "step 4: release (100%)"
run kubectl annotate service -n canary-release-demo error-page-v2 "api7.cloud/published-service-canary-percentage=100" --overwrite
served error-page-v1 error-page-v2 100
count "step 4" 0 100

say "what fledge did"
run kubectl get releases -n canary-release-demo
run kubectl get all -n canary-release-demo
if ((${#fail[@]})); then
  printf '\nthe walkthrough did not give the expected counts:\n' >&2
  printf '  %s\n' "${fail[@]}" >&2
  exit 1
fi
printf '\nwalkthrough complete on a real node: 100/0, 90/10, 100/0, 0/100 (%ds in all)\n' $((SECONDS - start))
$keep && printf 'the node keeps running: eval "$(hack/cluster.sh env)"; hack/cluster.sh down when done\n'
exit 0
