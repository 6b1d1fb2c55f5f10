#!/usr/bin/env bash
# Builds fledge's image without Docker: the same image as the Dockerfile (one
# static CGO_ENABLED=0 binary, user 65532, no shell), FROM scratch with buildah
# (vfs storage, so it needs no daemon, overlay or registry), into an OCI archive
# that `ctr -n k8s.io images import` accepts.
#
#   hack/image.sh fledge [OUT.tar]   # ghcr.io/fledge-dev/fledge:latest (FLEDGE_IMAGE overrides)
#   hack/image.sh pause  [OUT.tar]   # the local node's sandbox image (PAUSE_IMAGE overrides)
#
# Default OUT: bin/images/<name>.tar. Prints the archive's path.
#
# Base images cannot be pulled here, so the image carries itself what fledge needs
# from gcr.io/distroless/static-debian12:nonroot (the Dockerfile's base):
#   /etc/ssl/certs/ca-certificates.crt  CA certificates (from Debian's ca-certificates),
#                                       for HTTPS to the APISIX Admin API or Prometheus
#   /etc/passwd, /etc/group             root, nobody and nonroot (65532), as distroless
#   /home/nonroot                       the working folder, owned by 65532
#   /tmp                                mode 1777 (read-only under readOnlyRootFilesystem;
#                                       fledge writes nothing at start)
# Not carried: tzdata (fledge uses UTC only), /etc/os-release, the Debian package database.
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"
cd "$(dirname "$0")/.."

name=${1:-}
out=${2:-bin/images/$name.tar}
case "$name" in
  fledge) tag=${FLEDGE_IMAGE:-ghcr.io/fledge-dev/fledge:latest}; pkg=./cmd/fledge; bin=fledge ;;
  pause) tag=${PAUSE_IMAGE:-localhost/fledge/pause:1}; pkg=./hack/pause; bin=pause ;;
  *) echo "usage: hack/image.sh fledge|pause [OUT.tar]" >&2; exit 2 ;;
esac
log() { echo "image: $*" >&2; }
for c in buildah tar; do
  command -v "$c" >/dev/null || { echo "image: $c is not installed (hack/setup.sh installs it)" >&2; exit 1; }
done
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || { echo "image: /etc/ssl/certs/ca-certificates.crt is missing (apt-get install ca-certificates)" >&2; exit 1; }

start=$SECONDS
work=$(mktemp -d)
store="$work/storage"
b=(buildah --storage-driver vfs --root "$store/root" --runroot "$store/run")
cleanup() {
  "${b[@]}" rm --all >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{etc/ssl/certs,home/nonroot,tmp}
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$rootfs/$bin" "$pkg"
if [[ "$name" == fledge ]]; then
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$rootfs/etc/group"
fi
chmod 0755 "$rootfs/$bin" "$rootfs/home/nonroot"
chmod 1777 "$rootfs/tmp"
find "$rootfs/etc" -type d -exec chmod 0755 {} + && find "$rootfs/etc" -type f -exec chmod 0644 {} +
# Owners are set in the layer itself: everything root's, the home folder nonroot's.
tar_opts=(--numeric-owner --mtime=@0 --sort=name -C "$rootfs")
tar -cf "$work/layer.tar" --owner=0 --group=0 --exclude=./home/nonroot "${tar_opts[@]}" .
tar -rf "$work/layer.tar" --owner=65532 --group=65532 "${tar_opts[@]}" ./home/nonroot

ctr=$("${b[@]}" from --quiet scratch)
"${b[@]}" add --quiet "$ctr" "$work/layer.tar" / >/dev/null
config=(--os linux --arch "$(go env GOARCH)" --user 65532:65532 --workingdir /home/nonroot
  --entrypoint "[\"/$bin\"]" --cmd '' --env PATH=/
  --label org.opencontainers.image.source=https://github.com/fledge-dev/fledge
  --label "org.opencontainers.image.version=$version")
[[ "$name" == fledge ]] && config+=(--env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
"${b[@]}" config "${config[@]}" --created-by "hack/image.sh: $bin FROM scratch" "$ctr"
mkdir -p "$(dirname "$out")"
rm -f "$out"
"${b[@]}" commit --quiet --format oci --timestamp 0 "$ctr" "oci-archive:$out:$tag" >/dev/null
log "built $tag into $out ($(du -h "$out" | cut -f1), $((SECONDS - start))s)"
echo "$out"
