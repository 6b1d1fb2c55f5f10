#!/usr/bin/env bash
# Runs the e2e tests on a real node (test/node): brings up hack/cluster.sh (which
# builds fledge's image from this tree), runs them, and takes the node down, also
# when they fail. Needs root. hack/test.sh runs it after the other tests; run it
# alone with: sudo bash hack/test-node.sh [go test flags, e.g. -run 'TestRealNode/walkthrough']
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
prepare_controlplane
prepare_helm
start=$SECONDS
cleanup() { bash hack/cluster.sh down >&2 || exit 1; }
trap cleanup EXIT
bash hack/cluster.sh up >&2
echo "test-node: node up after $((SECONDS - start))s" >&2
status=0
FLEDGE_NODE_KUBECONFIG=$(bash hack/cluster.sh kubeconfig) FLEDGE_NODE_KUBECTL="$KUBEBUILDER_ASSETS/kubectl" \
  go test -count=1 -timeout 40m -v "$@" ./test/node || status=$?
echo "test-node: tests done after $((SECONDS - start))s" >&2
exit "$status"
