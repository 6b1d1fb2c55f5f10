#!/usr/bin/env bash
# Runs the local demo of the whole walkthrough (needs root for network
# namespaces). Installs what is missing and builds the control plane first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/setup.sh
export PATH="/usr/local/go/bin:$PATH"
KUBEBUILDER_ASSETS=$(bash hack/controlplane.sh)
export KUBEBUILDER_ASSETS
mkdir -p bin
go build -o bin/fledge ./cmd/fledge
exec bin/fledge demo "$@"
