#!/usr/bin/env bash
# Builds a real helm (pinned in hack/helm/go.mod) from the Go module proxy into a
# cache folder keyed by hack/helm/go.sum, and prints the binary's path. The build
# is skipped when it is cached; the first takes a few minutes.
#
#   helm=$(hack/helm.sh); "$helm" install fledge deploy/helm/fledge -n fledge-system
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
mod="$here/helm"
version=$(cd "$mod" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
sum=$(cat "$mod/go.sum" "$mod/go.mod" | sha256sum | cut -c1-12)
cache_root=${FLEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fledge}
out="$cache_root/helm/$version-$sum"
if [[ -x "$out/helm" ]]; then
  echo "helm: cached in $out" >&2
  echo "$out/helm"
  exit 0
fi
mkdir -p "$out"
start=$SECONDS
echo "helm: building helm $version; the first build takes minutes..." >&2
(cd "$mod" && CGO_ENABLED=0 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
  -o "$out/helm.tmp" helm.sh/helm/v4/cmd/helm)
mv "$out/helm.tmp" "$out/helm"
echo "helm: built in $((SECONDS - start))s" >&2
echo "$out/helm"
