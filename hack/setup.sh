#!/usr/bin/env bash
# Installs what fledge's demo and tests need on a fresh Debian machine (as root).
# Sourced by hack/demo.sh and hack/test.sh, which then build the local control
# plane (cached after the first time) with prepare_controlplane.
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v prometheus >/dev/null || need+=(prometheus)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "setup: go is not installed (want Go 1.26 at /usr/local/go)" >&2; exit 1; }

# prepare_controlplane builds (once) the kube-apiserver, etcd and kubectl and
# exports KUBEBUILDER_ASSETS, the folder holding them.
prepare_controlplane() {
  KUBEBUILDER_ASSETS=$(bash hack/controlplane.sh)
  export KUBEBUILDER_ASSETS
}
