#!/usr/bin/env bash
# Runs the local demo of the whole walkthrough (needs root for network
# namespaces). Installs what is missing and builds the control plane first.
# The demo is its own binary (cmd/fledge-demo): the fledge binary links no test
# harness. Its pods run bin/fledge.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
prepare_controlplane
mkdir -p bin
go build -o bin/ ./cmd/fledge ./cmd/fledge-demo
exec bin/fledge-demo --fledge bin/fledge "$@"
