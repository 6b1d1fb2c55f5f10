#!/usr/bin/env bash
# Regenerates deepcopy code and the CRD manifests from api/. Run after changing api/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
gen() { go tool -modfile=hack/tools/go.mod controller-gen "$@"; }
gen object paths=./api/...
gen crd paths=./api/... output:crd:artifacts:config=deploy/crds
# The Helm chart ships the same CRDs (deploy/helm/chart_test.go checks it).
cp deploy/crds/*.yaml deploy/helm/fledge/crds/
