#!/usr/bin/env bash
# Installs what fledge's demo and tests need on a fresh Debian machine (as root).
# Sourced by hack/demo.sh and hack/test.sh, which then build the local control
# plane (cached after the first time) with prepare_controlplane.
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"

need=()
command -v ip >/dev/null || need+=(iproute2)
command -v prometheus >/dev/null || need+=(prometheus)
# The live view's test drives `fledge status --watch` in a terminal.
command -v tmux >/dev/null || need+=(tmux)
# The dashboard's test loads it in Debian's headless Chromium.
command -v chromium >/dev/null || need+=(chromium)
# The real node (hack/cluster.sh) and its images (hack/image.sh).
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v buildah >/dev/null || need+=(buildah)
command -v nft >/dev/null || need+=(nftables)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need+=(ca-certificates)
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

# prepare_helm builds (once) helm and exports FLEDGE_HELM, its path.
prepare_helm() {
  FLEDGE_HELM=$(bash hack/helm.sh)
  export FLEDGE_HELM
}
