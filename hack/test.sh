#!/usr/bin/env bash
# Runs every test of fledge: unit tests, the controller tests and the e2e tests
# on a real kube-apiserver, and the provider conformance suite. Needs root (the
# e2e "pods" are network namespaces). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
prepare_controlplane

echo "== go vet" >&2
go vet ./...
echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
echo "== go test" >&2
go test -count=1 -timeout 30m "$@" ./...
