#!/usr/bin/env bash
# Builds a real kube-apiserver, etcd and kubectl from the Go module proxy into a cache
# folder keyed by their versions and hack/kapi/go.sum, and prints that folder. The build
# is skipped when the folder is complete. The first build takes several minutes.
#
#   dir=$(hack/controlplane.sh)   # then: export KUBEBUILDER_ASSETS="$dir"
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kapi="$here/kapi"
k8s_version=v1.37.2
etcd_version=v3.7.0
sum=$(cat "$kapi/go.sum" "$kapi/go.mod" | sha256sum | cut -c1-12)
cache_root=${FLEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fledge}
out="$cache_root/controlplane/k8s-$k8s_version-etcd-$etcd_version-$sum"

log() { echo "controlplane: $*" >&2; }

if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  log "cached in $out"
  echo "$out"
  exit 0
fi

mkdir -p "$out.tmp"
ver="k8s.io/component-base/version"
cgo="k8s.io/client-go/pkg/version"
ldflags="-s -w"
for p in "$ver" "$cgo"; do
  ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=37"
  ldflags+=" -X $p.gitTreeState=clean"
done

cd "$kapi"
build() { # name package
  local start=$SECONDS
  log "building $1 ($2); the first build takes minutes..."
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out.tmp/$1" "$2"
  log "built $1 in $((SECONDS - start))s"
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kubectl k8s.io/kubernetes/cmd/kubectl

rm -rf "$out"
mv "$out.tmp" "$out"
log "ready in $out"
echo "$out"
