#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, without Docker: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, containerd (with runc
# and the CNI bridge plugin), kubelet and kube-proxy (nftables mode). Pods are
# real containers; EndpointSlices are written by the real controller; Services
# go through kube-proxy. Needs root. Settings and measured figures:
# docs/real-node.md.
#
#   hack/cluster.sh build     # build (once, cached by hack/kapi/go.sum) the Kubernetes binaries
#   hack/cluster.sh up        # build, start the node, import fledge's and the pause image
#   hack/cluster.sh env       # print: export KUBECONFIG=... PATH=... (kubectl of the node)
#   hack/cluster.sh kubeconfig  # print the admin kubeconfig's path
#   hack/cluster.sh import F  # import an OCI archive (hack/image.sh) into the node
#   hack/cluster.sh ctr ARGS  # ctr on the node's containerd (e.g. -n k8s.io tasks ls)
#   hack/cluster.sh down      # stop everything and undo what the node changed on the host
#   hack/cluster.sh status
#
# Names, addresses and ports are fixed (one node per machine); FLEDGE_NODE_DIR
# (default /var/lib/fledge-node) holds its state, certificates, logs and kubeconfig.
set -euo pipefail
export PATH="/usr/local/go/bin:$PATH"
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

k8s_version=v1.37.2
node_name=fledge-node
node_ip=10.98.0.1            # on one end of a veth pair (the kernel has no dummy links)
node_link=fln0 node_peer=fln1
pod_cidr=10.244.0.0/24 bridge=flcni0
service_cidr=10.97.0.0/16 kubernetes_svc_ip=10.97.0.1
etcd_port=2479 etcd_peer_port=2480 apiserver_port=6443
dir=${FLEDGE_NODE_DIR:-/var/lib/fledge-node}
run=/run/fledge-node
sock="$run/containerd.sock"
cache_root=${FLEDGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fledge}
pause_image=${PAUSE_IMAGE:-localhost/fledge/pause:1}
sysctls=(net.ipv4.ip_forward vm.overcommit_memory kernel.panic kernel.panic_on_oops
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

# --- binaries --------------------------------------------------------------

# build_node_binaries builds kubelet, kube-controller-manager, kube-scheduler and
# kube-proxy into a folder keyed by the version and hack/kapi's go.sum, and sets
# NODE_BIN. The control plane (etcd, kube-apiserver, kubectl) comes from
# hack/controlplane.sh (CP_BIN).
build_binaries() {
  CP_BIN=$(bash "$here/controlplane.sh")
  local sum
  sum=$(cat "$here/kapi/go.sum" "$here/kapi/go.mod" | sha256sum | cut -c1-12)
  NODE_BIN="$cache_root/node/k8s-$k8s_version-$sum"
  local names=(kube-scheduler kube-proxy kube-controller-manager kubelet) n missing=()
  for n in "${names[@]}"; do [[ -x "$NODE_BIN/$n" ]] || missing+=("$n"); done
  if ((${#missing[@]} == 0)); then
    log "node binaries cached in $NODE_BIN"
    return
  fi
  local ldflags="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=37 -X $p.gitTreeState=clean"
  done
  mkdir -p "$NODE_BIN.tmp"
  for n in "${missing[@]}"; do
    local start=$SECONDS
    log "building $n; the first build takes minutes (kubelet about 7 on 2 cores)..."
    (cd "$here/kapi" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$NODE_BIN.tmp/$n" "k8s.io/kubernetes/cmd/$n")
    log "built $n in $((SECONDS - start))s"
  done
  mkdir -p "$NODE_BIN"
  mv "$NODE_BIN.tmp"/* "$NODE_BIN/"
  rmdir "$NODE_BIN.tmp"
}

# --- host prerequisites ------------------------------------------------------

check_host() {
  (($(id -u) == 0)) || die "needs root (containers, links, nftables, mounts)"
  local c
  for c in containerd containerd-shim-runc-v2 runc ctr nft ip openssl; do
    command -v "$c" >/dev/null || die "$c is not installed (hack/setup.sh installs it)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] ||
    die "CNI plugins missing in /usr/lib/cni (apt-get install containernetworking-plugins)"
}

# --- certificates and kubeconfigs -------------------------------------------

# cert NAME CN [O] [SAN]: a key and a certificate signed by the node's CA.
cert() {
  local name=$1 cn=$2 o=${3:-} san=${4:-} subj
  [[ -s "$dir/pki/$name.crt" ]] && return
  subj="/CN=$cn"
  [[ -n "$o" ]] && subj="/O=$o$subj"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "$dir/pki/$name.key" \
    -subj "$subj" -out "$dir/pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$san" ]]; then echo "extendedKeyUsage=serverAuth,clientAuth"; echo "subjectAltName=$san"; else echo "extendedKeyUsage=clientAuth"; fi
  } >"$dir/pki/$name.ext"
  openssl x509 -req -in "$dir/pki/$name.csr" -CA "$dir/pki/ca.crt" -CAkey "$dir/pki/ca.key" -CAcreateserial \
    -days 30 -extfile "$dir/pki/$name.ext" -out "$dir/pki/$name.crt" 2>/dev/null
  rm -f "$dir/pki/$name.csr" "$dir/pki/$name.ext"
}

make_pki() {
  mkdir -p "$dir/pki"
  chmod 0700 "$dir/pki"
  if [[ ! -s "$dir/pki/ca.crt" ]]; then
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 30 \
      -subj "/CN=fledge-node-ca" -keyout "$dir/pki/ca.key" -out "$dir/pki/ca.crt" 2>/dev/null
  fi
  if [[ ! -s "$dir/pki/sa.key" ]]; then
    openssl genrsa -out "$dir/pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$dir/pki/sa.key" -pubout -out "$dir/pki/sa.pub" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" "IP:$node_ip,IP:$kubernetes_svc_ip,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert admin kubernetes-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert proxy system:kube-proxy
  cert kubelet-client "system:node:$node_name" system:nodes
  cert kubelet "$node_name" "" "IP:$node_ip,DNS:$node_name"
}

# kubeconfig NAME CERT: a kubeconfig for the API server with a client certificate.
kubeconfig() {
  cat >"$dir/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $node_name
    cluster:
      server: https://$node_ip:$apiserver_port
      certificate-authority: $dir/pki/ca.crt
users:
  - name: $2
    user:
      client-certificate: $dir/pki/$2.crt
      client-key: $dir/pki/$2.key
contexts:
  - name: $node_name
    context: {cluster: $node_name, user: $2}
current-context: $node_name
EOF
  chmod 0600 "$dir/$1.kubeconfig"
}

# --- processes ---------------------------------------------------------------

# start NAME COMMAND...: runs a component in the background, logging to
# $dir/logs/NAME.log, its pid in $run/NAME.pid.
start() {
  local name=$1
  shift
  "$@" >>"$dir/logs/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
}

# alive NAME: the component runs (a zombie, killed but not yet reaped, does not).
alive() {
  local pid state
  [[ -f "$run/$1.pid" ]] || return 1
  pid=$(cat "$run/$1.pid")
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND until it succeeds.
wait_for() {
  local what=$1 limit=$2 deadline
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$what did not come up within ${limit}s; last log lines:"
      local l
      for l in "$dir"/logs/*.log; do echo "--- $l" >&2; tail -n 15 "$l" >&2; done
      return 1
    fi
    sleep 0.25
  done
}

# stop NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
stop() {
  local name=$1 limit=${2:-10} pid i
  [[ -f "$run/$name.pid" ]] || return 0
  pid=$(cat "$run/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < limit * 10; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$name.pid"
}

node_ready() {
  [[ "$(kubectl_node get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}

kubectl_node() { "$CP_BIN/kubectl" --kubeconfig "$dir/admin.kubeconfig" "$@"; }

# --- up ----------------------------------------------------------------------

save_host_state() {
  [[ -f "$dir/host-state" ]] && return # a previous up saved the state before the node
  local s n c
  {
    for s in "${sysctls[@]}"; do
      if [[ -e "/proc/sys/${s//.//}" ]]; then echo "sysctl $s=$(cat "/proc/sys/${s//.//}")"; fi
    done
    if [[ -d /var/lib/cni ]]; then echo "existed /var/lib/cni"; fi
    if [[ -d /var/run/netns ]]; then echo "existed /var/run/netns"; fi
    for n in /var/run/netns/cni-*; do
      if [[ -e "$n" ]]; then echo "netns $n"; fi
    done
    for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
      if [[ -d "$c" ]]; then echo "cgroup $c"; fi
    done
  } >"$dir/host-state"
}

setup_network() {
  if ! ip link show "$node_link" >/dev/null 2>&1; then
    ip link add "$node_link" type veth peer name "$node_peer"
  fi
  ip addr replace "$node_ip/32" dev "$node_link"
  ip link set "$node_link" up
  ip link set "$node_peer" up
  mkdir -p "$dir/cni/net.d" "$dir/cni/ipam"
  cat >"$dir/cni/net.d/10-fledge-node.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "fledge-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "hairpinMode": true,
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$pod_cidr"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_configs() {
  cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/containerd"
state = "$run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$run/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_image"
  # Without it every Pod sandbox fails: this kind of VM drops CAP_SYS_RESOURCE, so
  # runc cannot lower /proc/self/oom_score_adj.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/cni/net.d"
EOF
  cat >"$dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $dir/pki/kubelet.crt
tlsPrivateKeyFile: $dir/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs      # containerd 1.6 does not answer kubelet's RuntimeConfig call
failCgroupV1: false         # this machine has cgroup v1 (hybrid)
failSwapOn: false
makeIPTablesUtilChains: false
protectKernelDefaults: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# Locally imported images cannot be pulled again: never collect them, never evict.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
staticPodPath: ""
EOF
  cat >"$dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $dir/proxy.kubeconfig}
mode: nftables              # tables of its own; the host's iptables stay as they are
hostnameOverride: $node_name
clusterCIDR: $pod_cidr
nodePortAddresses: ["$node_ip/32"]
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
conntrack:                  # 0: leave the host's conntrack sysctls alone
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

start_components() {
  local pki="$dir/pki"
  start etcd "$CP_BIN/etcd" --name "$node_name" --data-dir "$dir/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "$node_name=http://127.0.0.1:$etcd_peer_port" --log-level warn
  start containerd containerd --config "$dir/containerd.toml"
  start kube-apiserver "$CP_BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$node_ip" --advertise-address "$node_ip" --secure-port "$apiserver_port" \
    --service-cluster-ip-range "$service_cidr" \
    --client-ca-file "$pki/ca.crt" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
    --allow-privileged=false --profiling=false
  wait_for "containerd" 30 ctr --address "$sock" version
  import_archive "$dir/images/pause.tar"
  wait_for "kube-apiserver" 60 curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://$node_ip:$apiserver_port/readyz"
  start kube-controller-manager "$NODE_BIN/kube-controller-manager" --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10257 --leader-elect=false --controllers '*' \
    --use-service-account-credentials --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --service-cluster-ip-range "$service_cidr" --profiling=false
  start kube-scheduler "$NODE_BIN/kube-scheduler" --kubeconfig "$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 10259 --leader-elect=false --profiling=false
  start kubelet "$NODE_BIN/kubelet" --config "$dir/kubelet.yaml" --kubeconfig "$dir/kubelet-client.kubeconfig" \
    --root-dir "$dir/kubelet" --cert-dir "$dir/kubelet/pki" --hostname-override "$node_name" --node-ip "$node_ip"
  start kube-proxy "$NODE_BIN/kube-proxy" --config "$dir/kube-proxy.yaml"
}

import_archive() {
  local f=$1
  [[ -f "$f" ]] || die "no image archive $f"
  ctr --address "$sock" -n k8s.io images import "$f" >/dev/null ||
    die "ctr images import $f failed"
}

up() {
  check_host
  if alive kube-apiserver; then
    log "the node is already up; importing a fresh fledge image (hack/cluster.sh down for a new node)"
    bash "$here/image.sh" fledge "$dir/images/fledge.tar" >/dev/null
    import_archive "$dir/images/fledge.tar"
    return 0
  fi
  if [[ -d "$run" || -f "$dir/host-state" ]]; then
    log "cleaning up what a previous node left behind"
    down
  fi
  local t0=$SECONDS
  build_binaries
  log "building the images"
  mkdir -p "$dir/images"
  bash "$here/image.sh" pause "$dir/images/pause.tar" >/dev/null
  bash "$here/image.sh" fledge "$dir/images/fledge.tar" >/dev/null
  local t1=$SECONDS
  mkdir -p "$dir/logs" "$run"
  save_host_state
  make_pki
  local k
  for k in admin controller-manager scheduler proxy kubelet-client; do kubeconfig "$k" "$k"; done
  setup_network
  write_configs
  start_components
  wait_for "node $node_name Ready" 90 node_ready
  # The controller-manager makes the namespaces' default ServiceAccounts a few
  # seconds after it starts; workloads applied before would be refused.
  wait_for "default ServiceAccount" 60 kubectl_node get serviceaccount default -n default
  import_archive "$dir/images/fledge.tar"
  mkdir -p "$dir/bin"
  ln -sf "$CP_BIN/kubectl" "$dir/bin/kubectl"
  echo "$CP_BIN" >"$dir/controlplane-bin"
  log "node $node_name is up in $((SECONDS - t1))s (images and binaries: $((t1 - t0))s); logs in $dir/logs"
  log "use it with: eval \"\$(hack/cluster.sh env)\""
}

# --- down --------------------------------------------------------------------

down() {
  (($(id -u) == 0)) || die "needs root"
  [[ -d "$dir" || -d "$run" ]] || { log "no node"; return 0; }
  local t0=$SECONDS
  CP_BIN=$(cat "$dir/controlplane-bin" 2>/dev/null || true)
  # Gracefully first: with nothing to recreate them, the kubelet stops the Pods
  # (CNI teardown included). What is left after 10 s is killed below.
  stop kube-controller-manager
  stop kube-scheduler
  if alive kube-apiserver && alive kubelet && [[ -x "$CP_BIN/kubectl" ]]; then
    kubectl_node delete pods --all -A --grace-period=1 --wait=false >/dev/null 2>&1 || true
    local i
    for ((i = 0; i < 40; i++)); do
      [[ -z "$(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null)" ]] && break
      sleep 0.25
    done
  fi
  stop kube-proxy
  stop kubelet
  # Whatever still runs in containerd: kill the tasks while containerd is up.
  if alive containerd; then
    local t
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
    done
  fi
  stop containerd
  # Shims outlive containerd: find this node's by their -address (its socket),
  # and kill what still runs under them (containers whose Pods were not stopped)
  # before them.
  local p shims=() ppid
  for p in /proc/[0-9]*; do
    if [[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" == *containerd-shim*" -address $sock"* ]]; then
      shims+=("${p#/proc/}")
    fi
  done
  if ((${#shims[@]})); then
    for p in /proc/[0-9]*; do
      ppid=$(awk '{print $4}' "$p/stat" 2>/dev/null) || continue
      if [[ " ${shims[*]} " == *" $ppid "* ]]; then kill -KILL "${p#/proc/}" 2>/dev/null || true; fi
    done
    kill -KILL "${shims[@]}" 2>/dev/null || true
    sleep 0.5
  fi
  stop kube-apiserver # before etcd: both hang for seconds when stopped together
  stop etcd
  undo_host
  log "node down in $((SECONDS - t0))s"
}

undo_host() {
  local m
  # Mounts: Pod volumes, container root file systems, network namespaces, shm.
  for m in $(findmnt -rn -o TARGET | grep -E "^($dir|$run)(/|$)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  nft delete table ip kube-proxy 2>/dev/null || true
  nft delete table ip6 kube-proxy 2>/dev/null || true
  ip link del "$bridge" 2>/dev/null || true
  ip link del "$node_link" 2>/dev/null || true
  local state="$dir/host-state" n c s
  [[ -f "$state" ]] || state=/dev/null
  for n in /var/run/netns/cni-*; do
    [[ -e "$n" ]] || continue
    grep -qx "netns $n" "$state" || { umount "$n" 2>/dev/null || true; rm -f "$n"; }
  done
  grep -qx "existed /var/run/netns" "$state" || rmdir /var/run/netns 2>/dev/null || true
  rm -rf /var/lib/cni/results/fledge-node-* /var/lib/cni/networks/fledge-node 2>/dev/null || true
  grep -qx "existed /var/lib/cni" "$state" || rm -rf /var/lib/cni
  # kubepods cgroups: the deepest first (a cgroup is removable once empty).
  for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d "$c" ]] || continue
    grep -qx "cgroup $c" "$state" && continue
    find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  while read -r kind s; do
    [[ "$kind" == sysctl ]] || continue
    sysctl -qw "$s" >/dev/null 2>&1 || true
  done <"$state"
  rm -f "$dir/host-state"
  rm -rf "$run" "$dir/containerd" "$dir/kubelet" "$dir/etcd" "$dir/cni" "$dir/bin"
}

case "${1:-}" in
  build) check_host; build_binaries; echo "$NODE_BIN" ;;
  up) up ;;
  down) down ;;
  env)
    [[ -f "$dir/admin.kubeconfig" ]] || die "no node (hack/cluster.sh up)"
    echo "export KUBECONFIG=$dir/admin.kubeconfig PATH=$dir/bin:\$PATH"
    ;;
  kubeconfig)
    [[ -f "$dir/admin.kubeconfig" ]] || die "no node (hack/cluster.sh up)"
    echo "$dir/admin.kubeconfig"
    ;;
  ctr) shift; exec ctr --address "$sock" "$@" ;;
  import) [[ -n "${2:-}" ]] || die "usage: hack/cluster.sh import ARCHIVE.tar"; import_archive "$2" ;;
  status)
    for c in etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
      if alive "$c"; then echo "$c running (pid $(cat "$run/$c.pid"))"; else echo "$c stopped"; fi
    done
    ;;
  *) echo "usage: hack/cluster.sh build|up|down|env|kubeconfig|import ARCHIVE|ctr ARGS|status" >&2; exit 2 ;;
esac
