#!/usr/bin/env bash
# Data-plane benchmark: fledge's embedded gateway vs HAProxy vs no proxy, with
# two error-page backends in network namespaces, wrk as the load generator.
# Prints a Markdown table of ratios (see hack/benchgateway and
# docs/gateway-bench.md). Needs root. Installs wrk, haproxy and h2load
# (nghttp2-client) when missing, and perf (linux-perf) for -syscalls.
#
#   bash hack/bench-gateway.sh                         # 5 rounds, all variants
#   bash hack/bench-gateway.sh -rounds 3 -variants "haproxy,fledge GOGC=400"
#   bash hack/bench-gateway.sh -rounds 1 -syscalls   # + system calls per request
#
# Arguments go to the benchmark program (go run ./hack/benchgateway -h).
# The 2 cores of a small machine are shared by wrk, the proxy and both
# backends: run it on an otherwise idle machine, and once, not in a loop.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if [[ $(id -u) -ne 0 ]]; then
  echo "bench-gateway: needs root (network namespaces)" >&2
  exit 1
fi
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v haproxy >/dev/null || need+=(haproxy)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v ip >/dev/null || need+=(iproute2)
for arg in "$@"; do
  case "$arg" in
    -syscalls | --syscalls | -syscalls=true | --syscalls=true)
      command -v perf >/dev/null || need+=(linux-perf)
      ;;
  esac
done
if ((${#need[@]})); then
  echo "bench-gateway: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "bench-gateway: go is not installed (want Go 1.26 at /usr/local/go)" >&2; exit 1; }

tmp=$(mktemp -d)
bench_pid=
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null || true
    wait "$bench_pid" 2>/dev/null || true
  fi
  # Namespaces of a run killed before it could close them (live runs are kept).
  [[ -x "$tmp/benchgateway" ]] && "$tmp/benchgateway" cleanup || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/fledge" ./cmd/fledge
go build -o "$tmp/benchgateway" ./hack/benchgateway
"$tmp/benchgateway" -fledge "$tmp/fledge" "$@" &
bench_pid=$!
wait "$bench_pid"
