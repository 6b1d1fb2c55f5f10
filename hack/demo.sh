#!/usr/bin/env bash
# Runs the local demo of the whole walkthrough (needs root for network
# namespaces). Installs what is missing and builds the control plane first.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/setup.sh
prepare_controlplane
mkdir -p bin
go build -o bin/fledge ./cmd/fledge
exec bin/fledge demo "$@"
